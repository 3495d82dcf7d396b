"""Notify's application layer: remember customers, store each notification once, log it as an event."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify import store
from services.notify.domain import (
    OrderCustomer,
    PlannedNotification,
    SourceEvent,
    plan_notifications,
    rules_for,
)
from shared.clock import Clock
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import NotificationFailed, NotificationSent, OrderPlaced, Payload
from shared.eventstore import Meta, append, stream_head
from shared.inbox import Handler, Incoming


def make_handler(clock: Clock) -> Handler:
    """The consumer handler; the inbox gives it an open transaction (it opens none itself)."""

    async def handle(conn: AsyncConnection, incoming: Incoming) -> None:
        await handle_event(conn, incoming.event, clock)

    return handle


async def handle_event(conn: AsyncConnection, event: EventEnvelope, clock: Clock) -> None:
    if event.event_type == OrderPlaced.event_type:
        customer = OrderCustomer.from_order_placed(event.payload)
        await store.remember_customer(conn, customer, source_event_id=str(event.event_id),
                                      at=clock.now())
        return
    if not rules_for(event.event_type):
        return  # an event nobody is told about
    source = SourceEvent(str(event.event_id), event.event_type, event.payload)
    known = await store.load_customer(conn, source.order_id)
    for notification in plan_notifications(source, known):
        if await store.store_notification(conn, notification, at=clock.now()):
            await _log_delivery(conn, notification, event, clock)


async def _log_delivery(conn: AsyncConnection, notification: PlannedNotification,
                        cause: EventEnvelope, clock: Clock) -> None:
    """``notification.sent`` (or ``.failed``) in the same transaction as the stored notification."""
    fact: Payload
    if notification.failure is None:
        fact = NotificationSent(
            order_id=notification.order_id, notification_id=notification.notification_id,
            source_event_id=notification.source_event_id,
            source_event_type=notification.source_event_type, recipient=notification.recipient,
            channel=notification.channel, subject=notification.subject,
        )
    else:
        fact = NotificationFailed(
            order_id=notification.order_id, notification_id=notification.notification_id,
            source_event_id=notification.source_event_id,
            source_event_type=notification.source_event_type, recipient=notification.recipient,
            channel=notification.channel, reason=notification.failure,
        )
    # One stream per notification, expected empty: the event store refuses a second send too.
    # A stream that exists already means it was sent before the projection was rebuilt.
    version, _ = await stream_head(conn, notification.notification_id)
    if version > 0:
        return
    await append(
        conn, notification.notification_id, 0, [fact],
        meta=Meta(correlation_id=cause.correlation_id, causation_id=str(cause.event_id), actor=SYSTEM),
        clock=clock, key=notification.order_id or notification.recipient,
    )
