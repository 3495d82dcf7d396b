"""Decisions about stock an order already holds: amendments, releases, shipment deductions, alerts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from services.inventory.domain.reservation import Demand, StockKey

Holdings = Mapping[StockKey, int]
"""Units one order holds per (sku, warehouse)."""


class OverShipment(ValueError):
    """A shipment carries more units of a SKU than the order holds reserved; nothing is deducted."""


@dataclass(frozen=True, slots=True)
class Take:
    """Units of a SKU taken from (or given back to) one warehouse."""

    sku: str
    warehouse: str
    quantity: int


def held_per_sku(holdings: Holdings) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (sku, _), qty in holdings.items():
        totals[sku] = totals.get(sku, 0) + qty
    return totals


def release_everything(holdings: Holdings, order: Sequence[str]) -> list[Take]:
    """All the order's units, per SKU and warehouse (cancellation)."""
    rank = {wh: i for i, wh in enumerate(order)}
    return [Take(sku, wh, qty) for (sku, wh), qty in
            sorted(holdings.items(), key=lambda kv: (kv[0][0], rank.get(kv[0][1], len(rank)), kv[0][1]))
            if qty > 0]


def release_units(holdings: Holdings, sku: str, quantity: int, order: Sequence[str]) -> list[Take]:
    """Give back ``quantity`` held units of ``sku``, last-served warehouse first (so the order stays
    concentrated in its preferred warehouses). Never more than is held."""
    takes: list[Take] = []
    left = quantity
    for wh in reversed(_holding_order(holdings, sku, order)):
        take = min(left, holdings.get((sku, wh), 0))
        if take > 0:
            takes.append(Take(sku, wh, take))
            left -= take
        if left == 0:
            break
    return takes


def _holding_order(holdings: Holdings, sku: str, order: Sequence[str]) -> list[str]:
    """Warehouses holding ``sku`` for the order: by ``order``, unknown ones last by code."""
    holding = {wh for (s, wh), qty in holdings.items() if s == sku and qty > 0}
    return [wh for wh in order if wh in holding] + sorted(holding - set(order))


def plan_deduction(order_id: str, shipment_id: str, holdings: Holdings, shipped: Mapping[str, int],
                   shipment_warehouse: str, order: Sequence[str]) -> list[Take]:
    """Where a shipment's units come out of the order's reservation.

    Per SKU: the shipment's own warehouse first when the order holds that SKU there, then the
    other warehouses holding it, in priority order. Shipping more than the order holds is an
    error (``OverShipment``) and deducts nothing: on hand must never go below what is reserved.
    """
    takes: list[Take] = []
    for sku, quantity in shipped.items():
        if quantity <= 0:
            continue
        held = sum(qty for (s, _), qty in holdings.items() if s == sku)
        if held < quantity:
            where = ", ".join(f"{wh}: {qty}" for (s, wh), qty in sorted(holdings.items())
                              if s == sku and qty > 0) or "none"
            raise OverShipment(
                f"shipment {shipment_id} of order {order_id} ships {quantity} x {sku} but the order "
                f"holds only {held} reserved ({where}); nothing was deducted")
        sources = _holding_order(holdings, sku, order)
        if shipment_warehouse in sources:
            sources.remove(shipment_warehouse)
            sources.insert(0, shipment_warehouse)
        left = quantity
        for wh in sources:
            take = min(left, holdings[(sku, wh)])
            if take > 0:
                takes.append(Take(sku, wh, take))
                left -= take
            if left == 0:
                break
    return takes


def per_sku(lines: Iterable[tuple[str, int]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for sku, qty in lines:
        totals[sku] = totals.get(sku, 0) + qty
    return totals


# ---- amendments -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AmendmentSplit:
    """What an amendment's per-SKU change means for an order that holds stock."""

    still_waiting: tuple[Demand, ...]  # the order's waiting extra units after the cuts
    release: dict[str, int]  # held units to give back, per SKU
    extra: tuple[Demand, ...]  # new units to reserve


def split_amendment(delta: Mapping[str, int], waiting: Sequence[Demand], held: Mapping[str, int],
                    after_lines: Sequence[Demand]) -> AmendmentSplit:
    """Lowered quantities first cancel units still waited for, then release held units (never
    more than held); raised quantities are new demand, tagged with the line (and gift bundle)
    of the amended order that carries the SKU."""
    still = list(waiting)
    release: dict[str, int] = {}
    extra: list[Demand] = []
    for sku, change in sorted(delta.items()):
        if change < 0:
            left = -change
            for i in reversed(range(len(still))):
                d = still[i]
                if d.sku != sku or left == 0:
                    continue
                cut = min(left, d.quantity)
                still[i] = Demand(d.line_no, d.sku, d.quantity - cut, d.gift_bundle)
                left -= cut
            give_back = min(left, held.get(sku, 0))
            if give_back:
                release[sku] = give_back
        elif change > 0:
            line = next((x for x in after_lines if x.sku == sku), None)
            extra.append(Demand(line.line_no if line else 0, sku, change,
                                line.gift_bundle if line else None))
    return AmendmentSplit(tuple(d for d in still if d.quantity > 0), release, tuple(extra))


def merge_demands(*groups: Iterable[Demand]) -> tuple[Demand, ...]:
    """Demands of the same line, SKU and bundle added up (first-seen order kept)."""
    merged: dict[tuple[int, str, str | None], int] = {}
    for group in groups:
        for d in group:
            key = (d.line_no, d.sku, d.gift_bundle)
            merged[key] = merged.get(key, 0) + d.quantity
    return tuple(Demand(n, sku, qty, bundle) for (n, sku, bundle), qty in merged.items() if qty > 0)


# ---- low-stock alerts -------------------------------------------------------------------------


def low_stock_crossing(was_low: bool | None, available: int, threshold: int) -> tuple[bool, bool]:
    """(alert now, is low now) for a SKU's total available against its catalog threshold.

    An alert fires only when available goes from >= threshold to < threshold; it fires again only
    after available has risen back to >= threshold. ``was_low`` None (never measured) counts as
    low: a SKU starts with nothing, and reaching the threshold for the first time arms the alert.
    """
    previously_low = True if was_low is None else was_low
    low = available < threshold
    return (low and not previously_low, low)
