"""The order lifecycle as an explicit state machine: commands and facts in, new events out."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from services.order.domain import approval as rules
from services.order.domain.state import PREPAID_TERMS, OrderState, PendingApproval, evolve, status
from shared.contract.order_events import (
    OrderAmended,
    OrderAmendmentRefused,
    OrderApprovalEscalated,
    OrderApprovalRejected,
    OrderApprovalRequested,
    OrderApproved,
    OrderCancelled,
    OrderDepositPaid,
)
from shared.contract.payloads import (
    OrderBackordered,
    OrderConfirmed,
    OrderLine,
    OrderPaid,
    OrderPaymentCaptured,
    OrderPlaced,
    Payload,
    SkuQuantity,
)
from shared.contract.storefront import PaymentCaptured

# After confirmation an amendment always needs someone's approval; the rules file may say whose.
DEFAULT_AMENDMENT_PLAN = rules.ApprovalPlan(
    rule_id="default-amendment", rules_version="builtin",
    levels=(rules.ApprovalLevel("sales_director", timedelta(hours=4), "general_manager"),),
    reasons=("amendments after confirmation need approval",),
)


def order_id_for(channel: str, channel_order_id: str) -> str:
    """Deterministic: the same storefront order always maps to the same stream (duplicates collide)."""
    digest = hashlib.sha256(f"{channel}:{channel_order_id}".encode()).hexdigest()
    return "O-" + digest[:16].upper()


def content_hash(message: dict[str, Any]) -> str:
    canonical = json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IllegalTransition(Exception):
    """A command the order's current state does not allow: says the state and what is allowed."""

    def __init__(self, action: str, state: OrderState, why: str | None = None) -> None:
        self.action = action
        self.status = status(state)
        self.allowed = allowed_actions(state)
        options = ", ".join(self.allowed) or "none"
        detail = f" ({why})" if why else ""
        super().__init__(f"cannot {action} an order that is {self.status}{detail}; allowed: {options}")


class WrongRole(Exception):
    def __init__(self, role: str, needed: Sequence[str]) -> None:
        self.needed = tuple(needed)
        super().__init__(f"role {role!r} cannot decide this approval; needs one of: {', '.join(needed)}")


class InvalidCommand(ValueError):
    """A command whose content breaks a rule (which field, what rule, what is accepted)."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.code = code


@dataclass(frozen=True, slots=True)
class Readiness:
    """Facts from outside the order's own log that confirmation waits for."""

    reserved: bool = False
    group_closed: bool = True


def _then(state: OrderState, events: Sequence[Payload]) -> OrderState:
    for offset, event in enumerate(events, start=1):
        state = evolve(state, event.event_type, event.wire(), state.version + offset)
    return state


def cancellable(state: OrderState) -> bool:
    return state.exists and not (state.cancelled or state.any_shipped or state.completed)


def shippable(state: OrderState) -> bool:
    if not state.confirmed or state.cancelled or state.fully_shipped:
        return False
    return state.paid or state.payment_terms not in PREPAID_TERMS


def allowed_actions(state: OrderState) -> tuple[str, ...]:
    if not state.exists:
        return ("place",)
    actions: list[str] = []
    if state.approval is not None:
        actions += ["approve", "reject"]
    if cancellable(state):
        actions += ["cancel", "amend"]
    if shippable(state):
        actions.append("ship")
    if state.fully_shipped and not state.delivered and not state.cancelled:
        actions.append("deliver")
    if state.delivered and not state.completed and not _open_returns(state):
        actions.append("complete")
    if state.any_shipped and not state.cancelled and _returnable(state):
        actions.append("request_return")
    if _open_returns(state):
        actions.append("receive_return")
    return tuple(actions)


def _open_returns(state: OrderState) -> bool:
    return any(not request.received for _, request in state.returns)


def _returnable(state: OrderState) -> dict[str, int]:
    taken = state.returned_or_requested_by_sku()
    return {sku: q - taken.get(sku, 0) for sku, q in state.shipped_by_sku().items()
            if q - taken.get(sku, 0) > 0}


# ---- placement, approval, confirmation ------------------------------------------------------


def approval_requested(order_id: str, plan: rules.ApprovalPlan, level: int, now: datetime, *,
                       kind: str = "order", request_id: str | None = None,
                       amendment: dict[str, Any] | None = None) -> OrderApprovalRequested:
    step = plan.levels[level]
    return OrderApprovalRequested(
        order_id=order_id, kind=kind, request_id=request_id, rule_id=plan.rule_id,
        rules_version=plan.rules_version, level=level, levels=len(plan.levels), role=step.role,
        sla_seconds=int(step.sla.total_seconds()), due_at=now + step.sla,
        escalate_to=step.escalate_to, reasons=list(plan.reasons),
        plan_levels=[{"role": x.role, "sla_seconds": int(x.sla.total_seconds()),
                      "escalate_to": x.escalate_to} for x in plan.levels],
        amendment=amendment,
    )


def _plan_from(pending: PendingApproval) -> rules.ApprovalPlan:
    return rules.ApprovalPlan(
        rule_id=pending.rule_id, rules_version=pending.rules_version,
        levels=tuple(rules.ApprovalLevel(str(x["role"]), timedelta(seconds=int(x["sla_seconds"])),
                                         str(x["escalate_to"])) for x in pending.plan_levels),
        reasons=(),
    )


def place(state: OrderState, placed: OrderPlaced, plan: rules.ApprovalPlan | None, now: datetime,
          readiness: Readiness) -> list[Payload]:
    if state.exists:
        raise IllegalTransition("place", state)
    events: list[Payload] = [placed]
    if plan is not None:
        events.append(approval_requested(placed.order_id, plan, 0, now))
    return events + confirm_if_ready(_then(state, events), readiness)


def confirm_if_ready(state: OrderState, readiness: Readiness) -> list[Payload]:
    """Confirmed once approved (or no approval needed), stock reserved (presale: not needed before
    the deposit) and, for a group buy, the group closed."""
    if not state.exists or state.confirmed or state.cancelled:
        return []
    if state.order_approval not in ("none", "approved"):
        return []
    if state.order_type != "presale" and not readiness.reserved:
        return []
    if state.order_type == "group_buy" and not readiness.group_closed:
        return []
    return [OrderConfirmed(order_id=state.order_id, total=state.total, currency=state.currency)]


def on_stock_shortage(state: OrderState, missing: list[SkuQuantity]) -> list[Payload]:
    if state.confirmed or state.cancelled or state.backordered:
        return []
    return [OrderBackordered(order_id=state.order_id, missing=missing)]


def approve(state: OrderState, *, approver: str, role: str, comment: str | None, now: datetime,
            readiness: Readiness) -> list[Payload]:
    pending = state.approval
    if pending is None:
        raise IllegalTransition("approve", state, "no approval is pending")
    if role not in pending.roles_allowed():
        raise WrongRole(role, pending.roles_allowed())
    final = pending.level + 1 >= pending.levels
    events: list[Payload] = [OrderApproved(
        order_id=state.order_id, kind=pending.kind, request_id=pending.request_id,
        rule_id=pending.rule_id, rules_version=pending.rules_version, level=pending.level,
        levels=pending.levels, role=pending.role, approver=approver, approver_role=role,
        comment=comment, final=final)]
    if not final:
        events.append(approval_requested(state.order_id, _plan_from(pending), pending.level + 1, now,
                                         kind=pending.kind, request_id=pending.request_id,
                                         amendment=pending.amendment))
        return events
    if pending.kind == "amendment" and pending.amendment is not None:
        events.append(_amended(state, pending.request_id or "", pending.amendment,
                               approved_by=[*pending.approved_by, approver]))
        return events
    return events + confirm_if_ready(_then(state, events), readiness)


def reject(state: OrderState, *, approver: str, role: str, reason: str) -> list[Payload]:
    pending = state.approval
    if pending is None:
        raise IllegalTransition("reject", state, "no approval is pending")
    if role not in pending.roles_allowed():
        raise WrongRole(role, pending.roles_allowed())
    events: list[Payload] = [OrderApprovalRejected(
        order_id=state.order_id, kind=pending.kind, request_id=pending.request_id,
        rule_id=pending.rule_id, rules_version=pending.rules_version, level=pending.level,
        levels=pending.levels, role=pending.role, approver=approver, approver_role=role,
        reason=reason)]
    if pending.kind == "amendment":
        events.append(OrderAmendmentRefused(order_id=state.order_id, request_id=pending.request_id or "",
                                            reason=f"amendment not approved: {reason}",
                                            status=status(state), allowed=list(allowed_actions(state))))
    else:
        events.append(OrderCancelled(order_id=state.order_id, reason=f"approval rejected: {reason}",
                                     stage=status(state), cancelled_by=approver))
    return events


def escalate_if_overdue(state: OrderState, now: datetime) -> list[Payload]:
    """The scheduler's decision for one order, on the injected clock."""
    pending = state.approval
    if pending is None or state.cancelled:
        return []
    waiting = rules.PendingApproval(
        order_id=state.order_id, level_index=pending.level, role=pending.role,
        requested_at=pending.requested_at, sla=timedelta(seconds=pending.sla_seconds),
        escalate_to=pending.escalate_to, escalations=pending.escalations,
        last_escalated_at=pending.last_escalated_at)
    if not rules.overdue(waiting, now):
        return []
    return [OrderApprovalEscalated(
        order_id=state.order_id, kind=pending.kind, request_id=pending.request_id,
        rule_id=pending.rule_id, rules_version=pending.rules_version, level=pending.level,
        levels=pending.levels, role=pending.role, escalate_to=pending.escalate_to,
        due_at=pending.due_at, escalated_at=now, escalations=pending.escalations + 1)]


# ---- amendments ----------------------------------------------------------------------------------


def _snapshot(lines: Sequence[OrderLine], address: dict[str, Any], subtotal: Decimal, total: Decimal
              ) -> dict[str, Any]:
    return {"lines": [line.model_dump(mode="json", exclude_none=True) for line in lines],
            "shipping_address": address, "subtotal": str(subtotal), "total": str(total)}


def _amended(state: OrderState, request_id: str, proposal: dict[str, Any], approved_by: list[str]
             ) -> OrderAmended:
    before = _snapshot(state.lines, state.shipping_address, state.subtotal, state.total)
    after_lines = [OrderLine.model_validate(x) for x in proposal["lines"]]
    delta: dict[str, int] = {}
    for line in state.lines:
        delta[line.sku] = delta.get(line.sku, 0) - line.quantity
    for line in after_lines:
        delta[line.sku] = delta.get(line.sku, 0) + line.quantity
    return OrderAmended(
        order_id=state.order_id, request_id=request_id, before=before, after=proposal,
        lines_delta=[SkuQuantity(sku=k, quantity=v) for k, v in sorted(delta.items()) if v],
        total_before=state.total, total_after=Decimal(str(proposal["total"])),
        currency=state.currency, approved_by=approved_by)


def amend(state: OrderState, *, request_id: str, lines: Sequence[OrderLine] | None,
          shipping_address: dict[str, Any] | None, plan: rules.ApprovalPlan | None, now: datetime
          ) -> list[Payload]:
    """Before confirmation: applied. After confirmation, before shipment: needs approval. After
    shipment (or when cancelled): refused, as an event on the order."""
    if not state.exists:
        raise IllegalTransition("amend", state)
    if request_id in state.amendment_requests:
        return []  # the same request again

    def refused(reason: str) -> list[Payload]:
        return [OrderAmendmentRefused(order_id=state.order_id, request_id=request_id, reason=reason,
                                      status=status(state), allowed=list(allowed_actions(state)))]

    if state.cancelled:
        return refused("the order is cancelled")
    if state.any_shipped:
        return refused("the order has already shipped; request a return instead")
    if state.approval is not None and state.approval.kind == "amendment":
        return refused("another amendment is waiting for approval")
    new_lines = list(lines) if lines is not None else list(state.lines)
    subtotal = sum((x.unit_price * x.quantity for x in new_lines), Decimal(0))
    placed = state.placed
    assert placed is not None
    if placed.discount_total > subtotal:
        return refused(f"discounts {placed.discount_total} would exceed the new subtotal {subtotal}")
    total = subtotal - placed.discount_total + placed.shipping_fee
    proposal = _snapshot(new_lines, shipping_address or state.shipping_address, subtotal, total)
    if not state.confirmed:
        return [_amended(state, request_id, proposal, approved_by=[])]
    chosen = plan or DEFAULT_AMENDMENT_PLAN
    return [approval_requested(state.order_id, chosen, 0, now, kind="amendment",
                               request_id=request_id, amendment=proposal)]


# ---- money ---------------------------------------------------------------------------------------


def capture_payment(state: OrderState, payment: PaymentCaptured, currency: str) -> list[Payload]:
    """A captured payment is a fact (money moved): recorded in any state, once per payment id."""
    if payment.payment_id in state.payment_ids:
        return []
    events: list[Payload] = [OrderPaymentCaptured(
        order_id=state.order_id, payment_id=payment.payment_id, method=payment.method,
        kind=payment.kind, amount=payment.amount, currency=currency,
        captured_at=payment.captured_at)]
    deposit = state.deposit_amount
    captured = state.captured_total + payment.amount
    if (state.order_type == "presale" and deposit is not None and not state.deposit_paid
            and not state.cancelled and captured >= deposit):
        events.append(OrderDepositPaid(order_id=state.order_id, deposit_amount=deposit,
                                       paid_amount=captured, currency=currency))
    return events


def on_settled(state: OrderState, paid_amount: Decimal, voucher_number: str | None,
               decided_at: int | None = None) -> list[Payload]:
    """Billing says every invoice of the order is paid: the order is paid (once; again after an
    amendment raised the total). ``decided_at``: the version of the order's event billing decided
    on (None: not known, e.g. a payment entered at billing); a settlement decided before the last
    amendment that raised the total is stale (it paid the old total) and pays nothing."""
    if state.paid or not state.confirmed or state.cancelled:
        return []
    if decided_at is not None and decided_at < state.total_raised_at:
        return []
    return [OrderPaid(order_id=state.order_id, paid_amount=paid_amount, currency=state.currency,
                      voucher_number=voucher_number)]


def placed_from(order_id: str, message: Any, lines: list[OrderLine], subtotal: Decimal,
                discount_total: Decimal, total: Decimal, digest: str, flags: list[str]) -> OrderPlaced:
    m = message
    return OrderPlaced(
        order_id=order_id, channel=m.channel, channel_order_id=m.channel_order_id,
        order_type=m.order_type, submitted_at=m.submitted_at,
        customer=m.customer.model_dump(mode="json", exclude_none=True),
        shipping_address=m.shipping_address.model_dump(mode="json", exclude_none=True),
        lines=lines, discounts=[d.model_dump(mode="json", exclude_none=True) for d in m.discounts],
        shipping_fee=m.shipping_fee, currency=m.currency, subtotal=subtotal,
        discount_total=discount_total, total=total,
        payment=m.payment.model_dump(mode="json", exclude_none=True), salesperson=m.salesperson,
        content_hash=digest, flags=flags,
        customs=m.customs.model_dump(mode="json") if m.customs else None,
        group_buy=m.group_buy.model_dump(mode="json") if m.group_buy else None,
    )
