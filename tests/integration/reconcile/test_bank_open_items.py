"""The open items kept from order and billing events (consumer side, real database)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.reconcile.bank import store
from services.reconcile.bank.handlers import keep_open_items
from services.reconcile.reports import build_report, to_csv
from shared.contract.fulfilment_events import CreditNoteIssued, InvoiceVoided, RefundIssued
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
