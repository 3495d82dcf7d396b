"""What the batch-equivalence tests share: fresh databases made on demand, the comparison that
names the differing columns, and the consumer's batch counters."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.audit.clocked import clocked_batch, clocked_handler
from shared.clock import ManualClock
from shared.inbox import BatchStart, Handler, IdempotentConsumer, Incoming
from shared.metrics import METRICS
from shared.service import SchemaFn, prepare_database
from tests.conftest import create_database
from tests.integration.audit.test_replay import drop

MakeDatabase = Callable[[], Awaitable[AsyncEngine]]


async def feed(engine: AsyncEngine, consumer: str, clock: ManualClock, handle: Handler,
               start: BatchStart, at: Mapping[uuid.UUID, datetime], messages: Sequence[Incoming],
               size: int | None) -> None:
    """Each message handled at its own instant (``at``, by event id); ``size``: batches of that
    many through the batch work ``start``, else one at a time through ``handle``."""

    def instant(message: Incoming) -> datetime:
        return at[message.event.event_id]

    inbox = IdempotentConsumer(name=consumer, engine=engine, publisher=None,
                               handle=clocked_handler(clock, handle, instant),
                               start_batch=clocked_batch(clock, start, instant) if size else None)
    step = size or 1
    for first in range(0, len(messages), step):
        await inbox.process_incoming(list(messages[first:first + step]))


@contextlib.asynccontextmanager
async def fresh_databases(postgres_url: str, schema: SchemaFn,
                          setup: Callable[[AsyncEngine], Awaitable[None]] | None = None
                          ) -> AsyncIterator[MakeDatabase]:
    """``make()`` gives a new database with ``schema`` (and ``setup`` done); all are dropped."""
    names: list[str] = []
    engines: list[AsyncEngine] = []

    async def make() -> AsyncEngine:
        names.append(f"t_{uuid.uuid4().hex[:12]}")
        engines.append(await prepare_database(await create_database(postgres_url, names[-1]),
                                              schema))
        if setup is not None:
            await setup(engines[-1])
        return engines[-1]

    try:
        yield make
    finally:
        for engine in engines:
            await engine.dispose()
        await drop(postgres_url, *names)


def assert_same(together: dict[str, list[Any]], alone: dict[str, list[Any]]) -> None:
    for part, rows in alone.items():
        assert len(together[part]) == len(rows), part
        for mine, theirs in zip(together[part], rows, strict=True):
            if isinstance(mine, dict):  # name the differing columns
                assert {k: v for k, v in mine.items() if theirs.get(k) != v} == {}, (part, theirs)
            # Decimals compare by value; their scale is part of the stored money too
            assert repr(mine) == repr(theirs), part


def fallbacks(consumer: str) -> float:
    return METRICS.value("oms_consumer_batch_fallbacks_total", consumer=consumer)


def batches(consumer: str) -> float:
    return METRICS.value("oms_consumer_batch_work_total", consumer=consumer)
