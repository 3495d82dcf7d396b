"""One order's account in billing: its documents and payments, and where it stands.

Where it stands (the statement) is derived, never stored as a fact:
- credit notes count against the invoice they name first (up to its total), anything beyond
  against the other live invoices, newest first;
- payments, less what was refunded of each, pay the live invoices oldest first (a presale
  deposit payment therefore pays the deposit invoice); money beyond every invoice's due is the
  customer's credit;
- the account is settled when it has a live invoice, every live invoice is paid (nothing
  outstanding) and the order is not cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from services.billing.domain.invoicing import zero
from shared.contract.payloads import InvoiceLine, OrderPlaced


@dataclass(frozen=True, slots=True)
class Invoice:
    invoice_id: str
    voucher_number: str
    kind: str  # full | deposit | balance
    currency: str
    lines: tuple[InvoiceLine, ...]
    net_total: Decimal
    tax_total: Decimal
    total: Decimal
    issued_at: datetime
    due_date: date
    voided: bool = False
    void_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Payment:
    payment_id: str
    method: str
    kind: str  # full | deposit | balance (storefront) | transfer (finance, or a bank line matched)
    amount: Decimal
    currency: str
    received_at: datetime
    source: str = "storefront"  # storefront | finance | bank


@dataclass(frozen=True, slots=True)
class LineAmount:
    """An amount booked against one order line; line 0 is the shipping fee."""

    line_no: int
    sku: str
    quantity: int
    gross: Decimal
    net: Decimal

    @property
    def tax(self) -> Decimal:
        return self.gross - self.net


SHIPPING_LINE = 0
SHIPPING_SKU = "shipping"
"""Revenue and credit-note lines for the shipping fee carry line 0 and this SKU."""


def _sum_gross(lines: tuple[LineAmount, ...]) -> Decimal:
    return sum((line.gross for line in lines), Decimal(0))


def _sum_net(lines: tuple[LineAmount, ...]) -> Decimal:
    return sum((line.net for line in lines), Decimal(0))


@dataclass(frozen=True, slots=True)
class Recognition:
    """Revenue recognised for one shipment."""

    shipment_id: str
    voucher_number: str | None
    currency: str
    lines: tuple[LineAmount, ...]
    recognized_at: datetime

    @property
    def gross(self) -> Decimal:
        return _sum_gross(self.lines)

    @property
    def net(self) -> Decimal:
        return _sum_net(self.lines)


@dataclass(frozen=True, slots=True)
class CreditNote:
    credit_note_id: str
    voucher_number: str
    invoice_voucher_number: str | None
    reason: Literal["cancelled", "returned"]
    request_id: str | None  # the return it answers
    currency: str
    lines: tuple[LineAmount, ...]
    revenue_reversed: Decimal
    issued_at: datetime

    @property
    def total(self) -> Decimal:
        return _sum_gross(self.lines)

    @property
    def net(self) -> Decimal:
        return _sum_net(self.lines)


@dataclass(frozen=True, slots=True)
class Refund:
    refund_id: str
    payment_id: str  # the payment the money goes back through (same method)
    credit_note_voucher_number: str | None
    method: str
    amount: Decimal
    currency: str
    issued_at: datetime


@dataclass(frozen=True, slots=True)
class Account:
    """Everything billing knows of one order, as of now."""

    order_id: str
    order: OrderPlaced | None = None  # as placed, with amendments applied
    confirmed: bool = False
    cancelled: bool = False
    requests: frozenset[str] = frozenset()  # amendment and return requests already booked
    invoices: tuple[Invoice, ...] = ()  # in issue order
    payments: tuple[Payment, ...] = ()  # in the order recorded
    recognitions: tuple[Recognition, ...] = ()
    credit_notes: tuple[CreditNote, ...] = ()
    refunds: tuple[Refund, ...] = ()

    @property
    def currency(self) -> str | None:
        if self.order is not None:
            return self.order.currency
        return self.payments[0].currency if self.payments else None

    @property
    def live_invoices(self) -> tuple[Invoice, ...]:
        return tuple(invoice for invoice in self.invoices if not invoice.voided)

    def payment(self, payment_id: str) -> Payment | None:
        return next((p for p in self.payments if p.payment_id == payment_id), None)

    def refunded(self, payment_id: str) -> Decimal:
        return sum((r.amount for r in self.refunds if r.payment_id == payment_id), Decimal(0))

    def shipped(self, shipment_id: str) -> bool:
        return any(r.shipment_id == shipment_id for r in self.recognitions)


@dataclass(frozen=True, slots=True)
class InvoiceStanding:
    invoice: Invoice
    credited: Decimal
    paid: Decimal
    outstanding: Decimal
    status: str  # open | paid | credited | voided
    allocations: tuple[tuple[str, Decimal], ...] = field(default=())  # (payment id, amount)


@dataclass(frozen=True, slots=True)
class Statement:
    invoiced: Decimal  # live invoices
    credited: Decimal  # credit notes
    owed: Decimal  # invoiced - credited: what the customer has to pay for
    payments: Decimal
    refunded: Decimal
    paid: Decimal  # payments - refunded
    outstanding: Decimal  # what the customer still has to pay on the live invoices
    customer_credit: Decimal  # paid beyond every live invoice's due
    settled: bool
    invoices: tuple[InvoiceStanding, ...]

    def standing(self, invoice_id: str) -> InvoiceStanding | None:
        return next((s for s in self.invoices if s.invoice.invoice_id == invoice_id), None)


def _credits(account: Account) -> dict[str, Decimal]:
    live = account.live_invoices
    credited = {invoice.invoice_id: Decimal(0) for invoice in live}
    by_voucher = {invoice.voucher_number: invoice for invoice in live}
    beyond = Decimal(0)
    for note in account.credit_notes:
        named = by_voucher.get(note.invoice_voucher_number or "")
        if named is None:
            beyond += note.total
            continue
        room = named.total - credited[named.invoice_id]
        taken = min(room, note.total)
        credited[named.invoice_id] += taken
        beyond += note.total - taken
    for invoice in reversed(live):
        taken = min(invoice.total - credited[invoice.invoice_id], beyond)
        if taken > 0:
            credited[invoice.invoice_id] += taken
            beyond -= taken
    return credited


def statement(account: Account) -> Statement:
    """Where the order's account stands (see the module docstring for the rules)."""
    cur = account.currency or "CNY"
    nothing = zero(cur)
    live = account.live_invoices
    credited = _credits(account)
    due = {i.invoice_id: max(i.total - credited[i.invoice_id], nothing) for i in live}
    allocated: dict[str, list[tuple[str, Decimal]]] = {i.invoice_id: [] for i in live}
    left = nothing
    for payment in account.payments:
        money_left = payment.amount - account.refunded(payment.payment_id)
        for invoice in live:
            room = due[invoice.invoice_id] - sum((a for _, a in allocated[invoice.invoice_id]),
                                                 nothing)
            take = min(room, money_left)
            if take > 0:
                allocated[invoice.invoice_id].append((payment.payment_id, take))
                money_left -= take
        left += money_left
    standings: list[InvoiceStanding] = []
    for invoice in account.invoices:
        if invoice.voided:
            standings.append(InvoiceStanding(invoice, nothing, nothing, nothing, "voided"))
            continue
        paid = sum((a for _, a in allocated[invoice.invoice_id]), nothing)
        owing = due[invoice.invoice_id] - paid
        status = ("credited" if due[invoice.invoice_id] <= 0
                  else "paid" if owing <= 0 else "open")
        standings.append(InvoiceStanding(invoice, credited[invoice.invoice_id], paid, owing,
                                         status, tuple(allocated[invoice.invoice_id])))
    invoiced = sum((i.total for i in live), nothing)
    credit_total = sum((n.total for n in account.credit_notes), nothing)
    payments = sum((p.amount for p in account.payments), nothing)
    refunded = sum((r.amount for r in account.refunds), nothing)
    outstanding = sum((s.outstanding for s in standings), nothing)
    return Statement(
        invoiced=invoiced, credited=credit_total, owed=invoiced - credit_total,
        payments=payments, refunded=refunded, paid=payments - refunded, outstanding=outstanding,
        customer_credit=left, settled=bool(live) and outstanding == 0 and not account.cancelled,
        invoices=tuple(standings),
    )
