"""Which warehouse serves which line: single warehouse, splits, gift bundles and shortages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.inventory.domain import (
    Allocation,
    Demand,
    Reservation,
    Shortage,
    Warehouse,
    by_priority,
    plan_reservation,
)
from shared.contract.payloads import ReservedLine, ShortLine

WAREHOUSES = [Warehouse("WH-B", 20), Warehouse("WH-A", 10), Warehouse("WH-C", 30)]


def plan(demands, stock, warehouses=WAREHOUSES):
    return plan_reservation(demands, stock, warehouses)


def test_warehouses_are_served_by_priority_then_code():
    assert by_priority([Warehouse("Z", 1), Warehouse("B", 5), Warehouse("A", 5)]) == ["Z", "A", "B"]


def test_one_warehouse_serves_everything_when_it_can_the_highest_priority_one():
    demands = [Demand(1, "X-100", 2), Demand(2, "Y-200", 1)]
    stock = {("X-100", "WH-A"): 2, ("Y-200", "WH-A"): 1,
             ("X-100", "WH-B"): 5, ("Y-200", "WH-B"): 5}
    result = plan(demands, stock)
    assert result == Reservation((Allocation(1, "X-100", "WH-A", 2),
                                  Allocation(2, "Y-200", "WH-A", 1)))
    assert result.reserved_lines() == [ReservedLine(sku="X-100", warehouse="WH-A", quantity=2),
                                       ReservedLine(sku="Y-200", warehouse="WH-A", quantity=1)]
    assert result.units == 3


def test_a_lower_priority_warehouse_that_has_everything_beats_a_split():
    demands = [Demand(1, "X-100", 1), Demand(2, "Y-200", 1)]
    stock = {("X-100", "WH-A"): 1, ("Y-200", "WH-C"): 1, ("X-100", "WH-C"): 1}
    result = plan(demands, stock)
    assert isinstance(result, Reservation)
    assert {a.warehouse for a in result.allocations} == {"WH-C"}


def test_lines_split_across_warehouses_by_priority():
    demands = [Demand(1, "X-100", 1), Demand(2, "Y-200", 1)]
    stock = {("X-100", "WH-B"): 1, ("Y-200", "WH-C"): 1}
    result = plan(demands, stock)
    assert result == Reservation((Allocation(1, "X-100", "WH-B", 1),
                                  Allocation(2, "Y-200", "WH-C", 1)))


def test_a_line_takes_its_units_from_several_warehouses_when_no_one_has_them_all():
    demands = [Demand(1, "X-100", 5)]
    stock = {("X-100", "WH-A"): 2, ("X-100", "WH-B"): 2, ("X-100", "WH-C"): 4}
    result = plan(demands, stock)
    # WH-C alone has 4 < 5, so the line is filled in priority order: A, B, then C.
    assert result == Reservation((Allocation(1, "X-100", "WH-A", 2),
                                  Allocation(1, "X-100", "WH-B", 2),
                                  Allocation(1, "X-100", "WH-C", 1)))


def test_a_split_line_prefers_one_warehouse_that_has_it_whole():
    demands = [Demand(1, "X-100", 3), Demand(2, "Y-200", 1)]
    stock = {("X-100", "WH-A"): 1, ("X-100", "WH-C"): 3, ("Y-200", "WH-A"): 1}
    result = plan(demands, stock)
    assert result == Reservation((Allocation(1, "X-100", "WH-C", 3),
                                  Allocation(2, "Y-200", "WH-A", 1)))


def test_gift_bundle_lines_stay_in_one_warehouse():
    demands = [Demand(1, "X-100", 1, "B1"), Demand(2, "GIFT-MUG", 1, "B1"), Demand(3, "Y-200", 1)]
    # WH-A has the phone but not the mug; WH-C has both: the bundle goes to WH-C.
    stock = {("X-100", "WH-A"): 1, ("X-100", "WH-C"): 1, ("GIFT-MUG", "WH-C"): 1,
             ("Y-200", "WH-A"): 1}
    result = plan(demands, stock)
    assert isinstance(result, Reservation)
    by_line = {a.line_no: a.warehouse for a in result.allocations}
    assert by_line == {1: "WH-C", 2: "WH-C", 3: "WH-A"}


def test_bundles_are_placed_by_search_not_only_greedily():
    # Greedy by priority would put B1 in WH-A and leave B2 nowhere; B1 -> WH-B works.
    demands = [Demand(1, "X-100", 1, "B1"),
               Demand(2, "X-100", 1, "B2"), Demand(3, "Y-200", 1, "B2")]
    stock = {("X-100", "WH-A"): 1, ("Y-200", "WH-A"): 1, ("X-100", "WH-B"): 1}
    result = plan(demands, stock)
    assert isinstance(result, Reservation)
    by_line = {a.line_no: a.warehouse for a in result.allocations}
    assert by_line == {1: "WH-B", 2: "WH-A", 3: "WH-A"}


def test_a_bundle_that_no_single_warehouse_can_serve_is_a_shortage_not_a_split():
    demands = [Demand(1, "X-100", 1, "B1"), Demand(2, "GIFT-MUG", 1, "B1")]
    stock = {("X-100", "WH-A"): 1, ("GIFT-MUG", "WH-B"): 1}
    result = plan(demands, stock)
    # Closest warehouse: WH-A (one unit short, higher priority than WH-B).
    assert result == Shortage((ShortLine(sku="GIFT-MUG", requested=1, available=0),))


def test_shortage_names_every_short_sku_with_its_total_and_reserves_nothing():
    demands = [Demand(1, "X-100", 3), Demand(2, "Y-200", 1), Demand(3, "X-100", 1)]
    stock = {("X-100", "WH-A"): 1, ("X-100", "WH-B"): 2, ("Y-200", "WH-C"): 1}
    result = plan(demands, stock)
    assert result == Shortage((ShortLine(sku="X-100", requested=4, available=3),))


def test_unknown_sku_and_no_warehouses_are_shortages():
    assert plan([Demand(1, "NEW-1", 2)], {}, []) == Shortage(
        (ShortLine(sku="NEW-1", requested=2, available=0),))


def test_negative_stock_counts_as_none_and_zero_quantity_lines_need_nothing():
    demands = [Demand(1, "X-100", 1), Demand(2, "Y-200", 0)]
    result = plan(demands, {("X-100", "WH-A"): -3, ("X-100", "WH-B"): 1})
    assert result == Reservation((Allocation(1, "X-100", "WH-B", 1),))


def test_stock_in_a_warehouse_without_a_priority_row_is_still_used_after_listed_ones():
    result = plan([Demand(1, "X-100", 2)], {("X-100", "WH-NEW"): 1, ("X-100", "WH-A"): 1})
    assert result == Reservation((Allocation(1, "X-100", "WH-A", 1),
                                  Allocation(1, "X-100", "WH-NEW", 1)))


def test_negative_quantity_is_refused():
    with pytest.raises(ValueError, match="negative"):
        plan([Demand(1, "X-100", -1)], {})


def test_reserved_lines_merge_lines_of_the_same_sku_and_warehouse():
    demands = [Demand(1, "X-100", 1), Demand(2, "X-100", 2, "B1")]
    result = plan(demands, {("X-100", "WH-A"): 3})
    assert isinstance(result, Reservation)
    assert result.reserved_lines() == [ReservedLine(sku="X-100", warehouse="WH-A", quantity=3)]


SKUS = ["A-1", "B-2", "C-3"]
CODES = ["WH-A", "WH-B", "WH-C"]


@st.composite
def orders_and_stock(draw):
    demands = [
        Demand(n, draw(st.sampled_from(SKUS)), draw(st.integers(1, 4)),
               draw(st.sampled_from([None, None, "B1", "B2"])))
        for n in range(1, draw(st.integers(1, 6)) + 1)
    ]
    stock = {(sku, wh): draw(st.integers(0, 5)) for sku in SKUS for wh in CODES}
    warehouses = [Warehouse(code, draw(st.integers(0, 3))) for code in CODES]
    return demands, stock, warehouses


@given(orders_and_stock())
@settings(max_examples=300, deadline=None)
def test_any_plan_respects_stock_quantities_and_bundles(case):
    demands, stock, warehouses = case
    result = plan_reservation(demands, stock, warehouses)
    if isinstance(result, Shortage):
        assert result.missing
        assert all(line.requested > line.available for line in result.missing)
        return
    for (sku, wh), qty in result.by_stock().items():
        assert qty <= stock[(sku, wh)]
    for d in demands:
        assert sum(a.quantity for a in result.allocations if a.line_no == d.line_no) == d.quantity
    for bundle in ("B1", "B2"):
        lines = {d.line_no for d in demands if d.gift_bundle == bundle}
        assert len({a.warehouse for a in result.allocations if a.line_no in lines}) <= 1


@given(orders_and_stock())
@settings(max_examples=300, deadline=None)
def test_without_bundles_enough_total_stock_always_reserves(case):
    demands, stock, warehouses = case
    demands = [Demand(d.line_no, d.sku, d.quantity) for d in demands]
    enough = all(sum(q for (s, _), q in stock.items() if s == sku)
                 >= sum(d.quantity for d in demands if d.sku == sku) for sku in SKUS)
    assert isinstance(plan_reservation(demands, stock, warehouses), Reservation) == enough
