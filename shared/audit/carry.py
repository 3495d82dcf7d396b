"""What a service's ``REPLAY_BEFORE_SWAP`` hook reads and writes to carry state over from the live
database into its replay (notify's delivery state, reconcile's imported bank statements)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.audit.sources import has_table
from shared.db import create_engine


@asynccontextmanager
async def carrying_over(live_url: str, replay_url: str, table: str
                        ) -> AsyncIterator[tuple[AsyncConnection, AsyncConnection] | None]:
    """(live, replay): a read of the live database as of one instant (repeatable read) and a
    transaction on the replay database; None when the live database has no ``table`` (the
    service never ran there: nothing to carry over)."""
    live, replay = create_engine(live_url, pool_size=1), create_engine(replay_url, pool_size=1)
    try:
        async with live.connect() as source, replay.begin() as target:
            await source.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            yield (source, target) if await has_table(source, table) else None
    finally:
        await live.dispose()
        await replay.dispose()
