"""Inventory's batch work has exactly the effect of handling each order event alone: the same rows
in every inventory table (orders, holdings, requests, backorders, balances, ledger, low-stock
flags, warehouses), the same events appended (reservations, shortages, releases, deductions,
low-stock alerts), nothing dead-lettered and no fallback to one message at a time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inventory import handlers, store
from services.inventory.handlers.batch import make_batch_start
from shared.clock import ManualClock
from shared.contract.envelope import EventEnvelope
from shared.contract.payloads import OrderConfirmed, OrderPaid
from tests.integration import batch_support
from tests.integration.batch_support import MakeDatabase, assert_same, fresh_databases
from tests.integration.inventory.conftest import (
    CLERK,
    START,
    cancelled,
    deposit_paid,
    incoming,
    order_event,
    placed,
    shipped,
)

THRESHOLDS = {"X-100": 15, "Y-200": 6, "Z-300": 2, "W-500": 3, "P-400": 1}
STOCK = [("X-100", "WH-A", 20), ("X-100", "WH-B", 10), ("Y-200", "WH-A", 6), ("Y-200", "WH-B", 4),
         ("Z-300", "WH-A", 3), ("W-500", "WH-A", 8), ("P-400", "WH-B", 5)]


def again(env: EventEnvelope) -> EventEnvelope:
    """The same fact sent again under a new event id (the inbox lets it through)."""
    return env.model_copy(update={"event_id": uuid.uuid4()})


def confirmed(order_id: str) -> EventEnvelope:
    return order_event(OrderConfirmed(order_id=order_id, total=Decimal("10.00"), currency="CNY"))


def paid(order_id: str) -> EventEnvelope:
    return order_event(OrderPaid(order_id=order_id, paid_amount=Decimal("10.00"), currency="CNY"))


def history() -> list[EventEnvelope]:
    """Standard orders over overlapping SKUs and warehouses (stock drops below its thresholds),
    an order placed twice (in one batch and much later), an order that goes short and is served
    when a reserved order is cancelled, a presale order and its deposit, orders with zero lines,
    a gift bundle, a complete shipment, a cancelled waiting order, events inventory ignores."""
    o = f"O-{uuid.uuid4().hex[:8]}"
    skus = ["X-100", "Y-200", "W-500"]
    plain = [placed(f"{o}-{n}", [(skus[n % 3], 1 + n % 3), (skus[(n + 1) % 3], 2),
                                 ("X-100", 1 + n % 2)]) for n in range(12)]
    dup = placed(f"{o}-dup", [("X-100", 3), ("Y-200", 1)])
    holder = placed(f"{o}-z1", [("Z-300", 2), ("X-100", 1)])
    big = placed(f"{o}-big", [("Z-300", 3), ("W-500", 1)])  # 1 Z-300 left: short
    presale = placed(f"{o}-pre", [("P-400", 2), ("X-100", 1)], order_type="presale")
    zero = placed(f"{o}-zero", [("Y-200", 0), ("W-500", 0)])
    part_zero = placed(f"{o}-pz", [("X-100", 0), ("Y-200", 1)])
    bundle = placed(f"{o}-gb", [("X-100", 1, "GB-1"), ("Y-200", 1, "GB-1")])
    hopeless = placed(f"{o}-far", [("Y-200", 50)])  # waits behind nobody, served by nothing
    events = [plain[0], confirmed(plain[0].stream_id), plain[1], dup, again(dup), zero, presale,
              plain[2], bundle, holder, paid(plain[0].stream_id), part_zero, plain[3], plain[4],
              deposit_paid(presale.stream_id), plain[5], big, plain[6], hopeless, plain[7],
              confirmed(plain[1].stream_id), cancelled(holder.stream_id), plain[8],
              shipped(plain[2].stream_id, f"S-{o}", "WH-A", [("X-100", 1)], complete=True),
              plain[9], confirmed(big.stream_id), plain[10], cancelled(hopeless.stream_id),
              deposit_paid(plain[3].stream_id), plain[11], again(dup), paid(dup.stream_id)]
    return events


async def stock(engine: AsyncEngine) -> None:
    clock = ManualClock(START)
    for sku, warehouse, quantity in STOCK:
        await handlers.receive_stock(engine, handlers.Receipt(sku, warehouse, quantity, "initial"),
                                     actor=CLERK, correlation_id="c-r", clock=clock,
                                     thresholds=THRESHOLDS)
    await handlers.set_warehouse_priority(engine, "WH-B", 1, clock=clock,  # WH-B serves first
                                          correlation_id="c-p")
    await handlers.set_warehouse_priority(engine, "WH-A", 2, clock=clock, correlation_id="c-p")


async def run(engine: AsyncEngine, events: Sequence[EventEnvelope], size: int | None) -> None:
    """Feed ``events``, each at its own instant (5 minutes apart); ``size``: batches of that many
    through the batch work, else one message per call without it."""
    clock = ManualClock(START)
    at = {e.event_id: START + timedelta(minutes=5 * (n + 1)) for n, e in enumerate(events)}
    handle = partial(handlers.handle_order_event, clock=clock, thresholds=THRESHOLDS)
    start = make_batch_start(clock, THRESHOLDS)
    messages = [incoming(e, n) for n, e in enumerate(events)]
    await batch_support.feed(engine, "inventory", clock, handle, start, at, messages, size)


TABLES = {"warehouses": "code", "stock_balances": "sku, warehouse", "stock_ledger": "entry_id",
          "inventory_orders": "order_id", "order_holdings": "order_id, sku, warehouse",
          "order_requests": "order_id, kind, request_id", "backorders": "order_id",
          "low_stock": "sku"}


async def contents(engine: AsyncEngine) -> dict[str, list[Any]]:
    """Every inventory table and the events; an id of an event inventory appended (random in
    each database) is replaced by the (stream_id, stream_version) of that event."""
    async with engine.connect() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(text(
            "SELECT event_id, stream_id, stream_version, event_type, schema_version, occurred_at,"
            " correlation_id, causation_id, actor, payload, message_key FROM events"
            " ORDER BY stream_id, stream_version"))]
        appended = [tuple(r) for r in await conn.execute(text(  # the order the relay publishes
            "SELECT stream_id, stream_version FROM events ORDER BY position"))]
        tables = {table: [dict(r._mapping) for r in await conn.execute(
            text(f"SELECT * FROM {table} ORDER BY {key}"))] for table, key in TABLES.items()}
        dead = [tuple(r) for r in await conn.execute(text(
            "SELECT message_id, error FROM dead_letters ORDER BY message_id"))]
    ids = {str(r.pop("event_id")): ("event", r["stream_id"], r["stream_version"]) for r in rows}

    def named(value: Any) -> Any:
        return ids.get(str(value), value) if isinstance(value, uuid.UUID | str) else value

    found: dict[str, list[Any]] = {
        table: [{k: named(v) for k, v in row.items()} for row in table_rows]
        for table, table_rows in tables.items()}
    found["events"] = [{**r, "causation_id": named(r["causation_id"])} for r in rows]
    found["appended"], found["dead_letters"] = appended, dead
    return found


@pytest_asyncio.fixture
async def databases(postgres_url: str) -> AsyncIterator[MakeDatabase]:
    """Fresh inventory databases, stocked alike, dropped afterwards."""
    async with fresh_databases(postgres_url, store.create_schema, setup=stock) as make:
        yield make


def fallbacks() -> float:
    return batch_support.fallbacks("inventory")


def batches() -> float:
    return batch_support.batches("inventory")


def types(found: dict[str, list[Any]]) -> set[str]:
    return {e["event_type"] for e in found["events"]}


async def test_a_batch_has_the_effect_of_each_event_alone(databases) -> None:
    events = history()
    one, other = await databases(), await databases()
    before, worked = fallbacks(), batches()
    await run(one, events, size=None)
    assert batches() == worked
    await run(other, events, size=7)
    alone = await contents(one)
    assert_same(await contents(other), alone)
    assert fallbacks() == before
    assert batches() == worked + len(range(0, len(events), 7))
    assert not alone["dead_letters"]
    assert {"stock.low", "stock.shortage", "stock.reserved", "stock.released",
            "stock.deducted"} <= types(alone)
    status = {r["order_id"].rsplit("-", 1)[-1]: r["status"] for r in alone["inventory_orders"]}
    assert (status["big"], status["z1"], status["pre"], status["far"]) == (
        "reserved", "cancelled", "reserved", "cancelled")
    assert alone["backorders"] and alone["low_stock"]  # some orders still wait at the end


async def test_stock_running_out_mid_batch_is_as_alone(databases) -> None:
    o = f"O-{uuid.uuid4().hex[:8]}"
    orders = [placed(f"{o}-{n}", [("Z-300", 1), ("W-500", 2)]) for n in range(6)]
    # Z-300: 3 on hand; the 4th order on goes short, a cancellation in the batch serves the 4th
    events = [*orders[:5], cancelled(orders[0].stream_id), orders[5], confirmed(orders[1].stream_id)]
    one, other = await databases(), await databases()
    before = fallbacks()
    await run(one, events, size=None)
    await run(other, events, size=len(events))
    alone = await contents(one)
    assert_same(await contents(other), alone)
    assert fallbacks() == before
    assert {"stock.low", "stock.shortage"} <= types(alone)
    waiting = [r["order_id"] for r in alone["backorders"]]
    assert waiting == [orders[4].stream_id, orders[5].stream_id]
