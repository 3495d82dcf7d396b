"""Export of stored events with their hashes, for auditors who re-verify outside the system.

Each exported event carries every field its hash covers (see ``shared/audit/verify_export.py``
for the algorithm, standalone): re-hashing needs nothing but the export and the standard library.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.contract.envelope import canonical_time

EXPORT_FIELDS: tuple[str, ...] = (
    "service", "position", "tx_id", "recorded_at",
    "event_id", "event_type", "schema_version", "stream_id", "stream_version", "occurred_at",
    "correlation_id", "causation_id", "actor", "payload", "key", "prev_hash", "hash",
)
JSON_FIELDS = ("actor", "payload")

_SELECT = text(
    "SELECT position, tx_id::text AS tx_id_text, recorded_at, event_id, event_type, schema_version,"
    " stream_id, stream_version, occurred_at, correlation_id, causation_id, actor, payload,"
    " message_key, prev_hash, hash FROM events"
    " WHERE (CAST(:since AS timestamptz) IS NULL OR occurred_at >= :since)"
    " AND (CAST(:until AS timestamptz) IS NULL OR occurred_at < :until)"
    " AND (tx_id, position) > (CAST(:tx AS xid8), :pos)"
    " ORDER BY tx_id, position LIMIT :limit"
)


def exported(service: str, row: Any) -> dict[str, Any]:
    return {
        "service": service, "position": int(row.position), "tx_id": row.tx_id_text,
        "recorded_at": row.recorded_at.isoformat(),
        "event_id": str(row.event_id), "event_type": row.event_type,
        "schema_version": row.schema_version, "stream_id": row.stream_id,
        "stream_version": row.stream_version, "occurred_at": canonical_time(row.occurred_at),
        "correlation_id": row.correlation_id, "causation_id": row.causation_id,
        "actor": row.actor, "payload": row.payload, "key": row.message_key,
        "prev_hash": row.prev_hash, "hash": row.hash,
    }


async def export_events(conn: AsyncConnection, service: str, since: datetime | None,
                        until: datetime | None, page_size: int = 2000
                        ) -> AsyncIterator[dict[str, Any]]:
    """Events with occurred_at in [since, until), in global order, paged; stored payloads as written
    (never upcast: the hash covers what was stored)."""
    after = ("0", 0)
    while True:
        rows = (await conn.execute(_SELECT, {"since": since, "until": until, "tx": after[0],
                                             "pos": after[1], "limit": page_size})).all()
        for row in rows:
            yield exported(service, row)
        if len(rows) < page_size:
            return
        after = (rows[-1].tx_id_text, int(rows[-1].position))


def jsonl_line(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"


def csv_header() -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(EXPORT_FIELDS)
    return buffer.getvalue()


def csv_line(event: dict[str, Any]) -> str:
    """One CSV row; actor and payload as compact JSON text, an absent value as an empty cell."""
    cells: list[Any] = []
    for name in EXPORT_FIELDS:
        value = event[name]
        if name in JSON_FIELDS:
            value = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        cells.append("" if value is None else value)
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()


def render(events: Iterable[dict[str, Any]], fmt: str) -> Iterable[str]:
    if fmt == "csv":
        yield csv_header()
        yield from (csv_line(e) for e in events)
    else:
        yield from (jsonl_line(e) for e in events)
