"""Many event rows in one INSERT: the rows travel as one JSON document (one parameter, one round
trip, C-speed encoding) and PostgreSQL unpacks them in order. Used by the event store for a
multi-event append, by a batch's pending events and by the group-commit appender for a whole
group; and the heads of many streams in one SELECT. The group-commit appender talks to psycopg
directly: its spellings (``*_PSYCOPG``) are derived from the same text."""

from __future__ import annotations

from typing import Any

from sqlalchemy import TextClause, text

from shared.canonical import fast_json

_COLUMNS = ("event_id, stream_id, stream_version, event_type, schema_version, occurred_at, "
            "correlation_id, causation_id, actor, payload, message_key, prev_hash, hash")
_SELECT_ROWS = (
    f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} "
    "FROM ROWS FROM (jsonb_to_recordset(CAST(:rows AS jsonb)) AS (event_id uuid, stream_id text, "
    "stream_version integer, event_type text, schema_version integer, occurred_at timestamptz, "
    "correlation_id text, causation_id text, actor jsonb, payload jsonb, message_key text, "
    "prev_hash text, hash text)) WITH ORDINALITY AS r ORDER BY r.ordinality"
)

# A taken (stream, version) raises a unique violation (the group-commit appender redoes its group).
INSERT_ROWS_PSYCOPG: str = _SELECT_ROWS.replace(":rows", "%(rows)s")
# A taken (stream, version) is skipped: fewer rows come back (the event store's ConcurrencyError).
INSERT_ROWS_UNLESS_TAKEN: TextClause = text(
    _SELECT_ROWS + " ON CONFLICT ON CONSTRAINT events_stream_version_key DO NOTHING"
    " RETURNING stream_id, stream_version")


_HEADS = ("SELECT DISTINCT ON (stream_id) stream_id, stream_version, hash FROM events "
          "WHERE stream_id = ANY(:ids) ORDER BY stream_id, stream_version DESC")
# Each stream's last (stream_id, version, hash); streams without events are absent.
HEADS: TextClause = text(_HEADS)
HEADS_PSYCOPG: str = _HEADS.replace(":ids", "%(ids)s")


def as_document(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The parameters of the row INSERTs: every row in one JSON array."""
    return {"rows": fast_json(rows)}  # UUIDs and aware datetimes in ISO 8601, as PostgreSQL reads
