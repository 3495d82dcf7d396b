"""The reconcile service end to end: events of four topics in through the real broker."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from services.reconcile.app import make_app
from shared.settings import OmsSettings
from tests.conftest import running, wait_until
from tests.unit.reconcile.samples import envelope, happy_flow, new_order_id, order_placed, topic_of

ADMIN = {"X-API-Key": "demo-admin"}


async def publish(bootstrap: str, events) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic_of(event), event.to_json(), key=event.order_id.encode())
    finally:
        await producer.stop()


async def test_fact_sheets_through_the_broker(fresh_kafka, database_url):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False)
    app = make_app(settings=settings, database_url=database_url)
    order_id, waiting = new_order_id(), new_order_id()
    events = happy_flow(order_id)
    async with running(app) as client:
        # notify's and billing's facts before the order's own, then a republish of everything
        await publish(fresh_kafka, [*reversed(events), envelope(order_placed(waiting))])
        await publish(fresh_kafka, events)

        async def settled() -> bool:
            summary = (await client.get("/summary", headers=ADMIN)).json()
            return summary["orders"] == 2 and summary["consistent"] == 1

        await wait_until(settled, timeout=30)
        found = (await client.get(f"/orders/{order_id}", headers=ADMIN)).json()
        assert (found["status"], found["reasons"]) == ("consistent", [])
        assert found["facts"]["invoices_count"] == 1
        assert found["facts"]["paid_total"] == "395.00"
        summary = (await client.get("/summary", headers=ADMIN)).json()
        assert summary["pending_orders"] == [
            {"order_id": waiting, "reasons": ["placed but not confirmed"]}
        ]
        assert (await client.get("/orders/O-UNKNOWN", headers=ADMIN)).status_code == 404
        assert (await client.get(f"/orders/{order_id}")).status_code == 401
