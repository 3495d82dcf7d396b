"""Two instances of the order service handle the two storefronts' submissions of one purchase at
the same moment (their keys put them on different partitions): one of the two orders is still
flagged as a likely duplicate of the other, because looking a fingerprint up waits for the other
transaction that looks it up (``duplicate_store``). Without that lock each instance read before
the other had committed, and neither order was flagged (`oms demo --scale order=2`, session 17)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.order.handlers import handle
from services.order.handlers.batch import make_batch_start
from shared.db import create_engine
from shared.inbox import BatchWork, IdempotentConsumer, Incoming
from tests.integration.order.flows import order_message, order_of, order_service
from tests.integration.order.test_batch import storefront, twin

pytestmark = pytest.mark.integration

HOLD = 1.5  # seconds the first instance keeps its transaction open after its look-up


class Instance:
    """An order-service instance (its own engine and consumer) whose look-up can be held open
    (``after``) or wait for another's (``before``), so the two transactions overlap."""

    def __init__(self, flow: Any, url: str, batched: bool) -> None:
        self.engine = create_engine(url)
        self.looked = asyncio.Event()
        self.before: Callable[[], Awaitable[None]] | None = None
        self.after: Callable[[], Awaitable[None]] | None = None
        inner_start = make_batch_start(flow.deps)
        inner_handle = partial(handle, flow.deps)

        async def start(conn: AsyncConnection, messages: Any) -> BatchWork:
            await self._before()
            work = await inner_start(conn, messages)  # the candidates are read here
            await self._after()
            return work

        async def handle_one(conn: AsyncConnection, message: Incoming) -> None:
            await self._before()
            await inner_handle(conn, message)  # read, then the fingerprint written
            await self._after()

        self.consumer = IdempotentConsumer(
            name="order", engine=self.engine, publisher=None, handle=handle_one,
            start_batch=start if batched else None)

    async def _before(self) -> None:
        if self.before is not None:
            await self.before()

    async def _after(self) -> None:
        self.looked.set()
        if self.after is not None:
            await self.after()


@pytest.mark.parametrize("batched", [True, False], ids=["batch work", "one message at a time"])
async def test_twins_handled_at_once_by_two_instances_are_still_flagged(
        database_url: str, kafka_bootstrap: str, batched: bool) -> None:
    purchase = order_message(60, channel="tmall")
    again = twin(purchase, "jd")
    async with order_service(database_url, kafka_bootstrap) as flow:
        first, second = Instance(flow, database_url, batched), Instance(flow, database_url, batched)

        async def hold_open() -> None:  # until the second has looked too, or HOLD has passed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(second.looked.wait(), HOLD)

        first.after = hold_open
        second.before = first.looked.wait
        # the batch work runs for two messages or more: each instance gets another order too
        mine = [storefront(purchase)] + ([storefront(order_message(61))] if batched else [])
        theirs = [storefront(again)] + ([storefront(order_message(62))] if batched else [])
        try:
            await asyncio.gather(first.consumer.process_incoming(mine),
                                 second.consumer.process_incoming(theirs))
        finally:
            await first.engine.dispose()
            await second.engine.dispose()
        async with flow.ctx.engine.connect() as conn:
            rows = (await conn.execute(text(
                "SELECT stream_id, payload->'flags' AS flags FROM events "
                "WHERE event_type = 'order.placed' AND stream_id = ANY(:ids)"),
                {"ids": [order_of(purchase), order_of(again)]})).all()
    flags = {row.stream_id: row.flags or [] for row in rows}
    assert len(flags) == 2, flags
    # the later one (the second instance, which waited for the first's commit) names the first
    assert flags[order_of(purchase)] == [], flags
    assert flags[order_of(again)] == [f"possible_duplicate_of:{order_of(purchase)}"], flags
