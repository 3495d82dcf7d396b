"""Stock an order holds: presale, releases, amendments, shipment deductions, low-stock crossings."""

from __future__ import annotations

import pytest

from services.inventory.domain import (
    Demand,
    OverShipment,
    Take,
    Warehouse,
    low_stock_crossing,
    merge_demands,
    plan_deduction,
    plan_reservation,
    release_everything,
    release_units,
    reserves_at_placement,
    split_amendment,
)

ORDER = ["WH-A", "WH-B", "WH-C"]


def test_presale_orders_wait_for_the_deposit_others_reserve_when_placed():
    assert not reserves_at_placement("presale")
    for order_type in ("standard", "group_buy", "sample", "cross_border"):
        assert reserves_at_placement(order_type)


def test_cancellation_releases_everything_held_by_sku_then_warehouse_priority():
    holdings = {("X-100", "WH-B"): 1, ("X-100", "WH-A"): 2, ("GIFT-MUG", "WH-C"): 1}
    assert release_everything(holdings, ORDER) == [
        Take("GIFT-MUG", "WH-C", 1), Take("X-100", "WH-A", 2), Take("X-100", "WH-B", 1)]
    assert release_everything({}, ORDER) == []


def test_a_lowered_quantity_releases_from_the_last_served_warehouse_first():
    holdings = {("X-100", "WH-A"): 2, ("X-100", "WH-B"): 2}
    assert release_units(holdings, "X-100", 3, ORDER) == [Take("X-100", "WH-B", 2),
                                                           Take("X-100", "WH-A", 1)]
    # Never more than is held.
    assert release_units(holdings, "X-100", 9, ORDER) == [Take("X-100", "WH-B", 2),
                                                           Take("X-100", "WH-A", 2)]


def test_amendment_split_raises_lowers_and_cuts_waiting_units_first():
    after = [Demand(1, "X-100", 5), Demand(2, "GIFT-MUG", 1, "B1")]
    split = split_amendment({"X-100": 2, "Y-200": -3, "GIFT-MUG": 1},
                            waiting=[Demand(3, "Y-200", 1)], held={"Y-200": 4}, after_lines=after)
    assert split.extra == (Demand(2, "GIFT-MUG", 1, "B1"), Demand(1, "X-100", 2))
    assert split.still_waiting == ()  # the 1 waited-for Y-200 is cut first...
    assert split.release == {"Y-200": 2}  # ...then 2 held units are released


def test_amendment_split_never_releases_more_than_held():
    split = split_amendment({"X-100": -5}, waiting=[], held={"X-100": 2}, after_lines=[])
    assert split.release == {"X-100": 2}
    assert split_amendment({"X-100": -1}, [], {}, []).release == {}


def test_merged_demands_add_up_per_line():
    assert merge_demands([Demand(1, "X-100", 1)], [Demand(1, "X-100", 2), Demand(2, "Y-200", 1)]) \
        == (Demand(1, "X-100", 3), Demand(2, "Y-200", 1))


def test_deduction_prefers_the_shipments_warehouse_when_it_holds_the_sku():
    holdings = {("X-100", "WH-A"): 2, ("X-100", "WH-B"): 2}
    assert plan_deduction("O-1", "S-1", holdings, {"X-100": 3}, "WH-B", ORDER) == [
        Take("X-100", "WH-B", 2), Take("X-100", "WH-A", 1)]


def test_deduction_from_another_warehouse_uses_the_reservation_in_priority_order():
    holdings = {("X-100", "WH-C"): 1, ("X-100", "WH-A"): 1, ("Y-200", "WH-C"): 1}
    # Shipped from WH-Z (chosen by a person; the order holds nothing there).
    assert plan_deduction("O-1", "S-1", holdings, {"X-100": 2, "Y-200": 1}, "WH-Z", ORDER) == [
        Take("X-100", "WH-A", 1), Take("X-100", "WH-C", 1), Take("Y-200", "WH-C", 1)]


def test_shipping_more_than_is_reserved_is_an_error_that_names_everything():
    with pytest.raises(OverShipment, match=r"S-9 of order O-1 ships 3 x X-100 .* only 2 .*WH-A: 2"):
        plan_deduction("O-1", "S-9", {("X-100", "WH-A"): 2}, {"X-100": 3}, "WH-A", ORDER)
    with pytest.raises(OverShipment, match="only 0"):
        plan_deduction("O-1", "S-9", {}, {"X-100": 1}, "WH-A", ORDER)


def test_preferred_warehouses_are_asked_first_for_extra_units():
    warehouses = [Warehouse("WH-A", 1), Warehouse("WH-B", 2)]
    stock = {("X-100", "WH-A"): 5, ("X-100", "WH-B"): 5}
    plan = plan_reservation([Demand(1, "X-100", 1)], stock, warehouses, preferred={"WH-B"})
    assert {a.warehouse for a in plan.allocations} == {"WH-B"}


def test_low_stock_alerts_once_per_crossing():
    threshold = 10
    history = [12, 9, 5, 0, 10, 11, 3, 2]
    flag, alerts = None, []
    for available in history:
        alert, flag = low_stock_crossing(flag, available, threshold)
        alerts.append(alert)
    # 12 arms; 9 crosses (alert); 5, 0 stay low; 10 re-arms; 3 crosses again; 2 stays low.
    assert alerts == [False, True, False, False, False, False, True, False]


def test_a_sku_that_never_reached_its_threshold_does_not_alert():
    assert low_stock_crossing(None, 3, 10) == (False, True)
    assert low_stock_crossing(None, 10, 10) == (False, False)


def test_extra_units_of_several_skus_join_the_orders_warehouse_sku_by_sku():
    warehouses = [Warehouse("WH-A", 1), Warehouse("WH-B", 2)]
    stock = {("X-100", "WH-A"): 5, ("Y-200", "WH-A"): 5, ("X-100", "WH-B"): 5}
    plan = plan_reservation([Demand(1, "X-100", 2), Demand(2, "Y-200", 1)], stock, warehouses,
                            preferred={"WH-B"})
    # WH-A could take both, but the order's X-100 is in WH-B: only Y-200 goes elsewhere.
    assert {(a.sku, a.warehouse) for a in plan.allocations} == {("X-100", "WH-B"), ("Y-200", "WH-A")}
