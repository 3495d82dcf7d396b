"""The billing service as it runs: order events over the broker in, invoice and payment out."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.billing.app import make_app
from shared.clock import ManualClock
from shared.contract.topics import BILLING_EVENTS, ORDER_EVENTS
from shared.settings import OmsSettings
from tests.conftest import running, wait_until
from tests.integration.billing.conftest import captured, confirmed, placed

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
