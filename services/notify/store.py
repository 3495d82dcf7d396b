"""Notify's own tables: customers of orders, notifications (pending -> sent/failed), attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    any_,
    bindparam,
    case,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify.domain import OrderCustomer, PlannedNotification
from shared.rowdocs import Write, insert_rows
from shared.schemaupgrade import create_or_upgrade

PENDING, SENT, FAILED = "pending", "sent", "failed"
RETRY = "retry"  # an attempt that failed and will be tried again

metadata = MetaData()

# Personal data of the customer lives here only; staff see it masked (domain.masked_contact).
order_customers = Table(
    "order_customers",
    metadata,
    Column("order_id", Text, primary_key=True),
    Column("customer_id", Text, nullable=False),
    Column("customer_name", Text, nullable=False),
    Column("email", Text),
    Column("phone", Text),
    Column("channel", Text, nullable=False),
    Column("channel_order_id", Text, nullable=False),
    Column("address", Text),
    Column("source_event_id", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("notification_id", Text, primary_key=True),
    Column("source_event_id", Text, nullable=False),
    Column("source_event_type", Text, nullable=False),
    Column("correlation_id", Text),
    Column("order_id", Text),
    Column("recipient", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("target", Text),  # inbox: the recipient; email: the address; webhooks: the URL
    Column("rule", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("html_body", Text),
    Column("status", Text, nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("failure_reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    # Redelivery, replay and republishing bring the same source event id: never a second send.
    UniqueConstraint("source_event_id", "recipient", "channel", name="notifications_once"),
    Index("notifications_by_order", "order_id"),
    Index("notifications_by_recipient", "recipient", "created_at"),
    Index("notifications_due", "next_attempt_at", postgresql_where=text("status = 'pending'")),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("notification_id", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False),  # sent | retry | failed
    Column("error", Text),
    Index("delivery_attempts_by_notification", "notification_id", "attempt"),
)

async def create_schema(conn: AsyncConnection) -> None:
    # a database made before notifications were delivered by a background sender gains the
    # delivery columns (address, correlation_id, target, html_body, attempts, ...)
    await create_or_upgrade(conn, metadata)


# Statements of the consumer's hot path, built once; each takes a batch's rows (or one row) as
# one JSON document (``shared.rowdocs``).
_CUSTOMER_COLUMNS = ("order_id", "customer_id", "customer_name", "email", "phone", "channel",
                     "channel_order_id", "address", "source_event_id", "recorded_at")
_REMEMBER_CUSTOMERS = insert_rows(order_customers, _CUSTOMER_COLUMNS, skip_conflicts=["order_id"])
_LOAD_CUSTOMERS = select(order_customers).where(
    order_customers.c.order_id == any_(bindparam("ids", type_=ARRAY(Text))))
_NOTIFICATION_COLUMNS = ("notification_id", "source_event_id", "source_event_type",
                         "correlation_id", "order_id", "recipient", "channel", "target", "rule",
                         "subject", "body", "html_body", "status", "attempts", "next_attempt_at",
                         "failure_reason", "created_at", "finished_at")
_STORE_NOTIFICATIONS = insert_rows(notifications, _NOTIFICATION_COLUMNS, skip_conflicts=True)
_RECORD_ATTEMPTS = insert_rows(delivery_attempts,
                               ("notification_id", "attempt", "at", "status", "error"))
# Per notification id: is it stored, and the type of the last event on its stream (None: none).
_NOTIFICATION_STATES = text(
    "SELECT w.id, EXISTS (SELECT 1 FROM notifications n WHERE n.notification_id = w.id) AS stored, "
    "(SELECT e.event_type FROM events e WHERE e.stream_id = w.id ORDER BY e.stream_version DESC "
    "LIMIT 1) AS logged FROM unnest(CAST(:ids AS text[])) AS w (id)")


def customer_row(customer: OrderCustomer, *, source_event_id: str, at: datetime) -> dict[str, Any]:
    return {"order_id": customer.order_id, "customer_id": customer.customer_id,
            "customer_name": customer.name, "email": customer.email, "phone": customer.phone,
            "channel": customer.channel, "channel_order_id": customer.channel_order_id,
            "address": customer.address, "source_event_id": source_event_id, "recorded_at": at}


async def remember_customers(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Keep the first ``order.placed`` customer of each order (a redelivery changes nothing)."""
    await _REMEMBER_CUSTOMERS.execute(conn, rows)


def batch_writes(customers: list[dict[str, Any]], notifications: list[dict[str, Any]],
                 attempts: list[dict[str, Any]]) -> list[Write | None]:
    """``remember_customers``, ``store_notifications`` and ``record_attempts`` of a batch (None
    for one without rows), to run in one statement with its events (each table's rows
    independent of the others')."""
    return [_REMEMBER_CUSTOMERS.write(customers), _STORE_NOTIFICATIONS.write(notifications),
            _RECORD_ATTEMPTS.write(attempts)]


async def load_customers(conn: AsyncConnection, order_ids: list[str]) -> dict[str, OrderCustomer]:
    if not order_ids:
        return {}
    rows = await conn.execute(_LOAD_CUSTOMERS, {"ids": order_ids})
    return {row.order_id: OrderCustomer(
        order_id=row.order_id, customer_id=row.customer_id, name=row.customer_name,
        email=row.email, phone=row.phone, channel=row.channel,
        channel_order_id=row.channel_order_id, address=row.address or "") for row in rows}


def notification_row(planned: PlannedNotification, *, status: str, correlation_id: str,
                     at: datetime) -> dict[str, Any]:
    return {"notification_id": planned.notification_id, "source_event_id": planned.source_event_id,
            "source_event_type": planned.source_event_type, "correlation_id": correlation_id,
            "order_id": planned.order_id, "recipient": planned.recipient,
            "channel": planned.channel, "target": planned.target, "rule": planned.rule,
            "subject": planned.subject, "body": planned.body, "html_body": planned.html_body,
            "status": status, "attempts": 0,
            "next_attempt_at": at if status == PENDING else None,
            "failure_reason": planned.failure, "created_at": at,
            "finished_at": at if status != PENDING else None}


async def store_notifications(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    """Insert notifications (one that exists is left as it is: never a second send)."""
    await _STORE_NOTIFICATIONS.execute(conn, rows)


async def notification_states(conn: AsyncConnection, notification_ids: list[str]
                              ) -> dict[str, tuple[bool, str | None]]:
    """Per notification id: (stored already?, type of the last event on its stream or None)."""
    if not notification_ids:
        return {}
    rows = await conn.execute(_NOTIFICATION_STATES, {"ids": notification_ids})
    return {row.id: (bool(row.stored), row.logged) for row in rows}


async def claim_due(conn: AsyncConnection, now: datetime, lease_until: datetime, limit: int
                    ) -> list[Any]:
    """Pending notifications due by ``now``, leased until ``lease_until`` (no other sender takes them)."""
    due = (
        select(notifications.c.notification_id)
        .where(notifications.c.status == PENDING, notifications.c.next_attempt_at <= now)
        .order_by(notifications.c.next_attempt_at, notifications.c.notification_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await conn.execute(
        update(notifications)
        .where(notifications.c.notification_id.in_(due))
        .values(next_attempt_at=lease_until)
        .returning(*notifications.c)
    )
    return list(result)


async def record_attempt(conn: AsyncConnection, notification_id: str, attempt: int, at: datetime,
                         status: str, error: str | None = None) -> None:
    await record_attempts(conn, [attempt_row(notification_id, attempt, at, status, error)])


def attempt_row(notification_id: str, attempt: int, at: datetime, status: str,
                error: str | None = None) -> dict[str, Any]:
    return {"notification_id": notification_id, "attempt": attempt, "at": at, "status": status,
            "error": error}


async def record_attempts(conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
    await _RECORD_ATTEMPTS.execute(conn, rows)


async def finish_attempt(conn: AsyncConnection, notification_id: str, *, attempts_before: int,
                         status: str, at: datetime, error: str | None,
                         next_attempt_at: datetime | None) -> bool:
    """Move a pending notification on after an attempt; False if someone else already did."""
    result = await conn.execute(
        update(notifications)
        .where(notifications.c.notification_id == notification_id,
               notifications.c.status == PENDING, notifications.c.attempts == attempts_before)
        .values(status=status, attempts=attempts_before + 1, failure_reason=error,
                next_attempt_at=next_attempt_at, finished_at=None if status == PENDING else at)
        .returning(notifications.c.notification_id)
    )
    return result.first() is not None


_PUBLIC_COLUMNS = (
    notifications.c.notification_id, notifications.c.source_event_id,
    notifications.c.source_event_type, notifications.c.order_id, notifications.c.recipient,
    notifications.c.channel, notifications.c.rule, notifications.c.subject, notifications.c.body,
    notifications.c.status, notifications.c.attempts, notifications.c.next_attempt_at,
    notifications.c.failure_reason, notifications.c.created_at, notifications.c.finished_at,
)


def _as_dict(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    for key, value in item.items():
        if isinstance(value, datetime):
            item[key] = value.isoformat()
    return item


async def find_notifications(conn: AsyncConnection, *, order_id: str | None, status: str | None,
                             channel: str | None, limit: int) -> list[dict[str, Any]]:
    query = select(*_PUBLIC_COLUMNS)
    for column, value in ((notifications.c.order_id, order_id), (notifications.c.status, status),
                          (notifications.c.channel, channel)):
        if value is not None:
            query = query.where(column == value)
    rows = await conn.execute(
        query.order_by(notifications.c.created_at, notifications.c.notification_id).limit(limit))
    return [_as_dict(row) for row in rows]


async def inbox_of(conn: AsyncConnection, recipient: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(*_PUBLIC_COLUMNS)
        .where(notifications.c.recipient == recipient, notifications.c.channel == "inbox")
        .order_by(notifications.c.created_at.desc(), notifications.c.notification_id)
        .limit(limit)
    )
    return [_as_dict(row) for row in rows]


async def deliveries(conn: AsyncConnection, *, notification_id: str | None, status: str | None,
                     limit: int) -> list[dict[str, Any]]:
    """Delivery attempts, newest first, with the notification they belong to."""
    query = select(delivery_attempts, notifications.c.channel, notifications.c.recipient,
                   notifications.c.order_id, notifications.c.source_event_type).join(
        notifications, notifications.c.notification_id == delivery_attempts.c.notification_id)
    if notification_id is not None:
        query = query.where(delivery_attempts.c.notification_id == notification_id)
    if status is not None:
        query = query.where(delivery_attempts.c.status == status)
    rows = await conn.execute(query.order_by(delivery_attempts.c.id.desc()).limit(limit))
    return [_as_dict(row) for row in rows]


async def summary(conn: AsyncConnection) -> dict[str, Any]:
    sent = notifications.c.status == SENT
    row = (await conn.execute(select(
        func.count().filter(sent),
        func.count(func.distinct(notifications.c.order_id)).filter(sent),
        func.count().filter(notifications.c.status == FAILED),
        func.count().filter(notifications.c.status == PENDING),
    ))).one()

    async def sent_by(column: Any) -> dict[str, int]:
        rows = await conn.execute(
            select(column, func.count()).where(sent).group_by(column).order_by(column))
        return {str(key): int(count) for key, count in rows}

    audience = case((notifications.c.recipient.startswith("customer:"), "customer"), else_="staff")
    return {"notifications_sent": int(row[0]), "orders_notified": int(row[1]),
            "by_event_type": await sent_by(notifications.c.source_event_type),
            "by_channel": await sent_by(notifications.c.channel),
            "by_audience": await sent_by(audience),
            "failed": int(row[2]), "pending": int(row[3])}
