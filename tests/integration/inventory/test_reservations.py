"""Inventory against real PostgreSQL: receipts, reservations through the inbox, no overselling."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select, text

from services.inventory import handlers, store, views
from services.inventory.domain import DEFAULT_WAREHOUSE_PRIORITY, Warehouse
from shared.clock import ManualClock
from shared.contract.envelope import Actor
from shared.db import create_engine
from shared.eventstore import read_stream
from tests.integration.inventory.conftest import START, consumer, incoming, placed

CLERK = Actor(kind="user", id="wang.warehouse", role="warehouse")


async def receive(engine, sku, warehouse, quantity, reason=None):
    receipt = handlers.Receipt(sku, warehouse, quantity, reason)
    return await handlers.receive_stock(engine, receipt, actor=CLERK, correlation_id="c-r",
                                        clock=ManualClock(START))


async def test_receipt_creates_warehouse_balance_ledger_and_event(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-SH", 5, "opening stock")
    received, event_id = await receive(inventory_engine, "X-100", "WH-SH", 3)
    assert received.on_hand == 8
    async with inventory_engine.connect() as conn:
        assert await store.list_warehouses(conn) == [
            Warehouse("WH-SH", DEFAULT_WAREHOUSE_PRIORITY)]
        assert await views.stock_levels(conn) == [
            {"sku": "X-100", "warehouse": "WH-SH", "on_hand": 8, "reserved": 0, "available": 8}]
        entries = await views.ledger(conn, "X-100", 10)
        stream = await read_stream(conn, handlers.stock_stream("X-100", "WH-SH"))
    assert [(e["kind"], e["quantity"], e["reason"]) for e in entries] == [
        ("received", 3, None), ("received", 5, "opening stock")]
    assert entries[0]["event_id"] == event_id
    assert [s.envelope.event_type for s in stream] == ["stock.received", "stock.received"]
    assert stream[1].key == "X-100"
    assert stream[1].envelope.actor == CLERK
    assert stream[1].envelope.payload == {"sku": "X-100", "warehouse": "WH-SH", "quantity": 3,
                                          "on_hand": 8}


async def test_placed_order_is_reserved_once_through_the_inbox(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 2)
    await receive(inventory_engine, "GIFT-MUG", "WH-A", 1)
    envelope = placed("O-00000000000000a1", [("X-100", 2), ("GIFT-MUG", 1, "B1")])
    inbox = consumer(inventory_engine)
    await inbox.process_incoming([incoming(envelope)])
    await inbox.process_incoming([incoming(envelope, offset=1)])  # redelivery
    # The same order placed again under another event id (e.g. a replay with new ids).
    await inbox.process_incoming([incoming(placed("O-00000000000000a1", [("X-100", 1)]))])

    async with inventory_engine.connect() as conn:
        stream = await read_stream(conn, "O-00000000000000a1")
        levels = await views.stock_levels(conn)
        found = await views.reservation(conn, "O-00000000000000a1")
        reserved_entries = (await conn.execute(
            select(func.count()).select_from(store.stock_ledger)
            .where(store.stock_ledger.c.kind == "reserved"))).scalar()
    [stored] = stream
    env = stored.envelope
    assert env.event_type == "stock.reserved"
    assert stored.key == "O-00000000000000a1"
    assert env.correlation_id == envelope.correlation_id
    assert env.causation_id == str(envelope.event_id)
    assert env.payload["lines"] == [{"sku": "X-100", "warehouse": "WH-A", "quantity": 2},
                                    {"sku": "GIFT-MUG", "warehouse": "WH-A", "quantity": 1}]
    assert {(lv["sku"], lv["reserved"], lv["available"]) for lv in levels} == {
        ("X-100", 2, 0), ("GIFT-MUG", 1, 0)}
    assert reserved_entries == 2
    assert found["status"] == "reserved"
    assert found["units"] == 3
    assert found["placed_event_id"] == str(envelope.event_id)


async def test_shortage_reserves_nothing_and_names_what_is_missing(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 1)
    await receive(inventory_engine, "Y-200", "WH-A", 5)
    envelope = placed("O-00000000000000b2", [("X-100", 3), ("Y-200", 1)])
    await consumer(inventory_engine).process_incoming([incoming(envelope)])
    async with inventory_engine.connect() as conn:
        [stored] = await read_stream(conn, "O-00000000000000b2")
        levels = await views.stock_levels(conn)
        summary = await views.summary(conn, per_order=True)
    assert stored.envelope.event_type == "stock.shortage"
    assert stored.envelope.payload == {"order_id": "O-00000000000000b2", "missing": [
        {"sku": "X-100", "requested": 3, "available": 1}]}
    assert all(level["reserved"] == 0 for level in levels)
    assert summary == {"orders_reserved": 0, "units_reserved": 0, "orders_short": 1,
                       "units_released": 0, "units_deducted": 0, "units_returned": 0,
                       "backorders_waiting": 1, "low_stock_skus": [],
                       "per_order": {"O-00000000000000b2": {"status": "short", "units": 0}}}


async def test_warehouse_priority_decides_where_an_order_is_served(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 5)
    await receive(inventory_engine, "X-100", "WH-B", 5)
    await handlers.set_warehouse_priority(inventory_engine, "WH-B", 1, clock=ManualClock(START))
    await consumer(inventory_engine).process_incoming(
        [incoming(placed("O-00000000000000c3", [("X-100", 2)]))])
    async with inventory_engine.connect() as conn:
        found = await views.reservation(conn, "O-00000000000000c3")
    assert found["lines"] == [{"sku": "X-100", "warehouse": "WH-B", "quantity": 2}]


async def test_two_instances_racing_for_the_last_unit_sell_it_once(inventory_engine, database_url):
    await receive(inventory_engine, "X-100", "WH-A", 1)
    second_engine = create_engine(database_url)
    try:
        first = consumer(inventory_engine)
        second = consumer(second_engine)
        one = placed("O-00000000000000d4", [("X-100", 1)])
        two = placed("O-00000000000000e5", [("X-100", 1)])
        await asyncio.gather(first.process_incoming([incoming(one)]),
                             second.process_incoming([incoming(two)]))
    finally:
        await second_engine.dispose()
    async with inventory_engine.connect() as conn:
        outcomes = (await conn.execute(text(
            "SELECT event_type, count(*) FROM events WHERE stream_id LIKE 'O-%' GROUP BY 1"
        ))).all()
        levels = await views.stock_levels(conn)
        dead = (await conn.execute(text("SELECT count(*) FROM dead_letters"))).scalar()
    assert dict(outcomes) == {"stock.reserved": 1, "stock.shortage": 1}
    assert levels == [{"sku": "X-100", "warehouse": "WH-A", "on_hand": 1, "reserved": 1,
                       "available": 0}]
    assert dead == 0


async def test_many_concurrent_orders_never_oversell(inventory_engine, database_url):
    await receive(inventory_engine, "X-100", "WH-A", 3)
    await receive(inventory_engine, "X-100", "WH-B", 4)
    engines = [inventory_engine] + [create_engine(database_url) for _ in range(3)]
    try:
        batches = [[incoming(placed(f"O-{i:016x}", [("X-100", 1)]))
                    for i in range(k * 5, k * 5 + 5)] for k in range(4)]
        await asyncio.gather(*(consumer(eng).process_incoming(batch)
                               for eng, batch in zip(engines, batches, strict=True)))
    finally:
        for eng in engines[1:]:
            await eng.dispose()
    async with inventory_engine.connect() as conn:
        summary = await views.summary(conn, per_order=False)
        levels = await views.stock_levels(conn)
    assert (summary["orders_reserved"], summary["units_reserved"], summary["orders_short"]) == (
        7, 7, 13)
    assert summary["backorders_waiting"] == 13
    assert [lv["available"] for lv in levels] == [0, 0]
