"""The idempotent consumer behind a real FastStream batch subscriber on a fresh Tansu broker."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.contract.topics import dlq
from shared.inbox import IdempotentConsumer
from shared.kafka import OutgoingRecord, Publisher, make_broker, subscribe_batches
from shared.runtime.embedded import create_topics
from shared.service import stop_within
from shared.settings import OmsSettings
from tests.conftest import unique_topic, wait_until
from tests.integration.platform.support import (
    TallyHandler,
    create_tallies,
    dead_letters,
    read_topic,
    tallies,
    tally_event,
)

JOIN_TIMEOUT = 30.0  # a consumer group join on Tansu takes a few seconds


@contextlib.asynccontextmanager
async def subscribed(bootstrap: str, engine: AsyncEngine, topic: str, group: str,
                     handler: TallyHandler, **options: object
                     ) -> AsyncIterator[Publisher]:
    """A running batch subscriber feeding an IdempotentConsumer; yields a publisher."""
    await create_topics(bootstrap, [topic, dlq(topic)], 1)
    publisher = Publisher(bootstrap, idempotent=False)
    await publisher.start()
    consumer = IdempotentConsumer(name="tally", engine=engine, publisher=publisher, handle=handler,
                                  base_delay=0.01, **options)  # type: ignore[arg-type]
    settings = OmsSettings(kafka_bootstrap=bootstrap)
    broker = make_broker(settings)
    subscribe_batches(broker, [topic], group_id=group, on_batch=consumer.process,
                      session_timeout_ms=settings.kafka_session_timeout_ms)
    await broker.start()
    try:
        yield publisher
    finally:  # a group consumer's stop can wait on its coordinator for ever: bounded
        await stop_within("the test's consumer", broker.stop())
        await publisher.stop()


def message(topic: str, value: bytes, key: str, headers: dict[str, str] | None = None
            ) -> OutgoingRecord:
    return OutgoingRecord(topic=topic, key=key, value=value, headers=headers or {})


async def send_with_raw_header(bootstrap: str, topic: str, value: bytes, header: bytes) -> None:
    """A message whose header is not UTF-8 (other producers than ours can send that)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=b"O-h", headers=[("note", header)])
    finally:
        await producer.stop()


async def committed_offset(bootstrap: str, group: str, topic: str) -> int | None:
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await probe.start()
    try:
        return await probe.committed(TopicPartition(topic, 0))
    finally:
        await stop_within("the offsets probe", probe.stop())


async def test_effects_once_poison_to_dlq_partition_keeps_flowing(
    engine: AsyncEngine, fresh_kafka: str
) -> None:
    await create_tallies(engine)
    topic, group = unique_topic("oms.sub"), unique_topic("group")
    handler = TallyHandler()
    first = tally_event("O-1", "1.00").to_json()
    async with subscribed(fresh_kafka, engine, topic, group, handler) as publisher:
        await publisher.publish([
            message(topic, first, "O-1"),
            message(topic, first, "O-1"),  # a duplicate delivery
            message(topic, b"{not json at all", "O-x"),  # poison without a content type
            message(topic, b"\xff\xfe garbage", "O-y", {"content-type": "application/json"}),
            message(topic, tally_event("O-bad", "9.00", explode="bad ledger").to_json(), "O-bad"),
            message(topic, tally_event("O-2", "2.00").to_json(), "O-2"),
        ])

        async def first_batch_done() -> bool:
            return set(await tallies(engine)) == {"O-1", "O-2"}

        await wait_until(first_batch_done, JOIN_TIMEOUT)
        await send_with_raw_header(fresh_kafka, topic, tally_event("O-h", "4.00").to_json(), b"\xff\xfe")
        # later messages on the same (only) partition still flow after the poison
        await publisher.publish([message(topic, tally_event("O-3", "3.00").to_json(), "O-3"),
                                 message(topic, first, "O-1")])

        async def later_done() -> bool:
            return {"O-3", "O-h"} <= set(await tallies(engine))

        await wait_until(later_done, JOIN_TIMEOUT)
        letters = await read_topic(fresh_kafka, dlq(topic), 3)

        async def committed() -> bool:
            return await committed_offset(fresh_kafka, group, topic) == 9

        await wait_until(committed, JOIN_TIMEOUT)
    assert await tallies(engine) == {"O-1": ("1.00", 1), "O-2": ("2.00", 1), "O-3": ("3.00", 1),
                                     "O-h": ("4.00", 1)}
    assert [(m["offset"], m["key"]) for m in letters] == [(2, "O-x"), (3, "O-y"), (4, "O-bad")]
    assert "not an oms event envelope" in letters[0]["error"]
    assert letters[0]["original"] == "{not json at all"
    assert "bad ledger" in letters[2]["error"]
    assert len(await dead_letters(engine)) == 3


async def test_offsets_commit_only_after_the_transaction_so_a_failed_batch_returns(
    engine: AsyncEngine, fresh_kafka: str
) -> None:
    await create_tallies(engine)
    topic, group = unique_topic("oms.sub"), unique_topic("group")
    # Fails beyond max_attempts (2) once: process() raises, FastStream nacks and seeks back.
    handler = TallyHandler(transient_failures={"O-t": 3})
    async with subscribed(fresh_kafka, engine, topic, group, handler, max_attempts=2) as publisher:
        await publisher.publish([
            message(topic, tally_event("O-0", "1.00").to_json(), "O-0"),
            message(topic, tally_event("O-t", "5.00").to_json(), "O-t"),
            message(topic, tally_event("O-2", "2.00").to_json(), "O-2"),
        ])

        async def done() -> bool:
            return len(await tallies(engine)) == 3

        await wait_until(done, JOIN_TIMEOUT)

        async def committed() -> bool:
            return await committed_offset(fresh_kafka, group, topic) == 3

        await wait_until(committed, JOIN_TIMEOUT)
    assert handler.calls["O-t"] >= 4  # 3 failures (so the batch was delivered again) + 1 success
    assert handler.calls["O-0"] >= 2  # its first effect was rolled back with the failed batch
    assert await tallies(engine) == {"O-0": ("1.00", 1), "O-t": ("5.00", 1), "O-2": ("2.00", 1)}
    assert await dead_letters(engine) == []
