"""The open items bank lines are matched to, kept from events: order report rows (placed, paid,
refunds) and invoices (issued, paid, voided, credited).

Writes are collected (``OpenItemWrites.collect``) and sent one executemany per kind (``flush``), so
a batch of events costs a handful of statements whatever its size. Sending them kind by kind
rather than event by event leaves the same rows, because every write is order-free:
- report rows and invoices are upserts (an update on an order that has no row yet inserts it);
- paid figures are running totals kept with ``greatest`` (a later total is never smaller);
- refunds and credits are keyed by their own id (``||`` of a one-key object);
- what is keyed by an invoice (voided, credited, paid by voucher) follows its ``invoice.issued``
  in billing's log, and the kinds are flushed in that order: invoices before their updates;
  a void, a credit and a payment by voucher touch different columns.
A payment without a voucher changes no invoice: billing names the order's newest live invoice in
every payment.recorded while there is one, so a payment without a voucher was taken while the
order had no live invoice (before any was issued, or after all were voided); an invoice issued
later carries what was paid by then in its own ``paid_total``. Only the order's report row takes
it. (It used to update "the order's invoices not voided", which matched none but made the payment
a barrier that flushed everything pending: 5-6 statements per prepaid order, whose payment
arrives before its invoice.) ``keep_open_items`` (one event) and the consumer's batch work share
this code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconcile.bank.store import record_orders
from shared.contract.bank_events import bank_payment_voucher
from shared.contract.envelope import EventEnvelope
from shared.contract.fulfilment_events import CreditNoteIssued, InvoiceVoided, RefundIssued
from shared.contract.payloads import InvoiceIssued, OrderPlaced, PaymentRecorded

OPEN_ITEM_EVENT_TYPES = frozenset({"order.placed", "invoice.issued", "payment.recorded",
                                   "invoice.voided", "credit_note.issued", "refund.issued"})

_ORDER_PAID = text(
    "INSERT INTO report_orders (order_id, paid_total) VALUES (:order_id, :paid)"
    " ON CONFLICT (order_id) DO UPDATE"
    " SET paid_total = greatest(report_orders.paid_total, excluded.paid_total)")
_REFUND = text(
    "INSERT INTO report_orders (order_id, refunds)"
    " VALUES (:order_id, jsonb_build_object(CAST(:refund_id AS text), CAST(:amount AS text)))"
    " ON CONFLICT (order_id) DO UPDATE SET refunds = report_orders.refunds || excluded.refunds")
_INVOICE = text(
    "INSERT INTO bank_invoices (voucher_number, invoice_id, order_id, currency, total, paid,"
    " issued_at) VALUES (:voucher, :invoice_id, :order_id, :currency, :total, :paid, :issued_at)"
    " ON CONFLICT (voucher_number) DO UPDATE"
    " SET paid = greatest(bank_invoices.paid, excluded.paid)")
_PAID_BY_VOUCHER = text(
    "UPDATE bank_invoices SET paid = greatest(paid, :paid) WHERE voucher_number = :voucher")
# A bank line's money billing booked: in ``paid`` from now on, so no longer owed twice.
_BOOKED = text(
    "UPDATE bank_invoices SET booked = booked"
    " || jsonb_build_object(CAST(:payment_id AS text), CAST(:amount AS text))"
    " WHERE voucher_number = :voucher")
_VOIDED = text("UPDATE bank_invoices SET voided = true WHERE voucher_number = :voucher")
_CREDIT = text(
    "UPDATE bank_invoices SET credits = credits"
    " || jsonb_build_object(CAST(:credit_note AS text), CAST(:total AS text))"
    " WHERE voucher_number = :voucher")
# The order the kinds are flushed in (see the module's docstring for why it is safe).
_AFTER_ORDERS: tuple[TextClause, ...] = (_ORDER_PAID, _REFUND, _INVOICE, _PAID_BY_VOUCHER,
                                         _BOOKED, _VOIDED, _CREDIT)


def placed_order(event: EventEnvelope) -> dict[str, Any]:
    """The report row an ``order.placed`` keeps (``store.record_orders``)."""
    placed = OrderPlaced.model_validate(event.payload)
    customer_id = placed.customer.get("id")
    return {"order_id": placed.order_id, "placed_at": placed.submitted_at, "channel": placed.channel,
            "channel_order_id": placed.channel_order_id,
            "customer_id": None if customer_id is None else str(customer_id),
            "salesperson": placed.salesperson, "currency": placed.currency, "total": placed.total}


class OpenItemWrites:
    """What a run of events changes in the open items, sent by ``flush`` (in the caller's
    transaction)."""

    def __init__(self) -> None:
        self.orders: list[dict[str, Any]] = []
        self.writes: dict[TextClause, list[dict[str, Any]]] = {s: [] for s in _AFTER_ORDERS}

    def collect(self, event: EventEnvelope) -> None:
        kind, w = event.event_type, self.writes
        if kind == "order.placed":
            self.orders.append(placed_order(event))
        elif kind == "invoice.issued":
            issued = InvoiceIssued.model_validate(event.payload)
            w[_INVOICE].append({
                "voucher": issued.voucher_number, "invoice_id": issued.invoice_id,
                "order_id": issued.order_id, "currency": issued.currency, "total": issued.total,
                "paid": issued.paid_total, "issued_at": issued.issued_at})
            w[_ORDER_PAID].append({"order_id": issued.order_id, "paid": issued.paid_total})
        elif kind == "payment.recorded":
            paid = PaymentRecorded.model_validate(event.payload)
            w[_ORDER_PAID].append({"order_id": paid.order_id, "paid": paid.paid_total})
            if paid.voucher_number:  # none: no live invoice to take it (see the docstring)
                w[_PAID_BY_VOUCHER].append({"voucher": paid.voucher_number,
                                            "paid": paid.paid_total})
            matched_to = bank_payment_voucher(paid.payment_id)
            if matched_to is not None:
                w[_BOOKED].append({"voucher": matched_to, "payment_id": paid.payment_id,
                                   "amount": str(paid.amount)})
        elif kind == "invoice.voided":
            voided = InvoiceVoided.model_validate(event.payload)
            w[_VOIDED].append({"voucher": voided.voucher_number})
        elif kind == "credit_note.issued":
            note = CreditNoteIssued.model_validate(event.payload)
            if note.invoice_voucher_number:
                w[_CREDIT].append({"voucher": note.invoice_voucher_number,
                                   "credit_note": note.credit_note_id, "total": str(note.total)})
        elif kind == "refund.issued":
            refund = RefundIssued.model_validate(event.payload)
            w[_REFUND].append({"order_id": refund.order_id, "refund_id": refund.refund_id,
                               "amount": str(refund.amount)})

    def collect_all(self, events: Iterable[EventEnvelope]) -> None:
        for event in events:
            if event.event_type in OPEN_ITEM_EVENT_TYPES:
                self.collect(event)

    async def flush(self, conn: AsyncConnection) -> None:
        await record_orders(conn, self.orders)
        self.orders = []
        for statement in _AFTER_ORDERS:
            rows = self.writes[statement]
            if rows:
                await conn.execute(statement, rows[0] if len(rows) == 1 else rows)
                self.writes[statement] = []


async def keep_open_items(conn: AsyncConnection, event: EventEnvelope) -> None:
    """Inside the consumer's transaction: every write is an upsert or a max, so a replay is harmless."""
    if event.event_type in OPEN_ITEM_EVENT_TYPES:
        writes = OpenItemWrites()
        writes.collect(event)
        await writes.flush(conn)
