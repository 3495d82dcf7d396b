"""Inventory integration fixtures: the service schema and order.placed envelopes as the inbox sees them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inventory import handlers, store
from shared.clock import ManualClock
from shared.contract.envelope import Actor, EventEnvelope
from shared.contract.payloads import OrderLine, OrderPlaced
from shared.contract.topics import ORDER_EVENTS
from shared.inbox import IdempotentConsumer, Incoming
from shared.service import prepare_database

START = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def inventory_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = await prepare_database(database_url, store.create_schema)
    yield eng
    await eng.dispose()


def placed(order_id: str, lines: list[tuple[str, int] | tuple[str, int, str]]) -> EventEnvelope:
    """An order.placed envelope as the order service appends it: (sku, quantity[, bundle])."""
    payload = OrderPlaced(
        order_id=order_id, channel="tmall", channel_order_id=f"TM-{order_id}",
        order_type="standard", submitted_at=START, customer={"id": "C-1"},
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


def incoming(envelope: EventEnvelope, offset: int = 0) -> Incoming:
    return Incoming.from_envelope(envelope, ORDER_EVENTS, offset=offset)


def consumer(engine: AsyncEngine, clock: ManualClock | None = None) -> IdempotentConsumer:
    """The inbox around inventory's handler, as the running service wires it."""
    return IdempotentConsumer(
        name="inventory", engine=engine, publisher=None,
        handle=partial(handlers.handle_order_event, clock=clock or ManualClock(START)),
    )
