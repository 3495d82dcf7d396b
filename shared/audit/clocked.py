"""A replay handles every event at the instant it happened: the manual clock is set to the
event's ``occurred_at`` (or another ``instant`` of the message, as tests choose) before its
handling, one message at a time or inside a batch's work."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import ManualClock
from shared.inbox import BatchStart, BatchWork, Handler, Incoming

Instant = Callable[[Incoming], datetime]


def occurred_at(message: Incoming) -> datetime:
    return message.event.occurred_at


def clocked_handler(clock: ManualClock, handle: Handler, instant: Instant = occurred_at) -> Handler:
    async def at_its_time(conn: AsyncConnection, incoming: Incoming) -> None:
        clock.set(instant(incoming))
        await handle(conn, incoming)

    return at_its_time


class _ClockedWork:
    def __init__(self, clock: ManualClock, work: BatchWork, instant: Instant) -> None:
        self.clock, self.work, self.instant = clock, work, instant

    async def handle(self, message: Incoming) -> None:
        self.clock.set(self.instant(message))
        await self.work.handle(message)

    async def finish(self) -> None:
        await self.work.finish()

    def committed(self) -> None:  # the inner work's, when it has one (see BatchWork)
        inner = getattr(self.work, "committed", None)
        if inner is not None:
            inner()


def clocked_batch(clock: ManualClock, start: BatchStart | None, instant: Instant = occurred_at
                  ) -> BatchStart | None:
    if start is None:
        return None
    batch_start = start

    async def start_at_its_time(conn: AsyncConnection, messages: Sequence[Incoming]) -> BatchWork:
        if messages:  # what the work loads in bulk is stamped with the batch's first instant
            clock.set(instant(messages[0]))
        return _ClockedWork(clock, await batch_start(conn, messages), instant)

    return start_at_its_time
