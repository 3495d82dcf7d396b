"""``oms demo``: a realistic multi-channel day through all five services, checked for agreement."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from shared.contract.topics import STOREFRONT_ORDERS
from shared.demo import traffic
from shared.runtime.info import RuntimeInfo

ADMIN = {"X-API-Key": "demo-admin"}
WAREHOUSES: tuple[tuple[str, int], ...] = (("WH-HANGZHOU", 10), ("WH-SHANGHAI", 20))


@dataclass
class Check:
    service: str
    what: str
    expected: Any
    actual: Any

    @property
    def ok(self) -> bool:
        return str(self.expected) == str(self.actual)


@dataclass
class DemoPlan:
    """The traffic of one demo day and what every service should end up agreeing on."""

    messages: list[tuple[bytes, bytes]] = field(default_factory=list)  # (key, value)
    orders: int = 0
    amount_total: Decimal = Decimal("0.00")
    units: int = 0
    units_by_sku: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    rejections: int = 0
    bad_kinds: list[str] = field(default_factory=list)
    duplicates: int = 0


def plan_day(orders: int, *, seed: int = 2026, now: datetime | None = None) -> DemoPlan:
    rng = random.Random(seed)
    start = (now or datetime.now(UTC)) - timedelta(hours=8)
    plan = DemoPlan()
    submissions = []
    for number in range(1, orders + 1):
        channel = traffic.CHANNELS[number % len(traffic.CHANNELS)]
        at = start + timedelta(seconds=number * 20)
        message = traffic.submission(channel, number, rng=rng, submitted_at=at)
        submissions.append(message)
        key = f"{channel}:{message['channel_order_id']}".encode()
        plan.messages.append((key, json.dumps(message, ensure_ascii=False).encode()))
        plan.messages.append((key, json.dumps(traffic.payment(message, captured_at=at)).encode()))
        plan.orders += 1
        plan.channels[channel] += 1
        plan.amount_total += traffic.order_total(message)
        for line in message["lines"]:
            canonical = next(sku for sku, spelled, _ in traffic.PRODUCTS if spelled == line["sku"])
            plan.units_by_sku[canonical] += line["quantity"]
            plan.units += line["quantity"]
    # storefronts resend: the same message again has no second effect
    for message in submissions[: max(1, orders // 50)]:
        key = f"{message['channel']}:{message['channel_order_id']}".encode()
        plan.messages.append((key, json.dumps(message, ensure_ascii=False).encode()))
        plan.duplicates += 1
    # the same channel order id with different content is refused as a conflicting duplicate
    conflicting = {**submissions[0], "shipping_fee": "99.00"}
    plan.messages.append((f"{conflicting['channel']}:{conflicting['channel_order_id']}".encode(),
                          json.dumps(conflicting, ensure_ascii=False).encode()))
    plan.bad_kinds.append("conflicting duplicate")
    for kind, bad in traffic.bad_messages(start):
        value = bad if isinstance(bad, bytes) else json.dumps(bad, ensure_ascii=False).encode()
        plan.messages.append((b"bad:" + kind.encode(), value))
        plan.bad_kinds.append(kind)
    plan.rejections = len(plan.bad_kinds)
    return plan


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
            and state["order"].get("by_status", {}).get("paid") == plan.orders
            and state["order"].get("rejections") == plan.rejections
            and state["notify"].get("notifications_sent", 0) >= 2 * plan.orders)


def checks(state: dict[str, dict[str, Any]], plan: DemoPlan) -> list[Check]:
    amount = f"{plan.amount_total:.2f}"
    o, i, b, n, r = (state[k] for k in ("order", "inventory", "billing", "notify", "reconcile"))
    return [
        Check("order", "orders placed", plan.orders, o.get("orders")),
        Check("order", "orders paid", plan.orders, o.get("by_status", {}).get("paid")),
        Check("order", "order amount", amount, o.get("amount_total")),
        Check("order", "refused messages", plan.rejections, o.get("rejections")),
        Check("inventory", "orders reserved", plan.orders, i.get("orders_reserved")),
        Check("inventory", "units reserved", plan.units, i.get("units_reserved")),
        Check("inventory", "orders short", 0, i.get("orders_short")),
        Check("billing", "invoices", plan.orders, b.get("invoices")),
        Check("billing", "invoiced amount", amount, b.get("invoiced_total")),
        Check("billing", "payments", plan.orders, b.get("payments")),
        Check("billing", "paid amount", amount, b.get("paid_total")),
        Check("billing", "settled invoices", plan.orders, b.get("settled_invoices")),
        Check("notify", "notifications sent", 2 * plan.orders, n.get("notifications_sent")),
        Check("notify", "orders notified", plan.orders, n.get("orders_notified")),
        Check("reconcile", "orders seen", plan.orders, r.get("orders")),
        Check("reconcile", "orders consistent", plan.orders, r.get("consistent")),
    ]


@dataclass
class DemoOutcome:
    plan: DemoPlan
    state: dict[str, dict[str, Any]]
    checks: list[Check]
    seconds: float
    stock_before: dict[tuple[str, str], int]
    stock_after: list[dict[str, Any]]

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


def drive(info: RuntimeInfo, orders: int, *, timeout: float = 300.0,
          progress: Callable[[dict[str, dict[str, Any]]], None] | None = None) -> DemoOutcome:
    """Seed, publish the day's traffic, wait for the services to settle, collect the checks."""
    plan = plan_day(orders)
    with httpx.Client(timeout=30) as client:
        stock_before = seed_stock(client, info, plan)
        started = time.monotonic()
        asyncio.run(publish(info.kafka_bootstrap, plan.messages))
        deadline = started + timeout
        state = summaries(client, info)
        while not settled(state, plan) and time.monotonic() < deadline:
            if progress is not None:
                progress(state)
            time.sleep(0.5)
            state = summaries(client, info)
        seconds = time.monotonic() - started
        # let stragglers (a late duplicate, a notification) land before the final comparison
        time.sleep(1.0)
        state = summaries(client, info)
        stock_after = client.get(f"{info.url('inventory')}/stock", headers=ADMIN).json()
    return DemoOutcome(plan, state, checks(state, plan), seconds, stock_before, stock_after)


def demo_data_dir(base: Path) -> Path:
    return base / "demo"
