"""Inventory's own tables (warehouses, stock ledger, balances, reservations) and their queries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.domain import (
    DEFAULT_WAREHOUSE_PRIORITY,
    Reservation,
    Shortage,
    StockKey,
    Warehouse,
)

metadata = MetaData()

LEDGER_KINDS = ("received", "reserved", "released", "deducted", "adjusted")

warehouses = Table(
    "warehouses",
    metadata,
    Column("code", Text, primary_key=True),
    Column("priority", Integer, nullable=False, server_default=str(DEFAULT_WAREHOUSE_PRIORITY)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

stock_balances = Table(
    "stock_balances",
    metadata,
    Column("sku", Text, nullable=False),
    Column("warehouse", Text, ForeignKey("warehouses.code"), nullable=False),
    Column("on_hand", Integer, nullable=False, server_default="0"),
    Column("reserved", Integer, nullable=False, server_default="0"),
    Column("available", Integer, Computed("on_hand - reserved", persisted=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("sku", "warehouse"),
    # The last line of defence against overselling, whatever a handler gets wrong.
    CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="stock_balances_not_oversold"),
)

stock_ledger = Table(
    "stock_ledger",
    metadata,
    Column("entry_id", BigInteger, Identity(), primary_key=True),
    Column("sku", Text, nullable=False),
    Column("warehouse", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("order_id", Text),
    Column("event_id", Uuid, nullable=False),  # the event that caused the movement
    Column("reason", Text),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(f"kind IN {LEDGER_KINDS!r}", name="stock_ledger_kind"),
    CheckConstraint("quantity > 0 OR kind = 'adjusted'", name="stock_ledger_quantity"),
    Index("stock_ledger_by_sku", "sku", "entry_id"),
    Index("stock_ledger_once", "event_id", "kind", "sku", "warehouse", unique=True),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("status", Text, nullable=False),  # pending (inside its transaction) | reserved | short
    Column("event_id", Uuid, nullable=False),  # the order.placed it answers
    Column("outcome_event_id", Uuid),  # the stock.reserved / stock.shortage appended
    Column("units", Integer, nullable=False, server_default="0"),
    Column("missing", JSONB),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("status IN ('pending', 'reserved', 'short')", name="reservations_status"),
)

reservation_lines = Table(
    "reservation_lines",
    metadata,
    Column("order_id", Text, ForeignKey("reservations.order_id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("sku", Text, nullable=False),
    Column("warehouse", Text, nullable=False),
    Column("quantity", Integer, nullable=False),
    PrimaryKeyConstraint("order_id", "line_no", "warehouse"),
)


async def create_schema(conn: AsyncConnection) -> None:
    await conn.run_sync(metadata.create_all)


# ---- writes (inside the caller's transaction) --------------------------------------------


async def ensure_warehouse(conn: AsyncConnection, code: str, now: datetime) -> None:
    await conn.execute(
        insert(warehouses).values(code=code, created_at=now).on_conflict_do_nothing()
    )


async def set_warehouse_priority(conn: AsyncConnection, code: str, priority: int,
                                 now: datetime) -> None:
    stmt = insert(warehouses).values(code=code, priority=priority, created_at=now)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[warehouses.c.code],
                                                  set_={"priority": priority}))


async def add_on_hand(conn: AsyncConnection, sku: str, warehouse: str, quantity: int,
                      now: datetime) -> tuple[int, int]:
    """Add received units; returns (on_hand, reserved) after the receipt (row locked)."""
    receipt = insert(stock_balances).values(sku=sku, warehouse=warehouse, on_hand=quantity,
                                            updated_at=now)
    stmt = receipt.on_conflict_do_update(
        index_elements=[stock_balances.c.sku, stock_balances.c.warehouse],
        set_={"on_hand": stock_balances.c.on_hand + quantity, "updated_at": now},
    ).returning(stock_balances.c.on_hand, stock_balances.c.reserved)
    row = (await conn.execute(stmt)).one()
    return int(row.on_hand), int(row.reserved)


async def add_ledger_entries(conn: AsyncConnection, entries: Sequence[dict[str, Any]]) -> None:
    if entries:
        await conn.execute(insert(stock_ledger), list(entries))


async def claim_order(conn: AsyncConnection, order_id: str, event_id: uuid.UUID,
                      now: datetime) -> bool:
    """Take the order's one reservation decision; False when it was taken before."""
    stmt = insert(reservations).values(order_id=order_id, status="pending", event_id=event_id,
                                       decided_at=now)
    result = await conn.execute(stmt.on_conflict_do_nothing().returning(reservations.c.order_id))
    return result.first() is not None


async def lock_available(conn: AsyncConnection, skus: Iterable[str]) -> dict[StockKey, int]:
    """Available units of these SKUs per warehouse, rows locked in (sku, warehouse) order.

    Every reserving transaction locks in the same order, so two of them wait for each other
    instead of deadlocking, and the second sees what the first left.
    """
    stmt = (
        select(stock_balances.c.sku, stock_balances.c.warehouse,
               stock_balances.c.on_hand - stock_balances.c.reserved)
        .where(stock_balances.c.sku.in_(sorted(set(skus))))
        .order_by(stock_balances.c.sku, stock_balances.c.warehouse)
        .with_for_update()
    )
    return {(row[0], row[1]): int(row[2]) for row in await conn.execute(stmt)}


async def list_warehouses(conn: AsyncConnection) -> list[Warehouse]:
    rows = await conn.execute(select(warehouses.c.code, warehouses.c.priority))
    return [Warehouse(row.code, row.priority) for row in rows]


async def record_reservation(conn: AsyncConnection, order_id: str, event_id: uuid.UUID,
                             outcome_event_id: uuid.UUID, reservation: Reservation,
                             now: datetime) -> None:
    """Move the units to reserved: balances, ledger and the order's reservation lines."""
    for (sku, wh), qty in reservation.by_stock().items():
        await conn.execute(
            update(stock_balances)
            .where(stock_balances.c.sku == sku, stock_balances.c.warehouse == wh)
            .values(reserved=stock_balances.c.reserved + qty, updated_at=now)
        )
    await add_ledger_entries(conn, [
        {"sku": sku, "warehouse": wh, "kind": "reserved", "quantity": qty, "order_id": order_id,
         "event_id": event_id, "reason": None, "recorded_at": now}
        for (sku, wh), qty in reservation.by_stock().items()
    ])
    if reservation.allocations:
        await conn.execute(insert(reservation_lines), [
            {"order_id": order_id, "line_no": a.line_no, "sku": a.sku, "warehouse": a.warehouse,
             "quantity": a.quantity}
            for a in reservation.allocations
        ])
    await _decide(conn, order_id, "reserved", outcome_event_id, now, units=reservation.units)


async def record_shortage(conn: AsyncConnection, order_id: str, outcome_event_id: uuid.UUID,
                          shortage: Shortage, now: datetime) -> None:
    missing = [line.model_dump(mode="json") for line in shortage.missing]
    await _decide(conn, order_id, "short", outcome_event_id, now, missing=missing)


async def _decide(conn: AsyncConnection, order_id: str, status: str, outcome: uuid.UUID,
                  now: datetime, *, units: int = 0, missing: list[Any] | None = None) -> None:
    await conn.execute(
        update(reservations).where(reservations.c.order_id == order_id)
        .values(status=status, outcome_event_id=outcome, units=units, missing=missing,
                decided_at=now)
    )


# ---- reads -------------------------------------------------------------------------------


def _level(row: Any) -> dict[str, Any]:
    return {"sku": row.sku, "warehouse": row.warehouse, "on_hand": row.on_hand,
            "reserved": row.reserved, "available": row.available}


_LEVELS = select(stock_balances.c.sku, stock_balances.c.warehouse, stock_balances.c.on_hand,
                 stock_balances.c.reserved, stock_balances.c.available)


async def stock_levels(conn: AsyncConnection, warehouse: str | None = None) -> list[dict[str, Any]]:
    stmt = _LEVELS.order_by(stock_balances.c.sku, stock_balances.c.warehouse)
    if warehouse is not None:
        stmt = stmt.where(stock_balances.c.warehouse == warehouse)
    return [_level(row) for row in await conn.execute(stmt)]


async def sku_levels(conn: AsyncConnection, sku: str) -> list[dict[str, Any]]:
    stmt = (
        _LEVELS.join_from(stock_balances, warehouses)
        .add_columns(warehouses.c.priority)
        .where(stock_balances.c.sku == sku)
        .order_by(warehouses.c.priority, stock_balances.c.warehouse)
    )
    return [_level(row) | {"priority": row.priority} for row in await conn.execute(stmt)]


async def ledger(conn: AsyncConnection, sku: str, limit: int) -> list[dict[str, Any]]:
    stmt = (
        select(stock_ledger).where(stock_ledger.c.sku == sku)
        .order_by(stock_ledger.c.entry_id.desc()).limit(limit)
    )
    return [
        {"entry_id": row.entry_id, "sku": row.sku, "warehouse": row.warehouse, "kind": row.kind,
         "quantity": row.quantity, "order_id": row.order_id, "event_id": str(row.event_id),
         "reason": row.reason, "recorded_at": row.recorded_at.isoformat()}
        for row in await conn.execute(stmt)
    ]


async def reservation(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(reservations).where(reservations.c.order_id == order_id))
           ).first()
    if row is None or row.status == "pending":
        return None
    lines = await conn.execute(
        select(reservation_lines).where(reservation_lines.c.order_id == order_id)
        .order_by(reservation_lines.c.line_no, reservation_lines.c.warehouse)
    )
    return {
        "order_id": row.order_id, "status": row.status, "units": row.units,
        "lines": [{"line_no": r.line_no, "sku": r.sku, "warehouse": r.warehouse,
                   "quantity": r.quantity} for r in lines],
        "missing": row.missing or [],
        "order_event_id": str(row.event_id),
        "outcome_event_id": str(row.outcome_event_id) if row.outcome_event_id else None,
        "decided_at": row.decided_at.isoformat(),
    }


async def warehouse_list(conn: AsyncConnection) -> list[dict[str, Any]]:
    stmt = select(warehouses).order_by(warehouses.c.priority, warehouses.c.code)
    return [{"code": r.code, "priority": r.priority, "created_at": r.created_at.isoformat()}
            for r in await conn.execute(stmt)]


async def summary(conn: AsyncConnection, per_order: bool) -> dict[str, Any]:
    counts = (await conn.execute(
        select(
            func.count().filter(reservations.c.status == "reserved"),
            func.coalesce(func.sum(reservations.c.units).filter(reservations.c.status == "reserved"),
                          0),
            func.count().filter(reservations.c.status == "short"),
        )
    )).one()
    result: dict[str, Any] = {"orders_reserved": counts[0], "units_reserved": int(counts[1]),
                              "orders_short": counts[2]}
    if per_order:
        rows = await conn.execute(
            select(reservations.c.order_id, reservations.c.status, reservations.c.units)
            .where(reservations.c.status != "pending").order_by(reservations.c.order_id)
        )
        result["per_order"] = {r.order_id: {"status": r.status, "units": r.units} for r in rows}
    return result
