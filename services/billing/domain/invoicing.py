"""Invoice lines: tax split out of tax-inclusive prices, discounts, shipping, presale deposit split.

Rounding, everywhere in billing: amounts are rounded half-up (halves away from zero, so a
negative amount rounds like its positive twin) to the currency's minor unit. Where an amount is
shared out in proportion (a deposit over the invoice lines, a discount over the goods lines),
every share is rounded on its own and the rounding difference goes to the share with the largest
weight, so the shares always add up to the amount exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared.contract.payloads import InvoiceLine, OrderLine, OrderPlaced
from shared.money import quantum, to_decimal

INVOICE_SERIES = "INV"
CREDIT_NOTE_SERIES = "CN"
VOUCHER_DIGITS = 6
RATE_QUANTUM = Decimal("0.0001")
"""Average tax rates (on discount lines) are shown and applied to 4 decimal places."""
CREDIT_DAYS = 30
"""Invoices on credit (terms ``net_30`` or method ``credit_terms``) fall due this many days
after their issue date; every other invoice is due on the day it is issued."""

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


def money(value: Decimal, currency: str) -> Decimal:
    """``value`` rounded half-up to the currency's minor unit."""
    return value.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def zero(currency: str) -> Decimal:
    return money(Decimal(0), currency)


def split_tax(gross: Decimal, rate: Decimal, currency: str) -> tuple[Decimal, Decimal]:
    """(net, tax) of a tax-inclusive amount.

    net = gross / (1 + rate) rounded half-up to the currency's minor unit; tax = gross - net,
    so net + tax == gross exactly on every line.
    """
    if rate < 0:
        raise BillingRefusal(f"tax rate {rate} is negative")
    net = money(gross / (1 + rate), currency)
    return net, gross - net


def apportion(amount: Decimal, weights: Sequence[Decimal], currency: str) -> list[Decimal]:
    """``amount`` shared out in proportion to ``weights``; the shares add up to it exactly.

    Each share is rounded half-up on its own; the difference goes to the first share with the
    largest absolute weight. Without any weight (all zero) the first share takes everything.
    """
    if not weights:
        return []
    whole = sum(weights, Decimal(0))
    if whole == 0:
        return [money(amount, currency)] + [zero(currency)] * (len(weights) - 1)
    shares = [money(amount * weight / whole, currency) for weight in weights]
    biggest = max(range(len(weights)), key=lambda i: (abs(weights[i]), -i))
    shares[biggest] += money(amount, currency) - sum(shares, zero(currency))
    return shares


def average_tax_rate(lines: Sequence[OrderLine], currency: str) -> Decimal:
    """The goods' tax rates weighted by their gross value, rounded half-up to 4 places.

    Discounts reduce goods of every rate at once; splitting their tax at this one rate keeps a
    discount a single line. Free orders (no goods value) get rate 0.
    """
    grosses = [(money(line.quantity * line.unit_price, currency), line.tax_rate) for line in lines]
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
    """An invoice's lines and totals before it has a voucher number."""

    kind: str  # full | deposit | balance
    lines: tuple[InvoiceLine, ...]
    net_total: Decimal
    tax_total: Decimal
    total: Decimal


def _draft(kind: str, lines: Sequence[InvoiceLine], currency: str) -> InvoiceDraft:
    return InvoiceDraft(
        kind=kind, lines=tuple(lines),
        net_total=sum((line.net for line in lines), zero(currency)),
        tax_total=sum((line.tax for line in lines), zero(currency)),
        total=sum((line.gross for line in lines), zero(currency)),
    )


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
        gross = money(line.quantity * line.unit_price, cur)
        net, tax = split_tax(gross, line.tax_rate, cur)
        lines.append(InvoiceLine(kind="goods", description=line.name or line.sku, sku=line.sku,
                                 quantity=line.quantity, gross=gross, net=net,
                                 tax_rate=line.tax_rate, tax=tax))
    rate = average_tax_rate(order.lines, cur)
    discounts = [(_discount_label(d), money(to_decimal(d.get("amount", 0)), cur))
                 for d in order.discounts]
    if not discounts and order.discount_total:
        discounts = [("discount", money(order.discount_total, cur))]
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
        fee = money(order.shipping_fee, cur)
        lines.append(InvoiceLine(kind="shipping", description="shipping fee", gross=fee, net=fee,
                                 tax_rate=Decimal(0), tax=zero(cur)))
    draft = _draft("full", lines, cur)
    if draft.total != order.total:
        raise InvoiceMismatch(f"order {order.order_id}: lines add up to {draft.total}, "
                              f"the order's total is {order.total}")
    return draft


def deposit_amount(order: OrderPlaced) -> Decimal | None:
    """The presale deposit billed on its own invoice, or None when the order has no deposit.

    Only a presale order with ``payment.terms = "deposit"`` and a deposit above zero and below
    the order total gets one; otherwise the order is billed on a single invoice.
    """
    raw = order.payment.get("deposit_amount")
    if order.order_type != "presale" or order.payment.get("terms") != "deposit" or raw is None:
        return None
    deposit = money(to_decimal(raw), order.currency)
    return deposit if 0 < deposit < order.total else None


def plan_invoices(order: OrderPlaced) -> list[InvoiceDraft]:
    """The invoices an order is billed on: one, or a deposit and a balance invoice (presale).

    The deposit invoice carries every line of the order in proportion to deposit / total (see
    ``apportion``; the tax of each share split with the line's rate); the balance invoice carries
    what is left of each line (gross, net and tax), so the two add up line by line to the
    single invoice the order would otherwise get.
    """
    full = draft_invoice(order)
    deposit = deposit_amount(order)
    if deposit is None:
        return [full]
    cur = order.currency
    shares = apportion(deposit, [line.gross for line in full.lines], cur)
    first: list[InvoiceLine] = []
    rest: list[InvoiceLine] = []
    for line, share in zip(full.lines, shares, strict=True):
        net, tax = split_tax(share, line.tax_rate, cur)
        first.append(line.model_copy(update={"gross": share, "net": net, "tax": tax}))
        rest.append(line.model_copy(update={"gross": line.gross - share, "net": line.net - net,
                                            "tax": line.tax - tax}))
    return [_draft("deposit", first, cur), _draft("balance", rest, cur)]


def due_date(order: OrderPlaced, issued_at: datetime) -> date:
    """Invoices on credit fall due ``CREDIT_DAYS`` after issue; the rest on the issue date."""
    on_credit = (order.payment.get("terms") == "net_30"
                 or order.payment.get("method") == "credit_terms")
    issued = issued_at.date()
    return issued + timedelta(days=CREDIT_DAYS) if on_credit else issued


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
