"""The order lifecycle through inventory's inbox on real PostgreSQL: presale deposits,
cancellations, amendments, shipments and returns, each idempotent."""

from __future__ import annotations

from services.inventory import handlers
from shared.clock import ManualClock
from tests.integration.inventory.conftest import (
    START,
    amended,
    cancelled,
    consumer,
    dead_letters,
    deposit_paid,
    incoming,
    levels,
    placed,
    receive,
    reservation,
    returned,
    shipped,
    stream,
)

O1, O2 = "O-0000000000000001", "O-0000000000000002"


async def deliver(engine, *envelopes, **kwargs):
    """Each envelope through the inbox, then each again (redelivery must change nothing)."""
    inbox = consumer(engine, **kwargs)
    for n, envelope in enumerate(envelopes):
        await inbox.process_incoming([incoming(envelope, offset=n)])
    await inbox.process_incoming([incoming(e, offset=100 + n) for n, e in enumerate(envelopes)])


async def test_presale_is_reserved_when_the_deposit_is_paid_not_when_placed(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 5)
    await deliver(inventory_engine, placed(O1, [("X-100", 2)], order_type="presale"))
    assert await stream(inventory_engine, O1) == []
    assert (await reservation(inventory_engine, O1))["status"] == "awaiting_deposit"
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (5, 0)}

    await deliver(inventory_engine, deposit_paid(O1), deposit_paid(O1))  # two deposit events
    assert await stream(inventory_engine, O1) == [("stock.reserved", {
        "order_id": O1, "lines": [{"sku": "X-100", "warehouse": "WH-A", "quantity": 2}]})]
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (5, 2)}


async def test_deposit_of_a_standard_order_changes_nothing(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 5)
    await deliver(inventory_engine, placed(O1, [("X-100", 2)]), deposit_paid(O1))
    assert [t for t, _ in await stream(inventory_engine, O1)] == ["stock.reserved"]


async def test_cancellation_releases_what_is_still_reserved_once(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 1)
    await receive(inventory_engine, "X-100", "WH-B", 5)
    await handlers.set_warehouse_priority(inventory_engine, "WH-A", 1, clock=ManualClock(START))
    await deliver(inventory_engine, placed(O1, [("X-100", 3)]), cancelled(O1), cancelled(O1))
    events = await stream(inventory_engine, O1)
    assert [t for t, _ in events] == ["stock.reserved", "stock.released"]
    assert events[1][1] == {"order_id": O1, "reason": "cancelled",
                            "lines": [{"sku": "X-100", "warehouse": "WH-B", "quantity": 3}]}
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (1, 0), ("X-100", "WH-B"): (5, 0)}
    found = await reservation(inventory_engine, O1)
    assert (found["status"], found["units"]) == ("cancelled", 0)


async def test_a_cancelled_backorder_leaves_the_queue_without_a_release(inventory_engine):
    await deliver(inventory_engine, placed(O1, [("X-100", 3)]), cancelled(O1))
    assert [t for t, _ in await stream(inventory_engine, O1)] == ["stock.shortage"]
    await receive(inventory_engine, "X-100", "WH-A", 5)  # nobody waits any more
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (5, 0)}
    assert (await reservation(inventory_engine, O1))["waiting_for"] == []


async def test_presale_cancelled_before_its_deposit_never_reserves(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 5)
    await deliver(inventory_engine, placed(O1, [("X-100", 2)], order_type="presale"),
                  cancelled(O1), deposit_paid(O1))
    assert await stream(inventory_engine, O1) == []
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (5, 0)}


async def test_amendment_up_reserves_the_extra_in_the_warehouse_already_serving(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 10)
    await receive(inventory_engine, "X-100", "WH-B", 10)
    await receive(inventory_engine, "Y-200", "WH-A", 5)
    await handlers.set_warehouse_priority(inventory_engine, "WH-A", 1, clock=ManualClock(START))
    await handlers.set_warehouse_priority(inventory_engine, "WH-B", 2, clock=ManualClock(START))
    # WH-A serves by priority; then it is emptied of X-100 by a big order, and WH-B serves O2.
    await deliver(inventory_engine, placed(O1, [("X-100", 10)]), placed(O2, [("X-100", 1)]))
    await receive(inventory_engine, "X-100", "WH-A", 10)
    up = amended(O2, "R-1", [("X-100", 1)], [("X-100", 3), ("Y-200", 1)])
    await deliver(inventory_engine, up, up)
    events = await stream(inventory_engine, O2)
    assert events[-1] == ("stock.reserved", {"order_id": O2, "lines": [
        {"sku": "X-100", "warehouse": "WH-B", "quantity": 2},  # WH-B already serves O2
        {"sku": "Y-200", "warehouse": "WH-A", "quantity": 1}]})  # only WH-A has Y-200
    assert len(events) == 2
    found = await reservation(inventory_engine, O2)
    assert found["lines"] == [{"sku": "X-100", "warehouse": "WH-B", "quantity": 3},
                              {"sku": "Y-200", "warehouse": "WH-A", "quantity": 1}]


async def test_amendment_down_releases_and_the_same_request_twice_once(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 10)
    await deliver(inventory_engine, placed(O1, [("X-100", 5)]),
                  amended(O1, "R-1", [("X-100", 5)], [("X-100", 2)]),
                  amended(O1, "R-1", [("X-100", 5)], [("X-100", 2)]))  # same request, new event id
    events = await stream(inventory_engine, O1)
    assert events[-1] == ("stock.released", {"order_id": O1, "reason": "amended", "lines": [
        {"sku": "X-100", "warehouse": "WH-A", "quantity": 3}]})
    assert len(events) == 2
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (10, 2)}


async def test_amendment_up_without_stock_is_a_shortage_for_the_missing_delta(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 3)
    await deliver(inventory_engine, placed(O1, [("X-100", 2)]),
                  amended(O1, "R-1", [("X-100", 2)], [("X-100", 5)]))
    events = await stream(inventory_engine, O1)
    assert events[-1] == ("stock.shortage", {"order_id": O1, "missing": [
        {"sku": "X-100", "requested": 3, "available": 1}]})
    found = await reservation(inventory_engine, O1)
    assert (found["status"], found["units"], found["waiting_for"]) == (
        "reserved", 2, [{"sku": "X-100", "quantity": 3}])
    # Lowering again first cancels waited-for units; nothing held is released.
    await deliver(inventory_engine, amended(O1, "R-2", [("X-100", 5)], [("X-100", 4)]))
    await receive(inventory_engine, "X-100", "WH-A", 1)  # 2 free now: the 2 extra units fit
    events = await stream(inventory_engine, O1)
    assert events[-1] == ("stock.reserved", {"order_id": O1, "lines": [
        {"sku": "X-100", "warehouse": "WH-A", "quantity": 2}]})
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (4, 4)}
    assert (await reservation(inventory_engine, O1))["waiting_for"] == []


async def test_amending_a_waiting_order_changes_what_it_waits_for(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 2)
    await deliver(inventory_engine, placed(O1, [("X-100", 5)]),
                  amended(O1, "R-1", [("X-100", 5)], [("X-100", 2)]))
    # The smaller order fits now and is served at once.
    assert [t for t, _ in await stream(inventory_engine, O1)] == ["stock.shortage", "stock.reserved"]
    assert (await reservation(inventory_engine, O1))["status"] == "reserved"


async def test_presale_amended_before_its_deposit_reserves_the_new_lines(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 5)
    await deliver(inventory_engine, placed(O1, [("X-100", 1)], order_type="presale"),
                  amended(O1, "R-1", [("X-100", 1)], [("X-100", 4)]), deposit_paid(O1))
    assert await stream(inventory_engine, O1) == [("stock.reserved", {
        "order_id": O1, "lines": [{"sku": "X-100", "warehouse": "WH-A", "quantity": 4}]})]


async def test_shipment_deducts_from_its_own_warehouse_first_and_only_once(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 2)
    await receive(inventory_engine, "X-100", "WH-B", 2)
    await handlers.set_warehouse_priority(inventory_engine, "WH-A", 1, clock=ManualClock(START))
    await deliver(inventory_engine, placed(O1, [("X-100", 4)]))  # split: 2 in A, 2 in B
    ship = shipped(O1, "S-1", "WH-B", [("X-100", 3)])
    await deliver(inventory_engine, ship, shipped(O1, "S-1", "WH-B", [("X-100", 3)]))
    events = await stream(inventory_engine, O1)
    assert events[-1] == ("stock.deducted", {"order_id": O1, "shipment_id": "S-1", "lines": [
        {"sku": "X-100", "warehouse": "WH-B", "quantity": 2},
        {"sku": "X-100", "warehouse": "WH-A", "quantity": 1}]})
    assert len(events) == 2
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (1, 1), ("X-100", "WH-B"): (0, 0)}


async def test_a_shipment_from_another_warehouse_uses_the_reservation(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 2)
    await receive(inventory_engine, "X-100", "WH-Z", 9)
    await handlers.set_warehouse_priority(inventory_engine, "WH-A", 1, clock=ManualClock(START))
    await deliver(inventory_engine, placed(O1, [("X-100", 2)]),
                  shipped(O1, "S-1", "WH-Z", [("X-100", 2)], complete=True))
    assert (await stream(inventory_engine, O1))[-1][1]["lines"] == [
        {"sku": "X-100", "warehouse": "WH-A", "quantity": 2}]
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (0, 0), ("X-100", "WH-Z"): (9, 0)}
    assert (await reservation(inventory_engine, O1))["status"] == "shipped"


async def test_shipping_more_than_reserved_is_dead_lettered_and_changes_nothing(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 5)
    await deliver(inventory_engine, placed(O1, [("X-100", 2)]),
                  shipped(O1, "S-1", "WH-A", [("X-100", 3)]))
    [error] = await dead_letters(inventory_engine)  # once: the redelivery is a duplicate
    assert "OverShipment" in error
    assert "ships 3 x X-100 but the order holds only 2" in error
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (5, 2)}
    assert [t for t, _ in await stream(inventory_engine, O1)] == ["stock.reserved"]
    # The shipment id was not used up: a corrected shipment with the same id goes through.
    await deliver(inventory_engine, shipped(O1, "S-1", "WH-A", [("X-100", 2)]))
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (3, 0)}


async def test_complete_shipment_releases_anything_left_over(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 5)
    await deliver(inventory_engine, placed(O1, [("X-100", 3)]),
                  shipped(O1, "S-1", "WH-A", [("X-100", 2)], complete=True))
    events = await stream(inventory_engine, O1)
    assert [t for t, _ in events] == ["stock.reserved", "stock.deducted", "stock.released"]
    assert events[-1][1]["reason"] == "other"
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (3, 0)}


async def test_events_for_an_order_never_placed_are_dead_lettered(inventory_engine):
    await deliver(inventory_engine, cancelled(O2), shipped(O2, "S-1", "WH-A", [("X-100", 1)]))
    errors = await dead_letters(inventory_engine)
    assert len(errors) == 2
    assert all("UnknownOrder" in e and O2 in e for e in errors)


async def test_a_return_puts_goods_back_in_the_returns_warehouse_once(inventory_engine):
    await receive(inventory_engine, "X-100", "WH-A", 2)
    await deliver(inventory_engine, placed(O1, [("X-100", 2)]),
                  shipped(O1, "S-1", "WH-A", [("X-100", 2)], complete=True))
    back = returned(O1, "R-1", "WH-RETURNS", [("X-100", 1)])
    await deliver(inventory_engine, back, returned(O1, "R-1", "WH-RETURNS", [("X-100", 1)]))
    assert await stream(inventory_engine, "stock:X-100@WH-RETURNS") == [("stock.received", {
        "sku": "X-100", "warehouse": "WH-RETURNS", "quantity": 1, "on_hand": 1,
        "reason": f"return R-1 of order {O1}"})]
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (0, 0),
                                              ("X-100", "WH-RETURNS"): (1, 0)}
    async with inventory_engine.connect() as conn:
        from services.inventory import views
        [entry, *_] = await views.ledger(conn, "X-100", 10)
    assert (entry["kind"], entry["quantity"], entry["order_id"]) == ("returned", 1, O1)


async def test_low_stock_alerts_once_per_crossing(inventory_engine):
    thresholds = {"X-100": 5}
    await receive(inventory_engine, "X-100", "WH-A", 6, thresholds=thresholds)  # arms the alert
    await deliver(inventory_engine, placed(O1, [("X-100", 2)]), placed(O2, [("X-100", 1)]),
                  thresholds=thresholds)
    assert await stream(inventory_engine, "stock-level:X-100") == [
        ("stock.low", {"sku": "X-100", "available": 4, "threshold": 5})]
    await receive(inventory_engine, "X-100", "WH-B", 2, thresholds=thresholds)  # 5: re-armed
    await deliver(inventory_engine, placed("O-0000000000000003", [("X-100", 3)]),
                  thresholds=thresholds)
    alerts = await stream(inventory_engine, "stock-level:X-100")
    assert [p["available"] for _, p in alerts] == [4, 2]
    async with inventory_engine.connect() as conn:
        from services.inventory import views
        assert (await views.summary(conn, False))["low_stock_skus"] == ["X-100"]
