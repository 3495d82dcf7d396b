"""Billing over the whole order lifecycle on real PostgreSQL, through the inbox: presale, amendment,
shipment, cancellation, return; every fact delivered again (same and new event id) has no effect."""

from __future__ import annotations

from datetime import date

from services.billing import queries
from tests.integration.billing.conftest import (
    amended,
    cancelled,
    captured,
    confirmed,
    consumer,
    deliver,
    deliver_thrice,
    events_of,
    placed,
    presale_placed,
    returned,
    shipped,
)

ORDER = "O-00000000000000c1"


def kinds(events):
    return [e.event_type for e in events]


async def test_presale_deposit_and_balance_invoices_are_paid_oldest_first(billing_engine):
    inbox = consumer(billing_engine)
    await deliver_thrice(inbox, presale_placed(ORDER))
    await deliver_thrice(inbox, confirmed(ORDER, "598.00"))
    await deliver_thrice(inbox, captured(ORDER, "P-DEP", "100.00", kind="deposit"))
    deposit, balance, on_deposit = await events_of(billing_engine, ORDER)
    assert [(e.payload["voucher_number"], e.payload["total"]) for e in (deposit, balance)] == [
        ("INV-2026-000001", "100.00"), ("INV-2026-000002", "498.00")]
    assert not deposit.payload["settled"] and not balance.payload["settled"]
    assert (on_deposit.payload["voucher_number"], on_deposit.payload["settled"]) == (
        "INV-2026-000001", False)
    await deliver_thrice(inbox, captured(ORDER, "P-BAL", "498.00", kind="balance"))
    *_, on_balance = await events_of(billing_engine, ORDER)
    assert (on_balance.payload["voucher_number"], on_balance.payload["paid_total"],
            on_balance.payload["settled"]) == ("INV-2026-000002", "598.00", True)
    async with billing_engine.connect() as conn:
        found = await queries.find_invoices(conn, ORDER, 10)
        detail = await queries.invoice_detail(conn, "INV-2026-000001")
        summary = await queries.summary(conn)
    assert {k: summary[k] for k in ("invoices", "settled_invoices", "orders_invoiced",
                                    "orders_settled", "invoiced_total", "owed_total")} == {
        "invoices": 2, "settled_invoices": 2, "orders_invoiced": 1, "orders_settled": 1,
        "invoiced_total": "598.00", "owed_total": "598.00"}
    assert [(i["kind"], i["status"], i["paid_total"]) for i in found] == [
        ("balance", "paid", "498.00"), ("deposit", "paid", "100.00")]
    assert detail["payments"] == [{"payment_id": "P-DEP", "method": "alipay", "amount": "100.00"}]


async def test_an_amendment_voids_the_invoice_and_reissues_with_payments_carried_over(
        billing_engine):
    inbox = consumer(billing_engine)
    await deliver(inbox, placed(ORDER), confirmed(ORDER), captured(ORDER, "P-1", "395.00"))
    await deliver_thrice(inbox, amended(ORDER, "A-1", 1))
    *_, voided, reissued = await events_of(billing_engine, ORDER)
    assert (voided.event_type, voided.payload["voucher_number"], voided.payload["reason"]) == (
        "invoice.voided", "INV-2026-000001", "amended")
    assert (reissued.event_type, reissued.payload["voucher_number"], reissued.payload["total"],
            reissued.payload["settled"]) == ("invoice.issued", "INV-2026-000002", "196.00", True)
    async with billing_engine.connect() as conn:
        summary = await queries.summary(conn)
        found = await queries.find_invoices(conn, ORDER, 10)
    assert [(i["voucher_number"], i["status"]) for i in found] == [
        ("INV-2026-000002", "paid"), ("INV-2026-000001", "voided")]
    assert {k: summary[k] for k in ("invoices", "invoiced_total", "voided_invoices",
                                    "customer_credit", "paid_total")} == {
        "invoices": 1, "invoiced_total": "196.00", "voided_invoices": 1,
        "customer_credit": "199.00", "paid_total": "395.00"}


async def test_shipments_recognise_revenue_once_each_adding_up_to_the_invoice(billing_engine):
    inbox = consumer(billing_engine)
    await deliver(inbox, placed(ORDER), confirmed(ORDER), captured(ORDER, "P-1", "395.00"))
    await deliver_thrice(inbox, shipped(ORDER, "S-1", (1, "X-100", 1)))
    await deliver_thrice(inbox, shipped(ORDER, "S-2", (1, "X-100", 1), (2, "GIFT-MUG", 1)))
    revenue = [e for e in await events_of(billing_engine, ORDER)
               if e.event_type == "revenue.recognized"]
    assert [(e.payload["shipment_id"], e.payload["net"], e.payload["tax"]) for e in revenue] == [
        ("S-1", "181.47", "22.03"), ("S-2", "169.47", "22.03")]
    assert all(e.stream_id == ORDER and e.payload["voucher_number"] == "INV-2026-000001"
               for e in revenue)
    async with billing_engine.connect() as conn:
        summary = await queries.summary(conn)
    assert summary["revenue_recognized"] == "350.94"


async def test_cancelling_voids_unpaid_and_credits_and_refunds_paid_orders(billing_engine):
    inbox = consumer(billing_engine)
    unpaid, paid, early = "O-00000000000000c2", "O-00000000000000c3", "O-00000000000000c4"
    await deliver(inbox, placed(unpaid), confirmed(unpaid), placed(paid), confirmed(paid),
                  captured(paid, "P-1", "200.00", method="card"), placed(early),
                  captured(early, "P-2", "395.00"))
    for order_id in (unpaid, paid, early):
        await deliver_thrice(inbox, cancelled(order_id))
    assert kinds(await events_of(billing_engine, unpaid)) == ["invoice.issued", "invoice.voided"]
    *_, note, refund = await events_of(billing_engine, paid)
    assert (note.event_type, note.payload["reason"], note.payload["total"],
            note.payload["voucher_number"]) == (
        "credit_note.issued", "cancelled", "395.00", "CN-2026-000001")
    assert (refund.event_type, refund.payload["amount"], refund.payload["method"],
            refund.payload["credit_note_voucher_number"]) == (
        "refund.issued", "200.00", "card", "CN-2026-000001")
    assert kinds(await events_of(billing_engine, early)) == ["payment.recorded", "refund.issued"]
    async with billing_engine.connect() as conn:
        summary = await queries.summary(conn)
        refunds = await queries.find_refunds(conn, None, 10)
    assert {k: summary[k] for k in ("invoices", "invoiced_total", "voided_invoices",
                                    "credit_notes", "credited_total", "refunds",
                                    "refunded_total", "net_paid_total", "owed_total",
                                    "orders_settled")} == {
        "invoices": 1, "invoiced_total": "395.00", "voided_invoices": 1, "credit_notes": 1,
        "credited_total": "395.00", "refunds": 2, "refunded_total": "595.00",
        "net_paid_total": "0.00", "owed_total": "0.00", "orders_settled": 0}
    assert sorted(r["order_id"] for r in refunds) == [paid, early]


async def test_a_return_credits_the_units_reverses_revenue_and_refunds(billing_engine):
    inbox = consumer(billing_engine)
    await deliver(inbox, placed(ORDER), confirmed(ORDER), captured(ORDER, "P-1", "395.00"),
                  shipped(ORDER, "S-1", (1, "X-100", 2), (2, "GIFT-MUG", 1)))
    await deliver_thrice(inbox, returned(ORDER, "R-1", ("X-100", 1)))
    *_, note, refund = await events_of(billing_engine, ORDER)
    assert (note.payload["reason"], note.payload["total"], note.payload["revenue_reversed"],
            note.payload["invoice_voucher_number"]) == (
        "returned", "191.50", "169.47", "INV-2026-000001")
    assert (refund.payload["amount"], refund.payload["method"]) == ("191.50", "alipay")
    async with billing_engine.connect() as conn:
        [listed] = await queries.find_credit_notes(conn, ORDER, 10)
        summary = await queries.summary(conn)
    assert (listed["voucher_number"], listed["request_id"]) == ("CN-2026-000001", "R-1")
    assert [(x["sku"], x["quantity"], x["net"]) for x in listed["lines"]] == [
        ("X-100", 1, "169.47")]
    assert (summary["revenue_recognized"], summary["revenue_reversed"]) == ("350.94", "169.47")


async def test_invoices_on_credit_terms_are_receivables_due_in_thirty_days(billing_engine):
    inbox = consumer(billing_engine)
    await deliver(inbox, placed(ORDER, payment={"method": "credit_terms", "terms": "net_30"}),
                  confirmed(ORDER), captured(ORDER, "P-1", "95.00", method="credit_terms"))
    async with billing_engine.connect() as conn:
        [invoice] = await queries.find_invoices(conn, ORDER, 10)
        on_time = await queries.receivables(conn, date(2026, 12, 21))
        late = await queries.receivables(conn, date(2027, 1, 25))
    assert (invoice["due_date"], invoice["status"], invoice["outstanding"]) == (
        "2026-12-21", "open", "300.00")
    assert on_time["invoices"][0]["bucket"] == "current"
    assert late["invoices"][0]["bucket"] == "31-60"
    assert late["totals"] == {"CNY": {"current": "0.00", "1-30": "0.00", "31-60": "300.00",
                                      "61-90": "0.00", "90+": "0.00", "total": "300.00"}}
