"""Notify's application layer: remember customers, record each notification once, deliver later.

The consumer's transaction records the intent (a ``pending`` row, unique per source event,
recipient and channel); the background sender (sender.py) delivers after commit. The inbox
channel is delivered by that very commit, so its ``notification.sent`` goes in the same
transaction; a notification that cannot be addressed at all is logged as failed at once.
A batch of events (``make_batch_start``) is read and written in bulk, with the effect of its
events handled one by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify import store
from services.notify.domain import (
    INBOX,
    DeliverySetup,
    OrderCustomer,
    Plan,
    PlannedNotification,
    RuleSet,
    SourceEvent,
    plan_notifications,
)
from shared.clock import Clock
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import NotificationFailed, NotificationSent, OrderPlaced, Payload
from shared.eventbatch import PendingEvents
from shared.eventstore import Meta, append, read_stream
from shared.inbox import BatchStart, BatchWork, Handler, Incoming
from shared.logging import get_logger

log = get_logger(__name__)


def _warn_once(told: set[str], fallbacks: list[str]) -> None:
    for fallback in fallbacks:
        if fallback not in told:
            told.add(fallback)
            log.warning("notification channel not set up", fallback=fallback)


def make_handler(clock: Clock, rules: RuleSet, setup: DeliverySetup | None = None,
                 told: set[str] | None = None) -> Handler:
    """The consumer handler; the inbox gives it an open transaction (it opens none itself).
    ``told``: the fallbacks already logged by this process (shared with the batch work)."""
    setup = setup or DeliverySetup()
    told = set() if told is None else told

    async def handle(conn: AsyncConnection, incoming: Incoming) -> None:
        _warn_once(told, await handle_event(conn, incoming.event, clock, rules, setup))

    return handle


async def handle_event(conn: AsyncConnection, event: EventEnvelope, clock: Clock, rules: RuleSet,
                       setup: DeliverySetup) -> list[str]:
    """Record the notifications of one event; returns the channel fallbacks used (for the log)."""
    if event.event_type == OrderPlaced.event_type:
        customer = OrderCustomer.from_order_placed(event.payload)
        await store.remember_customers(conn, [store.customer_row(
            customer, source_event_id=str(event.event_id), at=clock.now())])
        return []
    if event.event_type not in rules.event_types:
        return []  # an event nobody is told about
    source = SourceEvent(str(event.event_id), event.event_type, event.payload)
    order_id = source.order_id
    known = (await store.load_customers(conn, [order_id])).get(order_id) \
        if order_id is not None else None
    plan = plan_notifications(source, known, rules, setup)
    recording = _Recording()
    await recording.look_up(conn, plan.notifications)
    for notification in plan.notifications:
        await recording.record(conn, notification, event, clock)
    await recording.save(conn)
    return plan.fallbacks


class _Recording:
    """What this transaction knows of notifications (stored? their outcome logged?) and the rows
    it has yet to write: each notification is recorded once per (event, recipient, channel)."""

    def __init__(self) -> None:
        self.stored: set[str] = set()
        self.logged: dict[str, str] = {}  # notification id -> type of its stream's last event
        self.checked: set[str] = set()
        self.notifications: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self.outcomes = PendingEvents()  # each on a new stream: the notification's own

    async def look_up(self, conn: AsyncConnection, planned: Sequence[PlannedNotification]
                      ) -> None:
        """Read the state of the notifications not looked up yet (one statement)."""
        ids = list(dict.fromkeys(n.notification_id for n in planned
                                 if n.notification_id not in self.checked))
        for notification_id, (stored, logged) in (await store.notification_states(conn, ids)
                                                  ).items():
            if stored:
                self.stored.add(notification_id)
            if logged is not None:
                self.logged[notification_id] = logged
        self.checked.update(ids)

    async def record(self, conn: AsyncConnection, notification: PlannedNotification,
                     cause: EventEnvelope, clock: Clock) -> None:
        now = clock.now()
        logged = self.logged.get(notification.notification_id)
        if logged is not None:
            # Sent (or failed) before the projection was rebuilt: the event log says so; no resend.
            status = store.SENT if logged == NotificationSent.event_type else store.FAILED
            self.store(notification, status, cause, now)
            return
        if not notification.deliverable:
            status = store.FAILED
        elif notification.channel == INBOX:
            status = store.SENT
        else:
            status = store.PENDING
        if not self.store(notification, status, cause, now):
            return  # recorded before: redelivery, replay or republish
        if status == store.PENDING:
            return  # the sender delivers it after this transaction commits
        self.attempts.append(store.attempt_row(notification.notification_id, 1, now, status,
                                               notification.failure))
        fact = notification_fact(notification)
        # ``log_outcome`` with nothing logged yet (looked up above), written by ``save``.
        self.outcomes.add(notification.notification_id, [fact], meta=Meta(
            correlation_id=cause.correlation_id, causation_id=str(cause.event_id), actor=SYSTEM),
            key=notification.order_id or notification.recipient, now=now)
        self.logged[notification.notification_id] = fact.event_type

    def store(self, notification: PlannedNotification, status: str, cause: EventEnvelope,
              at: datetime) -> bool:
        """Queue the notification's row unless it is stored; True only the first time."""
        if notification.notification_id in self.stored:
            return False
        self.stored.add(notification.notification_id)
        self.notifications.append(store.notification_row(
            notification, status=status, correlation_id=cause.correlation_id, at=at))
        return True

    async def save(self, conn: AsyncConnection, customers: list[dict[str, Any]] | None = None
                   ) -> None:
        """The outcomes' events, the notifications and attempts (and ``customers``) in one
        statement: one round trip."""
        await self.outcomes.flush(conn, *store.batch_writes(customers or [], self.notifications,
                                                            self.attempts))
        self.notifications, self.attempts = [], []


def make_batch_start(clock: Clock, rules: RuleSet, setup: DeliverySetup | None = None,
                     told: set[str] | None = None) -> BatchStart:
    """``handle_event`` for a whole batch: the customers of its orders loaded in one statement,
    its notifications planned (in order, each seeing the customers of earlier messages) and looked
    up in one statement; the customers, notifications and attempts written at the end with one
    executemany each. Outcomes are appended as each event is handled."""
    setup = setup or DeliverySetup()
    told = set() if told is None else told

    async def start(conn: AsyncConnection, messages: Sequence[Incoming]) -> BatchWork:
        order_ids = {order_id for m in messages
                     if (order_id := _order_of(m.event, rules)) is not None}
        batch = _Batch(conn, clock, rules, setup, told)
        batch.customers = await store.load_customers(conn, sorted(order_ids))
        batch.loaded = order_ids
        known = dict(batch.customers)
        for message in messages:  # planning is pure: done here as handle will do it
            event = message.event
            if event.event_type == OrderPlaced.event_type:
                placed = OrderCustomer.from_order_placed(event.payload)
                known.setdefault(placed.order_id, placed)
            elif event.event_type in rules.event_types:
                source = SourceEvent(str(event.event_id), event.event_type, event.payload)
                customer = known.get(source.order_id) if source.order_id is not None else None
                batch.plans[event.event_id] = (customer, plan_notifications(source, customer,
                                                                            rules, setup))
        await batch.recording.look_up(conn, [n for _, plan in batch.plans.values()
                                             for n in plan.notifications])
        return batch

    return start


def _order_of(event: EventEnvelope, rules: RuleSet) -> str | None:
    """The order whose customer handling ``event`` reads or remembers (None: no customer)."""
    if event.event_type == OrderPlaced.event_type:
        return str(event.payload["order_id"])
    if event.event_type in rules.event_types:
        order_id = event.payload.get("order_id")
        return order_id if isinstance(order_id, str) else None
    return None


class _Batch:
    """A batch's customers and notifications as its events add to them, written by ``finish``."""

    def __init__(self, conn: AsyncConnection, clock: Clock, rules: RuleSet, setup: DeliverySetup,
                 told: set[str]) -> None:
        self.conn, self.clock, self.rules, self.setup, self.told = conn, clock, rules, setup, told
        self.customers: dict[str, OrderCustomer] = {}  # stored or remembered in this batch
        self.loaded: set[str] = set()  # orders whose stored customer was read
        self.remembered: list[dict[str, Any]] = []
        self.plans: dict[Any, tuple[OrderCustomer | None, Plan]] = {}
        self.recording = _Recording()

    async def customer(self, order_id: str | None) -> OrderCustomer | None:
        if order_id is None:
            return None
        if order_id not in self.loaded:  # not foreseen by start: read as alone
            self.customers |= await store.load_customers(self.conn, [order_id])
            self.loaded.add(order_id)
        return self.customers.get(order_id)

    async def handle(self, message: Incoming) -> None:
        event = message.event
        if event.event_type == OrderPlaced.event_type:
            placed = OrderCustomer.from_order_placed(event.payload)
            if await self.customer(placed.order_id) is None:  # the first one is kept
                self.customers[placed.order_id] = placed
                self.remembered.append(store.customer_row(
                    placed, source_event_id=str(event.event_id), at=self.clock.now()))
            return
        if event.event_type not in self.rules.event_types:
            return
        source = SourceEvent(str(event.event_id), event.event_type, event.payload)
        customer = await self.customer(source.order_id)
        planned, plan = self.plans.pop(event.event_id, (None, None))
        if plan is None or planned != customer:  # not as start foresaw: planned as alone
            plan = plan_notifications(source, customer, self.rules, self.setup)
            await self.recording.look_up(self.conn, plan.notifications)
        for notification in plan.notifications:
            await self.recording.record(self.conn, notification, event, self.clock)
        _warn_once(self.told, plan.fallbacks)

    async def finish(self) -> None:
        await self.recording.save(self.conn, customers=self.remembered)
        self.remembered = []


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
                      correlation_id: str, causation_id: str, clock: Clock) -> None:
    """``notification.sent`` / ``.failed`` on the notification's own stream, at most once."""
    if await read_stream(conn, notification_id):
        return
    await append(conn, notification_id, 0, [fact],
                 meta=Meta(correlation_id=correlation_id, causation_id=causation_id, actor=SYSTEM),
                 clock=clock, key=key)
