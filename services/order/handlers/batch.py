"""The order consumer's batch work: every order a batch names is loaded in one query, each
message is handled as alone but against those states (kept current by each commit), and the
orders' events, projection and readiness rows are written once, at the end (one INSERT, two
executemany).

The effect equals handling each message alone (tests/integration/order/test_batch.py); any
failure undoes the batch and the inbox handles its messages one by one without the cache.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncConnection

from services.order import snapshots, store
from services.order.handlers import OrderDeps, handle, named_order
from shared.inbox import BatchStart, BatchWork, Incoming, lock_streams


class _Work:
    def __init__(self, deps: OrderDeps, conn: AsyncConnection, cache: store.BatchCache) -> None:
        self.deps, self.conn, self.cache = deps, conn, cache

    async def handle(self, message: Incoming) -> None:
        token = store.BATCH.set(self.cache)
        try:
            await handle(self.deps, self.conn, message)
        finally:
            store.BATCH.reset(token)

    async def finish(self) -> None:
        await self.cache.events.flush(self.conn)
        await store.save_projections(self.conn, list(self.cache.projections.values()))
        await store.save_readiness(self.conn, list(self.cache.readiness_rows.values()))

    def committed(self) -> None:
        """The batch's orders as it left them are committed: kept for the next batches (a kept
        state is checked against the log's hash before it is used again)."""
        for state in self.cache.states.values():
            snapshots.STATES.put(state)


def make_batch_start(deps: OrderDeps) -> BatchStart:
    async def start(conn: AsyncConnection, messages: Sequence[Incoming]) -> BatchWork:
        named = sorted({order for m in messages if (order := named_order(m)) is not None})
        # As an HTTP command does: a person's command on one of these orders waits for this batch
        # (and this batch for it), so neither decides on a state the other is changing.
        await lock_streams(conn, named)
        cache = store.BatchCache(states=await store.load_orders(conn, named) if named else {})
        return _Work(deps, conn, cache)

    return start
