"""Stock writes and locked reads: SKU locks, warehouses, balances, ledger movements, low-stock flags."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, Integer, Text, any_, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.domain import Balance, Movement, StockKey, Warehouse
from services.inventory.store.tables import (
    low_stock,
    order_holdings,
    stock_balances,
    stock_ledger,
    warehouses,
)
from shared.pipeline import Query, run
from shared.rowdocs import insert_rows

# ---- locking -------------------------------------------------------------------------------


def sku_lock_key(sku: str) -> int:
    """A stable signed 64-bit advisory-lock key per SKU."""
    digest = hashlib.blake2b(f"oms.inventory.sku:{sku}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# One statement for all keys: a scan of unnest() yields (and so locks) them in the array's order.
_LOCK_KEYS = text("SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k")


async def lock_skus(conn: AsyncConnection, skus: Iterable[str]) -> None:
    """Serialise every change to these SKUs' stock until the transaction ends.

    Taken in key order, so transactions that lock overlapping sets wait instead of deadlocking.
    The lock exists even for a SKU nobody has received yet (a row lock would not).
    """
    query = lock_skus_query(skus)
    if query.params["keys"]:
        await run(conn, query)


def lock_skus_query(skus: Iterable[str]) -> Query[None]:
    """``lock_skus`` as a query (to send with others: ``shared.pipeline``)."""
    return Query(_LOCK_KEYS, {"keys": sorted({sku_lock_key(sku) for sku in skus})})


# ---- warehouses and balances ---------------------------------------------------------------


async def ensure_warehouse(conn: AsyncConnection, code: str, now: datetime) -> None:
    await conn.execute(
        insert(warehouses).values(code=code, created_at=now).on_conflict_do_nothing()
    )


async def warehouse_priority(conn: AsyncConnection, code: str) -> int | None:
    """The warehouse's priority, its row locked until the transaction ends (None: no row)."""
    found = await conn.execute(select(warehouses.c.priority).where(warehouses.c.code == code)
                               .with_for_update())
    return found.scalar_one_or_none()


async def set_warehouse_priority(conn: AsyncConnection, code: str, priority: int,
                                 now: datetime) -> None:
    stmt = insert(warehouses).values(code=code, priority=priority, created_at=now)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[warehouses.c.code],
                                                  set_={"priority": priority}))


async def list_warehouses(conn: AsyncConnection) -> list[Warehouse]:
    return await run(conn, warehouses_query())


def warehouses_query() -> Query[list[Warehouse]]:
    return Query(_WAREHOUSES, {}, lambda rows: [Warehouse(row.code, row.priority) for row in rows])


_WAREHOUSES = select(warehouses.c.code, warehouses.c.priority)


_LOCK_AVAILABLE = (
    select(stock_balances.c.sku, stock_balances.c.warehouse,
           stock_balances.c.on_hand - stock_balances.c.reserved)
    .where(stock_balances.c.sku == any_(bindparam("skus", type_=ARRAY(Text))))
    .order_by(stock_balances.c.sku, stock_balances.c.warehouse)
    .with_for_update()
)


async def lock_available(conn: AsyncConnection, skus: Iterable[str]) -> dict[StockKey, int]:
    """Available units of these SKUs per warehouse, rows locked in (sku, warehouse) order."""
    return await run(conn, lock_available_query(skus))


def lock_available_query(skus: Iterable[str]) -> Query[dict[StockKey, int]]:
    return Query(_LOCK_AVAILABLE, {"skus": sorted(set(skus))},
                 lambda rows: {(row[0], row[1]): int(row[2]) for row in rows})


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


# Balances and holdings of a set of movements, each key at most once, in one round trip. UPDATE
# first, INSERT the keys no UPDATE found (the SKU lock rules out a concurrent insert): an upsert
# would check its would-be inserted row (e.g. reserved without on hand) and fail. Returns the
# holdings' new quantities, so the caller knows whether any reached zero.
_MOVE = text("""
WITH balance_moves AS (
    SELECT * FROM unnest(CAST(:b_skus AS text[]), CAST(:b_warehouses AS text[]),
                         CAST(:b_on_hand AS integer[]), CAST(:b_reserved AS integer[]))
        AS m(sku, warehouse, on_hand, reserved)
), balances_updated AS (
    UPDATE stock_balances AS b
       SET on_hand = b.on_hand + m.on_hand, reserved = b.reserved + m.reserved, updated_at = :at
      FROM balance_moves AS m
     WHERE b.sku = m.sku AND b.warehouse = m.warehouse
    RETURNING b.sku, b.warehouse
), balances_inserted AS (
    INSERT INTO stock_balances (sku, warehouse, on_hand, reserved, updated_at)
    SELECT m.sku, m.warehouse, m.on_hand, m.reserved, :at FROM balance_moves AS m
     WHERE NOT EXISTS (SELECT FROM balances_updated AS u
                        WHERE u.sku = m.sku AND u.warehouse = m.warehouse)
), holding_moves AS (
    SELECT * FROM unnest(CAST(:h_orders AS text[]), CAST(:h_skus AS text[]),
                         CAST(:h_warehouses AS text[]), CAST(:h_changes AS integer[]))
        AS m(order_id, sku, warehouse, change)
), holdings_updated AS (
    UPDATE order_holdings AS h SET quantity = h.quantity + m.change
      FROM holding_moves AS m
     WHERE h.order_id = m.order_id AND h.sku = m.sku AND h.warehouse = m.warehouse
    RETURNING h.order_id, h.sku, h.warehouse, h.quantity
), holdings_inserted AS (
    INSERT INTO order_holdings (order_id, sku, warehouse, quantity)
    SELECT m.order_id, m.sku, m.warehouse, m.change FROM holding_moves AS m
     WHERE NOT EXISTS (SELECT FROM holdings_updated AS u
                        WHERE u.order_id = m.order_id AND u.sku = m.sku AND u.warehouse = m.warehouse)
    RETURNING quantity
)
SELECT quantity FROM holdings_updated UNION ALL SELECT quantity FROM holdings_inserted
""").bindparams(bindparam("at", type_=DateTime(timezone=True))).columns(quantity=Integer)

_RECORD = insert_rows(stock_ledger, [c.name for c in stock_ledger.c if c.name != "entry_id"])

_DROP_EMPTY_HOLDINGS = delete(order_holdings).where(
    order_holdings.c.order_id == any_(bindparam("orders", type_=ARRAY(Text))),
    order_holdings.c.quantity == 0)


def _rounds(movements: Sequence[Movement]) -> list[list[Movement]]:
    """The movements in rounds with each (sku, warehouse) at most once per round, in order: one
    UPDATE joins a row to one movement only, and each row must pass its checks after each
    movement, as when applied one by one."""
    rounds: list[list[Movement]] = []
    seen: dict[StockKey, int] = {}
    for m in movements:
        n = seen[(m.sku, m.warehouse)] = seen.get((m.sku, m.warehouse), -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(m)
    return rounds


async def apply_movements(conn: AsyncConnection, movements: Sequence[Movement], entry: Entry) -> None:
    """The one way stock changes: a ledger line per movement, and balances and holdings moved by
    exactly the ledger's arithmetic (so both can be rebuilt from the ledger)."""
    if not movements:
        return
    emptied = False
    for batch in _rounds(movements):
        held = [m for m in batch if m.order_id is not None and m.holding_change]
        quantities = await conn.execute(_MOVE, {
            "at": entry.recorded_at,
            "b_skus": [m.sku for m in batch], "b_warehouses": [m.warehouse for m in batch],
            "b_on_hand": [m.on_hand_change for m in batch],
            "b_reserved": [m.reserved_change for m in batch],
            "h_orders": [m.order_id for m in held], "h_skus": [m.sku for m in held],
            "h_warehouses": [m.warehouse for m in held],
            "h_changes": [m.holding_change for m in held]})
        emptied |= any(q == 0 for q in quantities.scalars())
    await _RECORD.execute(conn, [
        {"sku": m.sku, "warehouse": m.warehouse, "kind": m.kind, "quantity": m.quantity,
         "order_id": m.order_id, "event_id": entry.event_id, "caused_by": entry.caused_by,
         "reason": entry.reason, "actor": entry.actor, "recorded_at": entry.recorded_at}
        for m in movements
    ])
    if emptied:  # only this function writes holdings, and it never leaves a zero behind
        orders = sorted({m.order_id for m in movements if m.order_id is not None and m.holding_change})
        await conn.execute(_DROP_EMPTY_HOLDINGS, {"orders": orders})


# ---- low-stock flags -------------------------------------------------------------------------


async def low_flags(conn: AsyncConnection, skus: Iterable[str]) -> dict[str, bool]:
    rows = await conn.execute(select(low_stock.c.sku, low_stock.c.low)
                              .where(low_stock.c.sku.in_(sorted(set(skus)))))
    return {row.sku: bool(row.low) for row in rows}


_LOW_STOCK_STATE = text("""
SELECT k.sku,
       (SELECT sum(b.on_hand - b.reserved) FROM stock_balances AS b WHERE b.sku = k.sku) AS available,
       (SELECT l.low FROM low_stock AS l WHERE l.sku = k.sku) AS low
  FROM unnest(CAST(:skus AS text[])) AS k(sku)
""")


async def low_stock_state(conn: AsyncConnection, skus: Iterable[str]
                          ) -> dict[str, tuple[int, bool | None]]:
    """``total_available`` (0 when never stocked) and ``low_flags`` (None when never flagged) of
    these SKUs in one round trip."""
    return await run(conn, low_stock_state_query(skus))


def low_stock_state_query(skus: Iterable[str]) -> Query[dict[str, tuple[int, bool | None]]]:
    return Query(_LOW_STOCK_STATE, {"skus": sorted(set(skus))}, lambda rows: {
        row.sku: (int(row.available or 0), None if row.low is None else bool(row.low))
        for row in rows})


async def set_low_flag(conn: AsyncConnection, sku: str, low: bool, available: int, threshold: int,
                       now: datetime) -> None:
    values = {"low": low, "available": available, "threshold": threshold, "changed_at": now}
    stmt = insert(low_stock).values(sku=sku, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[low_stock.c.sku], set_=values))
