"""Inventory's batch work: the placements of a Kafka batch reserved in memory, written together.

What a batch needs is locked and loaded in bulk at its start (the SKUs' advisory locks, their
available stock per warehouse, the warehouses, the orders already known, the low-stock flags);
each ``order.placed`` is then decided in memory, in order, exactly as ``on_placed`` would
(``plan_behind_queue`` over the same view of the stock), and the orders, events, ledger lines,
balances and holdings go out with one statement per table. Anything this fast path does not
cover is handled by the per-message handler on the database itself, after what is pending has
been written: then the rest of the batch goes that way too (the stock in memory is stale):
- a batch whose SKUs a waiting (backordered) order wants;
- an order that cannot be reserved whole (it joins the queue: ``stock.shortage``);
- any other stock event (deposit, cancellation, amendment, shipment, return).
A low-stock flag to write or an alert to raise is also done on the database (pending writes
first, then ``LedgerSession.check_low_stock``), after which the batch goes on in memory.
``tests/integration/inventory/test_batch.py`` checks the effect equals one message at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory import domain, store
from services.inventory.catalog import CatalogThresholds
from services.inventory.handlers.orders import HANDLERS, handle_order_event
from services.inventory.handlers.session import LedgerSession, Thresholds, actor_name
from services.inventory.store.tables import inventory_orders, order_holdings, stock_ledger
from shared.clock import Clock
from shared.contract.envelope import SYSTEM
from shared.contract.payloads import OrderPlaced, StockReserved
from shared.eventbatch import PendingEvents
from shared.eventstore import Meta
from shared.inbox import BatchStart, BatchWork, Incoming
from shared.pipeline import Query, pipelined
from shared.rowdocs import insert_rows

_KNOWN = select(inventory_orders.c.order_id).where(
    inventory_orders.c.order_id == any_(bindparam("ids", type_=ARRAY(Text))))
_INSERT_ORDERS = insert_rows(inventory_orders, [c.name for c in inventory_orders.c])
_INSERT_HOLDINGS = insert_rows(order_holdings, [c.name for c in order_holdings.c])
_INSERT_LEDGER = insert_rows(stock_ledger, [c.name for c in stock_ledger.c if c.name != "entry_id"])
# Reservations only move existing rows (stock is reserved where some is available).
_RESERVE = text(
    "UPDATE stock_balances AS b SET reserved = b.reserved + m.reserved, updated_at = m.at"
    " FROM unnest(CAST(:skus AS text[]), CAST(:warehouses AS text[]),"
    " CAST(:reserved AS integer[]), CAST(:ats AS timestamptz[])) AS m(sku, warehouse, reserved, at)"
    " WHERE b.sku = m.sku AND b.warehouse = m.warehouse")
_ACTOR = actor_name(SYSTEM)


def make_batch_start(clock: Clock, thresholds: Thresholds | None = None) -> BatchStart:
    async def start(conn: AsyncConnection, messages: Sequence[Incoming]) -> BatchWork:
        work = _Batch(conn, clock, thresholds or {})
        await work.load(messages)
        return work

    return start


class _Batch:
    def __init__(self, conn: AsyncConnection, clock: Clock, thresholds: Thresholds) -> None:
        self.conn, self.clock, self.followed = conn, clock, thresholds
        self.thresholds: Mapping[str, int] = (
            thresholds.current() if isinstance(thresholds, CatalogThresholds) else thresholds)
        self.in_memory = True
        self.known: set[str] = set()
        self.available: dict[domain.StockKey, int] = {}
        self.warehouses: list[domain.Warehouse] = []
        self.low: dict[str, bool | None] = {}
        self.placed: dict[uuid.UUID, OrderPlaced] = {}  # the batch's placements, read once
        # pending writes, in message order
        self.orders: list[dict[str, Any]] = []
        self.events = PendingEvents()
        self.ledger: list[dict[str, Any]] = []
        self.holdings: list[dict[str, Any]] = []
        self.reserved: dict[domain.StockKey, tuple[int, datetime]] = {}

    async def load(self, messages: Sequence[Incoming]) -> None:
        self.placed = {m.event.event_id: OrderPlaced.model_validate(m.event.payload)
                       for m in messages if m.event.event_type == OrderPlaced.event_type}
        placed = self.placed.values()
        skus = sorted({line.sku for order in placed for line in order.lines})
        if not skus:
            self.in_memory = False  # nothing to reserve in memory: every message as alone
            return
        # The SKUs' locks and everything the batch reads in one round trip (the reads run once
        # the locks are granted); what is read is not used when orders wait for these SKUs.
        watched = [sku for sku in skus if sku in self.thresholds]
        _, waiting, available, warehouses, known, *low = await pipelined(self.conn, [
            store.lock_skus_query(skus), store.queue_query(skus), store.lock_available_query(skus),
            store.warehouses_query(),
            Query(_KNOWN, {"ids": sorted({order.order_id for order in placed})},
                  lambda rows: {row[0] for row in rows}),
            *([store.low_stock_state_query(watched)] if watched else [])])
        if waiting:
            self.in_memory = False  # waiting orders want these SKUs: the queue decides, in SQL
            return
        self.available, self.warehouses, self.known = available, warehouses, known
        if low:
            self.low = {sku: flagged for sku, (_, flagged) in low[0].items()}

    async def handle(self, message: Incoming) -> None:
        event = message.event
        if event.event_type not in HANDLERS:
            return  # not a stock matter
        placed = self.in_memory and event.event_type == OrderPlaced.event_type
        if not placed or not await self._placed(message):
            await self._alone(message)

    async def _alone(self, message: Incoming) -> None:
        """This message and every later one of the batch on the database, as alone."""
        if self.in_memory:
            await self.flush()
            self.in_memory = False
        await handle_order_event(self.conn, message, clock=self.clock, thresholds=self.followed)

    async def _placed(self, message: Incoming) -> bool:
        """``on_placed`` in memory; False when this placement needs the database (a shortage)."""
        event, now = message.event, self.clock.now()
        order = self.placed[event.event_id]
        if order.order_id in self.known:
            return True  # decided before (another event id for the same order)
        demands = [domain.Demand.of(line) for line in order.lines]
        presale = not domain.reserves_at_placement(order.order_type)
        row = {"order_id": order.order_id, "order_type": order.order_type,
               "status": "awaiting_deposit" if presale else "short",
               "lines": store.demands_json(demands), "placed_event_id": event.event_id,
               "updated_at": now, "first_reserved_at": None}
        skus = {d.sku for d in demands if d.quantity > 0}
        if not presale and skus:
            view = {key: units for key, units in self.available.items() if key[0] in skus}
            plan = domain.plan_behind_queue(demands, view, self.warehouses, ())
            if not isinstance(plan, domain.Reservation):
                return False
            self._reserve(order.order_id, plan, event.event_id, event.correlation_id, now)
            row.update(status="reserved", first_reserved_at=now)
        self.known.add(order.order_id)
        self.orders.append(row)
        if not presale and skus:
            await self._check_low_stock(sorted(skus), event.event_id, event.correlation_id)
        return True

    def _reserve(self, order_id: str, plan: domain.Reservation, cause: uuid.UUID,
                 correlation_id: str, now: datetime) -> None:
        meta = Meta(correlation_id=correlation_id, actor=SYSTEM, causation_id=str(cause))
        [reserved] = self.events.add(
            order_id, [StockReserved(order_id=order_id, lines=plan.reserved_lines())],
            meta=meta, key=order_id, now=now)
        for (sku, warehouse), units in plan.by_stock().items():
            self.available[(sku, warehouse)] -= units
            before, _ = self.reserved.get((sku, warehouse), (0, now))
            self.reserved[(sku, warehouse)] = (before + units, now)
            self.holdings.append({"order_id": order_id, "sku": sku, "warehouse": warehouse,
                                  "quantity": units})
            self.ledger.append({
                "sku": sku, "warehouse": warehouse, "kind": "reserved", "quantity": units,
                "order_id": order_id, "event_id": reserved.event_id, "caused_by": cause,
                "reason": "order placed", "actor": _ACTOR, "recorded_at": now})

    async def _check_low_stock(self, skus: list[str], cause: uuid.UUID,
                               correlation_id: str) -> None:
        """``LedgerSession.check_low_stock`` for these SKUs: in memory while nothing is to be
        written; on the database (pending writes first) when a flag changes or an alert is due."""
        due = []
        for sku in skus:
            if sku not in self.thresholds:
                continue
            total = sum(units for (s, _), units in self.available.items() if s == sku)
            alert, low = domain.low_stock_crossing(self.low.get(sku), total, self.thresholds[sku])
            if alert or self.low.get(sku) != low:
                due.append(sku)
                self.low[sku] = low
        if due:
            await self.flush()
            session = LedgerSession(self.conn, self.clock, self.thresholds, correlation_id,
                                    cause=cause)
            session.changed.update(due)
            await session.check_low_stock()

    async def flush(self) -> None:
        """Everything decided so far: the events, orders, holdings and ledger lines in one
        statement (independent rows), the balances in one more."""
        await self.events.flush(self.conn, _INSERT_ORDERS.write(self.orders),
                                _INSERT_HOLDINGS.write(self.holdings),
                                _INSERT_LEDGER.write(self.ledger))
        self.orders, self.holdings, self.ledger = [], [], []
        if self.reserved:
            keys = list(self.reserved)
            await self.conn.execute(_RESERVE, {
                "skus": [k[0] for k in keys], "warehouses": [k[1] for k in keys],
                "reserved": [self.reserved[k][0] for k in keys],
                "ats": [self.reserved[k][1] for k in keys]})
            self.reserved = {}

    async def finish(self) -> None:
        if self.in_memory:
            await self.flush()

