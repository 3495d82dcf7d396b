"""Invariant 8: the broker is a transport. After losing every topic, a restart republishes."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.order.app import make_app
from shared.contract.topics import ORDER_EVENTS, STOREFRONT_ORDERS
from shared.demo.traffic import submission
from shared.runtime.embedded import EmbeddedKafka
from shared.settings import OmsSettings
from tests.conftest import running, wait_until

ADMIN = {"X-API-Key": "demo-admin"}


async def order_events_on(bootstrap: str, expected: int) -> list:
    consumer = AIOKafkaConsumer(ORDER_EVENTS, bootstrap_servers=bootstrap,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    seen: list = []
    try:
        async def enough() -> bool:
            batches = await consumer.getmany(timeout_ms=200)
            seen.extend(r for records in batches.values() for r in records)
            return len(seen) >= expected
        await wait_until(enough, timeout=30)
    finally:
        await consumer.stop()
    return seen


async def test_history_is_republished_to_a_fresh_broker_on_restart(database_url, tmp_path):
    first = EmbeddedKafka(log_file=tmp_path / "first.log")
    first.start()
    message = submission("pdd", 3, rng=random.Random(9),
                         submitted_at=datetime.now(UTC) - timedelta(minutes=1))
    try:
        settings = OmsSettings(kafka_bootstrap=first.bootstrap, kafka_idempotence=False,
                               relay_poll_seconds=0.2)
        async with running(make_app(settings=settings, database_url=database_url)) as client:
            producer = AIOKafkaProducer(bootstrap_servers=first.bootstrap)
            await producer.start()
            await producer.send_and_wait(STOREFRONT_ORDERS, json.dumps(message).encode(),
                                         key=f"pdd:{message['channel_order_id']}".encode())
            await producer.stop()

            async def placed() -> bool:
                return (await client.get("/summary", headers=ADMIN)).json()["orders"] == 1
            await wait_until(placed, timeout=40)
        (original,) = await order_events_on(first.bootstrap, 1)
    finally:
        first.stop()  # every topic, offset and message is gone with it

    second = EmbeddedKafka(log_file=tmp_path / "second.log")
    second.start()
    try:
        settings = OmsSettings(kafka_bootstrap=second.bootstrap, kafka_idempotence=False,
                               relay_poll_seconds=0.2, republish_on_start=True)
        async with running(make_app(settings=settings, database_url=database_url)):
            (again,) = await order_events_on(second.bootstrap, 1)
    finally:
        second.stop()
    assert again.key == original.key
    assert json.loads(again.value)["event_id"] == json.loads(original.value)["event_id"]
