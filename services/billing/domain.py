"""Invoices and payments: tax split out of tax-inclusive prices, voucher numbers, settlement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared.contract.payloads import (
    InvoiceIssued,
    InvoiceLine,
    OrderLine,
    OrderPaymentCaptured,
    OrderPlaced,
    PaymentRecorded,
)
from shared.money import quantum, to_decimal

INVOICE_SERIES = "INV"
VOUCHER_DIGITS = 6
RATE_QUANTUM = Decimal("0.0001")
"""Average tax rates (on discount lines) are shown and applied to 4 decimal places."""

LEDGER_CATEGORIES: Mapping[str, str] = {
    "alipay": "online_wallet",
    "wechat_pay": "online_wallet",
    "card": "card",
    "bank_transfer": "bank_transfer",
    "credit_terms": "credit_terms_receivable",
    "cash_on_delivery": "cash_on_delivery",
    "collection_agent": "collection_agent",
}


class BillingRefusal(ValueError):
    """Input billing cannot book as it stands (the message goes to the dead-letter topic)."""


class InvoiceMismatch(BillingRefusal):
    """The order's own amounts do not add up, so no invoice can equal its total."""


def _money(value: Decimal, currency: str) -> Decimal:
    return value.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def split_tax(gross: Decimal, rate: Decimal, currency: str) -> tuple[Decimal, Decimal]:
    """(net, tax) of a tax-inclusive amount.

    net = gross / (1 + rate) rounded half-up (halves away from zero, so a negative amount
    rounds like its positive twin) to the currency's minor unit; tax = gross - net, so
    net + tax == gross exactly on every line.
    """
    if rate < 0:
        raise BillingRefusal(f"tax rate {rate} is negative")
    net = _money(gross / (1 + rate), currency)
    return net, gross - net


def average_tax_rate(lines: Sequence[OrderLine], currency: str) -> Decimal:
    """The goods' tax rates weighted by their gross value, rounded half-up to 4 places.

    Discounts reduce goods of every rate at once; splitting their tax at this one rate keeps a
    discount a single line. Free orders (no goods value) get rate 0.
    """
    grosses = [(_money(line.quantity * line.unit_price, currency), line.tax_rate) for line in lines]
    value = sum((gross for gross, _ in grosses), Decimal(0))
    if value <= 0:
        return Decimal("0.0000")
    weighted = sum((gross * rate for gross, rate in grosses), Decimal(0))
    return (weighted / value).quantize(RATE_QUANTUM, rounding=ROUND_HALF_UP)


def _discount_label(discount: Mapping[str, Any]) -> str:
    kind = str(discount.get("kind") or "discount")
    detail = discount.get("code") or discount.get("points")
    return f"{kind} {detail}" if detail is not None else kind


@dataclass(frozen=True, slots=True)
class InvoiceDraft:
    lines: tuple[InvoiceLine, ...]
    net_total: Decimal
    tax_total: Decimal
    total: Decimal


def draft_invoice(order: OrderPlaced) -> InvoiceDraft:
    """The invoice lines of an order: goods, each discount (negative), shipping.

    Goods lines carry their own rate; discount lines the value-weighted average rate (see
    ``average_tax_rate``); the shipping fee is booked at rate 0 (not split). The invoice total
    is the sum of line grosses and must equal the order's total, else InvoiceMismatch.
    """
    cur = order.currency
    lines: list[InvoiceLine] = []
    for line in order.lines:
        if line.quantity <= 0 or line.unit_price < 0:
            raise BillingRefusal(f"order {order.order_id} line {line.line_no}: quantity "
                                 f"{line.quantity} at {line.unit_price} cannot be invoiced")
        gross = _money(line.quantity * line.unit_price, cur)
        net, tax = split_tax(gross, line.tax_rate, cur)
        lines.append(InvoiceLine(kind="goods", description=line.name or line.sku, sku=line.sku,
                                 quantity=line.quantity, gross=gross, net=net,
                                 tax_rate=line.tax_rate, tax=tax))
    rate = average_tax_rate(order.lines, cur)
    discounts = [(_discount_label(d), _money(to_decimal(d.get("amount", 0)), cur))
                 for d in order.discounts]
    if not discounts and order.discount_total:
        discounts = [("discount", _money(order.discount_total, cur))]
    if sum((amount for _, amount in discounts), Decimal(0)) != order.discount_total:
        raise InvoiceMismatch(f"order {order.order_id}: discounts add up to "
                              f"{sum(a for _, a in discounts)}, not {order.discount_total}")
    for label, amount in discounts:
        if amount < 0:
            raise BillingRefusal(f"order {order.order_id}: discount {label!r} is negative")
        if amount:
            net, tax = split_tax(-amount, rate, cur)
            lines.append(InvoiceLine(kind="discount", description=label, gross=-amount, net=net,
                                     tax_rate=rate, tax=tax))
    if order.shipping_fee < 0:
        raise BillingRefusal(f"order {order.order_id}: shipping fee {order.shipping_fee} is negative")
    if order.shipping_fee:
        fee = _money(order.shipping_fee, cur)
        lines.append(InvoiceLine(kind="shipping", description="shipping fee", gross=fee, net=fee,
                                 tax_rate=Decimal(0), tax=_money(Decimal(0), cur)))
    total = sum((line.gross for line in lines), _money(Decimal(0), cur))
    if total != order.total:
        raise InvoiceMismatch(f"order {order.order_id}: lines add up to {total}, "
                              f"the order's total is {order.total}")
    return InvoiceDraft(
        lines=tuple(lines),
        net_total=sum((line.net for line in lines), _money(Decimal(0), cur)),
        tax_total=sum((line.tax for line in lines), _money(Decimal(0), cur)),
        total=total,
    )


def voucher_number(year: int, number: int, series: str = INVOICE_SERIES) -> str:
    """``INV-2026-000001``: the series, the year and the number within that year."""
    if not 1 <= number < 10**VOUCHER_DIGITS:
        raise BillingRefusal(f"voucher number {number} does not fit {VOUCHER_DIGITS} digits "
                             f"(series {series} {year} is exhausted)")
    return f"{series}-{year:04d}-{number:0{VOUCHER_DIGITS}d}"


def ledger_category(method: str) -> str:
    try:
        return LEDGER_CATEGORIES[method]
    except KeyError:
        raise BillingRefusal(f"payment method {method!r} has no ledger category; known: "
                             f"{', '.join(LEDGER_CATEGORIES)}") from None


@dataclass(frozen=True, slots=True)
class Settlement:
    """Where an invoiced order's account stands: paid, still owed, and any surplus owed back."""

    paid_total: Decimal
    outstanding: Decimal
    settled: bool
    customer_credit: Decimal


def settlement(invoice_total: Decimal, paid_total: Decimal, currency: str) -> Settlement:
    zero = _money(Decimal(0), currency)
    paid = _money(paid_total, currency)
    return Settlement(paid, max(invoice_total - paid, zero), paid >= invoice_total,
                      max(paid - invoice_total, zero))


def issue_invoice(order: OrderPlaced, draft: InvoiceDraft, *, invoice_id: str, voucher: str,
                  paid_total: Decimal, issued_at: datetime) -> InvoiceIssued:
    """The invoice.issued fact; settled already when earlier payments cover it."""
    account = settlement(draft.total, paid_total, order.currency)
    return InvoiceIssued(
        order_id=order.order_id, invoice_id=invoice_id, voucher_number=voucher,
        currency=order.currency, lines=list(draft.lines), net_total=draft.net_total,
        tax_total=draft.tax_total, total=draft.total, paid_total=account.paid_total,
        outstanding=account.outstanding,
        settled=account.settled, issued_at=issued_at,
    )


@dataclass(frozen=True, slots=True)
class Invoiced:
    """What a payment is measured against: the order's invoice."""

    voucher_number: str
    total: Decimal
    currency: str


def record_payment(payment: OrderPaymentCaptured, *, paid_before: Decimal,
                   invoice: Invoiced | None, order_currency: str | None) -> PaymentRecorded:
    """The payment.recorded fact: this payment plus the earlier ones, against the invoice."""
    if payment.amount <= 0:
        raise BillingRefusal(f"payment {payment.payment_id}: amount {payment.amount} "
                             "is not positive")
    expected = invoice.currency if invoice else order_currency
    if expected is not None and payment.currency != expected:
        raise BillingRefusal(f"payment {payment.payment_id} is in {payment.currency}, "
                             f"the order in {expected}")
    amount = _money(payment.amount, payment.currency)
    paid = _money(paid_before + amount, payment.currency)
    account = settlement(invoice.total, paid, payment.currency) if invoice else None
    return PaymentRecorded(
        order_id=payment.order_id, payment_id=payment.payment_id, method=payment.method,
        ledger_category=ledger_category(payment.method), amount=amount,
        currency=payment.currency, voucher_number=invoice.voucher_number if invoice else None,
        paid_total=paid, outstanding=account.outstanding if account else None,
        settled=account.settled if account else False,
    )
