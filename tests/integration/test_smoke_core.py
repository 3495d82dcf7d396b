"""Smoke: append -> relay -> broker -> idempotent consumer, end to end on real servers."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from sqlalchemy import text

from shared.clock import SystemClock
from shared.contract.envelope import SYSTEM
from shared.contract.payloads import OrderConfirmed
from shared.eventstore import Meta, append, read_stream
from shared.kafka import Publisher
from shared.outbox import OutboxRelay
from tests.conftest import unique_topic


async def test_append_relay_consume(engine, kafka_bootstrap):
    topic = unique_topic()
    from shared.runtime.embedded import create_topics

    await create_topics(kafka_bootstrap, [topic], 3)
    async with engine.begin() as conn:
        await append(conn, "O-1", 0, [OrderConfirmed(order_id="O-1", total="10.00", currency="CNY")],
                     meta=Meta("c-1", SYSTEM), clock=SystemClock())
    async with engine.connect() as conn:
        stored = await read_stream(conn, "O-1")
    assert stored[0].envelope.payload["total"] == "10.00"
    publisher = Publisher(kafka_bootstrap, idempotent=False)
    await publisher.start()
    relay = OutboxRelay(engine, publisher, name="t", topic_for=lambda e: topic)
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0
    await publisher.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        batch = await asyncio.wait_for(consumer.getone(), 10)
    finally:
        await consumer.stop()
    assert batch.key == b"O-1"
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM events"))).scalar() == 1
