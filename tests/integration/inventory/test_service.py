"""The inventory service as it runs: HTTP in, order events over the broker, stock events out."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.inventory.app import make_app
from shared.contract.topics import INVENTORY_EVENTS, ORDER_EVENTS
from shared.settings import OmsSettings
from tests.conftest import running, wait_until
from tests.integration.inventory.conftest import cancelled, placed, shipped

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
        assert summary == {"orders_reserved": 1, "units_reserved": 2, "orders_short": 0,
                           "units_released": 0, "units_deducted": 0, "units_returned": 0,
                           "backorders_waiting": 0, "low_stock_skus": ["X-100"]}

        moved = await client.put("/warehouses/WH-A/priority", headers=WAREHOUSE,
                                 json={"priority": 5})
        assert moved.status_code == 200
        assert moved.json()["previous"] is not None and moved.json()["event_id"]
        assert (await client.get("/warehouses", headers=ADMIN)).json()[0]["priority"] == 5
        again = await client.put("/warehouses/WH-A/priority", headers=WAREHOUSE,
                                 json={"priority": 5})
        assert again.json() == {"code": "WH-A", "priority": 5, "previous": 5, "event_id": None}
        refused = await client.put("/warehouses/WH-A/priority", headers=WAREHOUSE,
                                   json={"priority": -1})
        assert refused.status_code == 422 and "priority" in refused.text


async def publish(bootstrap: str, envelopes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(ORDER_EVENTS, envelope.to_json(),
                                         key=envelope.stream_id.encode())
    finally:
        await producer.stop()


async def test_cancel_releases_and_ship_deducts_through_the_broker(fresh_kafka, database_url):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False)
    kept, gone = "O-00000000000000a7", "O-00000000000000b8"
    async with running(make_app(settings=settings, database_url=database_url)) as client:
        for body in ({"quantity": 0}, {"reason": "  "}, {"reason": None}, {"quantity": "1"}):
            bad = {"sku": "X-100", "warehouse": "WH-A", "quantity": 1, "reason": "count"} | body
            response = await client.post("/stock/adjustments", headers=WAREHOUSE, json=bad)
            assert response.status_code == 422, (body, response.text)
        assert (await client.post("/stock/adjustments", headers={"X-API-Key": "demo-sales"}, json={
            "sku": "X-100", "warehouse": "WH-A", "quantity": 1, "reason": "count"})).status_code == 403
        gained = await client.post("/stock/adjustments", headers=WAREHOUSE, json={
            "sku": "x-100", "warehouse": "WH-A", "quantity": 5, "reason": "stock count"})
        assert gained.status_code == 201, gained.text
        assert gained.json()["on_hand"] == 5

        await publish(fresh_kafka, [placed(kept, [("X-100", 2)]), placed(gone, [("X-100", 3)])])

        async def both_reserved() -> bool:
            summary = (await client.get("/summary", headers=ADMIN)).json()
            return summary["units_reserved"] == 5

        await wait_until(both_reserved)
        refused = await client.post("/stock/adjustments", headers=WAREHOUSE, json={
            "sku": "X-100", "warehouse": "WH-A", "quantity": -1, "reason": "broken"})
        assert refused.status_code == 409
        assert "5 are reserved" in refused.json()["detail"]

        await publish(fresh_kafka, [cancelled(gone),
                                    shipped(kept, "S-1", "WH-A", [("X-100", 2)], complete=True)])
        seen: list[tuple[bytes | None, dict]] = []
        consumer = AIOKafkaConsumer(INVENTORY_EVENTS, bootstrap_servers=fresh_kafka,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            async def released_and_deducted() -> bool:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    seen.extend((r.key, json.loads(r.value)) for r in records)
                types = {m["event_type"] for _, m in seen}
                return {"stock.adjusted", "stock.released", "stock.deducted"} <= types

            await wait_until(released_and_deducted)
        finally:
            await consumer.stop()
        [(key, adjusted)] = [(k, m) for k, m in seen if m["event_type"] == "stock.adjusted"]
        assert key == b"X-100"  # by the outbox, on the inventory topic, keyed by SKU like receipts
        assert adjusted["payload"] == {"sku": "X-100", "warehouse": "WH-A", "quantity": 5,
                                       "on_hand": 5, "reason": "stock count"}
        assert adjusted["actor"] == {"kind": "user", "id": "wang.warehouse", "role": "warehouse"}
        assert adjusted["event_id"] == gained.json()["adjustment_id"]
        [(key, released)] = [(k, m) for k, m in seen if m["event_type"] == "stock.released"]
        assert key == gone.encode()
        assert released["payload"] == {"order_id": gone, "reason": "cancelled", "lines": [
            {"sku": "X-100", "warehouse": "WH-A", "quantity": 3}]}
        [(key, deducted)] = [(k, m) for k, m in seen if m["event_type"] == "stock.deducted"]
        assert key == kept.encode()
        assert deducted["payload"] == {"order_id": kept, "shipment_id": "S-1", "lines": [
            {"sku": "X-100", "warehouse": "WH-A", "quantity": 2}]}

        summary = (await client.get("/summary", headers=ADMIN)).json()
        assert summary | {"low_stock_skus": None} == {
            "orders_reserved": 1, "units_reserved": 0, "orders_short": 0, "units_released": 3,
            "units_deducted": 2, "units_returned": 0, "backorders_waiting": 0,
            "low_stock_skus": None}
        sku = (await client.get("/stock/X-100", headers=ADMIN)).json()
        assert (sku["on_hand"], sku["reserved"], sku["available"]) == (3, 0, 3)
        assert (await client.get("/stock-ledger/check", headers=ADMIN)).json()["consistent"]
        assert (await client.get("/backorders", headers=ADMIN)).json() == []
        kinds = [e["kind"] for e in (await client.get("/stock/X-100/ledger", headers=ADMIN)
                                     ).json()["entries"]]
        assert sorted(kinds) == ["adjusted", "deducted", "released", "reserved", "reserved"]


async def test_stock_typed_as_people_spell_it_serves_the_order_waiting_for_it(fresh_kafka,
                                                                              database_url):
    """An order waits for X-200; the clerk receives "x 200": booked under X-200 (the catalog's
    SKU), so the waiting order is reserved, not a second product nobody orders."""
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False)
    async with running(make_app(settings=settings, database_url=database_url)) as client:
        order = "O-00000000000000a7"
        await publish(fresh_kafka, [placed(order, [("X-200", 2)])])

        async def waiting() -> bool:
            found = await client.get(f"/reservations/{order}", headers=ADMIN)
            return found.status_code == 200 and found.json()["status"] == "short"

        await wait_until(waiting)
        received = await client.post("/stock/receipts", headers=WAREHOUSE,
                                     json={"sku": "x 200", "warehouse": "WH-A", "quantity": 3})
        assert received.status_code == 201, received.text
        assert (received.json()["sku"], received.json()["sku_as_typed"]) == ("X-200", "X 200")

        async def reserved() -> bool:
            found = await client.get(f"/reservations/{order}", headers=ADMIN)
            return found.json()["status"] == "reserved"

        await wait_until(reserved)
        levels = (await client.get("/stock/x200", headers=ADMIN)).json()
        assert (levels["sku"], levels["on_hand"], levels["reserved"]) == ("X-200", 3, 2)
        assert [row["sku"] for row in (await client.get("/stock", headers=ADMIN)).json()] == [
            "X-200"]
        alias = await client.post("/stock/adjustments", headers=WAREHOUSE,
                                  json={"sku": "xm-x100", "warehouse": "WH-A", "quantity": 4,
                                        "reason": "found in a count"})
        assert alias.status_code == 201 and alias.json()["sku"] == "X-100", alias.text
        new = await client.post("/stock/receipts", headers=WAREHOUSE,
                                json={"sku": "zz-9", "warehouse": "WH-A", "quantity": 1})
        assert new.json()["sku"] == "ZZ-9" and "sku_as_typed" not in new.json()
        again = await client.post("/stock/receipts", headers=WAREHOUSE,
                                  json={"sku": "zz 9", "warehouse": "WH-A", "quantity": 1})
        assert (again.json()["sku"], again.json()["on_hand"]) == ("ZZ-9", 2)
        ledger = (await client.get("/stock/ZZ9/ledger", headers=ADMIN)).json()
        assert ledger["sku"] == "ZZ-9" and len(ledger["entries"]) == 2
