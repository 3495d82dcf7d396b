"""Loading one order's account (locked for the transaction) from billing's tables and saving
what a decision changed. Per-invoice standing (paid, credited, outstanding, status) is written
with each invoice after every change, so receivables and exports are plain queries."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.billing.domain import (
    Account,
    CreditNote,
    Invoice,
    LineAmount,
    Payment,
    Recognition,
    Refund,
    ledger_category,
    statement,
)
from services.billing.store import (
    billing_orders,
    credit_notes,
    document_lines,
    invoice_lines,
    invoices,
    payments,
    recognitions,
    refunds,
    voucher_parts,
)
from shared.contract.payloads import InvoiceLine, OrderPlaced


def _has(table: Table) -> Any:
    return literal_column(
        f"EXISTS (SELECT 1 FROM {table.name} x WHERE x.order_id = billing_orders.order_id)"
    ).label(f"has_{table.name}")


_CHILDREN = (document_lines, invoices, payments, recognitions, credit_notes, refunds)
_NEW_ROW = insert(billing_orders).values(order_id=bindparam("order_id"))
# One round trip: the row created when missing, locked (ON CONFLICT DO UPDATE locks it), with
# which child tables hold rows of the order, so loading skips the empty ones.
_LOCK_ACCOUNT = _NEW_ROW.on_conflict_do_update(
    index_elements=[billing_orders.c.order_id], set_={"order_id": _NEW_ROW.excluded.order_id}
).returning(*billing_orders.c, *(_has(t) for t in _CHILDREN))


async def lock_account(conn: AsyncConnection, order_id: str) -> Account:
    """The order's account, its row created when missing and locked (one writer at a time)."""
    row = (await conn.execute(_LOCK_ACCOUNT, {"order_id": order_id})).one()
    return await _load(conn, row)


async def lock_existing(conn: AsyncConnection, order_id: str) -> Account | None:
    """The order's account locked, or None when billing has no row for the order."""
    row = (await conn.execute(
        select(billing_orders).where(billing_orders.c.order_id == order_id).with_for_update()
    )).first()
    return await _load(conn, row) if row is not None else None


async def load_account(conn: AsyncConnection, order_id: str) -> Account | None:
    row = (await conn.execute(
        select(billing_orders).where(billing_orders.c.order_id == order_id))).first()
    return await _load(conn, row) if row is not None else None


def _amounts(rows: list[Any]) -> tuple[LineAmount, ...]:
    return tuple(LineAmount(r.line_no, r.sku, r.quantity, r.gross, r.net) for r in rows)


async def _load(conn: AsyncConnection, row: Any) -> Account:
    """The account of ``row``; child tables the row says are empty (``has_<table>`` False, as
    ``lock_account`` returns them) are not queried."""
    order_id = row.order_id
    mapping = row._mapping

    def has(table: Table) -> bool:
        return bool(mapping.get(f"has_{table.name}", True))

    lines: dict[str, list[Any]] = {}
    if has(document_lines):
        for line in await conn.execute(select(document_lines).where(
                document_lines.c.order_id == order_id).order_by(document_lines.c.n)):
            lines.setdefault(line.document, []).append(line)
    invoice_rows = list(await conn.execute(
        select(invoices).where(invoices.c.order_id == order_id).order_by(invoices.c.seq))
    ) if has(invoices) else []
    item_rows: dict[str, list[InvoiceLine]] = {r.invoice_id: [] for r in invoice_rows}
    if invoice_rows:
        for item in await conn.execute(select(invoice_lines).where(
                invoice_lines.c.invoice_id.in_(list(item_rows))).order_by(invoice_lines.c.line_no)):
            item_rows[item.invoice_id].append(InvoiceLine(
                kind=item.kind, description=item.description, sku=item.sku,
                quantity=item.quantity, gross=item.gross, net=item.net, tax_rate=item.tax_rate,
                tax=item.tax))

    async def rows_of(table: Table) -> list[Any]:
        if not has(table):
            return []
        return list(await conn.execute(
            select(table).where(table.c.order_id == order_id).order_by(table.c.seq)))

    return Account(
        order_id=order_id,
        order=OrderPlaced.model_validate(row.placed) if row.placed is not None else None,
        confirmed=row.confirmed, cancelled=row.cancelled, requests=frozenset(row.requests),
        invoices=tuple(
            Invoice(r.invoice_id, r.voucher_number, r.kind, r.currency,
                    tuple(item_rows[r.invoice_id]), r.net_total, r.tax_total, r.total,
                    r.issued_at, r.due_date, r.voided, r.void_reason)
            for r in invoice_rows),
        payments=tuple(
            Payment(r.payment_id, r.method, r.kind, r.amount, r.currency, r.received_at, r.source)
            for r in await rows_of(payments)),
        recognitions=tuple(
            Recognition(r.shipment_id, r.voucher_number, r.currency,
                        _amounts(lines.get(r.shipment_id, [])), r.recognized_at)
            for r in await rows_of(recognitions)),
        credit_notes=tuple(
            CreditNote(r.credit_note_id, r.voucher_number, r.invoice_voucher_number, r.reason,
                       r.request_id, r.currency, _amounts(lines.get(r.credit_note_id, [])),
                       r.revenue_reversed, r.issued_at)
            for r in await rows_of(credit_notes)),
        refunds=tuple(
            Refund(r.refund_id, r.payment_id, r.credit_note_voucher_number, r.method, r.amount,
                   r.currency, r.issued_at)
            for r in await rows_of(refunds)),
    )


@dataclass(frozen=True, slots=True)
class Booking:
    """Who and what caused a change: for the rows' cause and the finance user's name."""

    cause_event_id: uuid.UUID | None
    at: datetime
    recorded_by: str | None = None
    placed_event_id: uuid.UUID | None = None


def _new(old: tuple[Any, ...], new: tuple[Any, ...]) -> list[tuple[int, Any]]:
    """The items ``new`` added after ``old`` (accounts only ever grow), with their position."""
    return list(enumerate(new[len(old):], start=len(old) + 1))


async def _insert_lines(conn: AsyncConnection, order_id: str, document: str,
                        lines: tuple[LineAmount, ...]) -> None:
    if lines:
        await conn.execute(insert(document_lines), [
            {"order_id": order_id, "document": document, "n": n, "line_no": x.line_no,
             "sku": x.sku, "quantity": x.quantity, "gross": x.gross, "net": x.net}
            for n, x in enumerate(lines, start=1)])


async def save_account(conn: AsyncConnection, old: Account, new: Account, booking: Booking
                       ) -> None:
    """Write what a decision changed: facts, new documents and payments, every standing."""
    order_id, cause = new.order_id, booking.cause_event_id
    now = statement(new)
    facts: dict[str, Any] = {
        "confirmed": new.confirmed, "cancelled": new.cancelled,
        "requests": sorted(new.requests), "customer_credit": now.customer_credit}
    if new.order is not None:
        facts |= {"placed": new.order.wire(), "currency": new.order.currency,
                  "total": new.order.total, "customer_id": new.order.customer.get("id"),
                  "payment_method": new.order.payment.get("method"),
                  "payment_terms": new.order.payment.get("terms")}
        if old.order is None:
            facts["placed_event_id"] = booking.placed_event_id
    await conn.execute(update(billing_orders).where(billing_orders.c.order_id == order_id)
                       .values(**facts))
    for seq, invoice in _new(old.invoices, new.invoices):
        series, year, number = voucher_parts(invoice.voucher_number)
        await conn.execute(insert(invoices).values(
            invoice_id=invoice.invoice_id, order_id=order_id, seq=seq,
            voucher_number=invoice.voucher_number, series=series, year=year, number=number,
            kind=invoice.kind, currency=invoice.currency, net_total=invoice.net_total,
            tax_total=invoice.tax_total, total=invoice.total, issued_at=invoice.issued_at,
            due_date=invoice.due_date, outstanding=invoice.total, status="open",
            cause_event_id=cause))
        await conn.execute(insert(invoice_lines), [
            {"invoice_id": invoice.invoice_id, "line_no": n} | line.model_dump()
            for n, line in enumerate(invoice.lines, start=1)])
    for standing in now.invoices:
        invoice = standing.invoice
        await conn.execute(update(invoices).where(invoices.c.invoice_id == invoice.invoice_id)
                           .values(voided=invoice.voided, void_reason=invoice.void_reason,
                                   paid=standing.paid, credited=standing.credited,
                                   outstanding=standing.outstanding, status=standing.status))
    for seq, payment in _new(old.payments, new.payments):
        await conn.execute(insert(payments).values(
            payment_id=payment.payment_id, order_id=order_id, seq=seq, method=payment.method,
            ledger_category=ledger_category(payment.method), kind=payment.kind,
            amount=payment.amount, currency=payment.currency, received_at=payment.received_at,
            recorded_at=booking.at, source=payment.source, recorded_by=booking.recorded_by,
            cause_event_id=cause))
    for seq, recognition in _new(old.recognitions, new.recognitions):
        await conn.execute(insert(recognitions).values(
            order_id=order_id, shipment_id=recognition.shipment_id, seq=seq,
            voucher_number=recognition.voucher_number, currency=recognition.currency,
            gross=recognition.gross, net=recognition.net,
            recognized_at=recognition.recognized_at, cause_event_id=cause))
        await _insert_lines(conn, order_id, recognition.shipment_id, recognition.lines)
    for seq, note in _new(old.credit_notes, new.credit_notes):
        series, year, number = voucher_parts(note.voucher_number)
        await conn.execute(insert(credit_notes).values(
            credit_note_id=note.credit_note_id, order_id=order_id, seq=seq,
            voucher_number=note.voucher_number, series=series, year=year, number=number,
            invoice_voucher_number=note.invoice_voucher_number, reason=note.reason,
            request_id=note.request_id, currency=note.currency, net=note.net, total=note.total,
            revenue_reversed=note.revenue_reversed, issued_at=note.issued_at,
            cause_event_id=cause))
        await _insert_lines(conn, order_id, note.credit_note_id, note.lines)
    for seq, refund in _new(old.refunds, new.refunds):
        await conn.execute(insert(refunds).values(
            refund_id=refund.refund_id, order_id=order_id, seq=seq, payment_id=refund.payment_id,
            credit_note_voucher_number=refund.credit_note_voucher_number, method=refund.method,
            amount=refund.amount, currency=refund.currency, issued_at=refund.issued_at,
            cause_event_id=cause))


