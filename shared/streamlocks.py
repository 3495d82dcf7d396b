"""Stream locks: writers of one stream (an order) take turns until their transaction ends. The
consumers' batches, the order service's HTTP commands and its jobs take the same keys."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.pipeline import Query, run


async def lock_stream(conn: AsyncConnection, stream_id: str) -> None:
    """Writers of one stream take turns until the transaction ends (the order service's HTTP
    commands take the same key for their order)."""
    await lock_streams(conn, [stream_id])


# The keys in ascending order (the subquery's ORDER BY, kept by the scan over it), so writers
# that lock overlapping sets wait for each other instead of deadlocking.
_LOCK_STREAMS = text(
    "SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(s, 0) AS k"
    " FROM unnest(CAST(:ids AS text[])) AS s ORDER BY k) AS keys")


def lock_streams_query(stream_ids: Sequence[str]) -> Query[None]:
    """``lock_streams`` as a query (to send with others: ``shared.pipeline``)."""
    return Query(_LOCK_STREAMS, {"ids": list(stream_ids)})


async def lock_streams(conn: AsyncConnection, stream_ids: Sequence[str]) -> None:
    """``lock_stream`` for several streams, in one statement."""
    if stream_ids:
        await run(conn, lock_streams_query(stream_ids))
