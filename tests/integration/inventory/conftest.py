"""Inventory integration fixtures: the service schema and order events as the inbox sees them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inventory import handlers, store, views
from shared.clock import ManualClock
from shared.contract.envelope import Actor, EventEnvelope
from shared.contract.order_events import (
    OrderAmended,
    OrderCancelled,
    OrderDepositPaid,
    OrderReturned,
    OrderShipped,
    ShippedLine,
)
from shared.contract.payloads import OrderLine, OrderPlaced, Payload, SkuQuantity, StockReceived
from shared.contract.topics import ORDER_EVENTS
from shared.eventstore import read_stream
from shared.inbox import IdempotentConsumer, Incoming
from shared.service import prepare_database

START = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def inventory_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = await prepare_database(database_url, store.create_schema)
    yield eng
    await eng.dispose()


def placed(order_id: str, lines: list[tuple[str, int] | tuple[str, int, str]],
           order_type: str = "standard") -> EventEnvelope:
    """An order.placed envelope as the order service appends it: (sku, quantity[, bundle])."""
    payload = OrderPlaced(
        order_id=order_id, channel="tmall", channel_order_id=f"TM-{order_id}",
        order_type=order_type, submitted_at=START, customer={"id": "C-1"},
        shipping_address={"country": "CN"},
        lines=[OrderLine(line_no=n, sku=line[0], quantity=line[1], unit_price=Decimal("10.00"),
                         tax_rate=Decimal("0.13"), gift_bundle=line[2] if len(line) > 2 else None)
               for n, line in enumerate(lines, start=1)],
        shipping_fee=Decimal("0.00"), currency="CNY", subtotal=Decimal("0.00"),
        discount_total=Decimal("0.00"), total=Decimal("0.00"),
        payment={"method": "alipay", "terms": "prepaid"}, content_hash="h",
    )
    return EventEnvelope(
        event_id=uuid.uuid4(), event_type=payload.event_type, schema_version=1,
        stream_id=order_id, stream_version=1, occurred_at=START,
        correlation_id=f"corr-{order_id}", actor=Actor(kind="storefront", id="tmall"),
        payload=payload.wire(),
    )


_versions: dict[str, int] = {}


def order_event(payload: Payload) -> EventEnvelope:
    """A later event of an order's stream (deposit, amendment, cancellation, shipment, return)."""
    order_id = payload.order_id  # type: ignore[attr-defined]
    _versions[order_id] = _versions.get(order_id, 1) + 1
    return EventEnvelope(
        event_id=uuid.uuid4(), event_type=payload.event_type, schema_version=1,
        stream_id=order_id, stream_version=_versions[order_id], occurred_at=START,
        correlation_id=f"corr-{order_id}", actor=Actor(kind="user", id="ops", role="admin"),
        payload=payload.wire(),
    )


def deposit_paid(order_id: str) -> EventEnvelope:
    return order_event(OrderDepositPaid(order_id=order_id, deposit_amount=Decimal("10.00"),
                                        paid_amount=Decimal("10.00"), currency="CNY"))


def cancelled(order_id: str, reason: str = "customer asked") -> EventEnvelope:
    return order_event(OrderCancelled(order_id=order_id, reason=reason, stage="confirmed",
                                      cancelled_by="ops"))


def amended(order_id: str, request_id: str, before: list[tuple[str, int]],
            after: list[tuple[str, int]]) -> EventEnvelope:
    """order.amended with before/after line snapshots and the per-SKU delta, as the order service
    computes them."""
    def snapshot(lines: list[tuple[str, int]]) -> dict[str, Any]:
        return {"lines": [{"line_no": n, "sku": sku, "quantity": qty, "unit_price": "10.00"}
                          for n, (sku, qty) in enumerate(lines, start=1)]}
    delta: dict[str, int] = {}
    for sku, qty in before:
        delta[sku] = delta.get(sku, 0) - qty
    for sku, qty in after:
        delta[sku] = delta.get(sku, 0) + qty
    return order_event(OrderAmended(
        order_id=order_id, request_id=request_id, before=snapshot(before), after=snapshot(after),
        lines_delta=[SkuQuantity(sku=k, quantity=v) for k, v in sorted(delta.items()) if v],
        total_before=Decimal("0"), total_after=Decimal("0"), currency="CNY"))


def shipped(order_id: str, shipment_id: str, warehouse: str, lines: list[tuple[str, int]],
            complete: bool = False) -> EventEnvelope:
    return order_event(OrderShipped(
        order_id=order_id, shipment_id=shipment_id, warehouse=warehouse, carrier="SF",
        tracking_number=f"SF{shipment_id}", complete=complete, shipped_at=START,
        lines=[ShippedLine(line_no=n, sku=sku, quantity=qty)
               for n, (sku, qty) in enumerate(lines, start=1)]))


def returned(order_id: str, request_id: str, warehouse: str,
             lines: list[tuple[str, int]]) -> EventEnvelope:
    return order_event(OrderReturned(
        order_id=order_id, request_id=request_id, warehouse=warehouse, received_at=START,
        lines=[SkuQuantity(sku=sku, quantity=qty) for sku, qty in lines]))


def incoming(envelope: EventEnvelope, offset: int = 0) -> Incoming:
    return Incoming.from_envelope(envelope, ORDER_EVENTS, offset=offset)


def consumer(engine: AsyncEngine, clock: ManualClock | None = None,
             thresholds: dict[str, int] | None = None) -> IdempotentConsumer:
    """The inbox around inventory's handler, as the running service wires it."""
    return IdempotentConsumer(
        name="inventory", engine=engine, publisher=None,
        handle=partial(handlers.handle_order_event, clock=clock or ManualClock(START),
                       thresholds=thresholds or {}),
    )


CLERK = Actor(kind="user", id="wang.warehouse", role="warehouse")


async def receive(engine: AsyncEngine, sku: str, warehouse: str, quantity: int,
                  reason: str | None = None, thresholds: dict[str, int] | None = None
                  ) -> tuple[StockReceived, str]:
    """A receipt as POST /stock/receipts makes it."""
    return await handlers.receive_stock(
        engine, handlers.Receipt(sku, warehouse, quantity, reason), actor=CLERK,
        correlation_id="c-r", clock=ManualClock(START), thresholds=thresholds)


async def stream(engine: AsyncEngine, stream_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(event_type, payload) of every event inventory appended to a stream."""
    async with engine.connect() as conn:
        return [(s.envelope.event_type, s.envelope.payload)
                for s in await read_stream(conn, stream_id)]


async def levels(engine: AsyncEngine) -> dict[tuple[str, str], tuple[int, int]]:
    """(on_hand, reserved) per (sku, warehouse)."""
    async with engine.connect() as conn:
        return {(lv["sku"], lv["warehouse"]): (lv["on_hand"], lv["reserved"])
                for lv in await views.stock_levels(conn)}


async def reservation(engine: AsyncEngine, order_id: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        return await views.reservation(conn, order_id)


async def dead_letters(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT error FROM dead_letters ORDER BY id")))
                    .scalars())
