"""Billing integration fixtures: the service schema and order events as the inbox sees them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing import handlers, store
from shared.clock import Clock, ManualClock
from shared.contract.envelope import SYSTEM, Actor, EventEnvelope
from shared.contract.payloads import (
    OrderConfirmed,
    OrderLine,
    OrderPaymentCaptured,
    OrderPlaced,
    Payload,
)
from shared.contract.topics import ORDER_EVENTS
from shared.inbox import IdempotentConsumer, Incoming
from shared.service import prepare_database

START = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def billing_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = await prepare_database(database_url, store.create_schema)
    yield eng
    await eng.dispose()


def envelope(payload: Payload, version: int = 1, actor: Actor = SYSTEM) -> EventEnvelope:
    order_id = payload.order_id  # type: ignore[attr-defined]
    return EventEnvelope(
        event_id=uuid.uuid4(), event_type=payload.event_type, schema_version=1,
        stream_id=order_id, stream_version=version, occurred_at=START,
        correlation_id=f"corr-{order_id}", actor=actor, payload=payload.wire(),
    )


def placed(order_id: str, total: str = "395.00") -> EventEnvelope:
    """The CONTRACT.md sample order (395.00 CNY); another ``total`` makes it not add up."""
    payload = OrderPlaced(
        order_id=order_id, channel="tmall", channel_order_id=f"TM-{order_id}",
        order_type="standard", submitted_at=START, customer={"id": "C-1001", "name": "王芳"},
        shipping_address={"country": "CN"},
        lines=[OrderLine(line_no=1, sku="X-100", name="phone", quantity=2,
                         unit_price=Decimal("199.00"), tax_rate=Decimal("0.13")),
               OrderLine(line_no=2, sku="GIFT-MUG", name="mug", quantity=1,
                         unit_price=Decimal("0.00"), tax_rate=Decimal("0.13"), gift_bundle="B1")],
        discounts=[{"kind": "coupon", "code": "NEW10", "amount": "10.00"},
                   {"kind": "points", "points": 500, "amount": "5.00"}],
        shipping_fee=Decimal("12.00"), currency="CNY", subtotal=Decimal("398.00"),
        discount_total=Decimal("15.00"), total=Decimal(total),
        payment={"method": "alipay", "terms": "prepaid"}, content_hash="h",
    )
    return envelope(payload, actor=Actor(kind="storefront", id="tmall"))


def confirmed(order_id: str, total: str = "395.00") -> EventEnvelope:
    return envelope(OrderConfirmed(order_id=order_id, total=Decimal(total), currency="CNY"), 3)


def captured(order_id: str, payment_id: str, amount: str, method: str = "alipay"
             ) -> EventEnvelope:
    return envelope(OrderPaymentCaptured(
        order_id=order_id, payment_id=payment_id, method=method, kind="full",
        amount=Decimal(amount), currency="CNY", captured_at=START), 4)


def incoming(env: EventEnvelope, offset: int = 0) -> Incoming:
    return Incoming.from_envelope(env, ORDER_EVENTS, offset=offset)


def consumer(engine: AsyncEngine, clock: Clock | None = None) -> IdempotentConsumer:
    """The inbox around billing's handler, as the running service wires it."""
    return IdempotentConsumer(
        name="billing", engine=engine, publisher=None,
        handle=partial(handlers.handle_order_event, clock=clock or ManualClock(START)),
    )


async def deliver(inbox: IdempotentConsumer, *envelopes: EventEnvelope) -> None:
    await inbox.process_incoming([incoming(env, n) for n, env in enumerate(envelopes)])
