"""Reading the event log in commit order (the relay, ``oms republish``, audits and replays):
events in (transaction id, position) order, never past one a transaction still running could
still precede."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.eventstore import _COLUMNS, Position, StoredEvent, _stored
from shared.pipeline import Query, run

# The oldest transaction of *this database* still running when the statement's snapshot was
# taken (its xmax when none is): events of transactions below it can all be seen, and no
# transaction still running can add one below it. ``pg_snapshot_xmin`` alone counts every
# database of the server: with the five services on one PostgreSQL (``oms run``, the benches)
# some other service's batch is nearly always running, and every relay waited for it (at 300
# orders/s, two of every five relay cycles found events held back for that reason alone).
# A running transaction is left out only when pg_stat_activity shows it in another database (a
# transaction id belongs to one backend, whose database never changes, so the classification
# holds even though pg_stat_activity is read a moment after the snapshot); one it does not show
# (a prepared transaction, a session hidden from this role) still holds events back.
SAFE_BELOW = (
    "(SELECT coalesce(min(x), pg_snapshot_xmax(pg_current_snapshot())) "
    "FROM pg_snapshot_xip(pg_current_snapshot()) AS x "
    "WHERE x::xid NOT IN (SELECT a.backend_xid FROM pg_stat_activity a "
    "WHERE a.backend_xid IS NOT NULL AND a.datname <> current_database()))"
)
# The rows after (:tx, :pos) that can be read, in commit order, at most :limit: what every
# reader in commit order selects from (the columns are the reader's own).
COMMITTED_AFTER = (
    "FROM events WHERE (tx_id, position) > (CAST(:tx AS xid8), :pos) "
    f"AND tx_id < {SAFE_BELOW} ORDER BY events.tx_id, events.position LIMIT :limit"
)


def committed_after_params(after: Position, limit: int) -> dict[str, object]:
    """The parameters of ``COMMITTED_AFTER``."""
    return {"tx": str(after.tx_id), "pos": after.position, "limit": limit}


async def read_committed_after(
    conn: AsyncConnection, after: Position, limit: int = 1000, *, trusted: bool = False
) -> list[StoredEvent]:
    """Events in global order after ``after`` that no in-flight transaction can precede
    (``trusted``: see ``_stored``).

    Ordering by transaction id and stopping below the oldest transaction of this database still
    running (``SAFE_BELOW``) means an event committed late by a long transaction is not skipped,
    as it would be by a bigserial position alone.
    """
    result = await conn.execute(text(f"SELECT {_COLUMNS} {COMMITTED_AFTER}"),
                                committed_after_params(after, limit))
    return [_stored(row, trusted=trusted) for row in result]


async def events_held_back(conn: AsyncConnection, after: Position) -> bool:
    """True when events after ``after`` are committed but wait behind an older transaction of
    this database still running."""
    return await run(conn, held_back_query(after))


def held_back_query(after: Position) -> Query[bool]:
    """``events_held_back`` as a query (to send with others: ``shared.pipeline``)."""
    return Query(_HELD_BACK, {"tx": str(after.tx_id), "pos": after.position},
                 lambda rows: bool(rows[0][0]))


_HELD_BACK = text(
    "SELECT EXISTS (SELECT 1 FROM events WHERE (tx_id, position) > (CAST(:tx AS xid8), :pos) "
    f"AND tx_id >= {SAFE_BELOW})"
)


async def read_all(conn: AsyncConnection, after: Position | None = None, limit: int = 1000
                   ) -> list[StoredEvent]:
    """Up to ``limit`` committed events in global order after ``after`` (audit and replays page
    through the log by passing the last position they saw)."""
    return await read_committed_after(conn, after or Position.start(), limit)
