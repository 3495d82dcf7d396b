"""Notify's handlers on the real database, driven through the idempotent inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify import store
from services.notify.config import EXAMPLE_RULES, load_rules
from services.notify.handlers import make_handler
from shared.clock import ManualClock
from shared.inbox import IdempotentConsumer
from shared.service import prepare_database
from tests.unit.reconcile.samples import (
    AT,
    envelope,
    incoming,
    new_order_id,
    order_confirmed,
    order_paid,
    order_placed,
    stock_reserved,
    stock_shortage,
)


@pytest_asyncio.fixture
async def notify_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await prepare_database(database_url, store.create_schema)
    yield engine
    await engine.dispose()


RULES = load_rules(EXAMPLE_RULES)


def consumer(engine: AsyncEngine, clock: ManualClock, name: str = "notify") -> IdempotentConsumer:
    """Inbox only (no SMTP, no URLs): the example rules fall back to the inbox."""
    return IdempotentConsumer(name=name, engine=engine, publisher=None,
                              handle=make_handler(clock, RULES))


async def rows(engine: AsyncEngine, sql: str, **params) -> list:
    async with engine.connect() as conn:
        return list(await conn.execute(text(sql), params))


async def test_confirmation_and_payment_reach_the_customer_once(notify_engine):
    clock = ManualClock(AT)
    inbox = consumer(notify_engine, clock)
    order_id = new_order_id()
    placed, confirmed, paid = (envelope(order_placed(order_id)), envelope(order_confirmed(order_id)),
                               envelope(order_paid(order_id)))
    reserved = envelope(stock_reserved(order_id))  # no rule: nobody is told
    await inbox.process_incoming([incoming(placed), incoming(reserved), incoming(confirmed)])
    clock.advance(timedelta(minutes=1))
    await inbox.process_incoming([incoming(paid)])

    sent = await rows(notify_engine, "SELECT * FROM notifications ORDER BY created_at")
    assert [(r.source_event_type, r.recipient, r.channel, r.status) for r in sent] == [
        ("order.confirmed", "customer:C-1001", "inbox", "sent"),
        ("order.paid", "customer:C-1001", "inbox", "sent"),
    ]
    assert sent[0].created_at == AT
    assert sent[1].source_event_id == str(paid.event_id)

    events = await rows(notify_engine, "SELECT * FROM events ORDER BY position")
    assert [e.event_type for e in events] == ["notification.sent", "notification.sent"]
    first = events[0]
    assert first.message_key == order_id
    assert first.stream_id == sent[0].notification_id
    assert first.causation_id == str(confirmed.event_id)
    assert first.correlation_id == confirmed.correlation_id
    assert first.payload["recipient"] == "customer:C-1001"
    assert first.payload["source_event_type"] == "order.confirmed"


async def test_redelivery_replay_and_republish_never_send_twice(notify_engine):
    clock = ManualClock(AT)
    order_id = new_order_id()
    placed, confirmed = envelope(order_placed(order_id)), envelope(order_confirmed(order_id))
    inbox = consumer(notify_engine, clock)
    await inbox.process_incoming([incoming(placed), incoming(confirmed)])
    # redelivery of the same batch, and the same message twice in one batch (republish)
    await inbox.process_incoming([incoming(placed, 1), incoming(confirmed, 1), incoming(confirmed, 2)])
    # replay: a consumer with no memory of what it processed (inbox emptied) sees it all again
    async with notify_engine.begin() as conn:
        await conn.execute(text("DELETE FROM inbox"))
    await consumer(notify_engine, clock, name="notify-replay").process_incoming(
        [incoming(placed), incoming(confirmed)]
    )
    assert len(await rows(notify_engine, "SELECT 1 FROM notifications")) == 1
    assert len(await rows(notify_engine, "SELECT 1 FROM events")) == 1
    async with notify_engine.connect() as conn:
        assert await store.summary(conn) == {
            "notifications_sent": 1, "orders_notified": 1, "by_event_type": {"order.confirmed": 1},
            "by_channel": {"inbox": 1}, "by_audience": {"customer": 1}, "failed": 0, "pending": 0}


async def test_a_rebuilt_projection_does_not_send_again(notify_engine):
    clock = ManualClock(AT)
    order_id = new_order_id()
    batch = [incoming(envelope(order_placed(order_id))), incoming(envelope(order_confirmed(order_id)))]
    await consumer(notify_engine, clock).process_incoming(batch)
    async with notify_engine.begin() as conn:  # `oms replay notify` throws projections away
        await conn.execute(text("DELETE FROM notifications"))
        await conn.execute(text("DELETE FROM inbox"))
    await consumer(notify_engine, clock).process_incoming(batch)
    assert len(await rows(notify_engine, "SELECT 1 FROM notifications")) == 1
    assert len(await rows(notify_engine, "SELECT 1 FROM events")) == 1  # the log says: sent once


async def test_shortage_tells_the_warehouse_with_the_customer_masked(notify_engine):
    order_id = new_order_id()
    await consumer(notify_engine, ManualClock(AT)).process_incoming(
        [incoming(envelope(order_placed(order_id))), incoming(envelope(stock_shortage(order_id)))]
    )
    async with notify_engine.connect() as conn:
        [note] = await store.inbox_of(conn, "role:warehouse", 10)
        assert await store.inbox_of(conn, "customer:C-1001", 10) == []
    assert note["order_id"] == order_id
    assert "X-100: requested 2, available 1" in note["body"]
    assert "w*@example.com" in note["body"]
    assert "wf@example.com" not in note["body"] and "王芳" not in note["body"]
    assert "文三路" not in note["body"]


async def test_a_customer_who_cannot_be_addressed_is_logged_as_failed(notify_engine):
    order_id = new_order_id()
    await consumer(notify_engine, ManualClock(AT)).process_incoming(
        [incoming(envelope(order_confirmed(order_id)))]
    )
    [note] = await rows(notify_engine, "SELECT * FROM notifications")
    assert (note.status, note.recipient) == ("failed", "customer:unknown")
    [event] = await rows(notify_engine, "SELECT * FROM events")
    assert event.event_type == "notification.failed"
    assert "no order.placed seen" in event.payload["reason"]
    async with notify_engine.connect() as conn:
        found = await store.summary(conn)
    assert (found["notifications_sent"], found["failed"]) == (0, 1)
    [attempt] = await rows(notify_engine, "SELECT * FROM delivery_attempts")
    assert (attempt.status, attempt.notification_id) == ("failed", note.notification_id)


async def test_a_malformed_event_is_dead_lettered_without_blocking_its_neighbours(notify_engine):
    order_id = new_order_id()
    broken = envelope(order_confirmed(order_id)).model_copy(update={"payload": {"order_id": order_id}})
    good = [incoming(envelope(order_placed(order_id))), incoming(envelope(order_paid(order_id)))]
    await consumer(notify_engine, ManualClock(AT)).process_incoming([good[0], incoming(broken), good[1]])
    assert len(await rows(notify_engine, "SELECT 1 FROM dead_letters")) == 1
    assert [r.source_event_type for r in await rows(notify_engine, "SELECT * FROM notifications")] == [
        "order.paid"
    ]


async def test_an_older_database_is_upgraded_in_place(engine):
    """A notify database from before the background sender gets the new columns on start."""
    async with engine.begin() as conn:
        await conn.execute(text(
            "CREATE TABLE order_customers (order_id text PRIMARY KEY, customer_id text NOT NULL, "
            "customer_name text NOT NULL, email text, phone text, channel text NOT NULL, "
            "channel_order_id text NOT NULL, source_event_id text NOT NULL, "
            "recorded_at timestamptz NOT NULL)"))
        await conn.execute(text(
            "CREATE TABLE notifications (notification_id text PRIMARY KEY, source_event_id text "
            "NOT NULL, source_event_type text NOT NULL, order_id text, recipient text NOT NULL, "
            "channel text NOT NULL, rule text NOT NULL, subject text NOT NULL, body text NOT NULL, "
            "status text NOT NULL, failure_reason text, created_at timestamptz NOT NULL, "
            "CONSTRAINT notifications_once UNIQUE (source_event_id, recipient, channel))"))
    async with engine.begin() as conn:
        await store.create_schema(conn)
    order_id = new_order_id()
    await consumer(engine, ManualClock(AT)).process_incoming(
        [incoming(envelope(order_placed(order_id))), incoming(envelope(order_confirmed(order_id)))])
    [note] = await rows(engine, "SELECT * FROM notifications")
    assert (note.status, note.attempts, note.correlation_id) == ("sent", 0, "corr-1")
