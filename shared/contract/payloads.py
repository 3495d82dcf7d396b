"""Payload models of the event vocabulary, each with its ``schema_version``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

REGISTRY: dict[str, type[Payload]] = {}


class Payload(BaseModel):
    """Base of every event payload. Consumers ignore fields they do not know (forward compatible)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:  # a concrete event payload: one model per event type
            REGISTRY[cls.event_type] = cls

    def wire(self) -> dict[str, Any]:
        """JSON-ready dict: Decimals as strings, instants as ISO 8601 (no floats ever)."""
        return self.model_dump(mode="json", exclude_none=True)


# ---- order -------------------------------------------------------------------------------


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    line_no: int
    sku: str
    name: str = ""
    quantity: int
    unit_price: Decimal
    tax_rate: Decimal = Decimal("0")
    gift_bundle: str | None = None
    hs_code: str | None = None
    declared_value: Decimal | None = None


class SkuQuantity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str
    quantity: int


class OrderPlaced(Payload):
    event_type = "order.placed"
    schema_version = 2  # v1 (tier at the top, lines priced as "price") upcast on read

    order_id: str
    channel: str
    channel_order_id: str
    order_type: str
    submitted_at: datetime
    customer: dict[str, Any]
    shipping_address: dict[str, Any]
    lines: list[OrderLine]
    discounts: list[dict[str, Any]] = Field(default_factory=list)
    shipping_fee: Decimal
    currency: str
    subtotal: Decimal
    discount_total: Decimal
    total: Decimal
    payment: dict[str, Any]
    salesperson: str | None = None
    content_hash: str
    flags: list[str] = Field(default_factory=list)
    customs: dict[str, Any] | None = None
    group_buy: dict[str, Any] | None = None


class OrderConfirmed(Payload):
    event_type = "order.confirmed"

    order_id: str
    total: Decimal
    currency: str
    reservation_event_id: str | None = None


class OrderBackordered(Payload):
    event_type = "order.backordered"

    order_id: str
    missing: list[SkuQuantity]


class OrderPaymentCaptured(Payload):
    """A storefront's captured payment, accepted into the order's log (added to the vocabulary)."""

    event_type = "order.payment_captured"

    order_id: str
    payment_id: str
    method: str
    kind: Literal["full", "deposit", "balance"]
    amount: Decimal
    currency: str
    captured_at: datetime


class OrderPaid(Payload):
    event_type = "order.paid"

    order_id: str
    paid_amount: Decimal
    currency: str
    voucher_number: str | None = None


class RejectionReason(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    field: str
    code: str
    message: str
    suggestion: str | None = None


class SubmissionRejected(Payload):
    event_type = "submission.rejected"

    message_type: str | None = None
    channel: str | None = None
    channel_order_id: str | None = None
    message: Any = None
    reasons: list[RejectionReason]


# ---- inventory ---------------------------------------------------------------------------


class ReservedLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str
    warehouse: str
    quantity: int


class ShortLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    sku: str
    requested: int
    available: int


class StockReserved(Payload):
    event_type = "stock.reserved"

    order_id: str
    lines: list[ReservedLine]


class StockShortage(Payload):
    event_type = "stock.shortage"

    order_id: str
    missing: list[ShortLine]


class StockReceived(Payload):
    event_type = "stock.received"

    sku: str
    warehouse: str
    quantity: int
    on_hand: int
    reason: str | None = None


# ---- billing -----------------------------------------------------------------------------


class InvoiceLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["goods", "discount", "shipping"]
    description: str
    sku: str | None = None
    quantity: int = 1
    gross: Decimal
    net: Decimal
    tax_rate: Decimal
    tax: Decimal


class InvoiceIssued(Payload):
    event_type = "invoice.issued"

    order_id: str
    invoice_id: str
    voucher_number: str
    currency: str
    lines: list[InvoiceLine]
    net_total: Decimal
    tax_total: Decimal
    total: Decimal
    paid_total: Decimal
    outstanding: Decimal
    settled: bool
    issued_at: datetime


class PaymentRecorded(Payload):
    event_type = "payment.recorded"

    order_id: str
    payment_id: str
    method: str
    ledger_category: str
    amount: Decimal
    currency: str
    voucher_number: str | None = None
    paid_total: Decimal
    outstanding: Decimal | None = None
    settled: bool


# ---- notify ------------------------------------------------------------------------------


class NotificationSent(Payload):
    event_type = "notification.sent"

    order_id: str | None = None
    notification_id: str
    source_event_id: str
    source_event_type: str
    recipient: str
    channel: str
    subject: str


class NotificationFailed(Payload):
    event_type = "notification.failed"

    order_id: str | None = None
    notification_id: str
    source_event_id: str
    source_event_type: str
    recipient: str
    channel: str
    reason: str


# ---- reconcile ---------------------------------------------------------------------------


class DiscrepancyDetected(Payload):
    event_type = "discrepancy.detected"

    order_id: str
    kind: str
    expected: str
    actual: str
    since: datetime


class DiscrepancyResolved(Payload):
    event_type = "discrepancy.resolved"

    order_id: str
    kind: str
    resolved_at: datetime


def parse_payload(event_type: str, payload: dict[str, Any]) -> Payload:
    """The typed payload of an event; KeyError for an event type this contract does not know."""
    return REGISTRY[event_type].model_validate(payload)


# The order lifecycle's, the follow-up facts' and the bank matching's payloads live in their own
# modules; importing them registers them.
from shared.contract import bank_events as _bank_events  # noqa: E402
from shared.contract import fulfilment_events as _fulfilment_events  # noqa: E402
from shared.contract import order_events as _order_events  # noqa: E402

assert _order_events and _fulfilment_events and _bank_events
