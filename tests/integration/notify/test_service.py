"""The notify service end to end: events in through the real broker, inbox and log out."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.notify.app import make_app
from shared.contract.topics import NOTIFY_EVENTS
from shared.settings import OmsSettings
from tests.conftest import running, wait_until
from tests.unit.reconcile.samples import (
    envelope,
    new_order_id,
    order_confirmed,
    order_paid,
    order_placed,
    stock_shortage,
    topic_of,
)

ADMIN = {"X-API-Key": "demo-admin"}


async def publish(bootstrap: str, events) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic_of(event), event.to_json(), key=event.order_id.encode())
    finally:
        await producer.stop()


async def test_notifications_through_the_broker(fresh_kafka, database_url):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False, relay_poll_seconds=0.2)
    app = make_app(settings=settings, database_url=database_url)
    paid_order, short_order = new_order_id(), new_order_id()
    confirmed = envelope(order_confirmed(paid_order), version=2)
    events = [
        envelope(order_placed(paid_order)), confirmed, envelope(order_paid(paid_order), version=3),
        envelope(order_placed(short_order)), envelope(stock_shortage(short_order)),
    ]
    async with running(app) as client:
        await publish(fresh_kafka, events)
        await publish(fresh_kafka, events[1:3])  # a republish: nothing is sent twice

        async def notified() -> bool:
            found = await client.get("/summary", headers=ADMIN)
            return found.json()["notifications_sent"] >= 3

        await wait_until(notified, timeout=30)
        listed = (await client.get("/notifications", params={"order_id": paid_order},
                                   headers=ADMIN)).json()["notifications"]
        assert [(n["source_event_type"], n["recipient"]) for n in listed] == [
            ("order.confirmed", "customer:C-1001"), ("order.paid", "customer:C-1001"),
        ]
        inbox = (await client.get("/inbox/customer:C-1001", headers=ADMIN)).json()["notifications"]
        assert {n["order_id"] for n in inbox} == {paid_order}
        warehouse = (await client.get("/inbox/role:warehouse", headers=ADMIN)).json()["notifications"]
        assert [n["order_id"] for n in warehouse] == [short_order]
        assert "王芳" not in warehouse[0]["body"]

        sent = await read_log(fresh_kafka, expected=3)
        assert sorted(e["payload"]["source_event_type"] for e in sent) == [
            "order.confirmed", "order.paid", "stock.shortage"]
        by_source = {e["payload"]["source_event_id"]: e for e in sent}
        assert by_source[str(confirmed.event_id)]["causation_id"] == str(confirmed.event_id)

        summary = (await client.get("/summary", headers=ADMIN)).json()
        assert summary["notifications_sent"] == 3
        assert summary["orders_notified"] == 2

        assert (await client.get("/summary")).status_code == 401
        assert (await client.get("/inbox/someone", headers=ADMIN)).status_code == 422
        assert (await client.get("/inbox/role:janitor", headers=ADMIN)).status_code == 422
        assert (await client.get("/notifications", headers=ADMIN)).status_code == 422


async def read_log(bootstrap: str, expected: int) -> list[dict]:
    """The ``notification.sent`` events on the notify topic, keyed by order id."""
    consumer = AIOKafkaConsumer(NOTIFY_EVENTS, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    seen: list[dict] = []
    try:
        async def all_there() -> bool:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    event = json.loads(record.value)
                    assert record.key.decode() == event["payload"]["order_id"]
                    if event["event_type"] == "notification.sent":
                        seen.append(event)
            return len(seen) >= expected

        await wait_until(all_there, timeout=30)
    finally:
        await consumer.stop()
    return seen
