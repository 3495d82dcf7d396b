"""Notify's application layer: remember customers, record each notification once, deliver later.

The consumer's transaction records the intent (a ``pending`` row, unique per source event,
recipient and channel); the background sender (sender.py) delivers after commit. The inbox
channel is delivered by that very commit, so its ``notification.sent`` goes in the same
transaction; a notification that cannot be addressed at all is logged as failed at once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify import store
from services.notify.domain import (
    INBOX,
    DeliverySetup,
    OrderCustomer,
    PlannedNotification,
    RuleSet,
    SourceEvent,
    plan_notifications,
)
from shared.clock import Clock
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import NotificationFailed, NotificationSent, OrderPlaced, Payload
from shared.eventstore import Meta, append, read_stream
from shared.inbox import Handler, Incoming
from shared.logging import get_logger

log = get_logger(__name__)


def make_handler(clock: Clock, rules: RuleSet, setup: DeliverySetup | None = None) -> Handler:
    """The consumer handler; the inbox gives it an open transaction (it opens none itself)."""
    setup = setup or DeliverySetup()
    told: set[str] = set()  # fallbacks already logged by this process

    async def handle(conn: AsyncConnection, incoming: Incoming) -> None:
        for fallback in await handle_event(conn, incoming.event, clock, rules, setup):
            if fallback not in told:
                told.add(fallback)
                log.warning("notification channel not set up", fallback=fallback)

    return handle


async def handle_event(conn: AsyncConnection, event: EventEnvelope, clock: Clock, rules: RuleSet,
                       setup: DeliverySetup) -> list[str]:
    """Record the notifications of one event; returns the channel fallbacks used (for the log)."""
    if event.event_type == OrderPlaced.event_type:
        customer = OrderCustomer.from_order_placed(event.payload)
        await store.remember_customer(conn, customer, source_event_id=str(event.event_id),
                                      at=clock.now())
        return []
    if event.event_type not in rules.event_types:
        return []  # an event nobody is told about
    source = SourceEvent(str(event.event_id), event.event_type, event.payload)
    known = await store.load_customer(conn, source.order_id)
    plan = plan_notifications(source, known, rules, setup)
    for notification in plan.notifications:
        await _record(conn, notification, event, clock)
    return plan.fallbacks


async def _record(conn: AsyncConnection, notification: PlannedNotification, cause: EventEnvelope,
                  clock: Clock) -> None:
    now = clock.now()
    logged = await read_stream(conn, notification.notification_id)
    if logged:
        # Sent (or failed) before the projection was rebuilt: the event log says so; no resend.
        status = store.SENT if logged[-1].envelope.event_type == NotificationSent.event_type \
            else store.FAILED
        await store.store_notification(conn, notification, status=status,
                                       correlation_id=cause.correlation_id, at=now)
        return
    if not notification.deliverable:
        status = store.FAILED
    elif notification.channel == INBOX:
        status = store.SENT
    else:
        status = store.PENDING
    if not await store.store_notification(conn, notification, status=status,
                                          correlation_id=cause.correlation_id, at=now):
        return  # recorded before: redelivery, replay or republish
    if status == store.PENDING:
        return  # the sender delivers it after this transaction commits
    await store.record_attempt(conn, notification.notification_id, 1, now, status,
                               notification.failure)
    await log_outcome(conn, notification_fact(notification), notification.notification_id,
                      key=notification.order_id or notification.recipient,
                      correlation_id=cause.correlation_id, causation_id=str(cause.event_id),
                      clock=clock, logged=False)


def notification_fact(n: PlannedNotification, failure: str | None = None) -> Payload:
    reason = failure or n.failure
    if reason is None:
        return NotificationSent(
            order_id=n.order_id, notification_id=n.notification_id,
            source_event_id=n.source_event_id, source_event_type=n.source_event_type,
            recipient=n.recipient, channel=n.channel, subject=n.subject)
    return NotificationFailed(
        order_id=n.order_id, notification_id=n.notification_id, source_event_id=n.source_event_id,
        source_event_type=n.source_event_type, recipient=n.recipient, channel=n.channel,
        reason=reason)


async def log_outcome(conn: AsyncConnection, fact: Payload, notification_id: str, *, key: str,
                      correlation_id: str, causation_id: str, clock: Clock,
                      logged: bool | None = None) -> None:
    """``notification.sent`` / ``.failed`` on the notification's own stream, at most once
    (``logged=False``: the caller just read the stream empty in this transaction)."""
    if logged is None:
        logged = bool(await read_stream(conn, notification_id))
    if logged:
        return
    await append(conn, notification_id, 0, [fact],
                 meta=Meta(correlation_id=correlation_id, causation_id=causation_id, actor=SYSTEM),
                 clock=clock, key=key)
