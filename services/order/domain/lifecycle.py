"""The order aggregate: state folded from its events, and decisions that return new events."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.contract.payloads import (
    OrderBackordered,
    OrderConfirmed,
    OrderPaid,
    OrderPaymentCaptured,
    OrderPlaced,
    Payload,
    SkuQuantity,
)
from shared.contract.storefront import PaymentCaptured


def order_id_for(channel: str, channel_order_id: str) -> str:
    """Deterministic: the same storefront order always maps to the same stream (duplicates collide)."""
    digest = hashlib.sha256(f"{channel}:{channel_order_id}".encode()).hexdigest()
    return "O-" + digest[:16].upper()


def content_hash(message: dict[str, Any]) -> str:
    canonical = json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IllegalTransition(Exception):
    def __init__(self, action: str, status: str, allowed: tuple[str, ...]) -> None:
        options = ", ".join(allowed) or "none"
        super().__init__(f"cannot {action} an order that is {status}; allowed: {options}")
        self.action = action
        self.status = status
        self.allowed = allowed


@dataclass(frozen=True, slots=True)
class OrderState:
    order_id: str
    version: int = 0
    status: str = "new"
    channel: str = ""
    channel_order_id: str = ""
    currency: str = ""
    total: Decimal = Decimal(0)
    content_hash: str = ""
    payment_ids: frozenset[str] = field(default_factory=frozenset)
    captured_total: Decimal = Decimal(0)
    paid: bool = False
    placed: OrderPlaced | None = None

    @property
    def exists(self) -> bool:
        return self.version > 0


# Which actions each status allows (grows with issue 3's full lifecycle).
ALLOWED: dict[str, tuple[str, ...]] = {
    "new": ("place",),
    "placed": ("confirm", "backorder", "capture_payment"),
    "backordered": ("confirm", "capture_payment"),
    "confirmed": ("capture_payment", "mark_paid"),
    "paid": ("capture_payment",),
}


def evolve(state: OrderState, event_type: str, payload: dict[str, Any], version: int) -> OrderState:
    """Apply one stored event to the state (events are facts: never refused here)."""
    state = replace(state, version=version)
    if event_type == "order.placed":
        placed = OrderPlaced.model_validate(payload)
        return replace(state, status="placed", channel=placed.channel,
                       channel_order_id=placed.channel_order_id, currency=placed.currency,
                       total=placed.total, content_hash=placed.content_hash, placed=placed)
    if event_type == "order.backordered":
        return replace(state, status="backordered")
    if event_type == "order.confirmed":
        return replace(state, status="confirmed" if not state.paid else state.status)
    if event_type == "order.payment_captured":
        captured = OrderPaymentCaptured.model_validate(payload)
        return replace(state, payment_ids=state.payment_ids | {captured.payment_id},
                       captured_total=state.captured_total + captured.amount)
    if event_type == "order.paid":
        return replace(state, status="paid", paid=True)
    return state


def fold(order_id: str, events: list[tuple[str, dict[str, Any], int]]) -> OrderState:
    state = OrderState(order_id)
    for event_type, payload, version in events:
        state = evolve(state, event_type, payload, version)
    return state


def _require(state: OrderState, action: str) -> None:
    allowed = ALLOWED.get(state.status, ())
    if action not in allowed:
        raise IllegalTransition(action, state.status, allowed)


def place(state: OrderState, placed: OrderPlaced) -> list[Payload]:
    _require(state, "place")
    return [placed]


def on_stock_reserved(state: OrderState, reservation_event_id: str) -> list[Payload]:
    if state.status not in ("placed", "backordered"):
        return []  # already confirmed (a redelivered or second reservation changes nothing)
    return [OrderConfirmed(order_id=state.order_id, total=state.total, currency=state.currency,
                           reservation_event_id=reservation_event_id)]


def on_stock_shortage(state: OrderState, missing: list[SkuQuantity]) -> list[Payload]:
    if state.status != "placed":
        return []
    return [OrderBackordered(order_id=state.order_id, missing=missing)]


def capture_payment(state: OrderState, payment: PaymentCaptured, currency: str) -> list[Payload]:
    _require(state, "capture_payment")
    if payment.payment_id in state.payment_ids:
        return []
    return [OrderPaymentCaptured(order_id=state.order_id, payment_id=payment.payment_id,
                                 method=payment.method, kind=payment.kind, amount=payment.amount,
                                 currency=currency, captured_at=payment.captured_at)]


def on_settled(state: OrderState, paid_amount: Decimal, voucher_number: str | None) -> list[Payload]:
    """Billing says the invoice is fully paid: the order is paid (once)."""
    if state.paid or state.status not in ("confirmed",):
        return []
    return [OrderPaid(order_id=state.order_id, paid_amount=paid_amount, currency=state.currency,
                      voucher_number=voucher_number)]


def placed_from(order_id: str, accepted_message: Any, lines: Any, subtotal: Decimal,
                discount_total: Decimal, total: Decimal, digest: str, submitted_at: datetime
                ) -> OrderPlaced:
    m = accepted_message
    return OrderPlaced(
        order_id=order_id, channel=m.channel, channel_order_id=m.channel_order_id,
        order_type=m.order_type, submitted_at=submitted_at,
        customer=m.customer.model_dump(mode="json", exclude_none=True),
        shipping_address=m.shipping_address.model_dump(mode="json", exclude_none=True),
        lines=lines, discounts=[d.model_dump(mode="json", exclude_none=True) for d in m.discounts],
        shipping_fee=m.shipping_fee, currency=m.currency, subtotal=subtotal,
        discount_total=discount_total, total=total,
        payment=m.payment.model_dump(mode="json", exclude_none=True), salesperson=m.salesperson,
        content_hash=digest,
    )
