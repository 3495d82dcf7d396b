"""Bank statements over HTTP on a real database and broker: import, re-import, matches as events."""

from __future__ import annotations

from sqlalchemy import select

from services.reconcile.app import make_app
from shared.clock import ManualClock
from shared.eventstore import events as events_table
from shared.settings import OmsSettings
from tests.conftest import running, wait_until
from tests.integration.reconcile.bank_flows import invoiced_order, statement
from tests.integration.reconcile.test_service import publish, reconcile_events
from tests.unit.reconcile.samples import AT

FINANCE = {"X-API-Key": "demo-finance", "Content-Type": "text/csv"}
AUDITOR = {"X-API-Key": "demo-auditor"}


async def test_import_match_reimport_and_report(fresh_kafka, database_url):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False, relay_poll_seconds=0.1)
    app = make_app(settings=settings, clock=ManualClock(AT), database_url=database_url)
    paid_by_reference, first = invoiced_order("INV-2026-000101", "C-1")
    _, second = invoiced_order("INV-2026-000102", "C-2")
    _, third = invoiced_order("INV-2026-000103", "C-3")
    csv_file = statement("INV-2026-000101").encode("utf-8-sig")
    async with running(app) as client:
        await publish(fresh_kafka, [*first, *second, *third])

        async def invoices_known() -> bool:
            body = (await client.get("/bank/open-items", headers=AUDITOR)).json()
            return len(body["unpaid_invoices"]) == 3

        await wait_until(invoices_known)
        refused = await client.post("/bank/statements", content=csv_file,
                                    headers={**FINANCE, "X-API-Key": "demo-sales"})
        assert refused.status_code == 403
        response = await client.post("/bank/statements", content=csv_file, headers=FINANCE)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["imported"], body["matched"], body["unmatched"], body["refused"]) == (3, 1, 2, 1)
        assert body["errors"] == [{"line": 5, "column": "amount", "rule": "'abc' is not a decimal number"}]

        lines = {line["transaction_id"]: line
                 for line in (await client.get("/bank/lines", headers=AUDITOR)).json()["lines"]}
        assert (lines["T-1"]["status"], lines["T-1"]["rule"], lines["T-1"]["score"]) == (
            "matched", "reference", "1.00")
        assert lines["T-1"]["tolerance"] == "5.00" and lines["T-1"]["window_days"] == 7
        assert lines["T-1"]["allocations"] == [{"voucher_number": "INV-2026-000101",
                                                "order_id": paid_by_reference, "applied": "395.00"}]
        assert lines["T-2"]["status"] == "unmatched" and "ambiguous" in lines["T-2"]["reason"]
        assert lines["T-2"]["candidates"] == ["INV-2026-000102", "INV-2026-000103"]
        assert lines["T-3"]["status"] == "unmatched"

        again = (await client.post("/bank/statements", content=csv_file, headers=FINANCE)).json()
        assert (again["imported"], again["already_imported"], again["matched"]) == (0, 3, 0)
        changed = statement("INV-2026-000101").replace("50.00", "51.00").encode()
        conflict = (await client.post("/bank/statements", content=changed, headers=FINANCE)).json()
        assert conflict["imported"] == 0 and conflict["already_imported"] == 2
        assert [(e["line"], e["column"]) for e in conflict["errors"]] == [(4, "transaction_id"),
                                                                          (5, "amount")]
        assert "conflict" in conflict["errors"][0]["rule"]

        open_items = (await client.get("/bank/open-items", headers=AUDITOR)).json()
        assert [i["voucher_number"] for i in open_items["unpaid_invoices"]] == [
            "INV-2026-000102", "INV-2026-000103"]
        assert [line["transaction_id"] for line in open_items["unmatched_lines"]] == ["T-2", "T-3"]
        assert open_items["more"] == {"unmatched_lines": False, "flagged_lines": False,
                                      "unpaid_invoices": False}
        first = (await client.get("/bank/open-items", params={"limit": 1}, headers=AUDITOR)).json()
        assert [line["transaction_id"] for line in first["unmatched_lines"]] == ["T-2"]
        assert [i["voucher_number"] for i in first["unpaid_invoices"]] == ["INV-2026-000102"]
        assert first["more"] == {"unmatched_lines": True, "flagged_lines": False,
                                 "unpaid_invoices": True}

        async with app.state.ctx.engine.connect() as conn:
            stored = (await conn.execute(
                select(events_table.c.event_type, events_table.c.message_key, events_table.c.payload)
                .where(events_table.c.event_type.like("bank_line.%"))
                .order_by(events_table.c.position))).all()
        assert [(e, k) for e, k, _ in stored] == [("bank_line.matched", paid_by_reference),
                                                  ("bank_line.unmatched", "T-2"),
                                                  ("bank_line.unmatched", "T-3")]
        assert stored[0][2]["rule"] == "reference" and stored[0][2]["tolerance"] == "5.00"

        report = await client.get("/reports/customer", params={"format": "csv"}, headers=AUDITOR)
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/csv")
        assert report.text.splitlines() == [
            "customer,currency,orders,amount,invoiced,paid,matched,open_discrepancies",
            "C-1,CNY,1,395.00,395.00,0.00,395.00,0",
            "C-2,CNY,1,395.00,395.00,0.00,0.00,0",
            "C-3,CNY,1,395.00,395.00,0.00,0.00,0",
        ]
        page = await client.get("/reports/day", params={"format": "html", "from": "2026-11-21",
                                                        "to": "2026-11-21"}, headers=AUDITOR)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "<td>2026-11-21</td><td>CNY</td><td>3</td><td>1185.00</td>" in page.text
        empty = (await client.get("/reports/channel", params={"from": "2026-11-22"},
                                  headers=AUDITOR)).json()
        assert empty["rows"] == []
        assert (await client.get("/reports/planet", headers=AUDITOR)).status_code == 404
        published = await reconcile_events(fresh_kafka, 3)
    assert sorted(e["event_type"] for _, e in published) == [
        "bank_line.matched", "bank_line.unmatched", "bank_line.unmatched"]


async def test_money_that_arrived_before_its_invoice_is_matched_by_a_rematch(fresh_kafka, database_url):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False)
    app = make_app(settings=settings, clock=ManualClock(AT), database_url=database_url)
    order_id, events = invoiced_order("INV-2026-000301", "C-5")
    early = "transaction_id,booked_at,amount,currency,counterparty,memo\nT-9,2026-11-21,395.00,CNY,,\n"
    async with running(app) as client:
        first = (await client.post("/bank/statements", content=early.encode(), headers=FINANCE)).json()
        assert (first["imported"], first["unmatched"]) == (1, 1)
        await publish(fresh_kafka, events)

        async def invoice_known() -> bool:
            body = (await client.get("/bank/open-items", headers=AUDITOR)).json()
            return len(body["unpaid_invoices"]) == 1

        await wait_until(invoice_known)
        assert (await client.post("/bank/rematch", headers=AUDITOR)).status_code == 403
        again = (await client.post("/bank/rematch", headers=FINANCE)).json()
        assert (again["tried"], again["matched"]) == (1, 1)
        assert again["decisions"][0]["rule"] == "amount_in_window"
        assert (await client.post("/bank/rematch", headers=FINANCE)).json()["tried"] == 0
        [line] = (await client.get("/bank/lines", headers=AUDITOR)).json()["lines"]
        assert line["status"] == "matched" and line["allocations"][0]["order_id"] == order_id
        open_items = (await client.get("/bank/open-items", headers=AUDITOR)).json()
        assert open_items["unpaid_invoices"] == [] and open_items["unmatched_lines"] == []
        async with app.state.ctx.engine.connect() as conn:
            kinds = (await conn.execute(
                select(events_table.c.event_type, events_table.c.message_key)
                .where(events_table.c.stream_id == "bank-line:T-9")
                .order_by(events_table.c.stream_version))).all()
        assert [tuple(k) for k in kinds] == [("bank_line.unmatched", "T-9"),
                                             ("bank_line.matched", order_id)]
