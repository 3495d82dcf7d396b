"""What inventory keeps per order: its lines, holdings, handled requests and place in the queue."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.domain import Demand, StockKey, Waiting
from services.inventory.store.tables import (
    backorders,
    inventory_orders,
    order_holdings,
    order_requests,
)

# ---- orders ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRecord:
    order_id: str
    order_type: str
    status: str
    lines: tuple[Demand, ...]
    first_reserved_at: datetime | None


def demands_json(demands: Iterable[Demand]) -> list[dict[str, Any]]:
    return [{"line_no": d.line_no, "sku": d.sku, "quantity": d.quantity,
             "gift_bundle": d.gift_bundle} for d in demands]


def demands_from_json(raw: Iterable[dict[str, Any]]) -> tuple[Demand, ...]:
    return tuple(Demand(int(x["line_no"]), str(x["sku"]), int(x["quantity"]), x.get("gift_bundle"))
                 for x in raw)


async def create_order(conn: AsyncConnection, order_id: str, order_type: str, status: str,
                       lines: Sequence[Demand], event_id: uuid.UUID, now: datetime) -> bool:
    """Record a placed order once; False when it was recorded before (another event id)."""
    stmt = insert(inventory_orders).values(
        order_id=order_id, order_type=order_type, status=status, lines=demands_json(lines),
        placed_event_id=event_id, updated_at=now)
    result = await conn.execute(stmt.on_conflict_do_nothing()
                                .returning(inventory_orders.c.order_id))
    return result.first() is not None


async def load_order(conn: AsyncConnection, order_id: str, *, lock: bool = False
                     ) -> OrderRecord | None:
    stmt = select(inventory_orders).where(inventory_orders.c.order_id == order_id)
    row = (await conn.execute(stmt.with_for_update() if lock else stmt)).first()
    if row is None:
        return None
    return OrderRecord(row.order_id, row.order_type, row.status, demands_from_json(row.lines),
                       row.first_reserved_at)


async def update_order(conn: AsyncConnection, order_id: str, now: datetime, *,
                       status: str | None = None, lines: Sequence[Demand] | None = None,
                       reserved: bool = False) -> None:
    values: dict[str, Any] = {"updated_at": now}
    if status is not None:
        values["status"] = status
    if lines is not None:
        values["lines"] = demands_json(lines)
    if reserved:
        values["first_reserved_at"] = func.coalesce(inventory_orders.c.first_reserved_at, now)
    await conn.execute(update(inventory_orders)
                       .where(inventory_orders.c.order_id == order_id).values(**values))


async def holdings(conn: AsyncConnection, order_id: str) -> dict[StockKey, int]:
    rows = await conn.execute(
        select(order_holdings.c.sku, order_holdings.c.warehouse, order_holdings.c.quantity)
        .where(order_holdings.c.order_id == order_id, order_holdings.c.quantity > 0))
    return {(row.sku, row.warehouse): int(row.quantity) for row in rows}


async def claim_request(conn: AsyncConnection, order_id: str, kind: str, request_id: str,
                        event_id: uuid.UUID, now: datetime) -> bool:
    """Take an amendment / shipment / return once; False when it was handled before."""
    stmt = insert(order_requests).values(order_id=order_id, kind=kind, request_id=request_id,
                                         event_id=event_id, recorded_at=now)
    result = await conn.execute(stmt.on_conflict_do_nothing().returning(order_requests.c.order_id))
    return result.first() is not None


# ---- backorders ------------------------------------------------------------------------------


def _waiting(row: Any) -> Waiting:
    return Waiting(row.order_id, demands_from_json(row.demands), row.top_up,
                   tuple(sorted(row.preferred or ())))


def _queue_select() -> Any:
    preferred = (
        select(func.array_agg(order_holdings.c.warehouse))
        .where(order_holdings.c.order_id == backorders.c.order_id, order_holdings.c.quantity > 0)
        .scalar_subquery()
    )
    return select(backorders.c.order_id, backorders.c.demands, backorders.c.top_up,
                  preferred.label("preferred"))


async def queue(conn: AsyncConnection, skus: Iterable[str], *, exclude: str | None = None
                ) -> list[Waiting]:
    """Waiting orders that want any of these SKUs, first come first served."""
    stmt = (_queue_select().where(backorders.c.skus.overlap(sorted(set(skus))))
            .order_by(backorders.c.short_since, backorders.c.seq))
    if exclude is not None:
        stmt = stmt.where(backorders.c.order_id != exclude)
    return [_waiting(row) for row in await conn.execute(stmt)]


async def waiting_skus(conn: AsyncConnection, skus: Iterable[str]) -> set[str]:
    """Every SKU wanted by a waiting order that wants any of these SKUs."""
    rows = await conn.execute(select(func.unnest(backorders.c.skus)).distinct()
                              .where(backorders.c.skus.overlap(sorted(set(skus)))))
    return {row[0] for row in rows}


async def waiting_of(conn: AsyncConnection, order_id: str) -> Waiting | None:
    row = (await conn.execute(_queue_select().where(backorders.c.order_id == order_id))).first()
    return None if row is None else _waiting(row)


async def put_waiting(conn: AsyncConnection, order_id: str, demands: Sequence[Demand], *,
                      top_up: bool, now: datetime, shortage_event_id: uuid.UUID | None) -> None:
    """Queue an order (or change what a queued order waits for, keeping its place)."""
    skus = sorted({d.sku for d in demands if d.quantity > 0})
    stmt = insert(backorders).values(order_id=order_id, top_up=top_up,
                                     demands=demands_json(demands), skus=skus, short_since=now,
                                     shortage_event_id=shortage_event_id)
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=[backorders.c.order_id],
        set_={"demands": demands_json(demands), "skus": skus}))


async def remove_waiting(conn: AsyncConnection, order_id: str) -> None:
    await conn.execute(delete(backorders).where(backorders.c.order_id == order_id))
