"""Billing's HTTP API on the running service: entering payments (roles, idempotency, refusals),
receivables aging on a manual clock, invoice detail, credit notes, refunds and the CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from services.billing.app import make_app
from shared.clock import ManualClock
from shared.settings import OmsSettings
from tests.conftest import running
from tests.integration.billing.conftest import (
    cancelled,
    captured,
    confirmed,
    consumer,
    deliver,
    events_of,
    placed,
)

FINANCE = {"X-API-Key": "demo-finance"}
WAREHOUSE = {"X-API-Key": "demo-warehouse"}
ON_TERMS = "O-00000000000000d1"
PREPAID = "O-00000000000000d2"
CANCELLED = "O-00000000000000d3"


async def test_payments_receivables_and_documents_over_http(fresh_kafka, database_url):
    clock = ManualClock(datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False)
    app = make_app(settings=settings, clock=clock, database_url=database_url)
    async with running(app) as client:
        engine = app.state.ctx.engine
        inbox = consumer(engine, clock)
        terms = {"method": "bank_transfer", "terms": "net_30"}
        await deliver(inbox, placed(ON_TERMS, payment=terms), confirmed(ON_TERMS),
                      placed(PREPAID), confirmed(PREPAID), placed(CANCELLED),
                      confirmed(CANCELLED), captured(CANCELLED, "P-C", "395.00"),
                      cancelled(CANCELLED))

        transfer = {"order_id": ON_TERMS, "payment_id": "BT-1", "method": "bank_transfer",
                    "amount": "100.00", "currency": "CNY"}
        assert (await client.post("/payments", json=transfer)).status_code == 401
        refused = await client.post("/payments", json=transfer, headers=WAREHOUSE)
        assert refused.status_code == 403 and "finance" in refused.json()["detail"]
        first = await client.post("/payments", json=transfer, headers=FINANCE)
        assert first.status_code == 201, first.text
        assert (first.json()["ledger_category"], first.json()["source"],
                first.json()["recorded_by"]) == ("bank_transfer", "finance", "fei.finance")
        again = await client.post("/payments", json=transfer, headers=FINANCE)
        assert (again.status_code, again.json()) == (200, first.json())
        other = await client.post("/payments", json=transfer | {"amount": "101.00"},
                                  headers=FINANCE)
        assert other.status_code == 409 and "amount" in other.json()["detail"]
        for bad, field in (({"amount": "-5.00"}, "amount"), ({"amount": "1.005"}, "amount"),
                           ({"amount": 1.5}, "amount"), ({"method": "paypal"}, "method"),
                           ({"currency": "XXX"}, "currency"), ({"currency": "USD"}, "currency"),
                           ({"received_at": "2026-11-21T10:00:00"}, "received_at"),
                           ({"payment_id": "bank:TX-1:INV-2026-000001"}, "payment_id")):
            answer = await client.post("/payments", headers=FINANCE,
                                       json=transfer | {"payment_id": "BT-X"} | bad)
            assert answer.status_code == 422, (bad, answer.text)
            assert any(field in d["loc"] for d in answer.json()["detail"]), answer.text
        unknown = await client.post("/payments", headers=FINANCE,
                                    json=transfer | {"order_id": "O-ffffffffffffffff", "payment_id": "BT-2"})
        assert unknown.status_code == 404
        *_, recorded = await events_of(engine, ON_TERMS)
        assert (recorded.event_type, recorded.actor.id, recorded.actor.role,
                recorded.payload["outstanding"]) == (
            "payment.recorded", "fei.finance", "finance", "295.00")

        [payment] = (await client.get("/payments", params={"method": "bank_transfer"},
                                      headers=WAREHOUSE)).json()
        assert payment["payment_id"] == "BT-1"
        detail = (await client.get("/invoices/inv-2026-000001", headers=WAREHOUSE)).json()
        assert (detail["order_id"], detail["status"], detail["due_date"], detail["outstanding"]
                ) == (ON_TERMS, "open", "2026-12-21", "295.00")
        assert detail["payments"] == [
            {"payment_id": "BT-1", "method": "bank_transfer", "amount": "100.00"}]

        clock.advance(timedelta(days=45))  # the prepaid invoice is 45 days late, the other 15
        aging = (await client.get("/receivables", headers=WAREHOUSE)).json()
        assert aging["as_of"] == "2027-01-05"
        assert [(i["order_id"], i["days_past_due"], i["bucket"]) for i in aging["invoices"]] == [
            (PREPAID, 45, "31-60"), (ON_TERMS, 15, "1-30")]
        assert aging["totals"]["CNY"] == {"current": "0.00", "1-30": "295.00",
                                          "31-60": "395.00", "61-90": "0.00", "90+": "0.00",
                                          "total": "690.00"}
        early = (await client.get("/receivables", params={"as_of": "2026-11-21"},
                                  headers=WAREHOUSE)).json()
        assert early["counts"] == {"current": 2, "1-30": 0, "31-60": 0, "61-90": 0, "90+": 0}

        [note] = (await client.get("/credit-notes", params={"order_id": CANCELLED},
                                   headers=WAREHOUSE)).json()
        assert (note["voucher_number"], note["reason"], note["total"]) == (
            "CN-2026-000001", "cancelled", "395.00")
        [refund] = (await client.get("/refunds", params={"order_id": CANCELLED},
                                     headers=WAREHOUSE)).json()
        assert (refund["amount"], refund["method"], refund["payment_id"]) == (
            "395.00", "alipay", "P-C")

        export = await client.get("/invoices/export.csv",
                                  params={"from": "2026-11-21", "to": "2026-11-21"},
                                  headers=WAREHOUSE)
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(export.text)))
        assert rows[0] == ["voucher", "order_id", "issued_at", "currency", "net", "tax", "total",
                           "paid", "status"]
        assert [(r[0], r[1], r[6], r[7], r[8]) for r in rows[1:]] == [
            ("INV-2026-000001", ON_TERMS, "395.00", "100.00", "open"),
            ("INV-2026-000002", PREPAID, "395.00", "0.00", "open"),
            ("INV-2026-000003", CANCELLED, "395.00", "0.00", "credited")]  # refunded
        none = await client.get("/invoices/export.csv",
                                params={"from": "2026-11-22", "to": "2026-11-30"},
                                headers=WAREHOUSE)
        assert none.text.strip().count("\n") == 0
        backwards = await client.get("/invoices/export.csv",
                                     params={"from": "2026-11-22", "to": "2026-11-01"},
                                     headers=WAREHOUSE)
        assert backwards.status_code == 422

        summary = (await client.get("/summary", headers=WAREHOUSE)).json()
        assert {k: summary[k] for k in ("invoices", "invoiced_total", "payments", "paid_total",
                                        "credit_notes", "refunds", "refunded_total",
                                        "outstanding_total")} == {
            "invoices": 3, "invoiced_total": "1185.00", "payments": 2, "paid_total": "495.00",
            "credit_notes": 1, "refunds": 1, "refunded_total": "395.00",
            "outstanding_total": "690.00"}
        assert summary["by_method"] == {"alipay": {"payments": 1, "amount": "395.00"},
                                        "bank_transfer": {"payments": 1, "amount": "100.00"}}
        assert set(summary["keys"]) <= set(summary) | {"keys"}
