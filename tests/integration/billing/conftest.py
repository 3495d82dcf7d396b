"""Billing integration fixtures: the service schema and order events as the inbox sees them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing import handlers, store
from shared.clock import Clock, ManualClock
from shared.contract.bank_events import BankLineMatched
from shared.contract.envelope import SYSTEM, Actor, EventEnvelope
from shared.contract.order_events import (
    OrderAmended,
    OrderCancelled,
    OrderReturned,
    OrderShipped,
    ShippedLine,
)
from shared.contract.payloads import (
    OrderConfirmed,
    OrderLine,
    OrderPaymentCaptured,
    OrderPlaced,
    Payload,
    SkuQuantity,
)
from shared.contract.topics import ORDER_EVENTS, RECONCILE_EVENTS
from shared.eventstore import read_stream
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


def placed(order_id: str, total: str = "395.00", **changes: Any) -> EventEnvelope:
    """The CONTRACT.md sample order (395.00 CNY); another ``total`` makes it not add up."""
    return envelope(sample_order(order_id, total).model_copy(update=changes),
                    actor=Actor(kind="storefront", id="tmall"))


def sample_order(order_id: str, total: str = "395.00") -> OrderPlaced:
    return OrderPlaced(
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


def presale_placed(order_id: str, deposit: str = "100.00") -> EventEnvelope:
    """A presale of 2 x PRE-1 at 299.00 (598.00 CNY) with a deposit."""
    return envelope(OrderPlaced(
        order_id=order_id, channel="tmall", channel_order_id=f"TM-{order_id}",
        order_type="presale", submitted_at=START, customer={"id": "C-2002"},
        shipping_address={"country": "CN"},
        lines=[OrderLine(line_no=1, sku="PRE-1", name="console", quantity=2,
                         unit_price=Decimal("299.00"), tax_rate=Decimal("0.13"))],
        shipping_fee=Decimal("0.00"), currency="CNY", subtotal=Decimal("598.00"),
        discount_total=Decimal("0.00"), total=Decimal("598.00"),
        payment={"method": "alipay", "terms": "deposit", "deposit_amount": deposit},
        content_hash="h"))


def confirmed(order_id: str, total: str = "395.00") -> EventEnvelope:
    return envelope(OrderConfirmed(order_id=order_id, total=Decimal(total), currency="CNY"), 3)


def captured(order_id: str, payment_id: str, amount: str, method: str = "alipay",
             kind: str = "full") -> EventEnvelope:
    return envelope(OrderPaymentCaptured(
        order_id=order_id, payment_id=payment_id, method=method, kind=kind,
        amount=Decimal(amount), currency="CNY", captured_at=START), 4)


def amended(order_id: str, request_id: str, x100: int) -> EventEnvelope:
    """The sample order with ``x100`` units of X-100 instead of 2."""
    before = sample_order(order_id)
    lines = [before.lines[0].model_copy(update={"quantity": x100}), before.lines[1]]
    subtotal = Decimal("199.00") * x100
    total = subtotal - before.discount_total + before.shipping_fee

    def snapshot(chosen: list[OrderLine], sub: Decimal, tot: Decimal) -> dict[str, Any]:
        return {"lines": [x.model_dump(mode="json") for x in chosen], "shipping_address": {},
                "subtotal": str(sub), "total": str(tot)}

    return envelope(OrderAmended(
        order_id=order_id, request_id=request_id,
        before=snapshot(list(before.lines), before.subtotal, before.total),
        after=snapshot(lines, subtotal, total), total_before=before.total, total_after=total,
        currency="CNY"), 5)


def shipped(order_id: str, shipment_id: str, *lines: tuple[int, str, int]) -> EventEnvelope:
    return envelope(OrderShipped(
        order_id=order_id, shipment_id=shipment_id, warehouse="WH-SH", carrier="SF",
        tracking_number=f"SF{shipment_id}", complete=False, shipped_at=START,
        lines=[ShippedLine(line_no=n, sku=sku, quantity=q) for n, sku, q in lines]), 6)


def cancelled(order_id: str) -> EventEnvelope:
    return envelope(OrderCancelled(order_id=order_id, reason="customer changed mind",
                                   stage="confirmed", cancelled_by="C-1001"), 7)


def returned(order_id: str, request_id: str, *lines: tuple[str, int]) -> EventEnvelope:
    return envelope(OrderReturned(
        order_id=order_id, request_id=request_id, warehouse="WH-SH", received_at=START,
        lines=[SkuQuantity(sku=sku, quantity=q) for sku, q in lines]), 8)


def bank_matched(order_id: str, transaction_id: str, applied: str,
                 voucher_number: str = "INV-2026-000001", flagged: bool = False) -> EventEnvelope:
    """Reconcile's bank_line.matched: part of a statement line applied to one invoice."""
    matched = BankLineMatched(
        transaction_id=transaction_id, order_id=order_id, voucher_number=voucher_number,
        applied=Decimal(applied), bank_amount=Decimal(applied), currency="CNY",
        booked_on=START.date(), rule="reference", score=Decimal("1.00"),
        tolerance=Decimal("1.00"), window_days=7, flagged=flagged)
    return EventEnvelope(
        event_id=uuid.uuid4(), event_type=matched.event_type, schema_version=1,
        stream_id=f"bank-line:{transaction_id}", stream_version=1, occurred_at=START,
        correlation_id=f"bank-import-{transaction_id}", causation_id=f"bank:{transaction_id}",
        actor=Actor(kind="user", id="fin.clerk", role="finance"), payload=matched.wire())


def incoming(env: EventEnvelope, offset: int = 0) -> Incoming:
    topic = RECONCILE_EVENTS if env.event_type.startswith("bank_line.") else ORDER_EVENTS
    return Incoming.from_envelope(env, topic, offset=offset)


def consumer(engine: AsyncEngine, clock: Clock | None = None) -> IdempotentConsumer:
    """The inbox around billing's handler, as the running service wires it."""
    return IdempotentConsumer(
        name="billing", engine=engine, publisher=None,
        handle=partial(handlers.handle_order_event, clock=clock or ManualClock(START)),
    )


async def deliver(inbox: IdempotentConsumer, *envelopes: EventEnvelope) -> None:
    await inbox.process_incoming([incoming(env, n) for n, env in enumerate(envelopes)])


async def events_of(engine: AsyncEngine, order_id: str) -> list[EventEnvelope]:
    """What billing appended for an order (its outgoing events), in order."""
    async with engine.connect() as conn:
        return [s.envelope for s in await read_stream(conn, order_id)]


async def deliver_thrice(inbox: IdempotentConsumer, env: EventEnvelope) -> None:
    """Deliver, redeliver (the inbox drops it) and send again under a new event id (the
    handler must see it is the same fact)."""
    await deliver(inbox, env)
    await deliver(inbox, env)
    await deliver(inbox, env.model_copy(update={"event_id": uuid.uuid4()}))
