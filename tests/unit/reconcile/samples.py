"""The events of one order through the walking-skeleton flow, built from the contract models.

Shared by the notify and reconcile tests (unit and integration), so both read the same shapes
the other services emit.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import (
    InvoiceIssued,
    InvoiceLine,
    NotificationSent,
    OrderConfirmed,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    Payload,
    PaymentRecorded,
    ReservedLine,
    ShortLine,
    StockReserved,
    StockShortage,
)
from shared.inbox import Incoming

AT = datetime(2026, 11, 21, 0, 0, tzinfo=UTC)
CUSTOMER = {"id": "C-1001", "name": "王芳", "phone": "+8613800138000", "email": "wf@example.com",
            "tier": "regular"}
TOTAL = Decimal("395.00")  # 2 x 199.00 + gift 0.00 - 15.00 discounts + 12.00 shipping


def new_order_id() -> str:
    return "O-" + uuid.uuid4().hex[:16].upper()


def order_placed(order_id: str, customer: dict[str, Any] | None = None) -> OrderPlaced:
    return OrderPlaced(
        order_id=order_id, channel="tmall", channel_order_id=f"TM-{order_id[-6:]}",
        order_type="standard", submitted_at=AT, customer=customer or CUSTOMER,
        shipping_address={"recipient": "王芳", "phone": "+8613800138000", "country": "CN",
                          "city": "杭州市", "line1": "文三路 100 号"},
        lines=[
            OrderLine(line_no=1, sku="X-100", name="Kettle", quantity=2,
                      unit_price=Decimal("199.00"), tax_rate=Decimal("0.13")),
            OrderLine(line_no=2, sku="GIFT-MUG", name="Mug", quantity=1,
                      unit_price=Decimal("0.00"), tax_rate=Decimal("0.13"), gift_bundle="B1"),
        ],
        discounts=[{"kind": "coupon", "code": "NEW10", "amount": "10.00"},
                   {"kind": "points", "points": 500, "amount": "5.00"}],
        shipping_fee=Decimal("12.00"), currency="CNY", subtotal=Decimal("398.00"),
        discount_total=Decimal("15.00"), total=TOTAL,
        payment={"method": "alipay", "terms": "prepaid"}, content_hash="h",
    )


def order_confirmed(order_id: str) -> OrderConfirmed:
    return OrderConfirmed(order_id=order_id, total=TOTAL, currency="CNY")


def stock_reserved(order_id: str, mug: int = 1) -> StockReserved:
    return StockReserved(order_id=order_id, lines=[
        ReservedLine(sku="X-100", warehouse="HZ-1", quantity=2),
        ReservedLine(sku="GIFT-MUG", warehouse="HZ-1", quantity=mug),
    ])


def stock_shortage(order_id: str) -> StockShortage:
    return StockShortage(order_id=order_id, missing=[ShortLine(sku="X-100", requested=2, available=1)])


def invoice_issued(order_id: str, total: Decimal = TOTAL, paid: Decimal = Decimal("0.00"),
                   invoice_id: str | None = None) -> InvoiceIssued:
    return InvoiceIssued(
        order_id=order_id, invoice_id=invoice_id or f"I-{order_id}", voucher_number="INV-2026-000001",
        currency="CNY",
        lines=[InvoiceLine(kind="goods", description="Kettle", sku="X-100", quantity=2,
                           gross=total, net=Decimal("349.56"), tax_rate=Decimal("0.13"),
                           tax=total - Decimal("349.56"))],
        net_total=Decimal("349.56"), tax_total=total - Decimal("349.56"), total=total,
        paid_total=paid, outstanding=total - paid, settled=paid >= total, issued_at=AT,
    )


def payment_recorded(order_id: str, amount: Decimal = TOTAL, payment_id: str = "P-1") -> PaymentRecorded:
    return PaymentRecorded(
        order_id=order_id, payment_id=payment_id, method="alipay", ledger_category="receivable",
        amount=amount, currency="CNY", voucher_number="INV-2026-000001", paid_total=amount,
        outstanding=TOTAL - amount, settled=amount >= TOTAL,
    )


def order_paid(order_id: str, amount: Decimal = TOTAL) -> OrderPaid:
    return OrderPaid(order_id=order_id, paid_amount=amount, currency="CNY",
                     voucher_number="INV-2026-000001")


def confirmation_sent(order_id: str, customer_id: str = "C-1001") -> NotificationSent:
    return NotificationSent(
        order_id=order_id, notification_id=f"N-{order_id}", source_event_id=str(uuid.uuid4()),
        source_event_type="order.confirmed", recipient=f"customer:{customer_id}", channel="inbox",
        subject="Your order is confirmed",
    )


def envelope(payload: Payload, *, stream_id: str | None = None, version: int = 1,
             correlation_id: str = "corr-1") -> EventEnvelope:
    """An envelope as the outbox relay publishes it."""
    return EventEnvelope(
        event_id=uuid.uuid4(), event_type=payload.event_type, schema_version=payload.schema_version,
        stream_id=stream_id or str(getattr(payload, "order_id", "x")), stream_version=version,
        occurred_at=AT, correlation_id=correlation_id, actor=SYSTEM, payload=payload.wire(),
    )


def happy_flow(order_id: str) -> list[EventEnvelope]:
    """Every event a consistent, paid order produces, in flow order."""
    return [
        envelope(order_placed(order_id), version=1),
        envelope(stock_reserved(order_id)),
        envelope(order_confirmed(order_id), version=2),
        envelope(invoice_issued(order_id)),
        envelope(payment_recorded(order_id)),
        envelope(order_paid(order_id), version=3),
        envelope(confirmation_sent(order_id)),
    ]


TOPIC_BY_PREFIX = {
    "order.": "oms.order.events.v1",
    "stock.": "oms.inventory.events.v1",
    "invoice.": "oms.billing.events.v1",
    "payment.": "oms.billing.events.v1",
    "notification.": "oms.notify.events.v1",
    "revenue.": "oms.billing.events.v1",
    "credit_note.": "oms.billing.events.v1",
    "refund.": "oms.billing.events.v1",
}


def topic_of(event: EventEnvelope) -> str:
    """The topic the producing service's relay publishes this event type to."""
    return next(t for prefix, t in TOPIC_BY_PREFIX.items() if event.event_type.startswith(prefix))


def incoming(event: EventEnvelope, offset: int = 0) -> Incoming:
    """The message a consumer gets for ``event``, as ``incoming_from_record`` decodes it."""
    return Incoming.from_envelope(event, topic_of(event), offset=offset)
