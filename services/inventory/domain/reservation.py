"""Stock reservation decisions: which warehouse serves which order line, or what is missing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from shared.contract.payloads import OrderLine, ReservedLine, ShortLine

DEFAULT_WAREHOUSE_PRIORITY = 100
"""Priority of a warehouse created by its first receipt; a lower number is served first."""

# Assigning gift bundles to warehouses is a small packing problem; the search is exhaustive
# for realistic orders and gives up (reporting a shortage) past this many tries.
BUNDLE_SEARCH_BUDGET = 20_000

StockKey = tuple[str, str]
"""(sku, warehouse)."""


@dataclass(frozen=True, slots=True)
class Warehouse:
    code: str
    priority: int = DEFAULT_WAREHOUSE_PRIORITY


@dataclass(frozen=True, slots=True)
class Demand:
    """One order line as far as stock is concerned."""

    line_no: int
    sku: str
    quantity: int
    gift_bundle: str | None = None

    @classmethod
    def of(cls, line: OrderLine) -> Demand:
        return cls(line.line_no, line.sku, line.quantity, line.gift_bundle)


@dataclass(frozen=True, slots=True)
class Allocation:
    """Units of one order line taken from one warehouse."""

    line_no: int
    sku: str
    warehouse: str
    quantity: int


@dataclass(frozen=True, slots=True)
class Reservation:
    allocations: tuple[Allocation, ...]

    def by_stock(self) -> dict[StockKey, int]:
        """Units per (sku, warehouse), in the order they were first allocated."""
        totals: dict[StockKey, int] = {}
        for a in self.allocations:
            totals[(a.sku, a.warehouse)] = totals.get((a.sku, a.warehouse), 0) + a.quantity
        return totals

    def reserved_lines(self) -> list[ReservedLine]:
        return [ReservedLine(sku=sku, warehouse=wh, quantity=q)
                for (sku, wh), q in self.by_stock().items()]

    @property
    def units(self) -> int:
        return sum(a.quantity for a in self.allocations)


@dataclass(frozen=True, slots=True)
class Shortage:
    missing: tuple[ShortLine, ...]


DEPOSIT_ORDER_TYPES = frozenset({"presale"})


def reserves_at_placement(order_type: str) -> bool:
    """A presale order locks stock when its deposit is paid, not when it is placed."""
    return order_type not in DEPOSIT_ORDER_TYPES


def by_priority(warehouses: Iterable[Warehouse]) -> list[str]:
    """Warehouse codes in serving order: lower priority number first, then code."""
    return [w.code for w in sorted(warehouses, key=lambda w: (w.priority, w.code))]


def serving_order(warehouses: Iterable[Warehouse], stock: Iterable[StockKey] = (),
                  preferred: Collection[str] = ()) -> list[str]:
    """Warehouses in the order they are asked: ``preferred`` ones first, then by priority.

    Warehouses that hold stock but have no priority row yet count with the default priority.
    """
    known = {w.code for w in warehouses}
    unlisted = {Warehouse(wh) for (_, wh) in stock if wh not in known}
    order = by_priority([*warehouses, *unlisted])
    return [wh for wh in order if wh in preferred] + [wh for wh in order if wh not in preferred]


def plan_reservation(
    demands: Sequence[Demand], available: Mapping[StockKey, int], warehouses: Sequence[Warehouse],
    preferred: Collection[str] = (),
) -> Reservation | Shortage:
    """Decide how an order is reserved, or why it cannot be.

    ``preferred`` warehouses (those already serving the order, for an amendment's extra units)
    are asked before all others, and only they may take the whole demand under rule 1 (so the
    extra units of a SKU join the order's units of that SKU rather than follow another SKU).

    1. One warehouse (the first by priority) that can serve every line takes the whole order.
    2. Otherwise the order is split: each gift bundle (the lines sharing a ``gift_bundle``) goes
       whole to one warehouse, searched in priority order; every other line takes its units from
       the first warehouse that has them all, else from several warehouses in priority order.
    3. If that is impossible, nothing is reserved and the shortage names what is missing: SKUs
       whose total across warehouses is short (``available`` = that total); or, when only the
       bundle rule stands in the way, the bundle's SKUs short in the warehouse that comes closest
       (``available`` = that warehouse's units).
    """
    wanted = [d for d in demands if d.quantity != 0]
    for d in wanted:
        if d.quantity < 0:
            raise ValueError(f"line {d.line_no}: quantity {d.quantity} is negative")
    stock = {key: qty for key, qty in available.items() if qty > 0}
    order = serving_order(warehouses, stock, preferred)
    totals = _per_sku(wanted)

    short = [
        ShortLine(sku=sku, requested=qty, available=_total(stock, sku))
        for sku, qty in totals.items()
        if _total(stock, sku) < qty
    ]
    if short:
        return Shortage(tuple(short))
    # Extra units of an order already served somewhere go whole to one of its warehouses if one
    # can take them all; otherwise line by line, its warehouses asked first.
    for wh in (order if not preferred else [w for w in order if w in preferred]):
        if _covers(stock, wh, totals):
            return Reservation(tuple(Allocation(d.line_no, d.sku, wh, d.quantity) for d in wanted))

    bundles = _bundles(wanted)
    placement = _place_bundles(list(bundles.values()), stock, order)
    if placement is None:
        return _bundle_shortage(list(bundles.values()), stock, order)
    allocations: list[Allocation] = []
    remaining = dict(stock)
    for lines, wh in placement:
        for d in lines:
            remaining[(d.sku, wh)] -= d.quantity
            allocations.append(Allocation(d.line_no, d.sku, wh, d.quantity))
    for d in (d for d in wanted if d.gift_bundle is None):
        allocations.extend(_fill_line(d, remaining, order))
    allocations.sort(key=lambda a: (a.line_no, order.index(a.warehouse)))
    return Reservation(tuple(allocations))


def _per_sku(lines: Iterable[Demand]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for d in lines:
        totals[d.sku] += d.quantity
    return dict(totals)


def _total(stock: Mapping[StockKey, int], sku: str) -> int:
    return sum(qty for (s, _), qty in stock.items() if s == sku)


def _covers(stock: Mapping[StockKey, int], warehouse: str, needs: Mapping[str, int]) -> bool:
    return all(stock.get((sku, warehouse), 0) >= qty for sku, qty in needs.items())


def _bundles(lines: Iterable[Demand]) -> dict[str, list[Demand]]:
    bundles: dict[str, list[Demand]] = {}
    for d in lines:
        if d.gift_bundle is not None:
            bundles.setdefault(d.gift_bundle, []).append(d)
    return bundles


def _place_bundles(
    bundles: list[list[Demand]], stock: Mapping[StockKey, int], order: Sequence[str]
) -> list[tuple[list[Demand], str]] | None:
    """A warehouse for every bundle (depth first, priority order), or None when there is none.

    Only bundles need a search: lines outside bundles may split freely, and the units per SKU
    the bundles leave over do not depend on where the bundles go.
    """
    needs = [_per_sku(lines) for lines in bundles]
    remaining = dict(stock)
    chosen: list[str] = []
    budget = BUNDLE_SEARCH_BUDGET

    def search(index: int) -> bool:
        nonlocal budget
        if index == len(bundles):
            return True
        for wh in order:
            budget -= 1
            if budget < 0:
                return False
            if not _covers(remaining, wh, needs[index]):
                continue
            for sku, qty in needs[index].items():
                remaining[(sku, wh)] -= qty
            chosen.append(wh)
            if search(index + 1):
                return True
            chosen.pop()
            for sku, qty in needs[index].items():
                remaining[(sku, wh)] += qty
        return False

    if not search(0):
        return None
    return list(zip(bundles, chosen, strict=True))


def _fill_line(d: Demand, remaining: dict[StockKey, int], order: Sequence[str]) -> list[Allocation]:
    """Units of one line: from the first warehouse that has them all, else across warehouses."""
    whole = next((wh for wh in order if remaining.get((d.sku, wh), 0) >= d.quantity), None)
    sources = [whole] if whole is not None else list(order)
    allocations: list[Allocation] = []
    left = d.quantity
    for wh in sources:
        take = min(left, remaining.get((d.sku, wh), 0))
        if take > 0:
            remaining[(d.sku, wh)] -= take
            allocations.append(Allocation(d.line_no, d.sku, wh, take))
            left -= take
        if left == 0:
            break
    if left:  # cannot happen: the per-SKU totals were checked before
        raise AssertionError(f"line {d.line_no}: {left} units of {d.sku} unallocated")
    return allocations


def _bundle_shortage(
    bundles: list[list[Demand]], stock: Mapping[StockKey, int], order: Sequence[str]
) -> Shortage:
    """Place bundles greedily; report the first that fits nowhere, at its closest warehouse."""
    remaining = dict(stock)
    for lines in bundles:
        needs = _per_sku(lines)

        def deficit(wh: str, needs: Mapping[str, int] = needs) -> int:
            return sum(max(0, qty - remaining.get((sku, wh), 0)) for sku, qty in needs.items())

        closest = min(order, key=lambda wh: (deficit(wh), order.index(wh)))
        if deficit(closest) == 0:
            for sku, qty in needs.items():
                remaining[(sku, closest)] -= qty
            continue
        return Shortage(tuple(
            ShortLine(sku=sku, requested=qty, available=remaining.get((sku, closest), 0))
            for sku, qty in needs.items()
            if remaining.get((sku, closest), 0) < qty
        ))
    # Every bundle fit greedily, yet the search said no: it ran out of budget.
    return Shortage(tuple(
        ShortLine(sku=sku, requested=qty, available=_total(stock, sku))
        for sku, qty in _per_sku(d for lines in bundles for d in lines).items()
    ))
