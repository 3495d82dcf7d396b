"""Notify's own tables: the customers of orders and the stored notifications (inbox channel)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify.domain import OrderCustomer, PlannedNotification

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
    Column("source_event_id", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("notification_id", Text, primary_key=True),
    Column("source_event_id", Text, nullable=False),
    Column("source_event_type", Text, nullable=False),
    Column("order_id", Text),
    Column("recipient", Text, nullable=False),
    Column("channel", Text, nullable=False),
    Column("rule", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("status", Text, nullable=False),  # sent | failed
    Column("failure_reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Redelivery, replay and republishing bring the same source event id: never a second send.
    UniqueConstraint("source_event_id", "recipient", "channel", name="notifications_once"),
    Index("notifications_by_order", "order_id"),
    Index("notifications_by_recipient", "recipient", "created_at"),
)


async def create_schema(conn: AsyncConnection) -> None:
    await conn.run_sync(metadata.create_all)


async def remember_customer(conn: AsyncConnection, customer: OrderCustomer, *, source_event_id: str,
                            at: datetime) -> None:
    """Keep the first ``order.placed`` customer of an order (a redelivery changes nothing)."""
    await conn.execute(
        insert(order_customers)
        .values(
            order_id=customer.order_id,
            customer_id=customer.customer_id,
            customer_name=customer.name,
            email=customer.email,
            phone=customer.phone,
            channel=customer.channel,
            channel_order_id=customer.channel_order_id,
            source_event_id=source_event_id,
            recorded_at=at,
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
    )


async def load_customer(conn: AsyncConnection, order_id: str | None) -> OrderCustomer | None:
    if order_id is None:
        return None
    row = (
        await conn.execute(select(order_customers).where(order_customers.c.order_id == order_id))
    ).first()
    if row is None:
        return None
    return OrderCustomer(
        order_id=row.order_id,
        customer_id=row.customer_id,
        name=row.customer_name,
        email=row.email,
        phone=row.phone,
        channel=row.channel,
        channel_order_id=row.channel_order_id,
    )


async def store_notification(conn: AsyncConnection, planned: PlannedNotification, *, at: datetime
                             ) -> bool:
    """Insert the notification unless it exists; True only the first time (then send it)."""
    result = await conn.execute(
        insert(notifications)
        .values(
            notification_id=planned.notification_id,
            source_event_id=planned.source_event_id,
            source_event_type=planned.source_event_type,
            order_id=planned.order_id,
            recipient=planned.recipient,
            channel=planned.channel,
            rule=planned.rule,
            subject=planned.subject,
            body=planned.body,
            status="sent" if planned.sent else "failed",
            failure_reason=planned.failure,
            created_at=at,
        )
        .on_conflict_do_nothing()
        .returning(notifications.c.notification_id)
    )
    return result.first() is not None


_PUBLIC_COLUMNS = (
    notifications.c.notification_id, notifications.c.source_event_id,
    notifications.c.source_event_type, notifications.c.order_id, notifications.c.recipient,
    notifications.c.channel, notifications.c.subject, notifications.c.body, notifications.c.status,
    notifications.c.failure_reason, notifications.c.created_at,
)


def _as_dict(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    item["created_at"] = item["created_at"].isoformat()
    return item


async def notifications_of_order(conn: AsyncConnection, order_id: str, limit: int
                                 ) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(*_PUBLIC_COLUMNS)
        .where(notifications.c.order_id == order_id)
        .order_by(notifications.c.created_at, notifications.c.notification_id)
        .limit(limit)
    )
    return [_as_dict(row) for row in rows]


async def inbox_of(conn: AsyncConnection, recipient: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.execute(
        select(*_PUBLIC_COLUMNS)
        .where(notifications.c.recipient == recipient, notifications.c.channel == "inbox")
        .order_by(notifications.c.created_at.desc(), notifications.c.notification_id)
        .limit(limit)
    )
    return [_as_dict(row) for row in rows]


async def summary(conn: AsyncConnection) -> dict[str, int]:
    sent = notifications.c.status == "sent"
    row = (
        await conn.execute(
            select(
                func.count().filter(sent),
                func.count(func.distinct(notifications.c.order_id)).filter(sent),
                func.count().filter(notifications.c.status == "failed"),
            )
        )
    ).one()
    return {"notifications_sent": int(row[0]), "orders_notified": int(row[1]),
            "notifications_failed": int(row[2])}
