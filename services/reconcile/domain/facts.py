"""The per-order fact sheet: what every service said about one order, in any arrival order."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

Quantities = Mapping[str, int]  # {sku: units}

@dataclass(frozen=True, slots=True)
class Amendment:
    """One applied amendment; the one with the highest stream version is the order as it stands."""

    version: int
    total: Decimal
    ordered: Quantities | None  # None: the amendment did not restate the lines
    raised: bool = False  # it raised the total: an order.paid before it no longer holds


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
    paid_flag: bool = False  # an order.paid was seen
    paid_version: int = 0  # the highest stream version of an order.paid (0: unknown or none)
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
    def paid(self) -> bool:
        """The order service says the order is paid as it stands: an order.paid after the last
        amendment that raised the total (the order service folds it so: paid again once billing
        settles the new total). Whatever the arrival order."""
        reopened = max((a.version for a in self.amendments.values() if a.raised), default=0)
        return self.paid_flag and self.paid_version >= reopened

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
