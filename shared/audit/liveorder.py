"""A replay that handles the consumed events in the order, and at the instants, live handled them.

A service whose decisions depend on the order it handles *different* orders' events in (inventory:
two orders wanting the last units of a warehouse; whoever comes first is served there) cannot be
replayed in event time: events of different orders sit in different partitions, and live handled
them in whatever order its consumer fetched them, which the producers' logs do not hold. The
service's own log does: every event it appended in answer to a consumed one carries that event's
id (``causation_id``), its instant and its place in commit order. So each answered event is fed
at its first answer's place (its ``(occurred_at, tx_id, position)`` in the live log) with the clock
at that instant; an event live answered with nothing keeps its own time, but never goes before an
earlier event of the same order (same key: one partition, handled in order).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.outbox import ENVELOPE_JSON

# The first answer (in commit order) to each consumed event, from the live service's own log.
_FIRST_ANSWERS = text(
    "SELECT DISTINCT ON (causation_id) causation_id,"
    " (extract(epoch FROM occurred_at) * 1000000)::bigint AS at_us, tx_id::text AS tx, position"
    " FROM events WHERE causation_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'"
    " ORDER BY causation_id, tx_id, position")

# A producer's consumed events in live's order: an answered event at its first answer's key; any
# event at least at the latest answer key of an earlier event with its message key (same order);
# ties (an unanswered event moved up to an answered one) by the event's own place.
STREAM_IN_LIVE_ORDER = text(
    "WITH live(id, at_us, tx, pos) AS (SELECT * FROM unnest(CAST(:live_ids AS uuid[]),"
    " CAST(:live_ats AS bigint[]), CAST(:live_txs AS numeric[]), CAST(:live_positions AS bigint[]))),"
    " s AS (SELECT e.*, (extract(epoch FROM e.occurred_at) * 1000000)::bigint AS own_at,"
    " CASE WHEN l.id IS NULL THEN NULL ELSE ARRAY[l.at_us::numeric, l.tx, l.pos::numeric] END"
    " AS answered FROM events e LEFT JOIN live l ON l.id = e.event_id"
    " WHERE e.event_type = ANY(:types) AND (NOT :commands_only OR e.causation_id IS NULL)),"
    " k AS (SELECT s.*, greatest(ARRAY[own_at::numeric, tx_id::text::numeric, position::numeric],"
    " max(answered) OVER (PARTITION BY message_key ORDER BY occurred_at, tx_id, position"
    " ROWS UNBOUNDED PRECEDING)) AS eff FROM s)"
    " SELECT eff[1]::bigint AS at_us, eff[2]::text AS tx, eff[3]::bigint AS position,"
    " own_at, tx_id::text AS own_tx, position AS own_position, message_key, event_type,"
    " event_id::text AS id, correlation_id,"
    f" {ENVELOPE_JSON} AS value FROM k ORDER BY eff, occurred_at, tx_id, position"
)


@dataclass
class LiveOrder:
    """Each consumed event live answered: its first answer's (instant in µs, tx id, position);
    ``instants``: the instant each fed event is handled at, where it is not its own time."""

    ids: list[str] = field(default_factory=list)
    ats: list[int] = field(default_factory=list)
    txs: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    instants: dict[str, datetime] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        return {"live_ids": self.ids, "live_ats": self.ats, "live_txs": self.txs,
                "live_positions": self.positions}

    def __len__(self) -> int:
        return len(self.ids)


async def read_live_order(conn: AsyncConnection) -> LiveOrder:
    """The live service's first answer to each consumed event."""
    order = LiveOrder()
    for row in await conn.execute(_FIRST_ANSWERS):
        order.ids.append(str(row.causation_id))
        order.ats.append(int(row.at_us))
        order.txs.append(int(row.tx))
        order.positions.append(int(row.position))
    return order
