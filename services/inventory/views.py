"""Inventory's read side: levels, the ledger, reservations, backorders, the summary, ledger checks."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.domain import (
    Balance,
    HoldingKey,
    Movement,
    StockKey,
    balances_from_ledger,
    holdings_from_ledger,
)
from services.inventory.store import (
    backorders,
    demands_from_json,
    inventory_orders,
    low_stock,
    order_holdings,
    stock_balances,
    stock_ledger,
    warehouses,
)


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
    """The SKU's ledger, newest first."""
    stmt = (
        select(stock_ledger).where(stock_ledger.c.sku == sku)
        .order_by(stock_ledger.c.entry_id.desc()).limit(limit)
    )
    return [
        {"entry_id": row.entry_id, "sku": row.sku, "warehouse": row.warehouse, "kind": row.kind,
         "quantity": row.quantity, "order_id": row.order_id, "event_id": str(row.event_id),
         "reason": row.reason, "actor": row.actor, "recorded_at": row.recorded_at.isoformat()}
        for row in await conn.execute(stmt)
    ]


async def reservation(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    """What inventory knows of an order: status, units held per SKU and warehouse, what it waits for."""
    row = (await conn.execute(select(inventory_orders)
                              .where(inventory_orders.c.order_id == order_id))).first()
    if row is None:
        return None
    held = await conn.execute(
        select(order_holdings.c.sku, order_holdings.c.warehouse, order_holdings.c.quantity)
        .where(order_holdings.c.order_id == order_id, order_holdings.c.quantity > 0)
        .order_by(order_holdings.c.sku, order_holdings.c.warehouse))
    lines = [{"sku": r.sku, "warehouse": r.warehouse, "quantity": r.quantity} for r in held]
    waiting = (await conn.execute(select(backorders.c.demands, backorders.c.short_since)
                                  .where(backorders.c.order_id == order_id))).first()
    return {
        "order_id": row.order_id, "order_type": row.order_type, "status": row.status,
        "units": sum(x["quantity"] for x in lines), "lines": lines,
        "waiting_for": [] if waiting is None else [
            {"sku": d.sku, "quantity": d.quantity} for d in demands_from_json(waiting.demands)],
        "short_since": waiting.short_since.isoformat() if waiting else None,
        "first_reserved_at": row.first_reserved_at.isoformat() if row.first_reserved_at else None,
        "placed_event_id": str(row.placed_event_id),
    }


async def warehouse_list(conn: AsyncConnection) -> list[dict[str, Any]]:
    stmt = select(warehouses).order_by(warehouses.c.priority, warehouses.c.code)
    return [{"code": r.code, "priority": r.priority, "created_at": r.created_at.isoformat()}
            for r in await conn.execute(stmt)]


async def backorder_list(conn: AsyncConnection) -> list[dict[str, Any]]:
    """The backorder queue in serving order."""
    stmt = select(backorders).order_by(backorders.c.short_since, backorders.c.seq)
    return [
        {"position": n, "order_id": r.order_id, "kind": "extra units" if r.top_up else "order",
         "wanted": [{"sku": d.sku, "quantity": d.quantity} for d in demands_from_json(r.demands)],
         "short_since": r.short_since.isoformat()}
        for n, r in enumerate(await conn.execute(stmt), start=1)
    ]


async def summary(conn: AsyncConnection, per_order: bool) -> dict[str, Any]:
    o = inventory_orders.c
    counts = (await conn.execute(select(
        func.count().filter(o.first_reserved_at.is_not(None), o.status != "cancelled"),
        func.count().filter(o.status == "short"),
    ))).one()
    held = (await conn.execute(select(func.coalesce(func.sum(order_holdings.c.quantity), 0)))
            ).scalar_one()
    moved = {row[0]: int(row[1]) for row in await conn.execute(
        select(stock_ledger.c.kind, func.sum(stock_ledger.c.quantity))
        .where(stock_ledger.c.kind.in_(("released", "deducted", "returned")))
        .group_by(stock_ledger.c.kind))}
    waiting = (await conn.execute(select(func.count()).select_from(backorders))).scalar_one()
    low = (await conn.execute(select(low_stock.c.sku).where(low_stock.c.low)
                              .order_by(low_stock.c.sku))).scalars().all()
    result: dict[str, Any] = {
        "orders_reserved": counts[0], "units_reserved": int(held), "orders_short": counts[1],
        "units_released": int(moved.get("released", 0)),
        "units_deducted": int(moved.get("deducted", 0)),
        "units_returned": int(moved.get("returned", 0)),
        "backorders_waiting": waiting, "low_stock_skus": list(low),
    }
    if per_order:
        units = (select(order_holdings.c.order_id, func.sum(order_holdings.c.quantity).label("u"))
                 .group_by(order_holdings.c.order_id).subquery())
        rows = await conn.execute(
            select(o.order_id, o.status, func.coalesce(units.c.u, 0).label("units"))
            .outerjoin(units, units.c.order_id == o.order_id).order_by(o.order_id))
        result["per_order"] = {r.order_id: {"status": r.status, "units": int(r.units)}
                               for r in rows}
    return result


# ---- the ledger as the source of truth -------------------------------------------------------


async def ledger_movements(conn: AsyncConnection) -> list[Movement]:
    rows = await conn.execute(
        select(stock_ledger.c.sku, stock_ledger.c.warehouse, stock_ledger.c.kind,
               stock_ledger.c.quantity, stock_ledger.c.order_id).order_by(stock_ledger.c.entry_id))
    return [Movement(r.sku, r.warehouse, r.kind, r.quantity, r.order_id) for r in rows]


async def live_balances(conn: AsyncConnection) -> dict[StockKey, Balance]:
    rows = await conn.execute(select(stock_balances.c.sku, stock_balances.c.warehouse,
                                     stock_balances.c.on_hand, stock_balances.c.reserved))
    return {(r.sku, r.warehouse): Balance(r.on_hand, r.reserved) for r in rows}


async def live_holdings(conn: AsyncConnection) -> dict[HoldingKey, int]:
    rows = await conn.execute(select(order_holdings).where(order_holdings.c.quantity != 0))
    return {(r.order_id, r.sku, r.warehouse): r.quantity for r in rows}


async def ledger_check(conn: AsyncConnection) -> dict[str, Any]:
    """Balances and holdings recomputed from the ledger, compared with the live tables."""
    movements = await ledger_movements(conn)
    rebuilt = balances_from_ledger(movements)
    live = await live_balances(conn)
    differences = [
        {"sku": sku, "warehouse": wh,
         "live": _balance_json(live.get((sku, wh), Balance())),
         "from_ledger": _balance_json(rebuilt.get((sku, wh), Balance()))}
        for sku, wh in sorted(set(rebuilt) | set(live))
        if live.get((sku, wh), Balance()) != rebuilt.get((sku, wh), Balance())
    ]
    rebuilt_holdings = holdings_from_ledger(movements)
    live_held = await live_holdings(conn)
    holding_differences = [
        {"order_id": o, "sku": sku, "warehouse": wh, "live": live_held.get((o, sku, wh), 0),
         "from_ledger": rebuilt_holdings.get((o, sku, wh), 0)}
        for o, sku, wh in sorted(set(rebuilt_holdings) | set(live_held))
        if live_held.get((o, sku, wh), 0) != rebuilt_holdings.get((o, sku, wh), 0)
    ]
    return {"consistent": not differences and not holding_differences,
            "ledger_entries": len(movements), "balances": len(rebuilt),
            "differences": differences, "holding_differences": holding_differences}


def _balance_json(b: Balance) -> dict[str, int]:
    return {"on_hand": b.on_hand, "reserved": b.reserved, "available": b.available}
