"""Idempotent consumer on real PostgreSQL (and Tansu for dead letters): one effect per message."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Sequence

import pytest
import pytest_asyncio
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.contract.topics import dlq
from shared.eventstore import ConcurrencyError
from shared.inbox import IdempotentConsumer, Incoming, TransientError
from shared.kafka import OutgoingRecord, Publisher
from shared.metrics import METRICS
from shared.runtime.embedded import create_topics
from tests.conftest import unique_topic
from tests.integration.platform.support import (
    TallyHandler,
    create_tallies,
    dead_letters,
    read_topic,
    record,
    tallies,
    tally_event,
)


@pytest_asyncio.fixture
async def topic(kafka_bootstrap: str) -> str:
    name = unique_topic("oms.inbox")
    await create_topics(kafka_bootstrap, [name, dlq(name)], 1)
    return name


@pytest_asyncio.fixture
async def publisher(kafka_bootstrap: str) -> AsyncIterator[Publisher]:
    pub = Publisher(kafka_bootstrap, idempotent=False)
    await pub.start()
    yield pub
    await pub.stop()


@pytest_asyncio.fixture
async def tally_engine(engine: AsyncEngine) -> AsyncEngine:
    await create_tallies(engine)
    return engine


def consumer_for(engine: AsyncEngine, handler: TallyHandler, publisher: Publisher | None = None,
                 **options: object) -> IdempotentConsumer:
    return IdempotentConsumer(name="tally", engine=engine, publisher=publisher, handle=handler,
                              base_delay=0.01, **options)  # type: ignore[arg-type]


async def inbox_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM inbox"))).scalar_one())


async def test_the_same_batch_twice_has_one_effect(tally_engine: AsyncEngine, topic: str) -> None:
    one, two = tally_event("O-1", "1.50").to_json(), tally_event("O-2", "2.25").to_json()
    batch = [record(topic, 0, one), record(topic, 1, two), record(topic, 2, one)]  # O-1 twice
    consumer = consumer_for(tally_engine, TallyHandler())
    await consumer.process(batch)
    await consumer.process(batch)  # redelivery after a rebalance
    await consumer.process([record(topic, 7, two)])  # republished later
    assert await tallies(tally_engine) == {"O-1": ("1.50", 1), "O-2": ("2.25", 1)}
    assert await inbox_count(tally_engine) == 2


async def test_a_failing_message_is_dead_lettered_and_its_neighbours_take_effect(
    tally_engine: AsyncEngine, topic: str, publisher: Publisher, kafka_bootstrap: str
) -> None:
    poison = tally_event("O-bad", "9.00", explode="no such ledger").to_json()
    batch = [
        record(topic, 0, tally_event("O-1", "1.00").to_json(), key="O-1"),
        record(topic, 1, poison, key="O-bad"),
        record(topic, 2, b'{"event_id": "not an envelope"', key="O-garbled"),
        record(topic, 3, tally_event("O-3", "3.00").to_json(), key="O-3"),
    ]
    handler = TallyHandler()
    consumer = consumer_for(tally_engine, handler, publisher)
    await consumer.process(batch)
    await consumer.process(batch)  # redelivered: no second effect, no second dead letter
    assert await tallies(tally_engine) == {"O-1": ("1.00", 1), "O-3": ("3.00", 1)}
    # tried with the whole batch (undone), then alone: dead-lettered once, no effect
    assert handler.calls["O-bad"] == 2
    letters = await dead_letters(tally_engine)
    assert [(d.offset, d.key) for d in letters] == [(1, "O-bad"), (2, "O-garbled")]
    assert "ValueError: cannot tally order O-bad: no such ledger" in letters[0].error
    assert "not an oms event envelope" in letters[1].error
    assert all(d.published_at is not None for d in letters)
    assert bytes(letters[0].value) == poison

    published = await read_topic(kafka_bootstrap, dlq(topic), 2)
    assert [(m["topic"], m["offset"], m["key"], m["consumer"]) for m in published] == [
        (topic, 1, "O-bad", "tally"), (topic, 2, "O-garbled", "tally")]
    assert "no such ledger" in published[0]["error"]
    assert json.loads(published[0]["original"])["payload"]["order_id"] == "O-bad"
    assert published[1]["original"] == '{"event_id": "not an envelope"'


async def test_transient_errors_are_retried_to_one_effect(tally_engine: AsyncEngine, topic: str
                                                          ) -> None:
    handler = TallyHandler(transient_failures={"O-1": 2})
    consumer = consumer_for(tally_engine, handler, max_attempts=4)
    await consumer.process([record(topic, 0, tally_event("O-1", "5.00").to_json()),
                            record(topic, 1, tally_event("O-2", "1.00").to_json())])
    assert await tallies(tally_engine) == {"O-1": ("5.00", 1), "O-2": ("1.00", 1)}
    assert handler.calls["O-1"] == 3
    assert await dead_letters(tally_engine) == []


async def test_a_failure_that_stays_transient_propagates_and_leaves_no_trace(
    tally_engine: AsyncEngine, topic: str
) -> None:
    batch = [record(topic, 0, tally_event("O-0", "1.00").to_json()),
             record(topic, 1, tally_event("O-1", "5.00").to_json())]
    handler = TallyHandler(transient_failures={"O-1": 3})
    consumer = consumer_for(tally_engine, handler, max_attempts=3)
    with pytest.raises(TransientError):
        await consumer.process(batch)  # the subscriber nacks: the broker delivers it again
    assert await tallies(tally_engine) == {}
    assert await inbox_count(tally_engine) == 0  # the whole batch was rolled back
    assert await dead_letters(tally_engine) == []
    await consumer.process(batch)  # the redelivery, once the dependency is back
    assert await tallies(tally_engine) == {"O-0": ("1.00", 1), "O-1": ("5.00", 1)}


async def test_a_concurrency_conflict_is_decided_again(tally_engine: AsyncEngine, topic: str
                                                       ) -> None:
    inner = TallyHandler()
    conflicts = [ConcurrencyError("O-1", 0, 1)]

    async def handle(conn, message: Incoming) -> None:  # type: ignore[no-untyped-def]
        await inner(conn, message)  # its write is undone with the savepoint
        if conflicts:
            raise conflicts.pop()

    consumer = IdempotentConsumer(name="tally", engine=tally_engine, publisher=None, handle=handle)
    await consumer.process([record(topic, 0, tally_event("O-1", "5.00").to_json())])
    assert await tallies(tally_engine) == {"O-1": ("5.00", 1)}
    assert inner.calls["O-1"] == 2


async def held_stream_locks(conn) -> int:  # type: ignore[no-untyped-def]
    return int((await conn.execute(text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND pid = pg_backend_pid()"))).scalar_one())


async def test_after_a_conflict_the_retry_holds_the_stream_lock(tally_engine: AsyncEngine,
                                                                 topic: str) -> None:
    """The retry queues behind the other writer (the key HTTP commands take) instead of racing
    it again, so a busy order does not send a good message to the dead letters."""
    inner = TallyHandler()
    locks_seen: list[int] = []
    conflicts = [ConcurrencyError("O-1", 0, 1)]

    async def handle(conn, message: Incoming) -> None:  # type: ignore[no-untyped-def]
        locks_seen.append(await held_stream_locks(conn))
        await inner(conn, message)
        if conflicts:
            raise conflicts.pop()

    consumer = IdempotentConsumer(name="tally", engine=tally_engine, publisher=None, handle=handle)
    await consumer.process([record(topic, 0, tally_event("O-1", "5.00").to_json())])
    assert locks_seen == [0, 1]
    assert await tallies(tally_engine) == {"O-1": ("5.00", 1)}


async def test_a_clean_batch_takes_the_fast_path_and_a_poisoned_one_falls_back(
        tally_engine: AsyncEngine, topic: str) -> None:
    def fallbacks() -> float:
        return METRICS.value("oms_consumer_batch_fallbacks_total", consumer="tally")

    before = fallbacks()
    consumer = consumer_for(tally_engine, TallyHandler())
    await consumer.process([record(topic, n, tally_event(f"O-{n}", "1.00").to_json())
                            for n in range(5)])
    assert fallbacks() == before
    await consumer.process([record(topic, 10, tally_event("O-10", "1.00").to_json()),
                            record(topic, 11, tally_event("O-11", "1.00", explode="x").to_json()),
                            record(topic, 12, tally_event("O-12", "1.00").to_json())])
    assert fallbacks() == before + 1
    assert await tallies(tally_engine) == {f"O-{n}": ("1.00", 1) for n in (0, 1, 2, 3, 4, 10, 12)}
    assert [d.offset for d in await dead_letters(tally_engine)] == [11]


async def test_the_fast_path_takes_no_savepoint(tally_engine: AsyncEngine, topic: str) -> None:
    """A savepoint and its release are two round trips more per batch: the fast path needs
    none (a failure undoes the whole transaction and the fallback starts a new one)."""
    sent: list[str] = []

    def seen(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement)

    event.listen(tally_engine.sync_engine, "before_cursor_execute", seen)
    try:
        consumer = consumer_for(tally_engine, TallyHandler())
        await consumer.process([record(topic, n, tally_event(f"O-{n}", "1.00").to_json())
                                for n in range(3)])
        await consumer.process([record(topic, 9, tally_event("O-9", "1.00").to_json())])
    finally:
        event.remove(tally_engine.sync_engine, "before_cursor_execute", seen)
    assert await tallies(tally_engine) == {f"O-{n}": ("1.00", 1) for n in (0, 1, 2, 9)}
    assert sent and not [s for s in sent if "SAVEPOINT" in s.upper()]


class BrokerAwayOnce(Publisher):
    """The real publisher, except that its first publish finds the broker unreachable."""

    failed = False

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        if not self.failed:
            self.failed = True
            raise KafkaConnectionError("broker away")
        await super().publish(records)


async def test_dead_letters_survive_a_broker_outage(
    tally_engine: AsyncEngine, topic: str, kafka_bootstrap: str
) -> None:
    flaky = BrokerAwayOnce(kafka_bootstrap, idempotent=False)
    await flaky.start()
    try:
        consumer = consumer_for(tally_engine, TallyHandler(), flaky)
        bad = tally_event("O-bad", "1.00", explode="boom").to_json()
        await consumer.process([record(topic, 0, bad), record(topic, 1, tally_event("O-1", "1.00")
                                                                   .to_json())])
        # the batch's effects are committed; the dead letter waits for the broker
        assert await tallies(tally_engine) == {"O-1": ("1.00", 1)}
        assert [d.published_at for d in await dead_letters(tally_engine)] == [None]
        await consumer.process([record(topic, 2, tally_event("O-2", "2.00").to_json())])
    finally:
        await flaky.stop()
    assert [d.published_at is not None for d in await dead_letters(tally_engine)] == [True]
    [letter] = await read_topic(kafka_bootstrap, dlq(topic), 1)
    assert "boom" in letter["error"]


async def test_event_types_the_handler_ignores_are_skipped_unclaimed(
        tally_engine: AsyncEngine, topic: str) -> None:
    """``handles``: a record whose event_type header names another type is neither decoded nor
    claimed (no inbox row); without the header, its envelope's type decides; wanted ones count."""
    wanted = tally_event("O-1", "1.00")
    ignored = tally_event("O-2", "5.00").model_copy(update={"event_type": "test.ignored"})
    with_header = dataclasses.replace(record(topic, 0, ignored.to_json()),
                                      headers=[("event_type", b"test.ignored")])
    batch = [record(topic, 1, wanted.to_json()), with_header, record(topic, 2, ignored.to_json())]
    handler = TallyHandler()
    consumer = consumer_for(tally_engine, handler, handles=frozenset({"test.tallied"}))
    before = METRICS.value("oms_consumer_skipped_total", consumer="tally")
    await consumer.process(batch)
    assert await tallies(tally_engine) == {"O-1": ("1.00", 1)}
    assert await inbox_count(tally_engine) == 1
    assert METRICS.value("oms_consumer_skipped_total", consumer="tally") - before == 2
    await consumer.process([with_header])  # a batch of skipped records only: no transaction
    assert await inbox_count(tally_engine) == 1


class _RememberingWork:
    """Batch work that handles each message as alone and notes when it is told of the commit."""

    def __init__(self, handler: TallyHandler, conn: AsyncConnection, log: list[str]) -> None:
        self.handler, self.conn, self.log = handler, conn, log

    async def handle(self, message: Incoming) -> None:
        await self.handler(self.conn, message)

    async def finish(self) -> None:
        self.log.append("finished")

    def committed(self) -> None:
        self.log.append("committed")


async def test_batch_work_hears_of_the_commit_only_when_its_batch_committed(
        tally_engine: AsyncEngine, topic: str) -> None:
    log: list[str] = []
    handler = TallyHandler()

    async def start(conn: AsyncConnection, messages: Sequence[Incoming]) -> _RememberingWork:
        return _RememberingWork(handler, conn, log)

    consumer = consumer_for(tally_engine, handler, start_batch=start)
    await consumer.process([record(topic, n, tally_event(f"O-{n}", "1.00").to_json())
                            for n in range(3)])
    assert log == ["finished", "committed"]
    log.clear()
    await consumer.process([record(topic, 10, tally_event("O-10", "1.00").to_json()),
                            record(topic, 11, tally_event("O-11", "1.00", explode="x").to_json())])
    assert log == [], "a batch undone (handled one by one instead) was told it committed"
    log.clear()
    handler.transient_failures["O-20"] = 99  # the whole transaction keeps failing
    with pytest.raises(TransientError):
        await consumer.process([record(topic, 20, tally_event("O-20", "1.00").to_json()),
                                record(topic, 21, tally_event("O-21", "1.00").to_json())])
    assert "committed" not in log
