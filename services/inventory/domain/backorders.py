"""The backorder queue: orders waiting for stock are served first come, first served.

The rule (one rule for receipts, returns, releases, placements and amendments):

* Waiting orders are ordered by the time they became short (then by arrival in the queue).
* Before an order is served, every *earlier* waiting order's whole remaining demand of each SKU
  is set aside, whether or not that earlier order can be served right now. So a later order
  (however small) never takes units an earlier waiting order of the same SKU still wants.
* A new placement, a presale deposit and the extra units of an amendment count as later than
  every waiting order: they get only what is left after the whole queue's demand is set aside.
* A waiting order is served whole (by the placement rules: one warehouse if possible, else
  split by priority, gift bundles never split) or stays waiting; never partly.

Set-aside units are taken, per SKU, from warehouses in serving order (the order they would be
served from); they only lower what later orders may see, nothing is reserved for the waiter.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from services.inventory.domain.reservation import (
    Demand,
    Reservation,
    Shortage,
    StockKey,
    Warehouse,
    plan_reservation,
    serving_order,
)


@dataclass(frozen=True, slots=True)
class Waiting:
    """An order (or the extra units of an amended order) in the backorder queue."""

    order_id: str
    demands: tuple[Demand, ...]
    top_up: bool = False  # True: extra units of an order that already holds stock
    preferred: tuple[str, ...] = field(default=())  # warehouses already serving the order

    def wanted(self) -> dict[str, int]:
        return wanted_per_sku(self.demands)

    @property
    def skus(self) -> frozenset[str]:
        return frozenset(d.sku for d in self.demands if d.quantity > 0)


def wanted_per_sku(demands: Iterable[Demand]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for d in demands:
        if d.quantity > 0:
            totals[d.sku] = totals.get(d.sku, 0) + d.quantity
    return totals


def set_aside(available: Mapping[StockKey, int], claims: Mapping[str, int],
              order: Sequence[str]) -> dict[StockKey, int]:
    """``available`` minus ``claims`` per SKU, taken from warehouses in ``order``."""
    view = {key: qty for key, qty in available.items() if qty > 0}
    for sku, claim in claims.items():
        left = claim
        for wh in order:
            if left <= 0:
                break
            take = min(left, view.get((sku, wh), 0))
            if take:
                view[(sku, wh)] -= take
                left -= take
    return view


def _claims(waiting: Iterable[Waiting]) -> dict[str, int]:
    claims: dict[str, int] = {}
    for w in waiting:
        for sku, qty in w.wanted().items():
            claims[sku] = claims.get(sku, 0) + qty
    return claims


def plan_behind_queue(demands: Sequence[Demand], available: Mapping[StockKey, int],
                      warehouses: Sequence[Warehouse], ahead: Iterable[Waiting],
                      preferred: Collection[str] = ()) -> Reservation | Shortage:
    """Plan a new demand after setting aside what every waiting order still wants.

    A shortage's ``available`` is what is left for this demand after the set-aside.
    """
    order = serving_order(warehouses, available)
    view = set_aside(available, _claims(ahead), order)
    return plan_reservation(demands, view, warehouses, preferred)


@dataclass(frozen=True, slots=True)
class Served:
    waiting: Waiting
    reservation: Reservation


def serve_waiting(queue: Sequence[Waiting], available: Mapping[StockKey, int],
                  warehouses: Sequence[Warehouse], servable: Collection[str]) -> list[Served]:
    """Which waiting orders the current stock serves, walking the queue oldest first.

    ``queue`` is in first-come order. Only orders whose SKUs are all in ``servable`` (the SKUs
    the caller has locked and read) may be served; the others still have their demand set aside.
    """
    order = serving_order(warehouses, available)
    remaining = {key: qty for key, qty in available.items() if qty > 0}
    claims: dict[str, int] = {}
    served: list[Served] = []
    for w in queue:
        plan: Reservation | Shortage | None = None
        if w.skus <= set(servable):
            view = set_aside(remaining, claims, order)
            plan = plan_reservation(w.demands, view, warehouses, w.preferred)
        if isinstance(plan, Reservation):
            for key, qty in plan.by_stock().items():
                remaining[key] -= qty
            served.append(Served(w, plan))
        else:
            for sku, qty in w.wanted().items():
                claims[sku] = claims.get(sku, 0) + qty
    return served
