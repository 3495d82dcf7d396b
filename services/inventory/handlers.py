"""Inventory's application layer: reserve stock for placed orders, receive stock over HTTP."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.inventory import domain, store
from shared.clock import Clock
from shared.contract.envelope import SYSTEM, Actor
from shared.contract.payloads import OrderPlaced, StockReceived, StockReserved, StockShortage
from shared.eventstore import Meta, append
from shared.inbox import Incoming


def stock_stream(sku: str, warehouse: str) -> str:
    """The event stream of one SKU in one warehouse (its receipts)."""
    return f"stock:{sku}@{warehouse}"


async def handle_order_event(conn: AsyncConnection, message: Incoming, *, clock: Clock) -> None:
    """Consumer entry point for ``oms.order.events.v1`` (inside the inbox's transaction)."""
    event = message.event
    if event.event_type == OrderPlaced.event_type:
        await reserve_stock(conn, message, OrderPlaced.model_validate(event.payload), clock=clock)


async def reserve_stock(conn: AsyncConnection, message: Incoming, order: OrderPlaced, *,
                        clock: Clock) -> None:
    """Reserve every line of a placed order, or record the shortage; once per order."""
    event = message.event
    now = clock.now()
    if not await store.claim_order(conn, order.order_id, event.event_id, now):
        return  # this order was decided before (another event id for the same order)
    demands = [domain.Demand.of(line) for line in order.lines]
    available = await store.lock_available(conn, (d.sku for d in demands))
    plan = domain.plan_reservation(demands, available, await store.list_warehouses(conn))
    meta = Meta(correlation_id=event.correlation_id, causation_id=str(event.event_id),
                actor=SYSTEM)
    outcome = (StockReserved(order_id=order.order_id, lines=plan.reserved_lines())
               if isinstance(plan, domain.Reservation)
               else StockShortage(order_id=order.order_id, missing=list(plan.missing)))
    [appended] = await append(conn, order.order_id, None, [outcome], meta=meta, clock=clock,
                              key=order.order_id)
    if isinstance(plan, domain.Reservation):
        await store.record_reservation(conn, order.order_id, event.event_id, appended.event_id,
                                       plan, now)
    else:
        await store.record_shortage(conn, order.order_id, appended.event_id, plan, now)


@dataclass(frozen=True, slots=True)
class Receipt:
    sku: str
    warehouse: str
    quantity: int
    reason: str | None = None


async def receive_stock(engine: AsyncEngine, receipt: Receipt, *, actor: Actor,
                        correlation_id: str, clock: Clock) -> tuple[StockReceived, str]:
    """Put units into a warehouse (created on first receipt); returns the event and its id."""
    if receipt.quantity <= 0:
        raise ValueError("a receipt needs a positive quantity")
    now = clock.now()
    async with engine.begin() as conn:
        await store.ensure_warehouse(conn, receipt.warehouse, now)
        # The balance upsert locks the (sku, warehouse) row, serialising appends to its stream.
        on_hand, _ = await store.add_on_hand(conn, receipt.sku, receipt.warehouse,
                                             receipt.quantity, now)
        received = StockReceived(sku=receipt.sku, warehouse=receipt.warehouse,
                                 quantity=receipt.quantity, on_hand=on_hand, reason=receipt.reason)
        [appended] = await append(conn, stock_stream(receipt.sku, receipt.warehouse), None,
                                  [received], meta=Meta(correlation_id=correlation_id, actor=actor),
                                  clock=clock, key=receipt.sku)
        await store.add_ledger_entries(conn, [{
            "sku": receipt.sku, "warehouse": receipt.warehouse, "kind": "received",
            "quantity": receipt.quantity, "order_id": None, "event_id": appended.event_id,
            "reason": receipt.reason, "recorded_at": now,
        }])
    return received, str(appended.event_id)


async def set_warehouse_priority(engine: AsyncEngine, code: str, priority: int, *,
                                 clock: Clock) -> None:
    async with engine.begin() as conn:
        await store.set_warehouse_priority(conn, code, priority, clock.now())
