"""Events for several streams, built as they are decided and inserted in one statement at the
end (a consumer's batch work), hash-chained exactly as ``shared.eventstore.append`` does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from shared.contract.payloads import Payload
from shared.eventrows import HEADS, INSERT_ROWS_UNLESS_TAKEN, as_document
from shared.eventstore import Appended, ConcurrencyError, Head, Meta, build_rows
from shared.rowdocs import Write, execute_together


class PendingEvents:
    """Events appended after a head the caller knows (``(0, None)`` for a new stream), kept
    until ``flush`` writes them all in one statement. A version taken meanwhile (another writer)
    makes ``flush`` raise ConcurrencyError: the caller's transaction or savepoint is then rolled
    back, as after any append. Until then nothing in the database shows these events: only a
    caller that keeps the streams' state in memory may use this (a batch's work)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(self, stream_id: str, payloads: Sequence[Payload], *, meta: Meta, key: str,
            now: datetime, head: Head = (0, None)) -> Appended:
        version, prev_hash = head
        envelopes, rows = build_rows(stream_id, version, prev_hash, payloads, meta, key, now)
        self.rows.extend(rows)
        return Appended(envelopes, head=(envelopes[-1].stream_version, rows[-1]["hash"]))

    async def flush(self, conn: AsyncConnection, *others: Write | None) -> None:
        """Insert the events, in the same statement as ``others`` (the batch's other writes,
        independent of the events: one round trip for all)."""
        await self.prepared(*others).send(conn)

    def prepared(self, *others: Write | None) -> PreparedEvents:
        """What ``flush`` sends, built without the connection (a worker thread may build it);
        the events are handed over: this batch is empty again."""
        rows, self.rows = self.rows, []
        mine = Write(INSERT_ROWS_UNLESS_TAKEN.text, as_document(rows)["rows"]) if rows else None
        return PreparedEvents([mine, *others], [(r["stream_id"], r["stream_version"]) for r in rows])


@dataclass(frozen=True)
class PreparedEvents:
    """Events and other writes as one statement's documents (``PendingEvents.prepared``)."""

    writes: list[Write | None]
    versions: list[tuple[str, int]]  # each event's (stream, version), in order

    async def send(self, conn: AsyncConnection) -> None:
        """One round trip; ConcurrencyError when another writer took one of the versions."""
        inserted = await execute_together(conn, self.writes)
        if self.versions and len(inserted) != len(self.versions):
            went_in = {(row[0], row[1]) for row in inserted}
            stream, version = next(v for v in self.versions if v not in went_in)
            raise ConcurrencyError(stream, version - 1, version)


async def stream_heads(conn: AsyncConnection, stream_ids: Sequence[str]) -> dict[str, Head]:
    """Each stream's last (version, hash) in one statement; a stream without events: (0, None)."""
    heads: dict[str, Head] = dict.fromkeys(stream_ids, (0, None))
    if stream_ids:
        for row in await conn.execute(HEADS, {"ids": list(stream_ids)}):
            heads[str(row.stream_id)] = (int(row.stream_version), str(row.hash))
    return heads
