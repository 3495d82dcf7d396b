"""Billing against real PostgreSQL: invoices once per order, gapless vouchers, payments once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import text

from services.billing import queries
from shared.clock import ManualClock
from tests.integration.billing.conftest import (
    bank_matched,
    captured,
    confirmed,
    consumer,
    deliver,
    events_of,
    placed,
)

ORDER = "O-00000000000000a1"


async def test_confirmed_order_gets_one_invoice_with_tax_split(billing_engine):
    inbox = consumer(billing_engine)
    confirmation = confirmed(ORDER)
    await deliver(inbox, placed(ORDER), confirmation)
    await deliver(inbox, confirmation)  # redelivered: the inbox drops it
    await deliver(inbox, confirmed(ORDER))  # confirmed again under a new event id

    [issued] = await events_of(billing_engine, ORDER)
    assert issued.event_type == "invoice.issued"
    assert issued.causation_id == str(confirmation.event_id)
    assert issued.correlation_id == confirmation.correlation_id
    payload = issued.payload
    assert payload["voucher_number"] == "INV-2026-000001"
    assert (payload["total"], payload["net_total"], payload["tax_total"]) == (
        "395.00", "350.94", "44.06")
    assert (payload["paid_total"], payload["outstanding"], payload["settled"]) == (
        "0.00", "395.00", False)
    assert [line["kind"] for line in payload["lines"]] == [
        "goods", "goods", "discount", "discount", "shipping"]
    async with billing_engine.connect() as conn:
        [invoice] = await queries.find_invoices(conn, ORDER, 10)
        stored = (await conn.execute(text("SELECT message_key FROM events"))).scalar()
    assert stored == ORDER
    assert invoice["voucher_number"] == "INV-2026-000001"
    assert invoice["total"] == "395.00"
    assert [line["gross"] for line in invoice["lines"]] == [
        "398.00", "0.00", "-10.00", "-5.00", "12.00"]


async def test_payments_before_and_after_the_invoice(billing_engine):
    inbox = consumer(billing_engine)
    first = captured(ORDER, "P-1", "200.00")
    await deliver(inbox, placed(ORDER), first)
    await deliver(inbox, captured(ORDER, "P-1", "200.00"))  # same payment id, new event id
    await deliver(inbox, captured(ORDER, "P-2", "195.00", method="card"), confirmed(ORDER))

    recorded_1, recorded_2, issued = await events_of(billing_engine, ORDER)
    assert recorded_1.event_type == recorded_2.event_type == "payment.recorded"
    assert recorded_1.causation_id == str(first.event_id)
    assert recorded_1.payload == {
        "order_id": ORDER, "payment_id": "P-1", "method": "alipay",
        "ledger_category": "online_wallet", "amount": "200.00", "currency": "CNY",
        "paid_total": "200.00", "settled": False}  # outstanding / voucher absent: not invoiced
    assert recorded_2.payload["ledger_category"] == "card"
    assert recorded_2.payload["paid_total"] == "395.00"
    assert issued.event_type == "invoice.issued"
    assert (issued.payload["paid_total"], issued.payload["outstanding"],
            issued.payload["settled"]) == ("395.00", "0.00", True)

    await deliver(inbox, captured(ORDER, "P-3", "5.50"))  # paid twice over a little
    *_, surplus = await events_of(billing_engine, ORDER)
    assert surplus.payload["voucher_number"] == "INV-2026-000001"
    assert (surplus.payload["paid_total"], surplus.payload["outstanding"],
            surplus.payload["settled"]) == ("400.50", "0.00", True)
    async with billing_engine.connect() as conn:
        summary = await queries.summary(conn)
        payments = await queries.find_payments(conn, ORDER, None, 10)
    assert len(payments) == 3
    assert {k: summary[k] for k in ("invoices", "invoiced_total", "payments", "paid_total",
                                    "settled_invoices", "customer_credit")} == {
        "invoices": 1, "invoiced_total": "395.00", "payments": 3, "paid_total": "400.50",
        "settled_invoices": 1, "customer_credit": "5.50"}


async def test_a_confirmation_before_the_order_facts_waits_for_them(billing_engine):
    inbox = consumer(billing_engine)
    await deliver(inbox, confirmed(ORDER))
    assert await events_of(billing_engine, ORDER) == []
    facts = placed(ORDER)
    await deliver(inbox, facts)
    [issued] = await events_of(billing_engine, ORDER)
    assert issued.event_type == "invoice.issued"
    assert issued.causation_id == str(facts.event_id)


async def test_voucher_numbers_restart_each_year_from_the_clock(billing_engine):
    clock = ManualClock(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    inbox = consumer(billing_engine, clock)
    await deliver(inbox, placed("O-0000000000000001"), confirmed("O-0000000000000001"),
                  placed("O-0000000000000002"), confirmed("O-0000000000000002"))
    clock.set(datetime(2027, 1, 1, 0, 1, tzinfo=UTC))
    await deliver(inbox, placed("O-0000000000000003"), confirmed("O-0000000000000003"))
    async with billing_engine.connect() as conn:
        vouchers = [i["voucher_number"] for i in await queries.find_invoices(conn, None, 10)]
    assert vouchers == ["INV-2027-000001", "INV-2026-000002", "INV-2026-000001"]


async def test_an_order_that_does_not_add_up_is_dead_lettered_without_using_a_voucher(
        billing_engine):
    inbox = consumer(billing_engine)
    await deliver(inbox, placed("O-0000000000000001"), confirmed("O-0000000000000001"),
                  placed("O-0000000000000002", total="395.01"), confirmed("O-0000000000000002"),
                  placed("O-0000000000000003"), confirmed("O-0000000000000003"))
    async with billing_engine.connect() as conn:
        vouchers = sorted(i["voucher_number"] for i in await queries.find_invoices(conn, None, 10))
        errors = (await conn.execute(text("SELECT error FROM dead_letters"))).scalars().all()
    assert vouchers == ["INV-2026-000001", "INV-2026-000002"]
    [error] = errors
    assert "InvoiceMismatch" in error and "395.01" in error


async def test_a_bank_line_reconcile_matched_pays_the_invoice_once(billing_engine):
    """A statement imported into reconcile (``oms bank import``) books the transfers it matched:
    finance does not enter them again by hand. A flagged match waits for finance."""
    inbox = consumer(billing_engine)
    await deliver(inbox, placed(ORDER), confirmed(ORDER))
    flagged = bank_matched(ORDER, "TX-9", "395.00", flagged=True)
    await deliver(inbox, flagged)
    assert [e.event_type for e in await events_of(billing_engine, ORDER)] == ["invoice.issued"]

    part = bank_matched(ORDER, "TX-1", "200.00")
    await deliver(inbox, part, bank_matched(ORDER, "TX-2", "195.00"))
    await deliver(inbox, part.model_copy(update={"event_id": uuid.uuid4()}))  # sent again
    _, first, second = await events_of(billing_engine, ORDER)
    assert first.causation_id == str(part.event_id)
    assert first.payload == {
        "order_id": ORDER, "payment_id": "bank:TX-1:INV-2026-000001", "method": "bank_transfer",
        "ledger_category": "bank_transfer", "amount": "200.00", "currency": "CNY",
        "voucher_number": "INV-2026-000001", "paid_total": "200.00", "outstanding": "195.00",
        "settled": False}
    assert (second.payload["paid_total"], second.payload["settled"]) == ("395.00", True)
    async with billing_engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT payment_id, source, kind, received_at FROM payments ORDER BY payment_id"))).all()
    assert [tuple(r) for r in rows] == [
        ("bank:TX-1:INV-2026-000001", "bank", "transfer", datetime(2026, 11, 21, tzinfo=UTC)),
        ("bank:TX-2:INV-2026-000001", "bank", "transfer", datetime(2026, 11, 21, tzinfo=UTC))]


async def test_a_flagged_match_finance_confirmed_is_booked_once(billing_engine):
    """`oms bank confirm`: reconcile announces the flagged match again, not flagged (its actor the
    person who checked it); billing books it then, under the line's own payment id, once."""
    inbox = consumer(billing_engine)
    await deliver(inbox, placed(ORDER), confirmed(ORDER))
    flagged = bank_matched(ORDER, "TX-9", "390.00", flagged=True)
    await deliver(inbox, flagged)
    assert [e.event_type for e in await events_of(billing_engine, ORDER)] == ["invoice.issued"]
    confirmed_match = bank_matched(ORDER, "TX-9", "390.00")
    await deliver(inbox, confirmed_match)
    await deliver(inbox, confirmed_match.model_copy(update={"event_id": uuid.uuid4()}))
    _, paid = await events_of(billing_engine, ORDER)
    assert (paid.event_type, paid.payload["payment_id"], paid.payload["amount"],
            paid.payload["outstanding"]) == ("payment.recorded", "bank:TX-9:INV-2026-000001",
                                             "390.00", "5.00")
