"""Stock writes and locked reads: SKU locks, warehouses, balances, ledger movements, low-stock flags."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.domain import Balance, Movement, StockKey, Warehouse
from services.inventory.store.tables import (
    low_stock,
    order_holdings,
    stock_balances,
    stock_ledger,
    warehouses,
)

# ---- locking -------------------------------------------------------------------------------


def sku_lock_key(sku: str) -> int:
    """A stable signed 64-bit advisory-lock key per SKU."""
    digest = hashlib.blake2b(f"oms.inventory.sku:{sku}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_skus(conn: AsyncConnection, skus: Iterable[str]) -> None:
    """Serialise every change to these SKUs' stock until the transaction ends.

    Taken in key order, so transactions that lock overlapping sets wait instead of deadlocking.
    The lock exists even for a SKU nobody has received yet (a row lock would not).
    """
    for key in sorted({sku_lock_key(sku) for sku in skus}):
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


# ---- warehouses and balances ---------------------------------------------------------------


async def ensure_warehouse(conn: AsyncConnection, code: str, now: datetime) -> None:
    await conn.execute(
        insert(warehouses).values(code=code, created_at=now).on_conflict_do_nothing()
    )


async def set_warehouse_priority(conn: AsyncConnection, code: str, priority: int,
                                 now: datetime) -> None:
    stmt = insert(warehouses).values(code=code, priority=priority, created_at=now)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[warehouses.c.code],
                                                  set_={"priority": priority}))


async def list_warehouses(conn: AsyncConnection) -> list[Warehouse]:
    rows = await conn.execute(select(warehouses.c.code, warehouses.c.priority))
    return [Warehouse(row.code, row.priority) for row in rows]


async def lock_available(conn: AsyncConnection, skus: Iterable[str]) -> dict[StockKey, int]:
    """Available units of these SKUs per warehouse, rows locked in (sku, warehouse) order."""
    stmt = (
        select(stock_balances.c.sku, stock_balances.c.warehouse,
               stock_balances.c.on_hand - stock_balances.c.reserved)
        .where(stock_balances.c.sku.in_(sorted(set(skus))))
        .order_by(stock_balances.c.sku, stock_balances.c.warehouse)
        .with_for_update()
    )
    return {(row[0], row[1]): int(row[2]) for row in await conn.execute(stmt)}


async def balance(conn: AsyncConnection, sku: str, warehouse: str) -> Balance:
    row = (await conn.execute(
        select(stock_balances.c.on_hand, stock_balances.c.reserved)
        .where(stock_balances.c.sku == sku, stock_balances.c.warehouse == warehouse)
    )).first()
    return Balance() if row is None else Balance(int(row.on_hand), int(row.reserved))


async def total_available(conn: AsyncConnection, skus: Iterable[str]) -> dict[str, int]:
    rows = await conn.execute(
        select(stock_balances.c.sku, func.sum(stock_balances.c.on_hand - stock_balances.c.reserved))
        .where(stock_balances.c.sku.in_(sorted(set(skus)))).group_by(stock_balances.c.sku)
    )
    return {row[0]: int(row[1]) for row in rows}


@dataclass(frozen=True, slots=True)
class Entry:
    """How a batch of movements is recorded in the ledger."""

    event_id: uuid.UUID
    recorded_at: datetime
    reason: str | None = None
    actor: str | None = None
    caused_by: uuid.UUID | None = None


async def apply_movements(conn: AsyncConnection, movements: Sequence[Movement], entry: Entry) -> None:
    """The one way stock changes: a ledger line per movement, and balances and holdings moved by
    exactly the ledger's arithmetic (so both can be rebuilt from the ledger)."""
    if not movements:
        return
    # UPDATE first, INSERT when there is no row yet (the SKU lock rules out a concurrent insert):
    # an upsert would check its would-be inserted row (e.g. reserved without on hand) and fail.
    for m in movements:
        moved = await conn.execute(
            update(stock_balances)
            .where(stock_balances.c.sku == m.sku, stock_balances.c.warehouse == m.warehouse)
            .values(on_hand=stock_balances.c.on_hand + m.on_hand_change,
                    reserved=stock_balances.c.reserved + m.reserved_change,
                    updated_at=entry.recorded_at))
        if moved.rowcount == 0:
            await conn.execute(insert(stock_balances).values(
                sku=m.sku, warehouse=m.warehouse, on_hand=m.on_hand_change,
                reserved=m.reserved_change, updated_at=entry.recorded_at))
        if m.order_id is not None and m.holding_change:
            held = await conn.execute(
                update(order_holdings)
                .where(order_holdings.c.order_id == m.order_id, order_holdings.c.sku == m.sku,
                       order_holdings.c.warehouse == m.warehouse)
                .values(quantity=order_holdings.c.quantity + m.holding_change))
            if held.rowcount == 0:
                await conn.execute(insert(order_holdings).values(
                    order_id=m.order_id, sku=m.sku, warehouse=m.warehouse,
                    quantity=m.holding_change))
    await conn.execute(insert(stock_ledger), [
        {"sku": m.sku, "warehouse": m.warehouse, "kind": m.kind, "quantity": m.quantity,
         "order_id": m.order_id, "event_id": entry.event_id, "caused_by": entry.caused_by,
         "reason": entry.reason, "actor": entry.actor, "recorded_at": entry.recorded_at}
        for m in movements
    ])
    orders = sorted({m.order_id for m in movements if m.order_id is not None and m.holding_change})
    if orders:
        await conn.execute(delete(order_holdings).where(order_holdings.c.order_id.in_(orders),
                                                        order_holdings.c.quantity == 0))


# ---- low-stock flags -------------------------------------------------------------------------


async def low_flags(conn: AsyncConnection, skus: Iterable[str]) -> dict[str, bool]:
    rows = await conn.execute(select(low_stock.c.sku, low_stock.c.low)
                              .where(low_stock.c.sku.in_(sorted(set(skus)))))
    return {row.sku: bool(row.low) for row in rows}


async def set_low_flag(conn: AsyncConnection, sku: str, low: bool, available: int, threshold: int,
                       now: datetime) -> None:
    values = {"low": low, "available": available, "threshold": threshold, "changed_at": now}
    stmt = insert(low_stock).values(sku=sku, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[low_stock.c.sku], set_=values))
