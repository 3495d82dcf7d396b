"""``oms demo``: a realistic multi-channel day through all five services, checked for agreement."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.contract.topics import STOREFRONT_ORDERS
from shared.demo.plan import DemoPlan, plan_day
from shared.demo.scenarios import Operator, Outcome, plan_specials, run_people, settle_outcomes
from shared.runtime.info import RuntimeInfo

ADMIN = {"X-API-Key": "demo-admin"}
WAREHOUSES: tuple[tuple[str, int], ...] = (("WH-HANGZHOU", 10), ("WH-SHANGHAI", 20))
DEMO_RULES = Path(__file__).resolve().parents[2] / "deploy" / "approval-rules.demo.toml"
# What the demo's own runtime needs: its rules (one with a seconds-long SLA) and a brisk scheduler.
DEMO_ENV = {"OMS_RULES_FILE": str(DEMO_RULES), "OMS_SCHEDULER_SECONDS": "1"}


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
            and state["order"].get("by_status", {}).get("paid") == plan.paid_orders
            and state["order"].get("rejections") == plan.rejections
            and state["notify"].get("notifications_sent", 0) >= 2 * plan.paid_orders)


def checks(state: dict[str, dict[str, Any]], plan: DemoPlan) -> list[Check]:
    amount = f"{plan.amount_active:.2f}"
    o, i, b, n, r = (state[k] for k in ("order", "inventory", "billing", "notify", "reconcile"))
    statuses = o.get("by_status", {})
    return [
        Check("order", "orders placed", plan.orders, o.get("orders")),
        Check("order", "orders paid", plan.paid_orders, statuses.get("paid")),
        Check("order", "orders cancelled", plan.cancelled_orders, statuses.get("cancelled", 0)),
        Check("order", "amount owed (not cancelled)", amount, o.get("amount_active")),
        Check("order", "refused messages", plan.rejections, o.get("rejections")),
        # Cancelled orders keep their reservation until inventory releases on cancellation.
        Check("inventory", "orders reserved", plan.orders, i.get("orders_reserved")),
        Check("inventory", "units reserved", plan.units, i.get("units_reserved")),
        Check("inventory", "orders short", 0, i.get("orders_short")),
        Check("billing", "invoices", plan.paid_orders, b.get("invoices")),
        Check("billing", "invoiced amount", amount, b.get("invoiced_total")),
        Check("billing", "payments", plan.payments, b.get("payments")),
        Check("billing", "paid amount", amount, b.get("paid_total")),
        Check("billing", "settled invoices", plan.paid_orders, b.get("settled_invoices")),
        Check("notify", "notifications sent", 2 * plan.paid_orders, n.get("notifications_sent")),
        Check("notify", "orders notified", plan.paid_orders, n.get("orders_notified")),
        Check("reconcile", "orders seen", plan.orders, r.get("orders")),
        Check("reconcile", "orders consistent", plan.orders, r.get("consistent")),
    ]


@dataclass
class DemoOutcome:
    plan: DemoPlan
    state: dict[str, dict[str, Any]]
    checks: list[Check]
    specials: list[Outcome]
    seconds: float
    stock_before: dict[tuple[str, str], int]
    stock_after: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and all(o.ok for o in self.specials)


def drive(info: RuntimeInfo, orders: int, *, timeout: float = 300.0,
          progress: Callable[[dict[str, dict[str, Any]]], None] | None = None) -> DemoOutcome:
    """Seed, publish the day's traffic, play the people, wait for agreement, collect the checks."""
    plan = plan_day(orders)
    specials = plan_specials(plan)
    with httpx.Client(timeout=30) as client:
        stock_before = seed_stock(client, info, plan)
        started = time.monotonic()
        asyncio.run(publish(info.kafka_bootstrap, plan.messages))
        operator = Operator(client, info.url("order"),
                            lambda messages: asyncio.run(publish(info.kafka_bootstrap, messages)))
        run_people(operator, specials)
        deadline = started + timeout
        state = summaries(client, info)
        while not settled(state, plan) and time.monotonic() < deadline:
            if progress is not None:
                progress(state)
            time.sleep(0.5)
            state = summaries(client, info)
        seconds = time.monotonic() - started
        time.sleep(1.0)  # let stragglers (a late duplicate, a notification) land before comparing
        state = summaries(client, info)
        settle_outcomes(operator, specials)
        stock_after = client.get(f"{info.url('inventory')}/stock", headers=ADMIN).json()
    return DemoOutcome(plan, state, checks(state, plan), specials, seconds, stock_before, stock_after)


def demo_data_dir(base: Path) -> Path:
    return base / "demo"
