"""The billing service as it runs: order events over the broker in, billing facts out."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.billing.app import make_app
from shared.clock import ManualClock
from shared.contract.topics import BILLING_EVENTS, ORDER_EVENTS
from shared.settings import OmsSettings
from tests.conftest import running, wait_until
from tests.integration.billing.conftest import cancelled, captured, confirmed, placed, shipped

ADMIN = {"X-API-Key": "demo-admin"}
ORDER = "O-00000000000000b7"


async def test_placed_confirmed_paid_through_the_broker(fresh_kafka, database_url):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False)
    clock = ManualClock(datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    app = make_app(settings=settings, clock=clock, database_url=database_url)
    async with running(app) as client:
        assert (await client.get("/invoices")).status_code == 401
        producer = AIOKafkaProducer(bootstrap_servers=fresh_kafka)
        await producer.start()
        try:
            for env in (placed(ORDER), confirmed(ORDER), captured(ORDER, "P-77", "395.00")):
                await producer.send_and_wait(ORDER_EVENTS, env.to_json(), key=ORDER.encode())
        finally:
            await producer.stop()

        seen: list[tuple[bytes | None, dict]] = []
        consumer = AIOKafkaConsumer(BILLING_EVENTS, bootstrap_servers=fresh_kafka,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            async def payment_published() -> bool:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    seen.extend((r.key, json.loads(r.value)) for r in records)
                return any(m["event_type"] == "payment.recorded" for _, m in seen)

            await wait_until(payment_published)
        finally:
            await consumer.stop()
        assert [m["event_type"] for _, m in seen] == ["invoice.issued", "payment.recorded"]
        assert {key for key, _ in seen} == {ORDER.encode()}
        invoice_event, payment_event = (m["payload"] for _, m in seen)
        assert invoice_event["voucher_number"] == "INV-2026-000001"
        assert invoice_event["settled"] is False
        assert payment_event["voucher_number"] == "INV-2026-000001"
        assert (payment_event["paid_total"], payment_event["outstanding"],
                payment_event["settled"]) == ("395.00", "0.00", True)

        [invoice] = (await client.get("/invoices", params={"order_id": ORDER},
                                      headers=ADMIN)).json()
        assert invoice["voucher_number"] == "INV-2026-000001"
        assert invoice["settled"] is True
        by_voucher = await client.get("/invoices/inv-2026-000001", headers=ADMIN)
        assert by_voucher.status_code == 200
        assert by_voucher.json()["total"] == "395.00"
        assert (await client.get("/invoices/INV-2026-999999", headers=ADMIN)).status_code == 404
        [payment] = (await client.get("/payments", params={"order_id": ORDER},
                                      headers=ADMIN)).json()
        assert (payment["payment_id"], payment["ledger_category"]) == ("P-77", "online_wallet")
        summary = (await client.get("/summary", headers=ADMIN)).json()
        assert {k: summary[k] for k in ("invoices", "invoiced_total", "payments", "paid_total",
                                        "settled_invoices")} == {
            "invoices": 1, "invoiced_total": "395.00", "payments": 1, "paid_total": "395.00",
            "settled_invoices": 1}


async def _publish(bootstrap: str, envelopes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for env in envelopes:
            await producer.send_and_wait(ORDER_EVENTS, env.to_json(), key=env.stream_id.encode())
    finally:
        await producer.stop()


async def test_cancel_of_a_paid_order_and_a_shipment_through_the_broker(fresh_kafka, database_url):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False)
    clock = ManualClock(datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    app = make_app(settings=settings, clock=clock, database_url=database_url)
    gone, sent = "O-00000000000000e1", "O-00000000000000e2"
    async with running(app):
        await _publish(fresh_kafka, [
            placed(gone), confirmed(gone), captured(gone, "P-E1", "395.00", method="card"),
            cancelled(gone),
            placed(sent), confirmed(sent), captured(sent, "P-E2", "395.00"),
            shipped(sent, "S-E2", (1, "X-100", 2), (2, "GIFT-MUG", 1))])
        seen: list[tuple[bytes | None, dict]] = []
        consumer = AIOKafkaConsumer(BILLING_EVENTS, bootstrap_servers=fresh_kafka,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            async def all_published() -> bool:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    seen.extend((r.key, json.loads(r.value)) for r in records)
                types = {m["event_type"] for _, m in seen}
                return {"refund.issued", "revenue.recognized"} <= types

            await wait_until(all_published)
        finally:
            await consumer.stop()
    by_order: dict[bytes | None, list[dict]] = {}
    for key, message in seen:
        by_order.setdefault(key, []).append(message)
    assert [m["event_type"] for m in by_order[gone.encode()]] == [
        "invoice.issued", "payment.recorded", "credit_note.issued", "refund.issued"]
    note, refund = (m["payload"] for m in by_order[gone.encode()][2:])
    assert (note["reason"], note["total"], note["voucher_number"]) == (
        "cancelled", "395.00", "CN-2026-000001")
    assert (refund["amount"], refund["method"], refund["credit_note_voucher_number"]) == (
        "395.00", "card", "CN-2026-000001")
    assert [m["event_type"] for m in by_order[sent.encode()]] == [
        "invoice.issued", "payment.recorded", "revenue.recognized"]
    revenue = by_order[sent.encode()][2]["payload"]
    assert (revenue["shipment_id"], revenue["net"], revenue["tax"], revenue["gross"]) == (
        "S-E2", "350.94", "44.06", "395.00")
