"""The per-order fact sheet: what every service said about one order, in any arrival order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from shared.contract.fulfilment_events import (
    CreditNoteIssued,
    InvoiceVoided,
    RefundIssued,
    RevenueRecognized,
    StockDeducted,
    StockReleased,
)
from shared.contract.order_events import OrderAmended, OrderReturned, OrderShipped
from shared.contract.payloads import (
    InvoiceIssued,
    NotificationFailed,
    NotificationSent,
    OrderConfirmed,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    PaymentRecorded,
    StockReserved,
)

Quantities = Mapping[str, int]  # {sku: units}

# Events that add a fact; everything else is ignored.
FACT_EVENT_TYPES: frozenset[str] = frozenset({
    "order.placed", "order.confirmed", "order.backordered", "order.amended", "order.deposit_paid",
    "order.paid", "order.shipped", "order.delivered", "order.cancelled", "order.returned",
    "stock.reserved", "stock.released", "stock.deducted",
    "invoice.issued", "invoice.voided", "payment.recorded", "revenue.recognized",
    "credit_note.issued", "refund.issued",
    "notification.sent", "notification.failed",
})


@dataclass(frozen=True, slots=True)
class Amendment:
    """One applied amendment; the one with the highest stream version is the order as it stands."""

    version: int
    total: Decimal
    ordered: Quantities | None  # None: the amendment did not restate the lines


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
class DeductionFact:
    shipment_id: str
    lines: Quantities


@dataclass(frozen=True, slots=True)
class CreditNoteFact:
    voucher_number: str
    reason: str
    total: Decimal
    revenue_reversed: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class RefundFact:
    amount: Decimal
    credit_note_voucher_number: str | None = None


@dataclass(frozen=True, slots=True)
class NotificationFact:
    source_event_type: str
    recipient: str
    failure: str | None = None  # notification.failed: why


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What the services said about one order, in whatever order they said it.

    Multi-valued facts are kept by their own id (event id, invoice id, payment id, shipment id,
    credit note id, refund id, notification id), so a fact heard twice is still one fact and the
    order of arrival does not matter; amendments are ordered by the order stream's version.
    """

    order_id: str
    placed: bool = False
    order_type: str | None = None
    currency: str | None = None
    order_total: Decimal | None = None
    ordered: Quantities = field(default_factory=dict)
    confirmed: bool = False
    backordered: bool = False
    deposit_paid: bool = False
    paid_flag: bool = False
    delivered: bool = False
    cancelled: bool = False
    amendments: Mapping[str, Amendment] = field(default_factory=dict)  # by request id
    shipments: Mapping[str, Quantities] = field(default_factory=dict)  # by shipment id
    returns: Mapping[str, Quantities] = field(default_factory=dict)  # received, by request id
    reservations: Mapping[str, Quantities] = field(default_factory=dict)  # by event id
    releases: Mapping[str, Quantities] = field(default_factory=dict)  # by event id
    deductions: Mapping[str, DeductionFact] = field(default_factory=dict)  # by event id
    invoices: Mapping[str, InvoiceFact] = field(default_factory=dict)  # by invoice id
    voided: Mapping[str, Decimal] = field(default_factory=dict)  # invoice id -> voided total
    payments: Mapping[str, PaymentFact] = field(default_factory=dict)  # by payment id
    revenue: Mapping[str, Decimal] = field(default_factory=dict)  # shipment id -> recognised net
    credit_notes: Mapping[str, CreditNoteFact] = field(default_factory=dict)  # by credit note id
    refunds: Mapping[str, RefundFact] = field(default_factory=dict)  # by refund id
    notifications: Mapping[str, NotificationFact] = field(default_factory=dict)  # sent, by id
    failed_notifications: Mapping[str, NotificationFact] = field(default_factory=dict)

    # ---- the order as it stands ----

    @property
    def latest_amendment(self) -> Amendment | None:
        if not self.amendments:
            return None
        request_id = max(self.amendments, key=lambda r: (self.amendments[r].version, r))
        return self.amendments[request_id]

    @property
    def amended(self) -> bool:
        return bool(self.amendments)

    @property
    def current_total(self) -> Decimal | None:
        """The order total after the latest amendment (``total_after``), else as placed."""
        latest = self.latest_amendment
        return latest.total if latest is not None else self.order_total

    @property
    def current_ordered(self) -> dict[str, int]:
        """Ordered units per SKU after the latest amendment that restated the lines."""
        restated = [a for a in self.amendments.values() if a.ordered is not None]
        if not restated:
            return dict(self.ordered)
        return dict(max(restated, key=lambda a: a.version).ordered or {})

    @property
    def presale(self) -> bool:
        return self.order_type == "presale"

    # ---- stock ----

    @property
    def reserved(self) -> dict[str, int]:
        """Reserved units per SKU over every reservation (before releases and deductions)."""
        return add_up(self.reservations.values())

    @property
    def released(self) -> dict[str, int]:
        return add_up(self.releases.values())

    @property
    def deducted(self) -> dict[str, int]:
        return add_up(d.lines for d in self.deductions.values())

    @property
    def held(self) -> dict[str, int]:
        """Units still reserved: reserved - released - deducted, per SKU."""
        reserved, released, deducted = self.reserved, self.released, self.deducted
        return {sku: reserved.get(sku, 0) - released.get(sku, 0) - deducted.get(sku, 0)
                for sku in sorted(set(reserved) | set(released) | set(deducted))}

    @property
    def shipped(self) -> dict[str, int]:
        return add_up(self.shipments.values())

    @property
    def deducted_shipments(self) -> frozenset[str]:
        return frozenset(d.shipment_id for d in self.deductions.values())

    # ---- money ----

    @property
    def live_invoices(self) -> dict[str, InvoiceFact]:
        """Issued and not voided."""
        return {k: i for k, i in self.invoices.items() if k not in self.voided}

    @property
    def invoices_count(self) -> int:
        return len(self.invoices)

    @property
    def invoiced_total(self) -> Decimal:
        """What the live invoices ask for."""
        return sum((i.total for i in self.live_invoices.values()), Decimal(0))

    def credited(self, *reasons: str) -> Decimal:
        """Credit notes with one of ``reasons`` (all but overpayments when none given)."""
        return sum((c.total for c in self.credit_notes.values()
                    if (c.reason in reasons if reasons else c.reason != "overpaid")), Decimal(0))

    @property
    def net_invoiced(self) -> Decimal:
        """What the customer owes for the goods: live invoices minus credit notes (not overpaid)."""
        return self.invoiced_total - self.credited()

    @property
    def paid_total(self) -> Decimal:
        return sum((p.amount for p in self.payments.values()), Decimal(0))

    @property
    def refunded_total(self) -> Decimal:
        return sum((r.amount for r in self.refunds.values()), Decimal(0))

    @property
    def net_paid(self) -> Decimal:
        """Payments kept for the order: payments minus refunds, minus overpayments set aside as
        customer credit (an overpaid credit note); refunding that credit changes nothing more."""
        overpaid = {c.voucher_number for c in self.credit_notes.values() if c.reason == "overpaid"}
        refunded = sum((r.amount for r in self.refunds.values()
                        if r.credit_note_voucher_number not in overpaid), Decimal(0))
        return self.paid_total - self.credited("overpaid") - refunded

    @property
    def recognised_net(self) -> Decimal:
        return sum(self.revenue.values(), Decimal(0))

    # ---- notifications ----

    @property
    def notifications_count(self) -> int:
        return len(self.notifications)

    @property
    def confirmation_notified(self) -> bool:
        """The customer (not staff) was told that the order is confirmed."""
        return any(n.source_event_type == "order.confirmed" and n.recipient.startswith("customer:")
                   for n in self.notifications.values())

    @property
    def confirmation_failures(self) -> list[str]:
        return sorted(n.failure or "" for n in self.failed_notifications.values()
                      if n.source_event_type == "order.confirmed"
                      and n.recipient.startswith("customer:"))


def add_up(parts: Iterable[Quantities]) -> dict[str, int]:
    total: dict[str, int] = {}
    for lines in parts:
        for sku, quantity in lines.items():
            total[sku] = total.get(sku, 0) + quantity
    return total


def _per_sku(lines: Iterable[Any]) -> dict[str, int]:
    return add_up({line.sku: line.quantity} for line in lines)


# ---- adding facts ------------------------------------------------------------------------------


def apply_event(facts: OrderFacts, event_id: str, event_type: str, payload: Mapping[str, Any],
                stream_version: int = 0) -> OrderFacts:
    """The fact sheet after one more event; the same event twice changes nothing.

    ``stream_version`` is the order stream's version of an order event (orders amendments).
    """
    data = dict(payload)
    apply = _APPLY.get(event_type)
    return facts if apply is None else apply(facts, event_id, data, stream_version)


def _placed(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    placed = OrderPlaced.model_validate(data)
    return replace(facts, placed=True, order_type=placed.order_type, currency=placed.currency,
                   order_total=placed.total, ordered=_per_sku(placed.lines))


def _confirmed(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    confirmed = OrderConfirmed.model_validate(data)
    return replace(facts, confirmed=True, currency=facts.currency or confirmed.currency)


def _amended(facts: OrderFacts, _: str, data: dict[str, Any], version: int) -> OrderFacts:
    amended = OrderAmended.model_validate(data)
    raw_lines = amended.after.get("lines")
    ordered = (_per_sku(OrderLine.model_validate(x) for x in raw_lines)
               if isinstance(raw_lines, list) else None)
    fact = Amendment(version=version, total=amended.total_after, ordered=ordered)
    return replace(facts, amendments={**facts.amendments, amended.request_id: fact})


def _paid(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    OrderPaid.model_validate(data)
    return replace(facts, paid_flag=True)


def _shipped(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    shipped = OrderShipped.model_validate(data)
    return replace(facts, shipments={**facts.shipments, shipped.shipment_id: _per_sku(shipped.lines)})


def _returned(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    returned = OrderReturned.model_validate(data)
    return replace(facts, returns={**facts.returns, returned.request_id: _per_sku(returned.lines)})


def _reserved(facts: OrderFacts, event_id: str, data: dict[str, Any], _: int) -> OrderFacts:
    lines = _per_sku(StockReserved.model_validate(data).lines)
    return replace(facts, reservations={**facts.reservations, event_id: lines})


def _released(facts: OrderFacts, event_id: str, data: dict[str, Any], _: int) -> OrderFacts:
    lines = _per_sku(StockReleased.model_validate(data).lines)
    return replace(facts, releases={**facts.releases, event_id: lines})


def _deducted(facts: OrderFacts, event_id: str, data: dict[str, Any], _: int) -> OrderFacts:
    deducted = StockDeducted.model_validate(data)
    fact = DeductionFact(deducted.shipment_id, _per_sku(deducted.lines))
    return replace(facts, deductions={**facts.deductions, event_id: fact})


def _invoiced(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    invoice = InvoiceIssued.model_validate(data)
    fact = InvoiceFact(invoice.voucher_number, invoice.total, invoice.currency)
    return replace(facts, invoices={**facts.invoices, invoice.invoice_id: fact})


def _voided(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    voided = InvoiceVoided.model_validate(data)
    return replace(facts, voided={**facts.voided, voided.invoice_id: voided.total})


def _payment(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    payment = PaymentRecorded.model_validate(data)
    fact = PaymentFact(payment.amount, payment.currency)
    return replace(facts, payments={**facts.payments, payment.payment_id: fact})


def _revenue(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    revenue = RevenueRecognized.model_validate(data)
    return replace(facts, revenue={**facts.revenue, revenue.shipment_id: revenue.net})


def _credit_note(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    note = CreditNoteIssued.model_validate(data)
    fact = CreditNoteFact(note.voucher_number, note.reason, note.total, note.revenue_reversed)
    return replace(facts, credit_notes={**facts.credit_notes, note.credit_note_id: fact})


def _refund(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    refund = RefundIssued.model_validate(data)
    fact = RefundFact(refund.amount, refund.credit_note_voucher_number)
    return replace(facts, refunds={**facts.refunds, refund.refund_id: fact})


def _notified(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    sent = NotificationSent.model_validate(data)
    note = NotificationFact(sent.source_event_type, sent.recipient)
    return replace(facts, notifications={**facts.notifications, sent.notification_id: note})


def _notification_failed(facts: OrderFacts, _: str, data: dict[str, Any], __: int) -> OrderFacts:
    failed = NotificationFailed.model_validate(data)
    note = NotificationFact(failed.source_event_type, failed.recipient, failed.reason)
    return replace(facts, failed_notifications={**facts.failed_notifications,
                                                failed.notification_id: note})


Apply = Callable[[OrderFacts, str, dict[str, Any], int], OrderFacts]


def _flag(name: str) -> Apply:
    def apply(facts: OrderFacts, _: str, __: dict[str, Any], ___: int) -> OrderFacts:
        return replace(facts, **{name: True})

    return apply


_APPLY: dict[str, Apply] = {
    "order.placed": _placed,
    "order.confirmed": _confirmed,
    "order.backordered": _flag("backordered"),
    "order.amended": _amended,
    "order.deposit_paid": _flag("deposit_paid"),
    "order.paid": _paid,
    "order.shipped": _shipped,
    "order.delivered": _flag("delivered"),
    "order.cancelled": _flag("cancelled"),
    "order.returned": _returned,
    "stock.reserved": _reserved,
    "stock.released": _released,
    "stock.deducted": _deducted,
    "invoice.issued": _invoiced,
    "invoice.voided": _voided,
    "payment.recorded": _payment,
    "revenue.recognized": _revenue,
    "credit_note.issued": _credit_note,
    "refund.issued": _refund,
    "notification.sent": _notified,
    "notification.failed": _notification_failed,
}
assert set(_APPLY) == FACT_EVENT_TYPES
