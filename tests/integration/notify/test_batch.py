"""Notify's batch work (customers and notification states loaded in bulk, rows written in one
executemany per table) has exactly the effect of handling each event alone: same customers,
notifications, delivery attempts and appended outcomes, also after the projection was rebuilt."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from itertools import cycle, zip_longest
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify import store
from services.notify.config import EXAMPLE_RULES, load_rules
from services.notify.domain import DeliverySetup, RuleSet
from services.notify.handlers import make_batch_start, make_handler
from shared.audit.clocked import clocked_batch, clocked_handler
from shared.clock import ManualClock
from shared.contract.envelope import EventEnvelope
from shared.inbox import IdempotentConsumer, Incoming
from shared.metrics import METRICS
from shared.service import prepare_database
from tests.conftest import create_database
from tests.integration.notify.history import order_events
from tests.unit.reconcile.samples import (
    AT,
    CUSTOMER,
    envelope,
    incoming,
    new_order_id,
    order_confirmed,
    order_paid,
    order_placed,
)

SETUP = DeliverySetup(email=True)  # inbox: sent at once; email: pending (or failed: no address)
# A second rule telling the customer of a confirmation in the inbox: the same notification twice.
TWICE = """
[[rule]]
name = "order-confirmed-to-customer-again"
event = "order.confirmed"
recipients = ["customer"]
channels = ["inbox"]
subject = "Confirmed: {{ channel_order_id }}"
body = "Order {{ order_id }} is confirmed."
"""


def rules(tmp_path: Path) -> RuleSet:
    path = tmp_path / "notify-rules.toml"
    path.write_text(EXAMPLE_RULES.read_text(encoding="utf-8") + TWICE, encoding="utf-8")
    return load_rules(path)


def interleaved_history() -> list[EventEnvelope]:
    """Orders of every kind, their events interleaved: paid orders (every fifth one short of
    stock), a customer without an email address, an order placed twice with other customers (the
    first is kept), and events of an order notify never saw placed (its customer is unknown)."""
    flows = [order_events(new_order_id(), short=n % 5 == 0) for n in range(12)]
    no_email = new_order_id()
    flows.append([envelope(order_placed(no_email, {**CUSTOMER, "id": "C-2", "email": None})),
                  envelope(order_confirmed(no_email)), envelope(order_paid(no_email))])
    twice = new_order_id()
    flows.append([envelope(order_placed(twice)), envelope(order_placed(twice, {**CUSTOMER, "id": "C-3"})),
                  envelope(order_confirmed(twice)), envelope(order_placed(twice, {**CUSTOMER, "id": "C-4"})),
                  envelope(order_paid(twice))])
    unknown = new_order_id()
    flows.append([envelope(order_confirmed(unknown)), envelope(order_paid(unknown))])
    return [e for group in zip_longest(*flows) for e in group if e is not None]


async def run(engine: AsyncEngine, ruleset: RuleSet, events: list[EventEnvelope], batched: bool
              ) -> None:
    """Feed ``events``; each is handled at its own instant (10 s apart), as a replay does."""
    clock = ManualClock(AT)
    at = {e.event_id: AT + timedelta(seconds=10 * n) for n, e in enumerate(events)}
    handle, start = make_handler(clock, ruleset, SETUP), make_batch_start(clock, ruleset, SETUP)

    def instant(message: Incoming) -> datetime:
        return at[message.event.event_id]

    consumer = IdempotentConsumer(name="notify", engine=engine, publisher=None,
                                  handle=clocked_handler(clock, handle, instant),
                                  start_batch=clocked_batch(clock, start, instant) if batched else None)
    # Batches of 40 hold several events of each order (15 flows interleaved); of 9, hardly any.
    sizes, first = cycle((40, 9) if batched else (1,)), 0
    while first < len(events):
        size = next(sizes)
        await consumer.process_incoming([incoming(e) for e in events[first:first + size]])
        first += size


async def rebuild(engine: AsyncEngine) -> None:
    """What ``oms replay notify`` starts from: the projections and the inbox thrown away, the
    event log (the outcomes logged) kept."""
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE notifications, delivery_attempts, order_customers, inbox"))


async def contents(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        async def query(sql: str) -> list[dict[str, Any]]:
            return [dict(r._mapping) for r in await conn.execute(text(sql))]

        return {
            "customers": await query("SELECT * FROM order_customers ORDER BY order_id"),
            "notifications": await query("SELECT * FROM notifications ORDER BY notification_id"),
            "attempts": await query("SELECT * FROM delivery_attempts ORDER BY id"),
            "events": await query(
                "SELECT stream_id, stream_version, event_type, schema_version, occurred_at, "
                "correlation_id, causation_id, actor, payload, message_key FROM events "
                "ORDER BY position"),
            "inbox": await query("SELECT message_id, consumer, topic FROM inbox ORDER BY 1"),
            "dead_letters": await query("SELECT message_id FROM dead_letters ORDER BY 1"),
        }


async def test_a_batch_has_the_effect_of_each_event_alone(postgres_url: str, database_url: str,
                                                          tmp_path: Path) -> None:
    ruleset = rules(tmp_path)
    events = interleaved_history()
    alone_db = await prepare_database(database_url, store.create_schema)
    together_db = await prepare_database(
        await create_database(postgres_url, f"t_{uuid.uuid4().hex[:12]}"), store.create_schema)
    fallbacks = METRICS.value("oms_consumer_batch_fallbacks_total", consumer="notify")
    batch_work = METRICS.value("oms_consumer_batch_work_total", consumer="notify")
    try:
        found = []
        for engine, batched in ((alone_db, False), (together_db, True)):
            await run(engine, ruleset, events[:len(events) // 2], batched)
            before = await contents(engine)
            await rebuild(engine)
            await run(engine, ruleset, events, batched)  # the first half is replayed
            found.append((before, await contents(engine)))
    finally:
        await alone_db.dispose()
        await together_db.dispose()
    assert METRICS.value("oms_consumer_batch_fallbacks_total", consumer="notify") == fallbacks
    assert METRICS.value("oms_consumer_batch_work_total", consumer="notify") > batch_work
    (alone_half, alone), (together_half, together) = found
    statuses = {(n["status"], n["channel"]) for n in alone["notifications"]}
    assert {("sent", "inbox"), ("pending", "email"), ("failed", "email"),
            ("failed", "inbox")} <= statuses, statuses
    assert {c["customer_id"] for c in alone["customers"]} == {"C-1001", "C-2"}
    assert alone["dead_letters"] == []
    # Replayed, nothing was logged twice: one outcome per notification stream.
    assert len({e["stream_id"] for e in alone["events"]}) == len(alone["events"])
    for mine, theirs in ((together_half, alone_half), (together, alone)):
        for part, rows in theirs.items():
            assert len(mine[part]) == len(rows), part
            for row, other in zip(mine[part], rows, strict=True):
                assert {k: v for k, v in row.items() if other.get(k) != v} == {}, (part, other)
