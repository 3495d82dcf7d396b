"""People's stock commands over HTTP: receipts, adjustments, warehouse priorities, ledger checks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from services.inventory import domain, store, views
from services.inventory.handlers.session import LedgerSession, Thresholds, stock_stream
from shared.clock import Clock
from shared.contract.envelope import SYSTEM, Actor
from shared.contract.fulfilment_events import StockAdjusted, WarehousePrioritySet
from shared.contract.payloads import StockReceived
from shared.eventstore import Meta, append


class AdjustmentRefused(ValueError):
    """An adjustment that would leave fewer units on hand than are reserved (HTTP 409)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    sku: str
    warehouse: str
    quantity: int
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Adjustment:
    sku: str
    warehouse: str
    quantity: int  # non-zero; negative is a loss
    reason: str


async def receive_stock(engine: AsyncEngine, receipt: Receipt, *, actor: Actor,
                        correlation_id: str, clock: Clock, thresholds: Thresholds | None = None
                        ) -> tuple[StockReceived, str]:
    """Put units into a warehouse (created on first receipt), then serve waiting orders.

    Returns the stock.received event and its id.
    """
    if receipt.quantity <= 0:
        raise ValueError("a receipt needs a positive quantity")
    async with engine.begin() as conn:
        s = LedgerSession(conn, clock, thresholds or {}, correlation_id, actor=actor)
        await s.lock([receipt.sku])
        await store.ensure_warehouse(conn, receipt.warehouse, s.now)
        before = await store.balance(conn, receipt.sku, receipt.warehouse)
        received = StockReceived(sku=receipt.sku, warehouse=receipt.warehouse,
                                 quantity=receipt.quantity,
                                 on_hand=before.on_hand + receipt.quantity, reason=receipt.reason)
        event = await s.emit(stock_stream(receipt.sku, receipt.warehouse), received,
                             key=receipt.sku, actor=actor)
        await s.move([domain.Movement(receipt.sku, receipt.warehouse, "received", receipt.quantity)],
                     event.event_id, reason=receipt.reason, actor=actor)
        s.cause = event.event_id  # orders served from this receipt name it as their cause
        await s.finish()
    return received, str(event.event_id)


async def adjust_stock(engine: AsyncEngine, adjustment: Adjustment, *, actor: Actor,
                       correlation_id: str, clock: Clock, thresholds: Thresholds | None = None,
                       adjustment_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Correct on hand (count differences, damage, loss) with a reason: stock.adjusted and its
    ledger line (kind ``adjusted``, with the actor and reason) in one transaction.

    Refused (AdjustmentRefused) when on hand would end below what is reserved in that warehouse;
    nothing is recorded then. A gain serves waiting orders like a receipt does; their
    stock.reserved names the adjustment as its cause. ``adjustment_id`` (the id the ledger line
    and the served reservations name) defaults to the stock.adjusted event's id; ``oms replay``
    passes the live one, so a rebuilt ledger keeps naming the live event (the replay's own events
    do not survive a swap; the live log does).
    """
    if adjustment.quantity == 0:
        raise ValueError("an adjustment needs a non-zero quantity")
    async with engine.begin() as conn:
        s = LedgerSession(conn, clock, thresholds or {}, correlation_id, actor=actor)
        await s.lock([adjustment.sku])
        before = await store.balance(conn, adjustment.sku, adjustment.warehouse)
        after_on_hand = before.on_hand + adjustment.quantity
        if after_on_hand < before.reserved:
            raise AdjustmentRefused(
                f"quantity: adjusting {adjustment.sku} in {adjustment.warehouse} by "
                f"{adjustment.quantity} would leave {after_on_hand} on hand but {before.reserved} "
                f"are reserved for orders; at most {before.available} can be written off")
        await store.ensure_warehouse(conn, adjustment.warehouse, s.now)
        adjusted = StockAdjusted(sku=adjustment.sku, warehouse=adjustment.warehouse,
                                 quantity=adjustment.quantity, on_hand=after_on_hand,
                                 reason=adjustment.reason)
        event = await s.emit(stock_stream(adjustment.sku, adjustment.warehouse), adjusted,
                             key=adjustment.sku, actor=actor)
        entry_id = adjustment_id or event.event_id
        await s.move([domain.Movement(adjustment.sku, adjustment.warehouse, "adjusted",
                                      adjustment.quantity)],
                     entry_id, reason=adjustment.reason, actor=actor)
        s.cause = entry_id  # orders served from this adjustment name it as their cause
        await s.finish()
        after = await store.balance(conn, adjustment.sku, adjustment.warehouse)
    return {"sku": adjustment.sku, "warehouse": adjustment.warehouse,
            "quantity": adjustment.quantity, "reason": adjustment.reason,
            "adjustment_id": str(entry_id), "event_id": str(event.event_id),
            "on_hand": after.on_hand, "reserved": after.reserved, "available": after.available}


def warehouse_stream(code: str) -> str:
    return f"warehouse:{code}"


async def set_warehouse_priority(engine: AsyncEngine, code: str, priority: int, *,
                                 clock: Clock, actor: Actor = SYSTEM,
                                 correlation_id: str | None = None) -> dict[str, Any]:
    """Set the priority warehouse ``code`` serves with (created if new), recorded as
    ``warehouse.priority_set`` with the previous one and who changed it, in one transaction:
    reservations depend on it, so auditors and ``oms replay inventory`` must see when it changed.
    The priority it already has records nothing."""
    async with engine.begin() as conn:
        previous = await store.warehouse_priority(conn, code)  # locks the row
        answer: dict[str, Any] = {"code": code, "priority": priority, "previous": previous,
                                  "event_id": None}
        if previous == priority:
            return answer
        await store.set_warehouse_priority(conn, code, priority, clock.now())
        changed = WarehousePrioritySet(warehouse=code, priority=priority, previous=previous)
        [event] = await append(conn, warehouse_stream(code), None, [changed],
                               meta=Meta(correlation_id or str(uuid.uuid4()), actor),
                               clock=clock, key=code)
        answer["event_id"] = str(event.event_id)
    return answer


async def check_ledger(engine: AsyncEngine) -> dict[str, Any]:
    """Recompute every balance and holding from the ledger and compare with the live tables."""
    async with engine.begin() as conn:
        await conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return await views.ledger_check(conn)
