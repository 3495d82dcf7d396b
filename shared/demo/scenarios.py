"""The demo's special orders: presale, cross-border, sample, group buy, a likely duplicate, two
approval levels with an amendment, an escalated approval, a cancellation, and a paid order
amended up (the balance is owed, then paid)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from shared.demo import traffic
from shared.demo.plan import DemoPlan, amend_up_after_payment, encode

KEYS = {"sales_director": "demo-sales-director", "finance_director": "demo-finance-director",
        "general_manager": "demo-gm", "admin": "demo-admin"}


@dataclass
class Outcome:
    """One special order: what should happen to it, and what did."""

    key: str
    name: str
    message: dict[str, Any]
    expected: str
    steps: list[str] = field(default_factory=list)
    actual: str | None = None
    events: list[str] = field(default_factory=list)
    # A likely duplicate: the other order of the pair (one of the two must be flagged as the
    # other's twin: which one depends on which the order service handled first)
    twin_of: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.actual == self.expected


def special_order(number: int, channel: str, at: datetime, **overrides: Any) -> dict[str, Any]:
    """A special order's submission (numbered apart from the day's traffic), as the step needs it."""
    message = traffic.submission(channel, 800_000 + number, rng=random.Random(number), submitted_at=at)
    message.update(overrides)
    return message


def _paid(message: dict[str, Any], at: datetime, **overrides: Any) -> dict[str, Any]:
    return {**traffic.payment(message, captured_at=at), **overrides}


def plan_specials(plan: DemoPlan) -> list[Outcome]:
    """Add the special orders to the plan; those needing people (approvals) are published later."""
    at = plan.start + timedelta(hours=2)
    specials: list[Outcome] = []

    presale = special_order(1, "tmall", at, order_type="presale", discounts=[], shipping_fee="0.00",
                            lines=[{"sku": "X-200", "quantity": 2, "unit_price": "299.00"}],
                            payment={"method": "alipay", "terms": "deposit", "deposit_amount": "100.00"})
    deposit = _paid(presale, at, payment_id="PAY-PRESALE-DEP", amount="100.00", kind="deposit")
    balance = _paid(presale, at, payment_id="PAY-PRESALE-BAL", amount="498.00", kind="balance")
    plan.add_order(presale, payments=[deposit, balance])
    specials.append(Outcome("presale", "presale: deposit, then balance", presale, "paid"))

    customs = [{"sku": "TEA-500", "quantity": 3, "unit_price": "88.00", "hs_code": "090210",
                "declared_value": "80.00"}]
    cross = special_order(2, "jd", at, order_type="cross_border", lines=customs, discounts=[],
                          customs={"recipient_id_number": "330106199001011234"})
    plan.add_order(cross, payments=[_paid(cross, at)])
    specials.append(Outcome("cross_border", "cross-border with customs data", cross, "paid"))

    sample = special_order(3, "web", at, order_type="sample", discounts=[], shipping_fee="12.00",
                           lines=[{"sku": "BOOK-01", "quantity": 1, "unit_price": "0.00"}])
    plan.add_order(sample, payments=[_paid(sample, at)])
    specials.append(Outcome("sample", "sample order, zero-price line", sample, "paid"))

    for n in range(3):
        member = special_order(10 + n, "pdd", at, order_type="group_buy",
                               group_buy={"group_id": "GB-DEMO-1", "size": 3})
        plan.add_order(member, payments=[_paid(member, at)])
        specials.append(Outcome(f"group_{n + 1}", f"group buy member {n + 1} of 3", member, "paid"))

    original = special_order(20, "web", at)
    twin = {**original, "channel": "pos", "channel_order_id": "POS-TWIN-0001",
            "submitted_at": (at + timedelta(minutes=4)).isoformat()}
    plan.add_order(original, payments=[_paid(original, at)])
    plan.add_order(twin, payments=[_paid(twin, at)])
    specials.append(Outcome("duplicate", "likely duplicate across channels (flagged)", twin, "paid",
                            twin_of=original))

    big = [{"sku": "X-100", "quantity": 600, "unit_price": "199.00"}]
    two_levels = special_order(30, "tmall", at, lines=big, discounts=[], shipping_fee="0.00")
    plan.add_order(two_levels, payments=[_paid(two_levels, at)], publish=False)
    specials.append(Outcome("two_levels", "two approval levels, amended while waiting", two_levels, "paid"))

    escalated = special_order(31, "pos", at, lines=[{"sku": "X-200", "quantity": 20, "unit_price": "299.00"}],
                              discounts=[], shipping_fee="0.00")
    plan.add_order(escalated, payments=[_paid(escalated, at)], publish=False)
    specials.append(Outcome("escalated", "approval escalated past its SLA", escalated, "paid"))

    cancelled = special_order(32, "jd", at, lines=big, discounts=[], shipping_fee="0.00")
    plan.add_order(cancelled, cancelled=True, publish=False)
    specials.append(Outcome("cancelled", "cancelled by the storefront while waiting", cancelled, "cancelled"))

    raised = special_order(33, "web", at, lines=[dict(RAISED_LINE, quantity=1)], discounts=[],
                           shipping_fee="0.00")
    plan.add_order(raised, payments=[_paid(raised, at)])
    amend_up_after_payment(plan, RAISED_LINE)  # to two units once paid (run_people)
    specials.append(Outcome("amended_up", "paid, amended up: balance owed, then paid", raised, "paid"))
    return specials


RAISED_LINE: dict[str, Any] = {"sku": "X-100", "unit_price": "199.00"}


class Operator:
    """The people in the demo: they publish storefront messages and act in the order service."""

    def __init__(self, client: httpx.Client, order_url: str,
                 send: Callable[[list[tuple[bytes, bytes]]], None]) -> None:
        self.client = client
        self.url = order_url
        self.send = send

    def order(self, message: dict[str, Any]) -> dict[str, Any] | None:
        response = self.client.get(f"{self.url}/orders/by-channel/{message['channel']}/"
                                   f"{message['channel_order_id']}", headers={"X-API-Key": "demo-admin"})
        return response.json() if response.status_code == 200 else None

    def wait(self, message: dict[str, Any], done: Callable[[dict[str, Any]], bool],
             timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.order(message)
            if found is not None and done(found):
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"{message['channel_order_id']}: not there after {timeout}s")
            time.sleep(0.3)

    def approve(self, order_id: str, role: str) -> None:
        self.client.post(f"{self.url}/orders/{order_id}/approvals/approve",
                         headers={"X-API-Key": KEYS[role]},
                         json={"comment": f"approved in the demo by {role}"}).raise_for_status()


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """What ``check`` returns once it is something (polled every half second), else TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not seen within {timeout}s")
        time.sleep(0.5)


def _has(event_type: str) -> Callable[[dict[str, Any]], bool]:
    return lambda found: any(e["event_type"] == event_type for e in found["events"])


def _status(*statuses: str) -> Callable[[dict[str, Any]], bool]:
    return lambda found: found["order"]["status"] in statuses


def run_people(operator: Operator, specials: list[Outcome]) -> None:
    """Approvals, an amendment, an escalation and a cancellation, as people would do them."""
    by_key = {o.key: o for o in specials}
    two, esc, gone = by_key["two_levels"], by_key["escalated"], by_key["cancelled"]
    for outcome in (two, esc, gone):
        operator.send([encode(outcome.message)])
    found = operator.wait(two.message, _status("pending_approval"))
    order_id = found["order"]["order_id"]
    amendment = {"type": "order.amendment_requested", "channel": two.message["channel"],
                 "channel_order_id": two.message["channel_order_id"], "request_id": "DEMO-AMEND-1",
                 "requested_at": two.message["submitted_at"],
                 "shipping_address": {**two.message["shipping_address"], "line1": "文一西路 969 号"}}
    operator.send([encode(amendment)])
    operator.wait(two.message, _has("order.amended"))
    two.steps.append("shipping address amended while waiting (applied directly)")
    for role in ("sales_director", "finance_director"):
        operator.approve(order_id, role)
        two.steps.append(f"approved by {role}")
    operator.send([encode(_paid(two.message, datetime.fromisoformat(two.message["submitted_at"])))])

    escalated = operator.wait(esc.message, _has("order.approval_escalated"), timeout=90)
    esc.steps.append("SLA passed: escalated to general_manager")
    operator.approve(escalated["order"]["order_id"], "general_manager")
    esc.steps.append("approved by general_manager")
    operator.send([encode(_paid(esc.message, datetime.fromisoformat(esc.message["submitted_at"])))])

    operator.wait(gone.message, _status("pending_approval"))
    operator.send([encode({"type": "order.cancellation_requested", "channel": gone.message["channel"],
                           "channel_order_id": gone.message["channel_order_id"],
                           "request_id": "DEMO-CANCEL-1", "reason": "customer found a better price",
                           "requested_at": gone.message["submitted_at"]})])
    operator.wait(gone.message, _status("cancelled"))
    gone.steps.append("storefront cancellation before confirmation")
    amend_paid_order(operator, by_key["amended_up"])


def amend_paid_order(operator: Operator, up: Outcome) -> None:
    """A paid order amended to one more unit: approved, the order owes the balance (no longer
    paid, it would not ship), the storefront collects it and the order is paid again."""
    message = up.message
    operator.wait(message, _status("paid"), timeout=120)
    at = datetime.fromisoformat(message["submitted_at"])
    operator.send([encode({"type": "order.amendment_requested", "channel": message["channel"],
                           "channel_order_id": message["channel_order_id"],
                           "request_id": "DEMO-AMEND-UP", "requested_at": at.isoformat(),
                           "lines": [dict(RAISED_LINE, quantity=2)]})])
    waiting = operator.wait(message, lambda found: bool(found["order"].get("approval_role")))
    role = waiting["order"]["approval_role"]
    operator.approve(waiting["order"]["order_id"], role)
    owed = operator.wait(message, _has("order.amended"))
    up.steps.append(f"paid, amended to 2 units, approved by {role}: "
                    f"{owed['order']['status']} until the balance is paid")
    operator.send([encode(_paid(message, at, payment_id=f"PAY-{message['channel_order_id']}-BAL",
                                amount=RAISED_LINE["unit_price"], kind="balance"))])
    operator.wait(message, lambda found: found["order"]["status"] == "paid" and sum(
        e["event_type"] == "order.paid" for e in found["events"]) == 2)
    up.steps.append("balance paid: paid again")


def settle_outcomes(operator: Operator, specials: list[Outcome]) -> None:
    for outcome in specials:
        found = operator.order(outcome.message)
        if found is None:
            continue
        outcome.actual = found["order"]["status"]
        outcome.events = [e["event_type"].removeprefix("order.") for e in found["events"]]
        if found["order"]["flags"]:
            outcome.steps.append("flags: " + ", ".join(found["order"]["flags"]))
        if outcome.twin_of is not None:
            _check_twins(operator, outcome, found)


def _check_twins(operator: Operator, outcome: Outcome, found: dict[str, Any]) -> None:
    """One order of the pair carries ``possible_duplicate_of:<the other>``, else not as expected."""
    assert outcome.twin_of is not None
    other = operator.order(outcome.twin_of)
    if other is None:
        outcome.actual = "its twin was not placed"
        return
    mine, theirs = found["order"], other["order"]
    if f"possible_duplicate_of:{theirs['order_id']}" in mine["flags"]:
        return
    if f"possible_duplicate_of:{mine['order_id']}" in theirs["flags"]:
        outcome.steps.append(f"its twin {theirs['order_id']} (handled later) is flagged: "
                             + ", ".join(theirs["flags"]))
        return
    outcome.actual = f"{outcome.actual}, but neither order is flagged"


