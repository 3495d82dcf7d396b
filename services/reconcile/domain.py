"""The per-order fact sheet every service's events add to, and whether those facts agree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from shared.contract.payloads import (
    InvoiceIssued,
    NotificationSent,
    OrderConfirmed,
    OrderPaid,
    OrderPlaced,
    PaymentRecorded,
    StockReserved,
)
from shared.money import Money, MoneyError

Status = Literal["consistent", "pending"]
CONSISTENT: Status = "consistent"
PENDING: Status = "pending"

# Events that add a fact; everything else is ignored.
FACT_EVENT_TYPES: frozenset[str] = frozenset({
    "order.placed", "order.confirmed", "order.backordered", "order.paid", "order.cancelled",
    "stock.reserved", "invoice.issued", "payment.recorded", "notification.sent",
})


@dataclass(frozen=True, slots=True)
class InvoiceFact:
    voucher_number: str
    total: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class PaymentFact:
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class NotificationFact:
    source_event_type: str
    recipient: str


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the services said about one order, in whatever order they said it.

    Multi-valued facts are kept by their own id (reservation event id, invoice id, payment id,
    notification id), so a fact heard twice is still one fact and arrival order does not matter.
    """

    order_id: str
    placed: bool = False
    confirmed: bool = False
    backordered: bool = False
    paid_flag: bool = False
    cancelled: bool = False
    currency: str | None = None
    order_total: Decimal | None = None
    ordered: Mapping[str, int] = field(default_factory=dict)
    reservations: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    invoices: Mapping[str, InvoiceFact] = field(default_factory=dict)
    payments: Mapping[str, PaymentFact] = field(default_factory=dict)
    notifications: Mapping[str, NotificationFact] = field(default_factory=dict)

    @property
    def reserved(self) -> dict[str, int]:
        """Reserved quantity per SKU, over every reservation."""
        total: dict[str, int] = {}
        for lines in self.reservations.values():
            for sku, quantity in lines.items():
                total[sku] = total.get(sku, 0) + quantity
        return total

    @property
    def invoices_count(self) -> int:
        return len(self.invoices)

    @property
    def invoiced_total(self) -> Decimal:
        return sum((invoice.total for invoice in self.invoices.values()), Decimal(0))

    @property
    def paid_total(self) -> Decimal:
        return sum((payment.amount for payment in self.payments.values()), Decimal(0))

    @property
    def notifications_count(self) -> int:
        return len(self.notifications)

    @property
    def confirmation_notified(self) -> bool:
        """The customer (not staff) was told that the order is confirmed."""
        return any(
            n.source_event_type == "order.confirmed" and n.recipient.startswith("customer:")
            for n in self.notifications.values()
        )


# ---- adding facts ------------------------------------------------------------------------------


def apply_event(facts: OrderFacts, event_id: str, event_type: str, payload: Mapping[str, Any]
                ) -> OrderFacts:
    """The fact sheet after one more event; the same event twice changes nothing."""
    data = dict(payload)
    if event_type == "order.placed":
        placed = OrderPlaced.model_validate(data)
        ordered: dict[str, int] = {}
        for line in placed.lines:
            ordered[line.sku] = ordered.get(line.sku, 0) + line.quantity
        return replace(facts, placed=True, currency=placed.currency, order_total=placed.total,
                       ordered=ordered)
    if event_type == "order.confirmed":
        confirmed = OrderConfirmed.model_validate(data)
        return replace(facts, confirmed=True, currency=facts.currency or confirmed.currency)
    if event_type == "order.backordered":
        return replace(facts, backordered=True)
    if event_type == "order.paid":
        OrderPaid.model_validate(data)
        return replace(facts, paid_flag=True)
    if event_type == "order.cancelled":
        return replace(facts, cancelled=True)
    if event_type == "stock.reserved":
        reserved: dict[str, int] = {}
        for held in StockReserved.model_validate(data).lines:
            reserved[held.sku] = reserved.get(held.sku, 0) + held.quantity
        return replace(facts, reservations={**facts.reservations, event_id: reserved})
    if event_type == "invoice.issued":
        invoice = InvoiceIssued.model_validate(data)
        fact = InvoiceFact(invoice.voucher_number, invoice.total, invoice.currency)
        return replace(facts, invoices={**facts.invoices, invoice.invoice_id: fact})
    if event_type == "payment.recorded":
        payment = PaymentRecorded.model_validate(data)
        paid = PaymentFact(payment.amount, payment.currency)
        return replace(facts, payments={**facts.payments, payment.payment_id: paid})
    if event_type == "notification.sent":
        sent = NotificationSent.model_validate(data)
        note = NotificationFact(sent.source_event_type, sent.recipient)
        return replace(facts, notifications={**facts.notifications, sent.notification_id: note})
    return facts


# ---- judging them ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assessment:
    status: Status
    reasons: tuple[str, ...]


def assess(facts: OrderFacts) -> Assessment:
    """``consistent`` when every service agrees about the order; else ``pending`` with reasons.

    Consistent means: placed, confirmed, reserved == ordered per SKU, exactly one invoice whose
    total is the order total, payments (if any) add up to the invoice with ``order.paid`` seen,
    and the customer was told about the confirmation. Reasons follow the flow, so a missing
    step is named once instead of every consequence of it.
    """
    if not facts.placed:
        return Assessment(PENDING, ("order.placed not seen",))
    if facts.cancelled:
        # Releases, credit notes and refunds of cancelled orders are checked from issue 5 on.
        return Assessment(CONSISTENT, ())
    reasons: list[str] = []
    if not facts.confirmed:
        reasons.append("placed but not confirmed" + (" (backordered)" if facts.backordered else ""))
    if facts.confirmed or facts.reservations:
        reasons += _reservation_reasons(facts)
    if facts.confirmed or facts.invoices:
        reasons += _invoice_reasons(facts)
    reasons += _payment_reasons(facts)
    if facts.confirmed and not facts.confirmation_notified:
        reasons.append("no customer notification of the confirmation")
    return Assessment(PENDING if reasons else CONSISTENT, tuple(reasons))


def _reservation_reasons(facts: OrderFacts) -> list[str]:
    if not facts.reservations:
        return ["confirmed but no stock reserved"]
    reserved = facts.reserved
    return [
        f"reserved {sku} x{reserved.get(sku, 0)} != ordered x{facts.ordered.get(sku, 0)}"
        for sku in sorted(set(reserved) | set(facts.ordered))
        if reserved.get(sku, 0) != facts.ordered.get(sku, 0)
    ]


def _invoice_reasons(facts: OrderFacts) -> list[str]:
    if not facts.invoices:
        return ["confirmed but no invoice"]
    reasons: list[str] = []
    if facts.invoices_count > 1:
        vouchers = ", ".join(sorted(i.voucher_number for i in facts.invoices.values()))
        reasons.append(f"{facts.invoices_count} invoices ({vouchers}) where one is expected")
    currencies = sorted({i.currency for i in facts.invoices.values()} - {facts.currency})
    if currencies:
        reasons.append(f"invoice currency {', '.join(currencies)} != order currency {facts.currency}")
    order_total = facts.order_total if facts.order_total is not None else Decimal(0)
    if facts.invoiced_total != order_total:
        label = "invoice total" if facts.invoices_count == 1 else "invoiced total"
        reasons.append(f"{label} {money(facts.invoiced_total, facts.currency)} "
                       f"!= order total {money(order_total, facts.currency)}")
    return reasons


def _payment_reasons(facts: OrderFacts) -> list[str]:
    if not facts.payments:
        return ["order.paid seen but no payment recorded"] if facts.paid_flag else []
    if not facts.invoices:
        return []  # paying ahead of the invoice is normal; the missing invoice is reported
    paid, invoiced = facts.paid_total, facts.invoiced_total
    if paid != invoiced:
        return [f"paid {money(paid, facts.currency)} != invoiced {money(invoiced, facts.currency)}"]
    if not facts.paid_flag:
        return ["paid in full but no order.paid"]
    return []


def money(amount: Decimal, currency: str | None) -> str:
    """An amount as the decimal string of its currency (``398.00``)."""
    if currency is None:
        return str(amount)
    try:
        return str(Money(amount, currency).amount)
    except MoneyError:
        return str(amount)


def status_since(previous_status: str | None, previous_since: datetime | None, status: Status,
                 now: datetime) -> datetime:
    """When the order entered its current status (kept while it stays; issue 5's grace periods)."""
    if previous_status == status and previous_since is not None:
        return previous_since
    return now
