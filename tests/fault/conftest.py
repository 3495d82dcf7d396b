"""Fault-test harness: a supervised runtime, waves of storefront traffic, and the counts to expect."""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from shared.db import libpq_url
from shared.demo import traffic
from shared.demo.plan import encode
from shared.demo.runner import ADMIN, DEMO_ENV, publish, summaries
from shared.runtime.supervisor import Runtime

SERVICES = ("order", "inventory", "billing", "notify", "reconcile")
SKUS = sorted({sku for sku, _, _ in traffic.PRODUCTS})
START = datetime.now(UTC) - timedelta(hours=2)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a fault test of a minute or more")


def new_runtime(data_dir: Path, *, fresh: bool = True,
                scale: dict[str, int] | None = None) -> Runtime:
    return Runtime(data_dir=data_dir, fresh=fresh, auto_ports=True, extra_env=DEMO_ENV,
                   start_timeout=240 if scale else 180, scale=scale)


def seeded(prefix: str, scale: dict[str, int] | None = None) -> Iterator[Runtime]:
    """A started runtime in a new data directory, with plenty of stock; stopped after."""
    rt = new_runtime(Path(tempfile.mkdtemp(prefix=prefix)), scale=scale)
    rt.start()
    try:
        seed(rt)
        yield rt
    finally:
        rt.stop()


@pytest.fixture(scope="session")
def runtime() -> Iterator[Runtime]:
    """One supervised OMS (five processes, embedded PostgreSQL and Tansu) with plenty of stock,
    shared by the fault tests (each compares counts before and after its own traffic)."""
    yield from seeded("oms-fault-")


def seed(rt: Runtime, units: int = 1_000_000) -> None:
    with httpx.Client(timeout=60) as client:
        for sku in SKUS:
            client.post(f"{rt.info.url('inventory')}/stock/receipts", headers=ADMIN, json={
                "sku": sku, "warehouse": "WH-FAULT", "quantity": units, "reason": "fault tests"},
            ).raise_for_status()


@dataclass
class Traffic:
    """Paid prepaid orders (submission + full payment each), numbered apart per test."""

    prefix: str
    rng: random.Random = field(default_factory=lambda: random.Random(6))
    sent: int = 0

    def wave(self, orders: int) -> list[tuple[bytes, bytes]]:
        messages = []
        for _ in range(orders):
            self.sent += 1
            at = START + timedelta(seconds=self.sent)
            message = traffic.submission("web", self.sent, rng=self.rng, submitted_at=at)
            message["channel_order_id"] = f"{self.prefix}-{self.sent:06d}"
            messages.append(encode(message))
            messages.append(encode(traffic.payment(message, captured_at=at)))
        return messages


def send(rt: Runtime, messages: list[tuple[bytes, bytes]]) -> None:
    asyncio.run(publish(rt.info.kafka_bootstrap, messages))


def state(rt: Runtime) -> dict[str, dict[str, Any]]:
    with httpx.Client(timeout=30) as client:
        return summaries(client, rt.info)


def counts(s: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The figures a fault test compares (each one of them would move if anything were lost or
    doubled)."""
    return {
        "orders": s["order"].get("orders"),
        "paid_orders": s["order"].get("paid_orders"),
        "orders_reserved": s["inventory"].get("orders_reserved"),
        "invoices": s["billing"].get("invoices"),
        "payments": s["billing"].get("payments"),
        "notifications": s["notify"].get("notifications_sent"),  # replaced by snapshot()
        "reconciled": s["reconcile"].get("orders"),
        "consistent": s["reconcile"].get("consistent"),
    }


CUSTOMER_NOTICES = ("SELECT count(*) FROM notifications "
                    "WHERE source_event_type IN ('order.confirmed', 'order.paid')")


def snapshot(rt: Runtime) -> dict[str, Any]:
    """The counts, with notify's figure narrowed to the two customer notices every paid order gets
    (staff alerts, e.g. a discrepancy reconcile raised while a service was down, are legitimate)."""
    seen = counts(state(rt))
    seen["notifications"] = query(rt, "notify", CUSTOMER_NOTICES)[0][0]
    return seen


def expected(before: dict[str, Any], orders: int) -> dict[str, Any]:
    grow = {"notifications": 2 * orders}
    return {k: (v or 0) + grow.get(k, orders) for k, v in before.items()}


def converge(rt: Runtime, want: dict[str, Any], timeout: float = 150.0) -> dict[str, Any]:
    """Poll every /summary until the counts equal ``want`` (a service may be restarting)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            seen = snapshot(rt)
        except (httpx.HTTPError, psycopg.Error):
            seen = {}
        if seen == want:
            time.sleep(2.0)  # a straggler (a late duplicate) would show up now
            seen = snapshot(rt)
            break
        time.sleep(1.0)
    return seen


def query(rt: Runtime, service: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(rt.info.database_url(service)), autocommit=True) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


DOUBLES: dict[str, tuple[str, ...]] = {
    # (service, event types that must exist at most once per order in its event store)
    "order": ("order.placed", "order.confirmed", "order.paid", "order.payment_captured"),
    "inventory": ("stock.reserved",),
    "billing": ("invoice.issued", "payment.recorded"),
}


def doubled(rt: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Orders with an effect twice, read straight from each service's database."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for service, types in DOUBLES.items():
        names = ", ".join(f"'{t}'" for t in types)
        found[service] = query(rt, service, (
            f"SELECT message_key, event_type, count(*) FROM events WHERE event_type IN ({names}) "
            "GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 20"))
    found["billing_invoices"] = query(rt, "billing", (
        "SELECT order_id, count(*) FROM invoices WHERE NOT voided GROUP BY 1 HAVING count(*) > 1"))
    found["notify"] = query(rt, "notify", (
        "SELECT order_id, rule, recipient, count(*) FROM notifications "
        "WHERE source_event_type IN ('order.confirmed', 'order.paid') GROUP BY 1, 2, 3 "
        "HAVING count(*) > 1 LIMIT 20"))
    return {k: v for k, v in found.items() if v}


def dead_letters(rt: Runtime) -> dict[str, int]:
    return {s: query(rt, s, "SELECT count(*) FROM dead_letters")[0][0] for s in SERVICES}


def explain(rt: Runtime) -> str:
    """What reconcile still finds wrong (for an assertion message)."""
    s = state(rt)
    return json.dumps({"pending": s["reconcile"].get("pending_orders", [])[:5],
                       "summary": counts(s)}, default=str)[:3000]

