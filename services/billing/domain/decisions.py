"""Billing's decisions: an order fact in, the account after it and the facts billing states out.

Every decision is idempotent by construction: an order placed twice, a confirmation after the
invoice, a payment id, shipment id, amendment or return request id already booked, a second
cancellation: the account stays as it is and nothing is said.

Voucher numbers come from a ``Vouchers`` the caller supplies (the database counters); ids of new
documents are derived from the cause (same cause, same ids), so a decision is a pure function.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from services.billing.domain.account import (
    Account,
    CreditNote,
    Invoice,
    LineAmount,
    Payment,
    Recognition,
    Refund,
    Statement,
    statement,
)
from services.billing.domain.invoicing import (
    CREDIT_NOTE_SERIES,
    INVOICE_SERIES,
    BillingRefusal,
    InvoiceDraft,
    due_date,
    ledger_category,
    money,
    plan_invoices,
)
from services.billing.domain.revenue import effective_lines, recognize, returned_value
from shared.contract.fulfilment_events import (
    CreditNoteIssued,
    InvoiceVoided,
    RecognizedLine,
    RefundIssued,
    RevenueRecognized,
)
from shared.contract.order_events import OrderAmended, OrderReturned, OrderShipped
from shared.contract.payloads import InvoiceIssued, OrderLine, OrderPlaced, Payload, PaymentRecorded

DOCUMENT_IDS = uuid.UUID("b111a000-0000-4000-8000-000000000001")


class Vouchers(Protocol):
    def next(self, series: str) -> str:
        """The next voucher number of ``series`` (e.g. ``INV-2026-000042``)."""
        ...


@dataclass(frozen=True, slots=True)
class Cause:
    """Why a decision is taken: the incoming fact's id and the instant it is booked at."""

    event_id: str
    at: datetime

    def document_id(self, kind: str, n: int) -> str:
        return str(uuid.uuid5(DOCUMENT_IDS, f"{self.event_id}:{kind}:{n}"))


@dataclass(frozen=True, slots=True)
class Decision:
    account: Account
    events: tuple[Payload, ...] = ()


def _order(account: Account) -> OrderPlaced:
    if account.order is None:
        raise BillingRefusal(f"order {account.order_id}: billing has not seen it placed")
    return account.order


def _newest_live_voucher(account: Account) -> str | None:
    live = account.live_invoices
    return live[-1].voucher_number if live else None


def _issued(account: Account, invoice: Invoice, account_now: Statement) -> InvoiceIssued:
    return InvoiceIssued(
        order_id=account.order_id, invoice_id=invoice.invoice_id,
        voucher_number=invoice.voucher_number, currency=invoice.currency,
        lines=list(invoice.lines), net_total=invoice.net_total, tax_total=invoice.tax_total,
        total=invoice.total, paid_total=account_now.paid, outstanding=account_now.outstanding,
        settled=account_now.settled, issued_at=invoice.issued_at,
    )


def _issue(account: Account, drafts: list[InvoiceDraft], cause: Cause, vouchers: Vouchers
           ) -> Decision:
    """New invoices; their paid/outstanding/settled describe the account with all of them."""
    order = _order(account)
    new = tuple(
        Invoice(invoice_id=cause.document_id("invoice", n),
                voucher_number=vouchers.next(INVOICE_SERIES), kind=draft.kind,
                currency=order.currency, lines=draft.lines, net_total=draft.net_total,
                tax_total=draft.tax_total, total=draft.total, issued_at=cause.at,
                due_date=due_date(order, cause.at))
        for n, draft in enumerate(drafts, start=1))
    account = replace(account, invoices=account.invoices + new)
    now = statement(account)
    return Decision(account, tuple(_issued(account, invoice, now) for invoice in new))


def keep_order(account: Account, placed: OrderPlaced, cause: Cause, vouchers: Vouchers
               ) -> Decision:
    """Keep a placed order's facts (the first order.placed wins); invoice it if confirmed."""
    if account.order is not None:
        return Decision(account)
    account = replace(account, order=placed)
    if account.confirmed and not account.invoices and not account.cancelled:
        return _issue(account, plan_invoices(placed), cause, vouchers)
    return Decision(account)


def confirm(account: Account, cause: Cause, vouchers: Vouchers) -> Decision:
    """Invoice a confirmed order once: one invoice, or deposit and balance (presale)."""
    first = not account.confirmed
    account = replace(account, confirmed=True)
    if account.order is None or account.invoices or account.cancelled or not first:
        return Decision(account)
    return _issue(account, plan_invoices(account.order), cause, vouchers)


def amend(account: Account, amended: OrderAmended, cause: Cause, vouchers: Vouchers) -> Decision:
    """Take the amended lines; once invoiced, void the live invoices and invoice again.

    An amendment that leaves every invoice line as it was (a new address only) keeps the
    invoices. Payments carry over to the new invoices (see ``statement``).
    """
    if amended.request_id in account.requests:
        return Decision(account)
    order = _order(account)
    after = amended.after
    lines = [OrderLine.model_validate(x) for x in after.get("lines", [])] or list(order.lines)
    subtotal = Decimal(str(after.get("subtotal", order.subtotal)))
    new_order = order.model_copy(update={"lines": lines, "subtotal": subtotal,
                                         "total": amended.total_after})
    account = replace(account, order=new_order, requests=account.requests | {amended.request_id})
    live = account.live_invoices
    if not live:
        return Decision(account)
    if account.cancelled or account.recognitions:
        raise BillingRefusal(f"order {account.order_id}: amendment {amended.request_id} after "
                             "cancellation or shipment cannot be invoiced")
    drafts = plan_invoices(new_order)
    if [(d.kind, d.lines) for d in drafts] == [(i.kind, i.lines) for i in live]:
        return Decision(account)
    voided = tuple(replace(i, voided=True, void_reason="amended") if not i.voided else i
                   for i in account.invoices)
    voids = tuple(_voided(account, invoice, "amended") for invoice in live)
    decision = _issue(replace(account, invoices=voided), drafts, cause, vouchers)
    return Decision(decision.account, voids + decision.events)


def _voided(account: Account, invoice: Invoice, reason: str) -> InvoiceVoided:
    return InvoiceVoided(order_id=account.order_id, invoice_id=invoice.invoice_id,
                         voucher_number=invoice.voucher_number, reason=reason,
                         total=invoice.total, currency=invoice.currency)


def record_payment(account: Account, payment: Payment, cause: Cause) -> Decision:
    """Book a payment once per payment id, against the live invoices if there are any.

    A payment for a cancelled order is booked and refunded at once (no credit note: nothing is
    invoiced any more).
    """
    if account.payment(payment.payment_id) is not None:
        return Decision(account)
    if payment.amount <= 0:
        raise BillingRefusal(f"payment {payment.payment_id}: amount {payment.amount} "
                             "is not positive")
    expected = account.currency
    if expected is not None and payment.currency != expected:
        raise BillingRefusal(f"payment {payment.payment_id} is in {payment.currency}, "
                             f"the order in {expected}")
    category = ledger_category(payment.method)
    payment = replace(payment, amount=money(payment.amount, payment.currency))
    account = replace(account, payments=(*account.payments, payment))
    now = statement(account)
    invoiced = bool(account.live_invoices)
    paid_into = [s.invoice.voucher_number for s in now.invoices
                 if any(pid == payment.payment_id for pid, _ in s.allocations)]
    recorded = PaymentRecorded(
        order_id=account.order_id, payment_id=payment.payment_id, method=payment.method,
        ledger_category=category, amount=payment.amount, currency=payment.currency,
        voucher_number=paid_into[0] if paid_into else _newest_live_voucher(account),
        paid_total=now.paid, outstanding=now.outstanding if invoiced else None,
        settled=now.settled,
    )
    if not account.cancelled:
        return Decision(account, (recorded,))
    refunded = _refund(account, payment.amount, None, cause)
    return Decision(refunded.account, (recorded, *refunded.events))


def _refund(account: Account, amount: Decimal, credit_note: str | None, cause: Cause) -> Decision:
    """Give ``amount`` back through the payments it came by, the newest payment first."""
    refunds: list[Refund] = []
    left = amount
    for payment in reversed(account.payments):
        take = min(left, payment.amount - account.refunded(payment.payment_id))
        if take <= 0:
            continue
        refunds.append(Refund(refund_id=cause.document_id("refund", len(refunds) + 1),
                              payment_id=payment.payment_id,
                              credit_note_voucher_number=credit_note, method=payment.method,
                              amount=take, currency=payment.currency, issued_at=cause.at))
        left -= take
        if left <= 0:
            break
    account = replace(account, refunds=account.refunds + tuple(refunds))
    return Decision(account, tuple(
        RefundIssued(order_id=account.order_id, refund_id=r.refund_id,
                     credit_note_voucher_number=r.credit_note_voucher_number, method=r.method,
                     amount=r.amount, currency=r.currency, issued_at=r.issued_at)
        for r in refunds))


def _note_issued(account: Account, note: CreditNote) -> CreditNoteIssued:
    return CreditNoteIssued(
        order_id=account.order_id, credit_note_id=note.credit_note_id,
        voucher_number=note.voucher_number, invoice_voucher_number=note.invoice_voucher_number,
        reason=note.reason, currency=note.currency,
        lines=[RecognizedLine(sku=x.sku, quantity=x.quantity, net=x.net, tax=x.tax)
               for x in note.lines],
        net=note.net, tax=note.total - note.net, total=note.total,
        revenue_reversed=note.revenue_reversed,
    )


def recognize_shipment(account: Account, shipped: OrderShipped, cause: Cause) -> Decision:
    """Recognise the revenue of the shipped lines, once per shipment id."""
    if account.shipped(shipped.shipment_id):
        return Decision(account)
    order = _order(account)
    if not account.live_invoices:
        raise BillingRefusal(f"shipment {shipped.shipment_id}: order {account.order_id} has "
                             "no live invoice to recognise revenue against")
    lines = recognize(account, shipped)
    recognition = Recognition(shipment_id=shipped.shipment_id,
                              voucher_number=_newest_live_voucher(account),
                              currency=order.currency, lines=lines, recognized_at=cause.at)
    account = replace(account, recognitions=(*account.recognitions, recognition))
    return Decision(account, (RevenueRecognized(
        order_id=account.order_id, shipment_id=shipped.shipment_id,
        voucher_number=recognition.voucher_number, currency=order.currency,
        lines=[RecognizedLine(sku=x.sku, quantity=x.quantity, net=x.net, tax=x.tax)
               for x in lines],
        net=recognition.net, tax=recognition.gross - recognition.net, gross=recognition.gross,
    ),))


def cancel(account: Account, cause: Cause, vouchers: Vouchers) -> Decision:
    """Before shipment: void unpaid invoices, credit (partly) paid ones in full, refund all paid.

    An order cancelled before it was invoiced has nothing to void or credit; what was paid is
    refunded without a credit note.
    """
    if account.cancelled:
        return Decision(account)
    if account.recognitions:
        raise BillingRefusal(f"order {account.order_id} has shipped: returned, not cancelled")
    account = replace(account, cancelled=True)
    before = statement(account)
    events: list[Payload] = []
    notes: list[CreditNote] = []
    invoices: list[Invoice] = []
    for standing in before.invoices:
        invoice = standing.invoice
        if invoice.voided:
            invoices.append(invoice)
        elif standing.paid > 0 or standing.credited > 0:
            order_lines = _order(account).lines
            note = CreditNote(
                credit_note_id=cause.document_id("credit_note", len(notes) + 1),
                voucher_number=vouchers.next(CREDIT_NOTE_SERIES),
                invoice_voucher_number=invoice.voucher_number, reason="cancelled",
                request_id=None, currency=invoice.currency,
                lines=tuple(effective_lines(invoice.lines, order_lines, invoice.currency)),
                revenue_reversed=Decimal(0), issued_at=cause.at)
            notes.append(note)
            invoices.append(invoice)
            events.append(_note_issued(account, note))
        else:
            invoices.append(replace(invoice, voided=True, void_reason="cancelled"))
            events.append(_voided(account, invoice, "cancelled"))
    account = replace(account, invoices=tuple(invoices),
                      credit_notes=account.credit_notes + tuple(notes))
    refunded = _refund(account, before.paid, notes[-1].voucher_number if notes else None, cause)
    return Decision(refunded.account, (*events, *refunded.events))


def take_return(account: Account, returned: OrderReturned, cause: Cause, vouchers: Vouchers
                ) -> Decision:
    """Credit the returned units' value (reversing their revenue); refund it if it was paid.

    The refund is the part of the credit the customer has paid for: the credit note's total,
    less whatever was still owed on the order before the return.
    """
    if returned.request_id in account.requests:
        return Decision(account)
    order = _order(account)
    account = replace(account, requests=account.requests | {returned.request_id})
    lines: tuple[LineAmount, ...] = returned_value(account, returned)
    note = CreditNote(
        credit_note_id=cause.document_id("credit_note", 1),
        voucher_number=vouchers.next(CREDIT_NOTE_SERIES),
        invoice_voucher_number=_newest_live_voucher(account), reason="returned",
        request_id=returned.request_id, currency=order.currency, lines=lines,
        revenue_reversed=sum((x.net for x in lines), Decimal(0)), issued_at=cause.at)
    account = replace(account, credit_notes=(*account.credit_notes, note))
    after = statement(account)
    refund = min(note.total, max(after.paid - after.owed, Decimal(0)))
    refunded = _refund(account, refund, note.voucher_number, cause)
    return Decision(refunded.account, (_note_issued(account, note), *refunded.events))
