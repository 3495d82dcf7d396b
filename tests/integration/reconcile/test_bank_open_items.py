"""The open items kept from order and billing events (consumer side, real database)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import text

from services.reconcile import store as reconcile_store
from services.reconcile.bank import store
from services.reconcile.bank.openitems import OpenItemWrites, keep_open_items
from services.reconcile.reports import build_report, to_csv
from shared.contract.fulfilment_events import CreditNoteIssued, InvoiceVoided, RefundIssued
from shared.service import prepare_database
from tests.conftest import create_database
from tests.unit.reconcile.samples import (
    AT,
    envelope,
    invoice_issued,
    new_order_id,
    order_placed,
    payment_recorded,
)


async def outstanding(engine) -> dict[str, Decimal]:
    async with engine.connect() as conn:
        return {i.voucher_number: i.outstanding for i in await store.known_invoices(conn)}


async def test_payments_credits_voids_and_refunds_change_the_open_items(reconcile_engine):
    order_id = new_order_id()
    paid = envelope(payment_recorded(order_id, Decimal("100.00")))
    async with reconcile_engine.begin() as conn:
        for event in (envelope(invoice_issued(order_id)), envelope(order_placed(order_id)), paid, paid):
            await keep_open_items(conn, event)
    assert await outstanding(reconcile_engine) == {"INV-2026-000001": Decimal("295.00")}
    credit = CreditNoteIssued(order_id=order_id, credit_note_id="CN-1", voucher_number="CN-2026-000001",
                              invoice_voucher_number="INV-2026-000001", reason="amended",
                              currency="CNY", net=Decimal("8.85"), tax=Decimal("1.15"),
                              total=Decimal("10.00"))
    refund = RefundIssued(order_id=order_id, refund_id="R-1", method="alipay", amount=Decimal("30.00"),
                          currency="CNY", issued_at=AT)
    async with reconcile_engine.begin() as conn:
        for event in (envelope(credit), envelope(credit), envelope(refund), envelope(refund)):
            await keep_open_items(conn, event)
    assert await outstanding(reconcile_engine) == {"INV-2026-000001": Decimal("285.00")}
    async with reconcile_engine.connect() as conn:
        report = await build_report(conn, "channel", date(2026, 11, 21), date(2026, 11, 21))
    assert to_csv(report).splitlines()[1] == "tmall,CNY,1,395.00,395.00,70.00,0.00,0"
    voided = InvoiceVoided(order_id=order_id, invoice_id="I-1", voucher_number="INV-2026-000001",
                           reason="amended", total=Decimal("395.00"), currency="CNY")
    async with reconcile_engine.begin() as conn:
        await keep_open_items(conn, envelope(voided))
    assert await outstanding(reconcile_engine) == {}


async def _open_item_rows(engine) -> dict[str, list[dict]]:
    async with engine.connect() as conn:
        return {table: [dict(r._mapping) for r in await conn.execute(
                    text(f"SELECT * FROM {table} ORDER BY 1"))]
                for table in ("report_orders", "bank_invoices")}


async def test_writes_sent_kind_by_kind_leave_what_each_event_alone_leaves(postgres_url):
    """The batch path flushes the open items kind by kind (OpenItemWrites); the module's
    argument that this is order-free is checked on a history with every kind, including payments
    without a voucher (billing gives none while the order has no live invoice: before the first
    invoice and between a void and the re-invoice), a re-invoice after a void, credits and
    refunds."""
    order_a, order_b = new_order_id(), new_order_id()
    early = payment_recorded(order_b, Decimal("100.00"), payment_id="P-early").model_copy(
        update={"voucher_number": None})
    between = payment_recorded(order_a, Decimal("50.00"), payment_id="P-between").model_copy(
        update={"voucher_number": None, "paid_total": Decimal("250.00")})
    second = invoice_issued(order_a, paid=Decimal("250.00"), invoice_id="I-2").model_copy(
        update={"voucher_number": "INV-2026-000002"})
    history = [
        order_placed(order_a), order_placed(order_b),
        early,  # order_b pays before it is invoiced
        invoice_issued(order_b, paid=Decimal("100.00")).model_copy(
            update={"voucher_number": "INV-2026-000003", "invoice_id": "I-3"}),
        invoice_issued(order_a), payment_recorded(order_a, Decimal("200.00")),
        CreditNoteIssued(order_id=order_a, credit_note_id="CN-1", voucher_number="CN-2026-000001",
                         invoice_voucher_number="INV-2026-000001", reason="amended",
                         currency="CNY", net=Decimal("8.85"), tax=Decimal("1.15"),
                         total=Decimal("10.00")),
        InvoiceVoided(order_id=order_a, invoice_id=f"I-{order_a}",
                      voucher_number="INV-2026-000001", reason="amended",
                      total=Decimal("395.00"), currency="CNY"),
        between,  # no live invoice: billing names none
        second,
        payment_recorded(order_b, Decimal("395.00"), payment_id="P-2").model_copy(
            update={"voucher_number": "INV-2026-000003"}),
        RefundIssued(order_id=order_b, refund_id="R-1", method="alipay", amount=Decimal("30.00"),
                     currency="CNY", issued_at=AT),
        payment_recorded(order_a, Decimal("50.00"), payment_id="P-late").model_copy(
            update={"voucher_number": "INV-2026-000002", "paid_total": Decimal("300.00")}),
    ]
    events = [envelope(payload) for payload in history]
    engines = []
    try:
        for _ in range(2):
            url = await create_database(postgres_url, f"t_{uuid.uuid4().hex[:12]}")
            engines.append(await prepare_database(url, reconcile_store.create_schema))
        alone, together = engines
        for event in events:
            async with alone.begin() as conn:
                await keep_open_items(conn, event)
        writes = OpenItemWrites()
        async with together.begin() as conn:
            writes.collect_all(events)
            await writes.flush(conn)
        expected, found = await _open_item_rows(alone), await _open_item_rows(together)
        assert len(expected["bank_invoices"]) == 3 and len(expected["report_orders"]) == 2
        assert found == expected
        paid = {row["voucher_number"]: row["paid"] for row in expected["bank_invoices"]}
        assert paid == {"INV-2026-000001": Decimal("200.00"), "INV-2026-000002": Decimal("300.00"),
                        "INV-2026-000003": Decimal("395.00")}
    finally:
        for engine in engines:
            await engine.dispose()


async def test_bank_money_billing_booked_is_owed_once_not_twice(reconcile_engine):
    """A statement line matched 200.00 to the invoice; billing books it (bank_line.matched ->
    payment.recorded, its id naming the line and invoice) and reports it paid: the invoice still
    owes 195.00, not 395 - 200 - 200; another payment is not taken for a bank one."""
    order_id = new_order_id()
    async with reconcile_engine.begin() as conn:
        for event in (envelope(order_placed(order_id)), envelope(invoice_issued(order_id))):
            await keep_open_items(conn, event)
        await conn.execute(text("UPDATE bank_invoices SET matched = 200.00"  # as an import does
                                " WHERE voucher_number = 'INV-2026-000001'"))
    assert await outstanding(reconcile_engine) == {"INV-2026-000001": Decimal("195.00")}
    booked = envelope(payment_recorded(order_id, Decimal("200.00"),
                                       payment_id="bank:T-1:INV-2026-000001"))
    async with reconcile_engine.begin() as conn:
        for event in (booked, booked):  # sent twice: kept once
            await keep_open_items(conn, event)
    assert await outstanding(reconcile_engine) == {"INV-2026-000001": Decimal("195.00")}
    async with reconcile_engine.begin() as conn:  # then the customer pays the rest online
        await keep_open_items(conn, envelope(payment_recorded(order_id, Decimal("395.00"),
                                                              payment_id="P-rest")))
    assert await outstanding(reconcile_engine) == {"INV-2026-000001": Decimal("0.00")}
    async with reconcile_engine.connect() as conn:
        report = await build_report(conn, "channel", date(2026, 11, 21), date(2026, 11, 21))
    assert to_csv(report).splitlines()[1].split(",")[5] == "395.00"  # paid: the bank's part too
