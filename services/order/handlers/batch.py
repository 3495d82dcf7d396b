"""The order consumer's batch work: every order a batch names is loaded in one query (with its
readiness, and the likely-duplicate candidates of its submissions in one more), each message is
handled as alone but against those (kept current by each commit), and the orders' events,
projection, readiness and fingerprint rows are written once, at the end, in one statement (the
fingerprints of cancelled orders deleted in one more).

The effect equals handling each message alone (tests/integration/order/test_batch.py); any
failure undoes the batch and the inbox handles its messages one by one without the cache.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.order import duplicate_store, snapshots, store
from services.order.domain import duplicates
from services.order.handlers import OrderDeps, handle, named_order, storefront_fields
from shared.contract.topics import STOREFRONT_ORDERS
from shared.inbox import BatchStart, BatchWork, Incoming
from shared.pipeline import Query, pipelined
from shared.streamlocks import lock_streams_query


class _Work:
    def __init__(self, deps: OrderDeps, conn: AsyncConnection, cache: store.BatchCache) -> None:
        self.deps, self.conn, self.cache = deps, conn, cache

    async def handle(self, message: Incoming) -> None:
        token = store.BATCH.set(self.cache)
        marks = duplicate_store.BATCH.set(self.cache.fingerprints)
        try:
            await handle(self.deps, self.conn, message)
        finally:
            duplicate_store.BATCH.reset(marks)
            store.BATCH.reset(token)

    async def finish(self) -> None:
        fingerprints = await duplicate_store.save_batch(self.conn, self.cache.fingerprints)
        await self.cache.events.flush(  # with the events, in one statement: one round trip
            self.conn, store.projections_write(list(self.cache.projections.values())),
            store.readiness_write(list(self.cache.readiness_rows.values())), fingerprints)

    def committed(self) -> None:
        """The batch's orders as it left them are committed: kept for the next batches (a kept
        state is checked against the log's hash before it is used again)."""
        for state in self.cache.states.values():
            snapshots.STATES.put(state)


def make_batch_start(deps: OrderDeps) -> BatchStart:
    async def start(conn: AsyncConnection, messages: Sequence[Incoming]) -> BatchWork:
        orders: set[str] = set()
        marks: list[tuple[str, datetime]] = []  # what the submissions will likely look up
        for message in messages:
            fields = storefront_fields(message) if message.topic == STOREFRONT_ORDERS else None
            if (order := named_order(message, fields)) is not None:
                orders.add(order)
            if fields is not None and (mark := duplicates.likely_mark(fields)) is not None:
                marks.append(mark)
        named = sorted(orders)
        # As an HTTP command does: a person's command on one of these orders waits for this batch
        # (and this batch for it), so neither decides on a state the other is changing; and
        # another instance's batch looking for the same likely duplicates waits too (see
        # duplicate_store). The locks (in one order, so two batches never wait for each other)
        # and the reads go in one round trip, the reads run after the locks are granted.
        keys = named + sorted({duplicate_store.lock_key(mark) for mark, _ in marks})
        queries: list[Query[Any]] = [lock_streams_query(keys)] if keys else []
        if named:
            queries += [snapshots.load_query(named), store.reserved_query(named)]
        if marks:
            queries.append(duplicate_store.batch_query(marks, deps.duplicate_window))
        results = await pipelined(conn, queries)
        read: snapshots.Read | None = results[1] if named else None
        cache = store.BatchCache(
            states=await snapshots.loaded(conn, read) if read is not None else {},
            reserved=results[2] if named else {},
            fingerprints=results[-1] if marks else duplicate_store.BatchFingerprints())
        return _Work(deps, conn, cache)

    return start
