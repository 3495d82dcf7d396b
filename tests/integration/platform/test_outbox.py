"""Outbox relay on real PostgreSQL and Tansu: committed events reach the topic, in stream order."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import SystemClock
from shared.commitorder import events_held_back
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import OrderConfirmed
from shared.db import libpq_url
from shared.eventstore import Meta, Position, append
from shared.kafka import Publisher
from shared.outbox import OutboxRelay, load_checkpoint
from shared.runtime.embedded import create_topics
from shared.settings import with_database
from tests.conftest import unique_topic, wait_until

META = Meta(correlation_id="corr-relay", actor=SYSTEM)


class TopicReader:
    """Everything on one topic from the beginning (no consumer group)."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.records: list[ConsumerRecord[bytes, bytes]] = []

    async def fetch(self) -> list[ConsumerRecord[bytes, bytes]]:
        batches = await self.consumer.getmany(timeout_ms=200)
        for batch in batches.values():
            self.records.extend(batch)
        return self.records

    async def until(self, count: int, timeout: float = 15.0) -> list[ConsumerRecord[bytes, bytes]]:
        async def enough() -> bool:
            return len(await self.fetch()) >= count

        await wait_until(enough, timeout)
        return self.records

    def event_ids(self) -> list[uuid.UUID]:
        return [EventEnvelope.from_json(r.value).event_id for r in self.records]


@pytest_asyncio.fixture
async def topic(kafka_bootstrap: str) -> str:
    name = unique_topic("relay")
    await create_topics(kafka_bootstrap, [name], 3)
    return name


@pytest_asyncio.fixture
async def publisher(kafka_bootstrap: str) -> AsyncIterator[Publisher]:
    pub = Publisher(kafka_bootstrap, idempotent=False)
    await pub.start()
    yield pub
    await pub.stop()


@pytest_asyncio.fixture
async def reader(kafka_bootstrap: str, topic: str) -> AsyncIterator[TopicReader]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    yield TopicReader(consumer)
    await consumer.stop()


async def place(engine: AsyncEngine, order_id: str, expected: int | None, *totals: str
                ) -> list[uuid.UUID]:
    """Append to the order's stream (named apart from the order id, to tell key from stream)."""
    async with engine.begin() as conn:
        envelopes = await append(
            conn, f"order-{order_id}", expected,
            [OrderConfirmed(order_id=order_id, total=t, currency="CNY") for t in totals],  # type: ignore[arg-type]
            meta=META, clock=SystemClock(), key=order_id,
        )
    return [e.event_id for e in envelopes]


def relay_for(engine: AsyncEngine, publisher: Publisher, topic: str, **options: object
              ) -> OutboxRelay:
    return OutboxRelay(engine, publisher, name="orders", topic_for=lambda _e: topic,
                       **options)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[None]:
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_streams_are_published_in_order_keyed_by_order_id(
    engine: AsyncEngine, publisher: Publisher, topic: str, reader: TopicReader
) -> None:
    written: list[uuid.UUID] = []
    for version in range(4):  # interleave three streams
        for order_id in ("O-a", "O-b", "O-c"):
            written += await place(engine, order_id, version, f"{version}.00")
    relay = relay_for(engine, publisher, topic)
    assert await relay.publish_pending() == 12
    records = await reader.until(12)
    assert sorted(reader.event_ids()) == sorted(written)
    by_key: dict[bytes, list[ConsumerRecord[bytes, bytes]]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(record)
    assert set(by_key) == {b"O-a", b"O-b", b"O-c"}
    for key, stream in by_key.items():
        envelopes = [EventEnvelope.from_json(r.value) for r in stream]
        assert [e.stream_version for e in envelopes] == [1, 2, 3, 4]
        assert {e.payload["order_id"].encode() for e in envelopes} == {key}
        assert {r.partition for r in stream} == {stream[0].partition}  # one partition per order
        headers = dict(stream[0].headers)
        assert headers["event_type"] == b"order.confirmed"
        assert headers["event_id"] == str(envelopes[0].event_id).encode()


async def test_rolled_back_transaction_publishes_nothing(
    engine: AsyncEngine, publisher: Publisher, topic: str, reader: TopicReader
) -> None:
    async with engine.connect() as conn:
        await conn.begin()
        await append(conn, "order-O-x", 0,
                     [OrderConfirmed(order_id="O-x", total="1.00", currency="CNY")],  # type: ignore[arg-type]
                     meta=META, clock=SystemClock(), key="O-x")
        await conn.rollback()
    relay = relay_for(engine, publisher, topic)
    assert await relay.publish_pending() == 0
    committed = await place(engine, "O-y", 0, "2.00")
    assert await relay.publish_pending() == 1
    await reader.until(1)
    await reader.fetch()
    assert reader.event_ids() == committed


async def test_reset_republishes_the_same_event_ids(
    engine: AsyncEngine, publisher: Publisher, topic: str, reader: TopicReader
) -> None:
    written = await place(engine, "O-a", 0, "1.00", "2.00") + await place(engine, "O-b", 0, "3.00")
    relay = relay_for(engine, publisher, topic, batch_size=2)  # several batches
    assert await relay.publish_pending() == 3
    assert await relay.publish_pending() == 0
    await relay.reset()
    assert await relay.publish_pending() == 3
    await reader.until(6)
    ids = reader.event_ids()
    assert sorted(ids[:3]) == sorted(written)
    assert sorted(ids) == sorted(written * 2)


async def test_checkpoint_lives_in_the_database(
    engine: AsyncEngine, publisher: Publisher, topic: str, reader: TopicReader
) -> None:
    first = await place(engine, "O-a", 0, "1.00", "2.00", "3.00")
    assert await relay_for(engine, publisher, topic).publish_pending() == 3
    later = await place(engine, "O-a", 3, "4.00") + await place(engine, "O-b", 0, "5.00")
    successor = relay_for(engine, publisher, topic)  # a new process, the same relay name
    assert await successor.publish_pending() == 2
    await reader.until(5)
    await reader.fetch()
    assert reader.event_ids() == first + later  # each once
    async with engine.connect() as conn:
        saved = await load_checkpoint(conn, "orders")
        stored = (await conn.execute(text("SELECT max(position) FROM events"))).scalar_one()
        assert saved.position == stored
        assert (await load_checkpoint(conn, "another-relay")).position == 0


async def test_two_relay_instances_do_not_publish_twice(
    engine: AsyncEngine, publisher: Publisher, topic: str, reader: TopicReader
) -> None:
    for n in range(10):
        await place(engine, f"O-{n}", 0, "1.00", "2.00")
    one = relay_for(engine, publisher, topic, batch_size=3)
    two = relay_for(engine, publisher, topic, batch_size=3)
    sent = await asyncio.gather(one.publish_pending(), two.publish_pending(), one.publish_pending())
    assert sum(sent) == 20
    await reader.until(20)
    await reader.fetch()
    assert len(reader.event_ids()) == len(set(reader.event_ids())) == 20


async def test_listen_notify_wakes_the_running_relay(
    engine: AsyncEngine, database_url: str, publisher: Publisher, topic: str, reader: TopicReader
) -> None:
    # Polling every 30 s would miss the 10 s deadline below: only NOTIFY can be this quick.
    relay = relay_for(engine, publisher, topic, listen_url=libpq_url(database_url), poll_seconds=30)
    async with running(relay):
        first = await place(engine, "O-a", 0, "1.00")
        await reader.until(1, timeout=10)
        second = await place(engine, "O-a", 1, "2.00")
        await reader.until(2, timeout=10)
    assert reader.event_ids() == first + second


async def test_relay_is_not_stalled_by_a_transaction_without_events(
    engine: AsyncEngine, database_url: str, publisher: Publisher, topic: str, reader: TopicReader
) -> None:
    """An event committed while an older transaction runs waits for it; when that transaction
    ends without appending (so without NOTIFY) the relay still publishes promptly."""
    relay = relay_for(engine, publisher, topic, listen_url=libpq_url(database_url), poll_seconds=30)
    async with running(relay), engine.connect() as blocker:
        await blocker.begin()
        await blocker.execute(text("SELECT pg_current_xact_id()"))  # older than the append below
        written = await place(engine, "O-a", 0, "1.00")
        await asyncio.sleep(0.5)
        assert relay.published == 0  # held back: the blocker might still append before it
        assert await relay_held_back(engine)
        await blocker.commit()
        await reader.until(1, timeout=10)
    assert reader.event_ids() == written


async def test_a_transaction_in_another_database_holds_nothing_back(
    engine: AsyncEngine, database_url: str, postgres_url: str, publisher: Publisher, topic: str,
    reader: TopicReader
) -> None:
    """Only this database's transactions can append here: the five services share one server
    under `oms run`, and another service's running batch must not hold this relay back."""
    relay = relay_for(engine, publisher, topic, listen_url=libpq_url(database_url), poll_seconds=30)
    async with await psycopg.AsyncConnection.connect(
            libpq_url(with_database(postgres_url, "postgres"))) as elsewhere:
        await elsewhere.execute("SELECT pg_current_xact_id()")  # older than the append below
        async with running(relay):
            written = await place(engine, "O-a", 0, "1.00")
            await reader.until(1, timeout=5)
            assert not await relay_held_back(engine)
        await elsewhere.rollback()
    assert reader.event_ids() == written


async def relay_held_back(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return await events_held_back(conn, Position.start())


async def test_polling_fallback_without_listen(
    engine: AsyncEngine, publisher: Publisher, topic: str, reader: TopicReader
) -> None:
    relay = relay_for(engine, publisher, topic, listen_url=None, poll_seconds=0.2)
    async with running(relay):
        written = await place(engine, "O-a", 0, "1.00")
        await reader.until(1, timeout=10)
        written += await place(engine, "O-b", 0, "2.00")
        await reader.until(2, timeout=10)
    assert sorted(reader.event_ids()) == sorted(written)


async def test_a_relay_cancelled_as_it_is_woken_stops(
    engine: AsyncEngine, publisher: Publisher, topic: str
) -> None:
    """A shutdown cancels the relay; a commit's wake can arrive in the same loop iteration (the
    last command before the stop). The relay must end, not swallow the cancellation and run on
    (Python 3.11's asyncio.wait_for did: a service whose relay never ended never stopped)."""
    relay = relay_for(engine, publisher, topic, poll_seconds=30.0)  # it waits for a wake
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(0.5)  # published what there was (nothing): waiting for a wake
    assert not task.done()
    relay._wake.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done == {task} and task.cancelled()


@contextlib.contextmanager
def transactions(engine: AsyncEngine) -> Iterator[list[int]]:
    """How many transactions the engine began while inside (one list item each)."""
    begun: list[int] = []

    def count(*_: object) -> None:
        begun.append(1)

    event.listen(engine.sync_engine, "begin", count)
    try:
        yield begun
    finally:
        event.remove(engine.sync_engine, "begin", count)


async def test_a_short_batch_is_everything_there_was_no_second_transaction(
    engine: AsyncEngine, publisher: Publisher, topic: str, reader: TopicReader
) -> None:
    """What commits after the read wakes the relay (NOTIFY); looking again at once cost a whole
    transaction (five round trips) per wake, on every service's relay."""
    await place(engine, "O-a", 0, "1.00", "2.00")
    await place(engine, "O-b", 0, "3.00")
    relay = relay_for(engine, publisher, topic, batch_size=2)
    with transactions(engine) as begun:
        assert await relay.publish_pending() == 3  # a full batch of 2, then a short one of 1
    assert len(begun) == 2
    with transactions(engine) as begun:
        assert await relay.publish_pending() == 0
    assert len(begun) == 1
    await place(engine, "O-c", 0, "4.00")
    with transactions(engine) as begun:
        assert await relay.publish_pending() == 1
    assert len(begun) == 1
    await reader.until(4)
