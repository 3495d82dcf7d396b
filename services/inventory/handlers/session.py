"""One transaction's work on the stock: locks, movements, outgoing events, backorders, alerts.

Every path that changes stock (order events, receipts, adjustments) goes through a LedgerSession:
it locks the SKUs involved (plus the SKUs of waiting orders that want them), moves stock only
through ledger movements, and before the transaction ends serves the backorder queue for SKUs
that gained stock and raises low-stock alerts for SKUs whose availability changed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory import domain, store
from services.inventory.catalog import CatalogThresholds
from shared.clock import Clock
from shared.contract.envelope import SYSTEM, Actor, EventEnvelope
from shared.contract.fulfilment_events import StockLow
from shared.contract.payloads import Payload, ReservedLine, StockReserved, StockShortage
from shared.eventstore import ConcurrencyError, Meta, append

Thresholds = Mapping[str, int]
"""Low-stock threshold per SKU (from the catalog; a CatalogThresholds follows the file)."""


def stock_stream(sku: str, warehouse: str) -> str:
    """The event stream of one SKU in one warehouse (its receipts and returns)."""
    return f"stock:{sku}@{warehouse}"


def level_stream(sku: str) -> str:
    """The event stream of a SKU's low-stock alerts."""
    return f"stock-level:{sku}"


class LocksOutdated(ConcurrencyError):
    """The order gained SKUs between reading it and locking them: the inbox retries the message."""

    def __init__(self, missing: Iterable[str]) -> None:
        super().__init__("stock locks", None, 0)
        self.args = (f"SKUs {sorted(missing)} were not locked; retrying",)


def actor_name(actor: Actor) -> str:
    return f"{actor.kind}:{actor.id}" + (f" ({actor.role})" if actor.role else "")


def reserved_lines(takes: Iterable[domain.Take]) -> list[ReservedLine]:
    return [ReservedLine(sku=t.sku, warehouse=t.warehouse, quantity=t.quantity) for t in takes]


@dataclass
class LedgerSession:
    conn: AsyncConnection
    clock: Clock
    thresholds: Thresholds
    correlation_id: str
    actor: Actor = SYSTEM
    cause: uuid.UUID | None = None  # the incoming event (or receipt) behind this work
    now: datetime = field(init=False)
    locked: set[str] = field(default_factory=set)
    gained: set[str] = field(default_factory=set)  # SKUs worth serving the queue for
    changed: set[str] = field(default_factory=set)  # SKUs whose availability changed
    _warehouses: list[domain.Warehouse] | None = None

    def __post_init__(self) -> None:
        self.now = self.clock.now()
        if isinstance(self.thresholds, CatalogThresholds):  # followed file: one reading per work
            self.thresholds = self.thresholds.current()

    # ---- locks and reads -------------------------------------------------------------------

    async def lock(self, skus: Iterable[str]) -> None:
        """Lock these SKUs and the SKUs of every waiting order that wants one of them."""
        wanted = set(skus) - self.locked
        if not wanted:
            return
        wanted |= await store.waiting_skus(self.conn, wanted)
        await store.lock_skus(self.conn, wanted - self.locked)
        self.locked |= wanted

    def require_locked(self, skus: Iterable[str]) -> None:
        """A concurrent change added SKUs after we locked: retry the message from the start."""
        missing = set(skus) - self.locked
        if missing:
            raise LocksOutdated(missing)

    async def warehouses(self) -> list[domain.Warehouse]:
        if self._warehouses is None:
            self._warehouses = await store.list_warehouses(self.conn)
        return self._warehouses

    async def serving_order(self, stock: Iterable[domain.StockKey] = ()) -> list[str]:
        return domain.serving_order(await self.warehouses(), stock)

    # ---- writes ------------------------------------------------------------------------------

    def meta(self, actor: Actor | None = None) -> Meta:
        return Meta(correlation_id=self.correlation_id, actor=actor or SYSTEM,
                    causation_id=str(self.cause) if self.cause else None)

    async def emit(self, stream_id: str, payload: Payload, *, key: str,
                   actor: Actor | None = None) -> EventEnvelope:
        [appended] = await append(self.conn, stream_id, None, [payload], meta=self.meta(actor),
                                  clock=self.clock, key=key)
        return appended

    async def move(self, movements: Sequence[domain.Movement], event_id: uuid.UUID, *,
                   reason: str | None, actor: Actor | None = None) -> None:
        self.require_locked(m.sku for m in movements)
        await store.apply_movements(self.conn, movements, store.Entry(
            event_id=event_id, recorded_at=self.now, reason=reason,
            actor=actor_name(actor or SYSTEM), caused_by=self.cause))
        for m in movements:
            available_change = m.on_hand_change - m.reserved_change
            if available_change:
                self.changed.add(m.sku)
            if available_change > 0:
                self.gained.add(m.sku)

    async def reserve(self, order_id: str, reservation: domain.Reservation, *, reason: str,
                      first: bool) -> EventEnvelope:
        """Reserve a planned reservation for an order: stock.reserved, ledger, order status."""
        event = await self.emit(order_id, StockReserved(order_id=order_id,
                                                        lines=reservation.reserved_lines()),
                                key=order_id)
        await self.move([domain.Movement(sku, wh, "reserved", qty, order_id)
                         for (sku, wh), qty in reservation.by_stock().items()],
                        event.event_id, reason=reason)
        await store.update_order(self.conn, order_id, self.now, reserved=True,
                                 status="reserved" if first else None)
        return event

    async def reserve_new(self, order_id: str, demands: Sequence[domain.Demand], *, reason: str,
                          top_up: bool = False, preferred: Sequence[str] = ()) -> bool:
        """Reserve new demand behind every waiting order, or queue it with stock.shortage."""
        skus = {d.sku for d in demands if d.quantity > 0}
        if not skus:
            return True
        await self.lock(skus)
        ahead = await store.queue(self.conn, skus, exclude=order_id)
        available = await store.lock_available(self.conn, skus)
        plan = domain.plan_behind_queue(demands, available, await self.warehouses(), ahead,
                                        preferred)
        if isinstance(plan, domain.Reservation):
            await self.reserve(order_id, plan, reason=reason, first=not top_up)
            return True
        shortage = await self.emit(order_id, StockShortage(order_id=order_id,
                                                           missing=list(plan.missing)),
                                   key=order_id)
        await store.put_waiting(self.conn, order_id, demands, top_up=top_up, now=self.now,
                                shortage_event_id=shortage.event_id)
        if not top_up:
            await store.update_order(self.conn, order_id, self.now, status="short")
        return False

    # ---- before commit -----------------------------------------------------------------------

    async def finish(self) -> None:
        """Serve waiting orders for SKUs that gained stock, then check low-stock thresholds."""
        if self.gained:
            await self.serve_backorders()
        await self.check_low_stock()

    async def serve_backorders(self) -> None:
        candidates = await store.queue(self.conn, self.gained)
        if not candidates:
            return
        # Earlier orders that want any SKU a candidate wants must have their demand set aside,
        # even when they do not want the SKUs that gained stock.
        wanted: set[str] = set().union(*(w.skus for w in candidates))
        waiting = await store.queue(self.conn, wanted)
        skus = set().union(*(w.skus for w in waiting)) & self.locked
        available = await store.lock_available(self.conn, skus)
        served = domain.serve_waiting(waiting, available, await self.warehouses(), self.locked)
        for s in served:
            order_id = s.waiting.order_id
            await store.remove_waiting(self.conn, order_id)
            await self.reserve(order_id, s.reservation, first=not s.waiting.top_up,
                               reason="backorder served" if not s.waiting.top_up
                               else "backordered extra units served")
        self.gained.clear()

    async def check_low_stock(self) -> None:
        skus = sorted(sku for sku in self.changed if sku in self.thresholds)
        self.changed.clear()
        if not skus:
            return
        state = await store.low_stock_state(self.conn, skus)
        for sku in skus:
            threshold, (available, flagged) = self.thresholds[sku], state[sku]
            alert, low = domain.low_stock_crossing(flagged, available, threshold)
            if alert:
                await self.emit(level_stream(sku), StockLow(sku=sku, available=available,
                                                            threshold=threshold), key=sku)
            if flagged != low:
                await store.set_low_flag(self.conn, sku, low, available, threshold, self.now)
