"""The order service's own tables: projections of the event log (the log is the truth)."""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    any_,
    bindparam,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.order import snapshots
from services.order.domain.state import OrderState, status
from services.order.duplicate_store import BatchFingerprints
from shared import eventstore
from shared.eventbatch import PendingEvents
from shared.pipeline import Query
from shared.rowdocs import Write, excluded, upsert_rows
from shared.schemaupgrade import create_or_upgrade

metadata = MetaData()

orders = Table(
    "orders", metadata,
    Column("order_id", Text, primary_key=True),
    Column("channel", Text, nullable=False),
    Column("channel_order_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("order_type", Text, nullable=False),
    Column("customer_id", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("total", Numeric(18, 2), nullable=False),
    Column("captured_total", Numeric(18, 2), nullable=False),
    Column("paid", Boolean, nullable=False, server_default=text("false")),
    Column("salesperson", Text),
    Column("flags", JSONB, nullable=False),
    Column("group_id", Text),
    Column("approval_kind", Text),
    Column("approval_role", Text),
    Column("approval_escalate_to", Text),
    Column("approval_escalations", Integer),
    Column("approval_due_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("channel", "channel_order_id", name="orders_channel_order_key"),
)

# Facts from other services that confirmation waits for (the order log records the outcome).
readiness = Table(
    "order_readiness", metadata,
    Column("order_id", Text, primary_key=True),
    Column("reserved", Boolean, nullable=False),
    Column("reservation_event_id", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

group_buys = Table(
    "group_buys", metadata,
    Column("group_id", Text, primary_key=True),
    Column("size", Integer, nullable=False),
    Column("closed_at", DateTime(timezone=True)),
)

group_members = Table(
    "group_members", metadata,
    Column("order_id", Text, primary_key=True),
    Column("group_id", Text, nullable=False, index=True),
    Column("active", Boolean, nullable=False),
    Column("joined_at", DateTime(timezone=True), nullable=False),
)


async def create_schema(conn: AsyncConnection) -> None:
    await create_or_upgrade(conn, metadata)


@dataclass
class BatchCache:
    """A consumer batch's orders (loaded together, kept current by each commit) and their
    projection rows, written once at the end of the batch (``handlers/batch.py``)."""

    states: dict[str, OrderState] = field(default_factory=dict)
    projections: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The batch's events, written at its end in one statement (the states above are current).
    events: PendingEvents = field(default_factory=PendingEvents)
    # Readiness as the batch left it (read from here first) and the rows to write at its end.
    reserved: dict[str, bool] = field(default_factory=dict)
    readiness_rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Likely-duplicate fingerprints as the batch sees them (read at its start, written at its end).
    fingerprints: BatchFingerprints = field(default_factory=BatchFingerprints)


# Set only while a batch's message is being handled (never across an await outside it).
BATCH: ContextVar[BatchCache | None] = ContextVar("order_batch_cache", default=None)


async def load_order(conn: AsyncConnection, order_id: str) -> OrderState:
    cache = BATCH.get()
    if cache is not None and order_id in cache.states:
        return cache.states[order_id]
    state = (await snapshots.load(conn, [order_id]))[order_id]
    if cache is not None:
        cache.states[order_id] = state
    return state


def remember(state: OrderState) -> None:
    """A committed state is the batch's current one for its order."""
    cache = BATCH.get()
    if cache is not None:
        cache.states[state.order_id] = state


async def save_projection(conn: AsyncConnection, state: OrderState, at: datetime,
                          delivered_at: datetime | None = None) -> None:
    placed = state.placed
    if placed is None:
        return
    pending = state.approval
    row = {
        "order_id": state.order_id, "channel": placed.channel,
        "channel_order_id": placed.channel_order_id, "status": status(state),
        "order_type": placed.order_type, "customer_id": str(placed.customer.get("id", "")),
        "currency": placed.currency, "total": state.total, "captured_total": state.captured_total,
        "paid": state.paid, "salesperson": placed.salesperson, "flags": placed.flags,
        "group_id": (placed.group_buy or {}).get("group_id"),
        "approval_kind": pending.kind if pending else None,
        "approval_role": pending.role if pending else None,
        "approval_escalate_to": pending.escalate_to if pending else None,
        "approval_escalations": pending.escalations if pending else None,
        "approval_due_at": pending.due_at if pending else None,
        "delivered_at": delivered_at,
        "version": state.version, "placed_at": placed.submitted_at, "updated_at": at,
    }
    cache = BATCH.get()
    if cache is None:
        await _SAVE_PROJECTION.execute(conn, [row])
        return
    earlier = cache.projections.get(state.order_id)
    if earlier is not None and row["delivered_at"] is None:  # as the upsert's coalesce keeps it
        row["delivered_at"] = earlier["delivered_at"]
    cache.projections[state.order_id] = row


def projections_write(rows: Sequence[dict[str, Any]]) -> Write | None:
    """The batch's projection rows (each order's last), for its one statement of writes."""
    return _SAVE_PROJECTION.write(rows)


_PROJECTION_COLUMNS = (
    "order_id", "channel", "channel_order_id", "status", "order_type", "customer_id", "currency",
    "total", "captured_total", "paid", "salesperson", "flags", "group_id", "approval_kind",
    "approval_role", "approval_escalate_to", "approval_escalations", "approval_due_at",
    "delivered_at", "version", "placed_at", "updated_at")
_FIXED = ("order_id", "channel", "channel_order_id", "placed_at", "order_type", "customer_id",
          "currency", "delivered_at")


# Each order's row as its last event left it; the delivery instant, once known, is kept.
_SAVE_PROJECTION = upsert_rows(orders, _PROJECTION_COLUMNS, ["order_id"], excluded(
    *(c for c in _PROJECTION_COLUMNS if c not in _FIXED)) | {
    "delivered_at": "coalesce(EXCLUDED.delivered_at, t.delivered_at)"})


async def order_row(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(orders).where(orders.c.order_id == order_id))).mappings().first()
    return dict(row) if row else None


async def find_by_channel(conn: AsyncConnection, channel: str, channel_order_id: str) -> str | None:
    value = (await conn.execute(
        select(orders.c.order_id).where(orders.c.channel == channel,
                                        orders.c.channel_order_id == channel_order_id)
    )).scalar()
    return str(value) if value is not None else None


async def search(conn: AsyncConnection, *, statuses: list[str] | None, channel: str | None,
                 customer_id: str | None, placed_from: datetime | None, placed_to: datetime | None,
                 flag: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    query = select(orders)
    if statuses:
        query = query.where(orders.c.status.in_(statuses))
    if channel:
        query = query.where(orders.c.channel == channel)
    if customer_id:
        query = query.where(orders.c.customer_id == customer_id)
    if placed_from:
        query = query.where(orders.c.placed_at >= placed_from)
    if placed_to:
        query = query.where(orders.c.placed_at < placed_to)
    if flag:
        query = query.where(or_(orders.c.flags.contains([flag]),
                                func.jsonb_path_exists(orders.c.flags,
                                                       text("'$[*] ? (@ starts with $f)'"),
                                                       func.jsonb_build_object("f", flag))))
    total = (await conn.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    page = query.order_by(orders.c.placed_at.desc(), orders.c.order_id).limit(limit).offset(offset)
    return [dict(r) for r in (await conn.execute(page)).mappings().all()], int(total)


async def approvals_for(conn: AsyncConnection, role: str | None) -> list[dict[str, Any]]:
    query = select(orders).where(orders.c.approval_role.is_not(None))
    if role is not None:
        query = query.where(or_(orders.c.approval_role == role,
                                (orders.c.approval_escalations > 0)
                                & (orders.c.approval_escalate_to == role)))
    rows = (await conn.execute(query.order_by(orders.c.approval_due_at))).mappings().all()
    return [dict(r) for r in rows]


async def waiting_approvals(conn: AsyncConnection) -> list[str]:
    rows = await conn.execute(select(orders.c.order_id).where(orders.c.approval_role.is_not(None)))
    return [str(r[0]) for r in rows]


async def event_version(conn: AsyncConnection, order_id: str, event_id: str) -> int | None:
    """The version of one of the order's own events (None: not one of its events)."""
    events = eventstore.events
    found = await conn.execute(select(events.c.stream_version).where(
        events.c.stream_id == order_id, events.c.event_id == event_id))
    return found.scalar_one_or_none()


async def delivered_before(conn: AsyncConnection, cutoff: datetime) -> list[str]:
    rows = await conn.execute(select(orders.c.order_id).where(orders.c.status == "delivered",
                                                              orders.c.delivered_at < cutoff))
    return [str(r[0]) for r in rows]


_MARK = upsert_rows(readiness, ["order_id", "reserved", "reservation_event_id", "updated_at"],
                    ["order_id"], excluded("reserved", "reservation_event_id", "updated_at"))


async def _mark(conn: AsyncConnection, order_id: str, reserved: bool, event_id: str,
                at: datetime) -> None:
    row = {"order_id": order_id, "reserved": reserved, "reservation_event_id": event_id,
           "updated_at": at}
    cache = BATCH.get()
    if cache is None:
        await _MARK.execute(conn, [row])
        return
    cache.reserved[order_id] = reserved
    cache.readiness_rows[order_id] = row  # the last one per order is what the upserts leave


async def mark_reserved(conn: AsyncConnection, order_id: str, event_id: str, at: datetime) -> None:
    await _mark(conn, order_id, True, event_id, at)


async def mark_short(conn: AsyncConnection, order_id: str, event_id: str, at: datetime) -> None:
    """Inventory is short for this order (placement, deposit or an amendment's extra units)."""
    await _mark(conn, order_id, False, event_id, at)


def readiness_write(rows: Sequence[dict[str, Any]]) -> Write | None:
    """A batch's readiness rows (each order's last), for its one statement of writes."""
    return _MARK.write(rows)


_RESERVED = select(readiness.c.order_id, readiness.c.reserved).where(
    readiness.c.order_id == any_(bindparam("ids", type_=ARRAY(Text))))


def reserved_query(order_ids: Sequence[str]) -> Query[dict[str, bool]]:
    """Whether each order's stock is reserved, in one query (an order without a row: not)."""
    def found(rows: Sequence[Any]) -> dict[str, bool]:
        return {order_id: False for order_id in order_ids} | {
            row.order_id: bool(row.reserved) for row in rows}

    return Query(_RESERVED, {"ids": list(order_ids)}, found)


async def is_reserved(conn: AsyncConnection, order_id: str) -> bool:
    cache = BATCH.get()
    if cache is not None and order_id in cache.reserved:
        return cache.reserved[order_id]
    value = (await conn.execute(select(readiness.c.reserved)
                                .where(readiness.c.order_id == order_id))).scalar()
    if cache is not None:
        cache.reserved[order_id] = bool(value)
    return bool(value)


async def join_group(conn: AsyncConnection, group_id: str, size: int, order_id: str, at: datetime
                     ) -> None:
    await conn.execute(insert(group_buys).values(group_id=group_id, size=size)
                       .on_conflict_do_nothing(index_elements=[group_buys.c.group_id]))
    await conn.execute(insert(group_members).values(group_id=group_id, order_id=order_id,
                                                    active=True, joined_at=at)
                       .on_conflict_do_nothing(index_elements=[group_members.c.order_id]))


async def leave_group(conn: AsyncConnection, order_id: str) -> None:
    await conn.execute(group_members.update().where(group_members.c.order_id == order_id)
                       .values(active=False))


async def group_state(conn: AsyncConnection, group_id: str, at: datetime) -> tuple[bool, list[str]]:
    """(closed, active members). Locks the group row so two joiners cannot both miss the close."""
    group = (await conn.execute(select(group_buys).where(group_buys.c.group_id == group_id)
                                .with_for_update())).mappings().first()
    if group is None:
        return False, []
    members = [str(r[0]) for r in await conn.execute(
        select(group_members.c.order_id).where(group_members.c.group_id == group_id,
                                               group_members.c.active)
        .order_by(group_members.c.joined_at, group_members.c.order_id))]
    closed = group["closed_at"] is not None or len(members) >= int(group["size"])
    if closed and group["closed_at"] is None:
        await conn.execute(group_buys.update().where(group_buys.c.group_id == group_id)
                           .values(closed_at=at))
    return closed, members


async def summary(conn: AsyncConnection) -> dict[str, Any]:
    by_status = {str(s): int(n) for s, n in (await conn.execute(
        select(orders.c.status, func.count()).group_by(orders.c.status))).all()}
    count, amount, active = (await conn.execute(select(
        func.count(), func.coalesce(func.sum(orders.c.total), 0),
        func.coalesce(func.sum(orders.c.total).filter(orders.c.status != "cancelled"), 0)))).one()
    events = eventstore.events
    by_type = {str(t): int(n) for t, n in (await conn.execute(
        select(events.c.event_type, func.count()).group_by(events.c.event_type))).all()}
    flagged = (await conn.execute(select(func.count()).where(
        func.jsonb_array_length(orders.c.flags) > 0))).scalar_one()
    paid = (await conn.execute(select(func.count()).where(
        orders.c.paid, orders.c.status != "cancelled"))).scalar_one()
    total: Decimal = amount
    return {"orders": int(count), "by_status": by_status, "amount_total": str(total),
            "amount_active": str(active), "paid_orders": int(paid),
            "rejections": by_type.get("submission.rejected", 0), "flagged": int(flagged),
            "events": by_type}
