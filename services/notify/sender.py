"""The background sender: delivers pending notifications after commit, retries with backoff.

pending -> sent (``notification.sent`` only once the channel accepted it) or, after the last
allowed attempt, failed (``notification.failed`` with the reason). Every notification is
delivered and finished on its own, so one failing channel never holds up the others.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify import store
from services.notify.channels import Channels, DeliveryError, Message
from services.notify.domain import PlannedNotification, RetryPolicy
from services.notify.handlers import log_outcome, notification_fact
from shared.clock import Clock
from shared.logging import get_logger

log = get_logger(__name__)

LEASE = timedelta(minutes=5)  # a claimed notification is left alone this long by other senders


class Sender:
    def __init__(self, engine: AsyncEngine, channels: Channels, clock: Clock, policy: RetryPolicy,
                 *, batch: int = 100, concurrency: int = 10) -> None:
        self.engine = engine
        self._slots = asyncio.Semaphore(concurrency)  # connections open at once to the channels
        self.channels = channels
        self.clock = clock
        self.policy = policy
        self.batch = batch

    async def send_due(self) -> int:
        """Deliver every notification due now; returns how many were tried."""
        now = self.clock.now()
        async with self.engine.begin() as conn:
            rows = await store.claim_due(conn, now, now + LEASE, self.batch)
        await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def run(self, poll_seconds: float) -> None:
        while True:
            try:
                tried = await self.send_due()
            except Exception as error:  # the database away: try again on the next round
                log.warning("notification sender round failed", error=str(error))
                tried = 0
            if tried < self.batch:
                await asyncio.sleep(poll_seconds)

    async def _deliver(self, row: Any) -> None:
        message = Message(
            notification_id=row.notification_id, source_event_id=row.source_event_id,
            source_event_type=row.source_event_type, order_id=row.order_id,
            recipient=row.recipient, channel=row.channel, target=row.target or "",
            subject=row.subject, body=row.body, html_body=row.html_body)
        error: str | None = None
        try:
            async with self._slots:
                await self.channels.deliver(message)
        except DeliveryError as failure:
            error = str(failure)
        except Exception as failure:  # a bug in a channel must not stop the others
            error = f"{type(failure).__name__}: {failure}"
        try:
            await self._finish(row, error)
        except Exception as failure:
            log.warning("could not record a delivery", notification_id=row.notification_id,
                        error=str(failure))

    async def _finish(self, row: Any, error: str | None) -> None:
        now = self.clock.now()
        attempt = row.attempts + 1
        retry_at = self.policy.next_attempt_at(attempt, now) if error else None
        status = store.SENT if error is None else (store.PENDING if retry_at else store.FAILED)
        if status == store.FAILED:
            error = f"{error} (gave up after {attempt} attempt{'s' if attempt > 1 else ''})"
        async with self.engine.begin() as conn:
            if not await store.finish_attempt(conn, row.notification_id, attempts_before=row.attempts,
                                              status=status, at=now, error=error,
                                              next_attempt_at=retry_at):
                return  # another sender finished it
            await store.record_attempt(conn, row.notification_id, attempt, now,
                                       store.RETRY if status == store.PENDING else status, error)
            if retry_at is not None:
                log.info("notification will be retried", notification_id=row.notification_id,
                         channel=row.channel, attempt=attempt, at=retry_at.isoformat(), error=error)
                return
            planned = PlannedNotification(
                notification_id=row.notification_id, rule=row.rule,
                source_event_id=row.source_event_id, source_event_type=row.source_event_type,
                order_id=row.order_id, recipient=row.recipient, channel=row.channel,
                target=row.target or "", subject=row.subject, body=row.body)
            await log_outcome(conn, notification_fact(planned, error), row.notification_id,
                              key=row.order_id or row.recipient,
                              correlation_id=row.correlation_id or row.source_event_id,
                              causation_id=row.source_event_id, clock=self.clock)
