"""Backorders on real PostgreSQL: first short, first served on receipts, returns, releases and
adjustments; never oversold, also when serving races a new placement on another instance."""

from __future__ import annotations

import asyncio

import pytest

from services.inventory import handlers, views
from shared.clock import ManualClock
from shared.db import create_engine
from tests.integration.inventory.conftest import (
    CLERK,
    START,
    cancelled,
    consumer,
    incoming,
    levels,
    placed,
    receive,
    reservation,
    returned,
    shipped,
    stream,
)

A, B, C = "O-00000000000000a1", "O-00000000000000b2", "O-00000000000000c3"


async def place(engine, *envelopes):
    inbox = consumer(engine)
    for envelope in envelopes:
        await inbox.process_incoming([incoming(envelope)])


async def queue(engine):
    async with engine.connect() as conn:
        return [(b["order_id"], b["wanted"]) for b in await views.backorder_list(conn)]


async def test_receipts_serve_waiting_orders_first_come_first_served(inventory_engine):
    await place(inventory_engine, placed(A, [("X-100", 5)]), placed(B, [("X-100", 1)]))
    assert await queue(inventory_engine) == [(A, [{"sku": "X-100", "quantity": 5}]),
                                             (B, [{"sku": "X-100", "quantity": 1}])]
    await receive(inventory_engine, "X-100", "WH-A", 3)
    # 3 units would serve B, but B came later than A, who still wants 5: nobody is served.
    assert [t for t, _ in await stream(inventory_engine, B)] == ["stock.shortage"]
    # A newcomer is not served either, and its shortage says nothing is left for it.
    await place(inventory_engine, placed(C, [("X-100", 1)]))
    assert await stream(inventory_engine, C) == [("stock.shortage", {"order_id": C, "missing": [
        {"sku": "X-100", "requested": 1, "available": 0}]})]

    await receive(inventory_engine, "X-100", "WH-A", 3)  # 6: A (5), then B (1); C keeps waiting
    assert (await stream(inventory_engine, A))[-1] == ("stock.reserved", {"order_id": A, "lines": [
        {"sku": "X-100", "warehouse": "WH-A", "quantity": 5}]})
    assert [t for t, _ in await stream(inventory_engine, B)] == ["stock.shortage", "stock.reserved"]
    assert await queue(inventory_engine) == [(C, [{"sku": "X-100", "quantity": 1}])]
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (6, 6)}
    async with inventory_engine.connect() as conn:
        summary = await views.summary(conn, False)
    assert (summary["orders_reserved"], summary["units_reserved"], summary["orders_short"],
            summary["backorders_waiting"]) == (2, 6, 1, 1)


async def test_served_reservations_name_the_receipt_as_their_cause(inventory_engine):
    await place(inventory_engine, placed(A, [("X-100", 1)]))
    _, receipt_id = await receive(inventory_engine, "X-100", "WH-A", 1)
    async with inventory_engine.connect() as conn:
        from shared.eventstore import read_stream
        served = (await read_stream(conn, A))[-1]
    assert served.envelope.event_type == "stock.reserved"
    assert served.envelope.causation_id == receipt_id
    assert served.key == A


async def test_returns_cancellations_and_adjustments_serve_the_queue_too(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 2)
    await place(inventory_engine, placed(A, [("X-100", 2)]), placed(B, [("X-100", 1)]),
                placed(C, [("X-100", 1)]))
    await place(inventory_engine, shipped(A, "S-1", "WH-A", [("X-100", 2)], complete=True),
                returned(A, "R-1", "WH-A", [("X-100", 1)]))
    assert (await reservation(inventory_engine, B))["status"] == "reserved"  # from the return
    assert (await reservation(inventory_engine, C))["status"] == "short"
    await handlers.adjust_stock(inventory_engine, handlers.Adjustment("X-100", "WH-B", 1, "found"),
                                actor=CLERK, correlation_id="c-a", clock=ManualClock(START))
    assert (await reservation(inventory_engine, C))["status"] == "reserved"  # from the adjustment
    await place(inventory_engine, placed("O-00000000000000d4", [("X-100", 1)]))
    await place(inventory_engine, cancelled(B))
    assert (await reservation(inventory_engine, "O-00000000000000d4"))["status"] == "reserved"
    assert await queue(inventory_engine) == []


async def test_an_adjustment_may_not_take_reserved_units(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 3)
    await place(inventory_engine, placed(A, [("X-100", 2)]))
    with pytest.raises(handlers.AdjustmentRefused, match="at most 1 can be written off"):
        await handlers.adjust_stock(inventory_engine,
                                    handlers.Adjustment("X-100", "WH-A", -2, "broken"),
                                    actor=CLERK, correlation_id="c", clock=ManualClock(START))
    result = await handlers.adjust_stock(
        inventory_engine, handlers.Adjustment("X-100", "WH-A", -1, "broken in transit"),
        actor=CLERK, correlation_id="c", clock=ManualClock(START))
    assert (result["on_hand"], result["reserved"], result["available"]) == (2, 2, 0)
    async with inventory_engine.connect() as conn:
        [entry, *_] = await views.ledger(conn, "X-100", 10)
    assert (entry["kind"], entry["quantity"], entry["reason"]) == ("adjusted", -1, "broken in transit")
    assert entry["actor"] == "user:wang.warehouse (warehouse)"


@pytest.mark.parametrize("round_", range(4))
async def test_serving_the_queue_racing_a_new_placement_never_oversells(inventory_engine,
                                                                         database_url, round_):
    await place(inventory_engine, placed(A, [("X-100", 2)]))  # waits for 2
    other = create_engine(database_url)
    try:
        newcomer = consumer(other).process_incoming([incoming(placed(B, [("X-100", 2)]))])
        receipt = receive(inventory_engine, "X-100", "WH-A", 2)
        if round_ % 2:
            await asyncio.gather(newcomer, receipt)
        else:
            await asyncio.gather(receipt, newcomer)
    finally:
        await other.dispose()
    # Whichever committed first, the earlier waiting order gets the units, the newcomer waits.
    assert (await reservation(inventory_engine, A))["status"] == "reserved"
    assert (await reservation(inventory_engine, B))["status"] == "short"
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (2, 2)}


async def test_many_receipts_and_placements_at_once_never_oversell(inventory_engine, database_url):
    engines = [inventory_engine] + [create_engine(database_url) for _ in range(2)]
    try:
        orders = [placed(f"O-{i:016x}", [("X-100", 1 + i % 3)]) for i in range(12)]
        jobs = [consumer(engines[i % 3]).process_incoming([incoming(o)])
                for i, o in enumerate(orders)]
        jobs += [receive(engines[i % 3], "X-100", f"WH-{i % 2}", 3) for i in range(5)]
        await asyncio.gather(*jobs)
    finally:
        for eng in engines[1:]:
            await eng.dispose()
    balance = await levels(inventory_engine)
    assert all(reserved <= on_hand for on_hand, reserved in balance.values())
    assert sum(on_hand for on_hand, _ in balance.values()) == 15
    async with inventory_engine.connect() as conn:
        check = await views.ledger_check(conn)
        summary = await views.summary(conn, True)
    assert check["consistent"], check
    # Every order is either fully reserved or waiting; the queue is served in order, so the
    # units left over are fewer than the first waiting order wants.
    per_order = summary["per_order"]
    assert all(o["status"] in ("reserved", "short") for o in per_order.values())
    async with inventory_engine.connect() as conn:
        waiting = await views.backorder_list(conn)
    free = sum(on_hand - reserved for on_hand, reserved in balance.values())
    if waiting:
        assert free < waiting[0]["wanted"][0]["quantity"]


async def test_an_order_served_by_a_receipt_does_not_jump_an_earlier_order_of_its_other_sku(
        inventory_engine):
    await place(inventory_engine, placed(A, [("Y-200", 1)]),  # waits for Y-200 only
                placed(B, [("X-100", 1), ("Y-200", 1)]))
    await receive(inventory_engine, "Y-200", "WH-A", 1)
    assert (await reservation(inventory_engine, A))["status"] == "reserved"
    await receive(inventory_engine, "Y-200", "WH-A", 1)  # B still waits for X-100; keeps its Y
    await place(inventory_engine, placed(C, [("Y-200", 1)]))  # C comes after B: it must wait
    await receive(inventory_engine, "X-100", "WH-A", 1)  # X arrives: B is served, C still waits
    assert (await reservation(inventory_engine, B))["status"] == "reserved"
    assert (await reservation(inventory_engine, C))["status"] == "short"


async def test_receipt_for_one_sku_respects_earlier_waiters_of_a_waiting_orders_other_sku(
        inventory_engine):
    await receive(inventory_engine, "Y-200", "WH-A", 1)
    await place(inventory_engine, placed(A, [("Y-200", 2)]),  # waits: wants 2 Y, 1 there
                placed(B, [("X-100", 1), ("Y-200", 1)]))  # waits behind A for Y
    await receive(inventory_engine, "X-100", "WH-A", 1)
    # X-100 arrived, and the one Y-200 would complete B, but A (earlier) wants it.
    assert (await reservation(inventory_engine, B))["status"] == "short"
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (1, 0), ("Y-200", "WH-A"): (1, 0)}
