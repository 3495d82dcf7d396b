"""The order service as a running app: storefront messages in through the broker, events out."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.order.app import make_app
from shared.contract.topics import ORDER_EVENTS, ORDER_REJECTIONS, STOREFRONT_ORDERS
from shared.demo.traffic import submission
from shared.settings import OmsSettings
from tests.conftest import running, wait_until

ADMIN = {"X-API-Key": "demo-admin"}


async def test_submission_through_broker_becomes_placed_and_rejections_are_published(
        database_url, fresh_kafka):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False, relay_poll_seconds=0.2)
    app = make_app(settings=settings, database_url=database_url)
    now = datetime.now(UTC)
    message = submission("jd", 1, rng=random.Random(5), submitted_at=now - timedelta(minutes=1))
    async with running(app) as client:
        producer = AIOKafkaProducer(bootstrap_servers=fresh_kafka)
        await producer.start()
        key = f"jd:{message['channel_order_id']}".encode()
        await producer.send_and_wait(STOREFRONT_ORDERS, json.dumps(message).encode(), key=key)
        await producer.send_and_wait(STOREFRONT_ORDERS, json.dumps(message).encode(), key=key)
        await producer.send_and_wait(STOREFRONT_ORDERS, b"garbage", key=b"web:1")
        await producer.stop()

        async def placed() -> bool:
            response = await client.get(f"/orders/by-channel/jd/{message['channel_order_id']}",
                                        headers=ADMIN)
            return response.status_code == 200
        await wait_until(placed, timeout=40)
        response = await client.get(f"/orders/by-channel/jd/{message['channel_order_id']}", headers=ADMIN)
        body = response.json()
        order_id = body["order"]["order_id"]
        assert [e["event_type"] for e in body["events"]] == ["order.placed"]
        assert (await client.get(f"/orders/{order_id}")).status_code == 401

        consumer = AIOKafkaConsumer(ORDER_EVENTS, ORDER_REJECTIONS, bootstrap_servers=fresh_kafka,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        seen: list = []
        try:
            async def both_published() -> bool:
                batches = await consumer.getmany(timeout_ms=200)
                seen.extend(r for records in batches.values() for r in records)
                return len(seen) >= 2
            await wait_until(both_published, timeout=20)
        finally:
            await consumer.stop()
        placed_record = next(r for r in seen if r.topic == ORDER_EVENTS)
        assert placed_record.key == order_id.encode()
        assert json.loads(placed_record.value)["event_type"] == "order.placed"
        rejection = next(r for r in seen if r.topic == ORDER_REJECTIONS)
        assert json.loads(rejection.value)["payload"]["reasons"][0]["code"] == "invalid_json"
        summary = (await client.get("/summary", headers=ADMIN)).json()
        assert summary["orders"] == 1 and summary["by_status"] == {"placed": 1}
        assert summary["amount_total"] == summary["amount_active"] == body["order"]["total"]
        assert summary["rejections"] == 1 and summary["flagged"] == 0 and summary["paid_orders"] == 0
        assert summary["events"] == {"order.placed": 1, "submission.rejected": 1}
        health = await client.get("/health")
        assert health.status_code == 200
    await asyncio.sleep(0)
