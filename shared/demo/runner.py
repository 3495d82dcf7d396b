"""``oms demo``: a realistic multi-channel day through all five services, checked for agreement."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.contract.topics import STOREFRONT_ORDERS
from shared.demo.audit import Rebuilt
from shared.demo.faults import Services, plan_fault, run_fault
from shared.demo.finance import plan_bank_transfer, run_finance
from shared.demo.plan import DemoPlan, plan_day
from shared.demo.scenarios import Operator, Outcome, plan_specials, run_people, settle_outcomes
from shared.demo.warehouse import WarehouseDay, plan_warehouse, run_warehouse
from shared.runtime.info import RuntimeInfo

ADMIN = {"X-API-Key": "demo-admin"}
WAREHOUSES: tuple[tuple[str, int], ...] = (("WH-HANGZHOU", 10), ("WH-SHANGHAI", 20))
DEMO_RULES = Path(__file__).resolve().parents[2] / "deploy" / "approval-rules.demo.toml"
# What the demo's own runtime needs: its rules (one with a seconds-long SLA) and a brisk scheduler.
DEMO_ENV = {"OMS_RULES_FILE": str(DEMO_RULES), "OMS_SCHEDULER_SECONDS": "1",
            "OMS_RECONCILE_GRACE_SECONDS": "20"}


@dataclass
class Check:
    service: str
    what: str
    expected: Any
    actual: Any

    @property
    def ok(self) -> bool:
        return str(self.expected) == str(self.actual)


def seed_stock(client: httpx.Client, info: RuntimeInfo, plan: DemoPlan) -> dict[tuple[str, str], int]:
    """Receive 70% of each SKU's demand into each of two warehouses (so both get used)."""
    url = info.url("inventory")
    received: dict[tuple[str, str], int] = {}
    for code, priority in WAREHOUSES:
        for sku, units in sorted(plan.units_by_sku.items()):
            quantity = math.ceil(units * 0.7) + 5
            response = client.post(f"{url}/stock/receipts", headers=ADMIN, json={
                "sku": sku, "warehouse": code, "quantity": quantity, "reason": "demo opening stock"})
            response.raise_for_status()
            received[(sku, code)] = quantity
        client.put(f"{url}/warehouses/{code}/priority", headers=ADMIN,
                   json={"priority": priority}).raise_for_status()
    return received


async def publish(bootstrap: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(STOREFRONT_ORDERS, value=value, key=key)
                   for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def summaries(client: httpx.Client, info: RuntimeInfo) -> dict[str, dict[str, Any]]:
    result = {}
    for name in ("order", "inventory", "billing", "notify", "reconcile"):
        response = client.get(f"{info.url(name)}/summary", headers=ADMIN)
        response.raise_for_status()
        result[name] = response.json()
    return result


def settled(state: dict[str, dict[str, Any]], plan: DemoPlan) -> bool:
    return (state["reconcile"].get("consistent") == plan.orders
            and state["order"].get("paid_orders") == plan.paid_orders
            and state["order"].get("rejections") == plan.rejections
            and not state["notify"].get("pending"))


# Customer and staff notifications the shipped rules send, each compared with the order service's
# own count of the events that cause them (one recipient per event; inbox when nothing else is set).
NOTIFIED_ORDER_EVENTS = ("order.confirmed", "order.paid", "order.shipped", "order.delivered",
                         "order.backordered", "order.approval_requested", "order.approval_escalated")


def notify_checks(o: dict[str, Any], b: dict[str, Any], n: dict[str, Any], detected: int
                  ) -> list[Check]:
    sent = n.get("by_event_type") or {}
    events = o.get("events") or {}
    found = [Check("notify", f"told of {t}", events.get(t, 0), sent.get(t, 0))
             for t in NOTIFIED_ORDER_EVENTS]
    found.append(Check("notify", "told of refund.issued", b.get("refunds"), sent.get("refund.issued", 0)))
    found.append(Check("notify", "told of discrepancy.detected (finance, auditor)", 2 * detected,
                       sent.get("discrepancy.detected", 0)))
    unsent = (n.get("failed") or 0) + (n.get("pending") or 0)
    found.append(Check("notify", "failed or still pending", 0, unsent))
    return found


def checks(state: dict[str, dict[str, Any]], plan: DemoPlan, day: WarehouseDay,
           return_credit: Decimal, discrepancies_detected: int = 0) -> list[Check]:
    amount = f"{plan.amount_active:.2f}"
    owed = f"{plan.amount_active - return_credit:.2f}"
    o, i, b, n, r = (state[k] for k in ("order", "inventory", "billing", "notify", "reconcile"))
    active = plan.orders - plan.cancelled_orders
    units_active = plan.units - plan.units_cancelled
    return [
        Check("order", "orders placed", plan.orders, o.get("orders")),
        Check("order", "orders paid (not cancelled)", plan.paid_orders, o.get("paid_orders")),
        Check("order", "orders cancelled", plan.cancelled_orders, o.get("by_status", {}).get("cancelled", 0)),
        Check("order", "amount owed (not cancelled)", amount, o.get("amount_active")),
        Check("order", "refused messages", plan.rejections, o.get("rejections")),
        Check("inventory", "orders holding stock", active, i.get("orders_reserved")),
        Check("inventory", "units reserved now", units_active - day.units_shipped, i.get("units_reserved")),
        Check("inventory", "units shipped (deducted)", day.units_shipped, i.get("units_deducted")),
        Check("inventory", "units released (cancelled)", plan.units_cancelled, i.get("units_released")),
        Check("inventory", "units returned", day.units_returned, i.get("units_returned")),
        Check("inventory", "orders short", 0, i.get("orders_short")),
        Check("billing", "orders invoiced", plan.orders - plan.never_invoiced, b.get("orders_invoiced")),
        Check("billing", "orders settled", plan.paid_orders, b.get("orders_settled")),
        Check("billing", "owed (invoiced - credited)", owed, b.get("owed_total")),
        Check("billing", "paid (payments - refunds)", owed, b.get("net_paid_total")),
        Check("billing", "payments", plan.payments, b.get("payments")),
        *notify_checks(o, b, n, discrepancies_detected),
        Check("reconcile", "orders seen", plan.orders, r.get("orders")),
        Check("reconcile", "orders consistent", plan.orders, r.get("consistent")),
        Check("reconcile", "open discrepancies", 0, r.get("open_discrepancies")),
    ]


@dataclass
class DemoOutcome:
    plan: DemoPlan
    state: dict[str, dict[str, Any]]
    checks: list[Check]
    specials: list[Outcome]
    seconds: float
    return_credit: Decimal
    report: dict[str, Any]
    stock_before: dict[tuple[str, str], int]
    stock_after: list[dict[str, Any]]
    rebuilt: list[Rebuilt] = field(default_factory=list)  # the replays of the day's history

    @property
    def ok(self) -> bool:
        return (all(c.ok for c in self.checks) and all(o.ok for o in self.specials)
                and all(r.ok for r in self.rebuilt))


def discrepancies_detected(info: RuntimeInfo) -> int:
    """Every discrepancy reconcile raised, open or resolved (under load some pending orders pass
    the demo's short grace period before the facts catch up; each is also resolved)."""
    with httpx.Client(timeout=30) as client:
        found = client.get(f"{info.url('reconcile')}/discrepancies", headers=ADMIN,
                           params={"open": "false", "limit": 5000}).json()
    return int(found["count"])


def return_credit_of(client: httpx.Client, info: RuntimeInfo, day: WarehouseDay) -> Decimal:
    """What billing credited for the returned unit (its share of discounts is billing's rule)."""
    if day.returned is None:
        return Decimal(0)
    found = client.get(f"{info.url('order')}/orders/by-channel/{day.returned['channel']}/"
                       f"{day.returned['channel_order_id']}", headers=ADMIN).json()
    notes = client.get(f"{info.url('billing')}/credit-notes",
                       params={"order_id": found["order"]["order_id"]}, headers=ADMIN).json()
    rows = notes if isinstance(notes, list) else notes.get("credit_notes", [])
    return sum((Decimal(str(n["total"])) for n in rows if n.get("reason") == "returned"), Decimal(0))


def drive(info: RuntimeInfo, orders: int, *, timeout: float = 300.0,
          progress: Callable[[dict[str, dict[str, Any]]], None] | None = None,
          services: Services | None = None) -> DemoOutcome:
    """Seed, publish the day's traffic, play the people, wait for agreement, collect the checks.
    With ``services`` (the runtime), also inject the fault: billing down while an order ships."""
    plan = plan_day(orders)
    specials = plan_specials(plan)
    wired = plan_bank_transfer(plan)
    specials.append(wired)
    day, fulfilment = plan_warehouse(plan)
    specials += fulfilment
    fault = plan_fault(plan, day) if services is not None else None
    if fault is not None:
        specials.append(fault)
    with httpx.Client(timeout=30) as client:
        stock_before = seed_stock(client, info, plan)
        started = time.monotonic()
        asyncio.run(publish(info.kafka_bootstrap, plan.messages))
        operator = Operator(client, info.url("order"),
                            lambda messages: asyncio.run(publish(info.kafka_bootstrap, messages)))
        run_people(operator, specials)
        run_warehouse(operator, day, specials)
        run_finance(operator, client, info, wired)
        deadline = started + timeout
        if fault is not None and services is not None:
            # The day's traffic handled first: billing then owes only the victim's answer, which
            # reconcile raises past its grace (owing many, it would be silent and hold them back:
            # shared/silence.py).
            wait_settled(client, info, plan, deadline, progress)
            run_fault(operator, services, info.url("reconcile"), fault)
        state = wait_settled(client, info, plan, deadline, progress)
        seconds = time.monotonic() - started
        time.sleep(1.0)  # let stragglers (a late duplicate, a notification) land before comparing
        state = summaries(client, info)
        settle_outcomes(operator, specials)
        credit = return_credit_of(client, info, day)
        stock_after = client.get(f"{info.url('inventory')}/stock", headers=ADMIN).json()
        report = client.get(f"{info.url('reconcile')}/reports/channel", params={"format": "json"},
                            headers=ADMIN).json()
    detected = discrepancies_detected(info)
    return DemoOutcome(plan, state, checks(state, plan, day, credit, detected), specials, seconds, credit,
                       report, stock_before, stock_after)


def wait_settled(client: httpx.Client, info: RuntimeInfo, plan: DemoPlan, deadline: float,
                 progress: Callable[[dict[str, dict[str, Any]]], None] | None
                 ) -> dict[str, dict[str, Any]]:
    """The services' summaries once they agree on the whole plan, or at ``deadline``."""
    state = summaries(client, info)
    while not settled(state, plan) and time.monotonic() < deadline:
        if progress is not None:
            progress(state)
        time.sleep(0.5)
        state = summaries(client, info)
    return state


def demo_data_dir(base: Path) -> Path:
    return base / "demo"
