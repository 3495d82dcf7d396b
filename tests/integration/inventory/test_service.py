"""The inventory service as it runs: HTTP receipts, order.placed over the broker, stock.reserved out."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.inventory.app import make_app
from shared.contract.topics import INVENTORY_EVENTS, ORDER_EVENTS
from shared.settings import OmsSettings
from tests.conftest import running, wait_until
from tests.integration.inventory.conftest import placed

ADMIN = {"X-API-Key": "demo-admin"}
WAREHOUSE = {"X-API-Key": "demo-warehouse"}


async def test_receive_then_reserve_through_the_broker(fresh_kafka, database_url):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False)
    async with running(make_app(settings=settings, database_url=database_url)) as client:
        refused = await client.post("/stock/receipts", headers={"X-API-Key": "demo-sales"},
                                    json={"sku": "X-100", "warehouse": "WH-A", "quantity": 1})
        assert refused.status_code == 403
        for bad in ({"quantity": 0}, {"quantity": "2"}, {"quantity": 1.5}, {"quantity": 10**9},
                    {"sku": "  "}, {"warehouse": ""}):
            body = {"sku": "X-100", "warehouse": "WH-A", "quantity": 1} | bad
            response = await client.post("/stock/receipts", headers=WAREHOUSE, json=body)
            assert response.status_code == 422, (bad, response.text)
        assert (await client.get("/stock")).status_code == 401

        received = await client.post("/stock/receipts", headers=WAREHOUSE,
                                     json={"sku": " x-100 ", "warehouse": "WH-A", "quantity": 3,
                                           "reason": "purchase order PO-1"})
        assert received.status_code == 201, received.text
        assert received.json()["sku"] == "X-100"
        assert received.json()["on_hand"] == 3

        envelope = placed("O-00000000000000f6", [("X-100", 2)])
        producer = AIOKafkaProducer(bootstrap_servers=fresh_kafka)
        await producer.start()
        try:
            await producer.send_and_wait(ORDER_EVENTS, envelope.to_json(),
                                         key=b"O-00000000000000f6")
        finally:
            await producer.stop()

        seen: list[tuple[bytes | None, dict]] = []
        consumer = AIOKafkaConsumer(INVENTORY_EVENTS, bootstrap_servers=fresh_kafka,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            async def reserved_published() -> bool:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    seen.extend((r.key, json.loads(r.value)) for r in records)
                return any(m["event_type"] == "stock.reserved" for _, m in seen)

            await wait_until(reserved_published)
        finally:
            await consumer.stop()
        [(key, message)] = [(k, m) for k, m in seen if m["event_type"] == "stock.reserved"]
        assert key == b"O-00000000000000f6"
        assert message["causation_id"] == str(envelope.event_id)
        assert message["payload"]["lines"] == [{"sku": "X-100", "warehouse": "WH-A", "quantity": 2}]
        assert any(m["event_type"] == "stock.received" and k == b"X-100" for k, m in seen)

        reservation = await client.get("/reservations/O-00000000000000f6", headers=ADMIN)
        assert reservation.status_code == 200
        assert reservation.json()["status"] == "reserved"
        assert (await client.get("/reservations/O-0000000000000000", headers=ADMIN)
                ).status_code == 404
        sku = (await client.get("/stock/x-100", headers=ADMIN)).json()
        assert (sku["on_hand"], sku["reserved"], sku["available"]) == (3, 2, 1)
        ledger = (await client.get("/stock/X-100/ledger", headers=ADMIN)).json()
        assert [e["kind"] for e in ledger["entries"]] == ["reserved", "received"]
        assert (await client.get("/stock/NOPE-1", headers=ADMIN)).status_code == 404
        summary = (await client.get("/summary", headers=ADMIN)).json()
        assert summary == {"orders_reserved": 1, "units_reserved": 2, "orders_short": 0}

        moved = await client.put("/warehouses/WH-A/priority", headers=WAREHOUSE,
                                 json={"priority": 5})
        assert moved.status_code == 200
        assert (await client.get("/warehouses", headers=ADMIN)).json()[0]["priority"] == 5
