"""What inventory keeps per order: its lines, holdings, handled requests and place in the queue."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Text, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inventory.domain import Demand, StockKey, Waiting
from services.inventory.store.tables import (
    backorders,
    inventory_orders,
    order_holdings,
    order_requests,
)
from shared.pipeline import Query, run

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


# Statements of the per-order hot paths, built once (parameters by name at execution).
_CREATE_ORDER = (insert(inventory_orders).on_conflict_do_nothing()
                 .returning(inventory_orders.c.order_id))
_LOAD_ORDER = select(inventory_orders).where(inventory_orders.c.order_id == bindparam("oid"))
_LOAD_ORDER_LOCKED = _LOAD_ORDER.with_for_update()
_HOLDINGS = (select(order_holdings.c.sku, order_holdings.c.warehouse, order_holdings.c.quantity)
             .where(order_holdings.c.order_id == bindparam("oid"), order_holdings.c.quantity > 0))
_CLAIM_REQUEST = insert(order_requests).on_conflict_do_nothing().returning(order_requests.c.order_id)


def _order_update(status: bool, lines: bool, reserved: bool) -> Any:
    now = bindparam("now", type_=DateTime(timezone=True))
    values: dict[str, Any] = {"updated_at": now}
    if status:
        values["status"] = bindparam("new_status", type_=Text)
    if lines:
        values["lines"] = bindparam("new_lines", type_=JSONB)
    if reserved:
        values["first_reserved_at"] = func.coalesce(inventory_orders.c.first_reserved_at, now)
    return (update(inventory_orders).where(inventory_orders.c.order_id == bindparam("oid"))
            .values(**values))


_UPDATE_ORDER = {(status, lines, reserved): _order_update(status, lines, reserved)
                 for status in (False, True) for lines in (False, True) for reserved in (False, True)}


async def create_order(conn: AsyncConnection, order_id: str, order_type: str, status: str,
                       lines: Sequence[Demand], event_id: uuid.UUID, now: datetime) -> bool:
    """Record a placed order once; False when it was recorded before (another event id)."""
    result = await conn.execute(_CREATE_ORDER, {
        "order_id": order_id, "order_type": order_type, "status": status,
        "lines": demands_json(lines), "placed_event_id": event_id, "updated_at": now})
    return result.first() is not None


def _order(row: Any) -> OrderRecord:
    return OrderRecord(row.order_id, row.order_type, row.status, demands_from_json(row.lines),
                       row.first_reserved_at)


async def load_order(conn: AsyncConnection, order_id: str, *, lock: bool = False
                     ) -> OrderRecord | None:
    row = (await conn.execute(_LOAD_ORDER_LOCKED if lock else _LOAD_ORDER,
                              {"oid": order_id})).first()
    return None if row is None else _order(row)


async def update_order(conn: AsyncConnection, order_id: str, now: datetime, *,
                       status: str | None = None, lines: Sequence[Demand] | None = None,
                       reserved: bool = False) -> None:
    params: dict[str, Any] = {"oid": order_id, "now": now}
    if status is not None:
        params["new_status"] = status
    if lines is not None:
        params["new_lines"] = demands_json(lines)
    await conn.execute(_UPDATE_ORDER[(status is not None, lines is not None, reserved)], params)


async def holdings(conn: AsyncConnection, order_id: str) -> dict[StockKey, int]:
    rows = await conn.execute(_HOLDINGS, {"oid": order_id})
    return {(row.sku, row.warehouse): int(row.quantity) for row in rows}


# What an order holds and waits for, read together (the waiting order's preferred warehouses
# are where it holds stock, as in the queue's reading).
_HELD = (select(func.jsonb_agg(aggregate_order_by(
            func.jsonb_build_array(order_holdings.c.sku, order_holdings.c.warehouse,
                                   order_holdings.c.quantity),
            order_holdings.c.sku, order_holdings.c.warehouse)))
         .where(order_holdings.c.order_id == bindparam("oid"), order_holdings.c.quantity > 0)
         .scalar_subquery().label("held"))
_WAITS = (select(func.jsonb_build_array(backorders.c.demands, backorders.c.top_up))
          .where(backorders.c.order_id == bindparam("oid")).scalar_subquery().label("waits"))
_HOLDINGS_AND_WAITING = select(_HELD, _WAITS)
_ORDER_STATE = select(inventory_orders, _HELD, _WAITS).where(
    inventory_orders.c.order_id == bindparam("oid"))

OrderState = tuple[OrderRecord, dict[StockKey, int], Waiting | None]


def _holdings_and_waiting(order_id: str, row: Any) -> tuple[dict[StockKey, int], Waiting | None]:
    held = {(str(sku), str(wh)): int(qty) for sku, wh, qty in row.held or ()}
    if row.waits is None:
        return held, None
    demands, top_up = row.waits
    return held, Waiting(order_id, demands_from_json(demands), bool(top_up),
                         tuple(sorted(wh for (_, wh) in held)))


async def order_state(conn: AsyncConnection, order_id: str) -> OrderState | None:
    """The order, its holdings and its place in the queue (if waiting) in one reading; None when
    the order is unknown. Not locked: for finding what to lock."""
    row = (await conn.execute(_ORDER_STATE, {"oid": order_id})).first()
    return None if row is None else (_order(row), *_holdings_and_waiting(order_id, row))


async def holdings_and_waiting(conn: AsyncConnection, order_id: str
                               ) -> tuple[dict[StockKey, int], Waiting | None]:
    """``holdings`` and ``waiting_of`` in one round trip."""
    row = (await conn.execute(_HOLDINGS_AND_WAITING, {"oid": order_id})).one()
    return _holdings_and_waiting(order_id, row)


async def claim_request(conn: AsyncConnection, order_id: str, kind: str, request_id: str,
                        event_id: uuid.UUID, now: datetime) -> bool:
    """Take an amendment / shipment / return once; False when it was handled before."""
    result = await conn.execute(_CLAIM_REQUEST, {
        "order_id": order_id, "kind": kind, "request_id": request_id, "event_id": event_id,
        "recorded_at": now})
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


_WANTING = backorders.c.skus.overlap(bindparam("skus", type_=ARRAY(Text)))
_QUEUE = _queue_select().where(_WANTING).order_by(backorders.c.short_since, backorders.c.seq)
_QUEUE_EXCEPT = _QUEUE.where(backorders.c.order_id != bindparam("exclude"))
_WAITING_SKUS = select(func.unnest(backorders.c.skus)).distinct().where(_WANTING)
_WAITING_OF = _queue_select().where(backorders.c.order_id == bindparam("oid"))
_REMOVE_WAITING = delete(backorders).where(backorders.c.order_id == bindparam("oid"))


async def queue(conn: AsyncConnection, skus: Iterable[str], *, exclude: str | None = None
                ) -> list[Waiting]:
    """Waiting orders that want any of these SKUs, first come first served."""
    return await run(conn, queue_query(skus, exclude=exclude))


def queue_query(skus: Iterable[str], *, exclude: str | None = None) -> Query[list[Waiting]]:
    """``queue`` as a query (to send with others: ``shared.pipeline``)."""
    return Query(_QUEUE if exclude is None else _QUEUE_EXCEPT,
                 {"skus": sorted(set(skus)), "exclude": exclude},
                 lambda rows: [_waiting(row) for row in rows])


async def waiting_skus(conn: AsyncConnection, skus: Iterable[str]) -> set[str]:
    """Every SKU wanted by a waiting order that wants any of these SKUs."""
    rows = await conn.execute(_WAITING_SKUS, {"skus": sorted(set(skus))})
    return {row[0] for row in rows}


async def waiting_of(conn: AsyncConnection, order_id: str) -> Waiting | None:
    row = (await conn.execute(_WAITING_OF, {"oid": order_id})).first()
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
    await conn.execute(_REMOVE_WAITING, {"oid": order_id})
