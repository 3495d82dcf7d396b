"""A replay handles every event at the instant it happened: the manual clock is set to the
event's ``occurred_at`` before its handling, one message at a time or inside a batch's work."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from shared.clock import ManualClock
from shared.inbox import BatchStart, BatchWork, Handler, Incoming


def clocked_handler(clock: ManualClock, handle: Handler) -> Handler:
    async def at_its_time(conn: AsyncConnection, incoming: Incoming) -> None:
        clock.set(incoming.event.occurred_at)
        await handle(conn, incoming)

    return at_its_time


class _ClockedWork:
    def __init__(self, clock: ManualClock, work: BatchWork) -> None:
        self.clock, self.work = clock, work

    async def handle(self, message: Incoming) -> None:
        self.clock.set(message.event.occurred_at)
        await self.work.handle(message)

    async def finish(self) -> None:
        await self.work.finish()


def clocked_batch(clock: ManualClock, start: BatchStart | None) -> BatchStart | None:
    if start is None:
        return None
    batch_start = start

    async def start_at_its_time(conn: AsyncConnection, messages: Sequence[Incoming]) -> BatchWork:
        if messages:  # what the work loads in bulk is stamped with the batch's first instant
            clock.set(messages[0].event.occurred_at)
        return _ClockedWork(clock, await batch_start(conn, messages))

    return start_at_its_time
