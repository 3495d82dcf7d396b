"""The notify service end to end: events in through the real broker; inbox, real SMTP email
(sent by the background sender) and the notification log out."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.notify.app import make_app
from services.notify.config import NotifyConfig
from shared.contract.payloads import DiscrepancyDetected
from shared.contract.topics import NOTIFY_EVENTS, RECONCILE_EVENTS
from shared.settings import OmsSettings
from tests.conftest import running, wait_until
from tests.unit.reconcile.samples import (
    AT,
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
            topic = RECONCILE_EVENTS if event.event_type.startswith("discrepancy.") else topic_of(event)
            await producer.send_and_wait(topic, event.to_json(), key=event.order_id.encode())
    finally:
        await producer.stop()


async def test_notifications_through_the_broker(fresh_kafka, database_url, smtp_server):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False, relay_poll_seconds=0.2)
    notify = NotifyConfig(smtp_host=smtp_server.host, smtp_port=smtp_server.port,
                          notify_send_poll_seconds=0.2)  # the shipped example rules
    app = make_app(settings=settings, database_url=database_url, notify=notify)
    paid_order, short_order = new_order_id(), new_order_id()
    confirmed = envelope(order_confirmed(paid_order), version=2)
    events = [
        envelope(order_placed(paid_order)), confirmed, envelope(order_paid(paid_order), version=3),
        envelope(order_placed(short_order)), envelope(stock_shortage(short_order)),
        envelope(DiscrepancyDetected(order_id=paid_order, kind="confirmed_no_invoice",
                                     expected="1 invoice", actual="none", since=AT)),
    ]
    async with running(app) as client:
        await publish(fresh_kafka, events)
        await publish(fresh_kafka, events[1:3])  # a republish: nothing is sent twice

        async def notified() -> bool:
            found = await client.get("/summary", headers=ADMIN)
            return found.json()["notifications_sent"] >= 7

        await wait_until(notified, timeout=30)
        listed = (await client.get("/notifications", params={"order_id": paid_order, "channel": "email"},
                                   headers=ADMIN)).json()["notifications"]
        assert [(n["source_event_type"], n["recipient"], n["status"]) for n in listed] == [
            ("order.confirmed", "customer:C-1001", "sent"), ("order.paid", "customer:C-1001", "sent"),
        ]
        assert sorted(m["Subject"] for m in smtp_server.mailbox.mails) == [
            f"Payment received for order TM-{paid_order[-6:]}",
            f"Your order TM-{paid_order[-6:]} is confirmed"]
        assert smtp_server.mailbox.recipients == [["wf@example.com"]] * 2
        inbox = (await client.get("/inbox/customer:C-1001", headers=ADMIN)).json()["notifications"]
        assert {n["order_id"] for n in inbox} == {paid_order} and len(inbox) == 2
        warehouse = (await client.get("/inbox/role:warehouse", headers=ADMIN)).json()["notifications"]
        assert [n["order_id"] for n in warehouse] == [short_order]  # wecom not set up: inbox
        assert "王芳" not in warehouse[0]["body"]
        auditor = (await client.get("/inbox/role:auditor", headers=ADMIN)).json()["notifications"]
        assert [n["subject"] for n in auditor] == ["Discrepancy confirmed_no_invoice on order " + paid_order]
        deliveries = (await client.get("/deliveries", params={"status": "sent"},
                                       headers=ADMIN)).json()["deliveries"]
        assert len(deliveries) == 7

        sent = await read_log(fresh_kafka, expected=7)
        assert sorted((e["payload"]["source_event_type"], e["payload"]["channel"]) for e in sent) == [
            ("discrepancy.detected", "inbox"), ("discrepancy.detected", "inbox"),
            ("order.confirmed", "email"), ("order.confirmed", "inbox"),
            ("order.paid", "email"), ("order.paid", "inbox"), ("stock.shortage", "inbox")]
        by_source = {(e["payload"]["source_event_id"], e["payload"]["channel"]): e for e in sent}
        assert by_source[(str(confirmed.event_id), "email")]["causation_id"] == str(confirmed.event_id)

        summary = (await client.get("/summary", headers=ADMIN)).json()
        assert summary == {
            "notifications_sent": 7, "orders_notified": 2,
            "by_event_type": {"discrepancy.detected": 2, "order.confirmed": 2, "order.paid": 2,
                              "stock.shortage": 1},
            "by_channel": {"email": 2, "inbox": 5}, "by_audience": {"customer": 4, "staff": 3},
            "failed": 0, "pending": 0}

        assert (await client.get("/summary")).status_code == 401
        assert (await client.get("/inbox/someone", headers=ADMIN)).status_code == 422
        assert (await client.get("/inbox/role:janitor", headers=ADMIN)).status_code == 422
        assert (await client.get("/notifications", params={"status": "lost"},
                                 headers=ADMIN)).status_code == 422
        assert (await client.get("/notifications", params={"channel": "sms"},
                                 headers=ADMIN)).status_code == 422
        assert (await client.get("/deliveries", params={"status": "x"}, headers=ADMIN)).status_code == 422


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
