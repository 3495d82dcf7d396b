"""The backorder queue: first short, first served; a later order never jumps an earlier one."""

from __future__ import annotations

from services.inventory.domain import (
    Allocation,
    Demand,
    Reservation,
    Shortage,
    Waiting,
    Warehouse,
    plan_behind_queue,
    serve_waiting,
    set_aside,
)
from shared.contract.payloads import ShortLine

WAREHOUSES = [Warehouse("WH-A", 10), Warehouse("WH-B", 20)]
ALL = {"X-100", "Y-200", "GIFT-MUG"}


def waiting(order_id, *lines, top_up=False, preferred=()):
    return Waiting(order_id, tuple(Demand(n, sku, qty) for n, (sku, qty) in enumerate(lines, 1)),
                   top_up, tuple(preferred))


def served_ids(result):
    return [s.waiting.order_id for s in result]


def test_waiting_orders_are_served_oldest_first_while_stock_lasts():
    queue = [waiting("O-1", ("X-100", 2)), waiting("O-2", ("X-100", 2)), waiting("O-3", ("X-100", 2))]
    result = serve_waiting(queue, {("X-100", "WH-A"): 4}, WAREHOUSES, ALL)
    assert served_ids(result) == ["O-1", "O-2"]
    assert result[0].reservation == Reservation((Allocation(1, "X-100", "WH-A", 2),))


def test_a_later_smaller_order_never_jumps_an_earlier_larger_one():
    queue = [waiting("O-BIG", ("X-100", 5)), waiting("O-SMALL", ("X-100", 1))]
    # 3 units: not enough for the earlier order, enough for the later one, which must still wait.
    assert serve_waiting(queue, {("X-100", "WH-A"): 3}, WAREHOUSES, ALL) == []
    # 6 units: both, in order.
    assert served_ids(serve_waiting(queue, {("X-100", "WH-A"): 6}, WAREHOUSES, ALL)) == [
        "O-BIG", "O-SMALL"]


def test_an_earlier_order_blocks_only_the_skus_it_wants():
    queue = [waiting("O-1", ("X-100", 5), ("Y-200", 1)), waiting("O-2", ("Y-200", 1)),
             waiting("O-3", ("GIFT-MUG", 1))]
    stock = {("X-100", "WH-A"): 1, ("Y-200", "WH-A"): 1, ("GIFT-MUG", "WH-B"): 1}
    # O-1 is short of X-100, so its Y-200 is set aside: O-2 waits; O-3 wants nothing O-1 wants.
    assert served_ids(serve_waiting(queue, stock, WAREHOUSES, ALL)) == ["O-3"]
    stock[("Y-200", "WH-B")] = 1
    assert served_ids(serve_waiting(queue, stock, WAREHOUSES, ALL)) == ["O-2", "O-3"]


def test_orders_with_a_sku_the_caller_did_not_lock_are_not_served_but_still_set_aside():
    queue = [waiting("O-1", ("X-100", 1), ("Y-200", 1)), waiting("O-2", ("X-100", 1))]
    stock = {("X-100", "WH-A"): 1, ("Y-200", "WH-A"): 1}
    assert serve_waiting(queue, stock, WAREHOUSES, {"X-100"}) == []


def test_a_waiting_order_is_served_whole_with_bundles_unsplit():
    bundle = Waiting("O-1", (Demand(1, "X-100", 1, "B1"), Demand(2, "GIFT-MUG", 1, "B1")))
    split_stock = {("X-100", "WH-A"): 1, ("GIFT-MUG", "WH-B"): 1}
    assert serve_waiting([bundle], split_stock, WAREHOUSES, ALL) == []
    [served] = serve_waiting([bundle], split_stock | {("X-100", "WH-B"): 1}, WAREHOUSES, ALL)
    assert {a.warehouse for a in served.reservation.allocations} == {"WH-B"}


def test_extra_units_prefer_the_warehouse_already_serving_the_order():
    top_up = waiting("O-1", ("X-100", 1), top_up=True, preferred=["WH-B"])
    [served] = serve_waiting([top_up], {("X-100", "WH-A"): 5, ("X-100", "WH-B"): 1}, WAREHOUSES, ALL)
    assert served.reservation.allocations == (Allocation(1, "X-100", "WH-B", 1),)


def test_set_aside_takes_from_warehouses_in_serving_order():
    view = set_aside({("X-100", "WH-A"): 2, ("X-100", "WH-B"): 5}, {"X-100": 3}, ["WH-A", "WH-B"])
    assert view == {("X-100", "WH-A"): 0, ("X-100", "WH-B"): 4}


def test_a_new_order_gets_only_what_the_queue_leaves_and_its_shortage_says_so():
    ahead = [waiting("O-1", ("X-100", 5))]
    stock = {("X-100", "WH-A"): 3, ("Y-200", "WH-A"): 1}
    result = plan_behind_queue([Demand(1, "X-100", 1), Demand(2, "Y-200", 1)], stock, WAREHOUSES,
                               ahead)
    assert result == Shortage((ShortLine(sku="X-100", requested=1, available=0),))
    # Once the earlier order's demand is covered, the rest is free for the newcomer.
    result = plan_behind_queue([Demand(1, "X-100", 1)], {("X-100", "WH-A"): 6}, WAREHOUSES, ahead)
    assert result == Reservation((Allocation(1, "X-100", "WH-A", 1),))


def test_with_an_empty_queue_a_new_order_is_planned_as_usual():
    assert plan_behind_queue([Demand(1, "X-100", 2)], {("X-100", "WH-B"): 2}, WAREHOUSES, []) == \
        Reservation((Allocation(1, "X-100", "WH-B", 2),))
