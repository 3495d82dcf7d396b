"""The order service's own tables: the orders projection (the event store is the truth)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.order.domain import OrderState
from shared import eventstore

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("channel", Text, nullable=False),
    Column("channel_order_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("order_type", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("total", Numeric(18, 2), nullable=False),
    Column("captured_total", Numeric(18, 2), nullable=False),
    Column("salesperson", Text),
    Column("flags", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("channel", "channel_order_id", name="orders_channel_order_key"),
)


async def create_schema(conn: AsyncConnection) -> None:
    await conn.run_sync(metadata.create_all)


async def load_order(conn: AsyncConnection, order_id: str) -> OrderState:
    from services.order.domain import fold

    stored = await eventstore.read_stream(conn, order_id)
    return fold(order_id, [(e.envelope.event_type, e.envelope.payload, e.envelope.stream_version)
                           for e in stored])


async def save_projection(conn: AsyncConnection, state: OrderState, at: Any) -> None:
    placed = state.placed
    if placed is None:
        return
    row = {
        "order_id": state.order_id, "channel": state.channel,
        "channel_order_id": state.channel_order_id, "status": state.status,
        "order_type": placed.order_type, "customer_id": str(placed.customer.get("id", "")),
        "currency": state.currency, "total": state.total, "captured_total": state.captured_total,
        "salesperson": placed.salesperson, "flags": placed.flags, "version": state.version,
        "placed_at": placed.submitted_at, "updated_at": at,
    }
    statement = insert(orders).values(**row)
    await conn.execute(statement.on_conflict_do_update(
        index_elements=[orders.c.order_id],
        set_={k: statement.excluded[k] for k in ("status", "captured_total", "version", "updated_at",
                                                  "flags")},
    ))


async def order_row(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(orders).where(orders.c.order_id == order_id))).mappings().first()
    return dict(row) if row else None


async def find_by_channel(conn: AsyncConnection, channel: str, channel_order_id: str) -> str | None:
    value = (await conn.execute(
        select(orders.c.order_id).where(orders.c.channel == channel,
                                        orders.c.channel_order_id == channel_order_id)
    )).scalar()
    return str(value) if value is not None else None


async def search(conn: AsyncConnection, *, status: str | None, channel: str | None,
                 customer_id: str | None, limit: int, offset: int) -> list[dict[str, Any]]:
    query = select(orders).order_by(orders.c.placed_at.desc(), orders.c.order_id)
    if status:
        query = query.where(orders.c.status == status)
    if channel:
        query = query.where(orders.c.channel == channel)
    if customer_id:
        query = query.where(orders.c.customer_id == customer_id)
    rows = (await conn.execute(query.limit(limit).offset(offset))).mappings().all()
    return [dict(r) for r in rows]


async def summary(conn: AsyncConnection) -> dict[str, Any]:
    by_status = {
        str(status): int(count)
        for status, count in (await conn.execute(
            select(orders.c.status, func.count()).group_by(orders.c.status))).all()
    }
    totals = (await conn.execute(select(func.count(), func.coalesce(func.sum(orders.c.total), 0)))).one()
    rejections = (await conn.execute(
        select(func.count()).select_from(eventstore.events)
        .where(eventstore.events.c.event_type == "submission.rejected"))).scalar_one()
    amount: Decimal = totals[1]
    return {"orders": int(totals[0]), "by_status": by_status, "amount_total": str(amount),
            "rejections": int(rejections)}
