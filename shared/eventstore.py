"""The append-only, hash-chained event store every service writes its facts (and outbox) to."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    bindparam,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.canonical import canonical_json
from shared.clock import Clock
from shared.contract.envelope import Actor, EventEnvelope, canonical_time
from shared.contract.payloads import Payload
from shared.db import run_script
from shared.eventrows import INSERT_ROWS_UNLESS_TAKEN, as_document
from shared.pipeline import Query, run
from shared.upcasting import upcast

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("position", BigInteger, nullable=False, server_default=text("nextval('events_position_seq')")),
    Column("tx_id", Text, nullable=False),  # xid8, read as text; written by the column default
    Column("event_id", Uuid, primary_key=True),
    Column("stream_id", Text, nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("correlation_id", Text, nullable=False),
    Column("causation_id", Text),
    Column("actor", JSONB, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("message_key", Text, nullable=False),
    Column("prev_hash", Text),
    Column("hash", Text, nullable=False),
)

SCHEMA_SQL = """
CREATE SEQUENCE IF NOT EXISTS events_position_seq;
CREATE TABLE IF NOT EXISTS events (
    position        bigint      NOT NULL DEFAULT nextval('events_position_seq'),
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid        PRIMARY KEY,
    stream_id       text        NOT NULL,
    stream_version  integer     NOT NULL CHECK (stream_version >= 1),
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    correlation_id  text        NOT NULL,
    causation_id    text,
    actor           jsonb       NOT NULL,
    payload         jsonb       NOT NULL,
    message_key     text        NOT NULL,
    prev_hash       text,
    hash            text        NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);
CREATE INDEX IF NOT EXISTS events_global_order ON events (tx_id, position);
CREATE INDEX IF NOT EXISTS events_event_type ON events (event_type);

CREATE OR REPLACE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the event store is append-only: % on events is refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE OR REPLACE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();
CREATE OR REPLACE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change();

CREATE OR REPLACE FUNCTION events_wake_relay() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('oms_events', '');
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_wake_relay();
"""

NOTIFY_CHANNEL = "oms_events"


class ConcurrencyError(Exception):
    """The stream moved on since it was read (optimistic concurrency); reload and retry."""

    def __init__(self, stream_id: str, expected: int | None, actual: int) -> None:
        super().__init__(f"stream {stream_id!r}: expected version {expected}, found {actual}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True, slots=True)
class Meta:
    """Why and by whom events are appended (copied into every envelope)."""

    correlation_id: str
    actor: Actor
    causation_id: str | None = None


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A point in the global order: (transaction id, position within the table), compared as such."""

    tx_id: int
    position: int

    @classmethod
    def start(cls) -> Position:
        return cls(0, 0)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    envelope: EventEnvelope
    position: Position
    key: str
    prev_hash: str | None
    hash: str


def canonical_document(envelope: EventEnvelope, key: str, prev_hash: str | None) -> bytes:
    """The bytes an event's hash covers: every envelope field, its Kafka key and the previous hash."""
    return _hashed(prev_hash, str(envelope.event_id), envelope.event_type,
                   envelope.schema_version, envelope.stream_id, envelope.stream_version,
                   canonical_time(envelope.occurred_at), envelope.correlation_id,
                   envelope.causation_id, envelope.actor.model_dump(mode="json"),
                   envelope.payload, key)


def _hashed(prev_hash: str | None, event_id: str, event_type: str, schema_version: int,
            stream_id: str, stream_version: int, occurred_at: str, correlation_id: str,
            causation_id: str | None, actor: dict[str, Any], payload: dict[str, Any],
            key: str) -> bytes:
    return canonical_json({
        "prev_hash": prev_hash or "", "event_id": event_id, "event_type": event_type,
        "schema_version": schema_version, "stream_id": stream_id,
        "stream_version": stream_version, "occurred_at": occurred_at,
        "correlation_id": correlation_id, "causation_id": causation_id, "actor": actor,
        "payload": payload, "key": key})


def chain_hash(envelope: EventEnvelope, key: str, prev_hash: str | None) -> str:
    return hashlib.sha256(canonical_document(envelope, key, prev_hash)).hexdigest()


def build_rows(stream_id: str, version: int, prev_hash: str | None, payloads: Sequence[Payload],
               meta: Meta, message_key: str, now: datetime
               ) -> tuple[list[EventEnvelope], list[dict[str, Any]]]:
    """Envelopes and ``events`` rows for ``payloads`` after (version, prev_hash), hash-chained.

    The hot path of every append: the envelope is built without re-validating what is known to
    be valid, and the hashed document (``canonical_document``'s) from the parts at hand, the
    actor and the time spelt once per call."""
    if now.tzinfo is None:
        raise ValueError("occurred_at must carry a UTC offset")
    envelopes: list[EventEnvelope] = []
    rows: list[dict[str, Any]] = []
    actor = meta.actor.model_dump(mode="json")
    at = canonical_time(now)
    for offset, payload in enumerate(payloads, start=1):
        event_id, wire = uuid.uuid4(), payload.wire()
        envelope = EventEnvelope.model_construct(
            event_id=event_id, event_type=payload.event_type,
            schema_version=payload.schema_version, stream_id=stream_id,
            stream_version=version + offset, occurred_at=now,
            correlation_id=meta.correlation_id, causation_id=meta.causation_id,
            actor=meta.actor, payload=wire)
        digest = hashlib.sha256(_hashed(
            prev_hash, str(event_id), payload.event_type, payload.schema_version, stream_id,
            version + offset, at, meta.correlation_id, meta.causation_id, actor, wire,
            message_key)).hexdigest()
        rows.append({
            "event_id": event_id, "stream_id": stream_id, "stream_version": version + offset,
            "event_type": payload.event_type, "schema_version": payload.schema_version,
            "occurred_at": now, "correlation_id": meta.correlation_id,
            "causation_id": meta.causation_id, "actor": actor, "payload": wire,
            "message_key": message_key, "prev_hash": prev_hash, "hash": digest})
        envelopes.append(envelope)
        prev_hash = digest
    return envelopes, rows


async def ensure_schema(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('oms.events.schema'))"))
    await run_script(conn, SCHEMA_SQL)


async def stream_head(conn: AsyncConnection, stream_id: str) -> tuple[int, str | None]:
    """(current version, hash of the last event); (0, None) for a new stream."""
    row = (
        await conn.execute(
            select(events.c.stream_version, events.c.hash)
            .where(events.c.stream_id == stream_id)
            .order_by(events.c.stream_version.desc())
            .limit(1)
        )
    ).first()
    return (0, None) if row is None else (int(row[0]), str(row[1]))


Head = tuple[int, str | None]  # (version, hash) of a stream's last event


class Appended(list[EventEnvelope]):
    """The appended envelopes, and the stream's new head (to append again without reading it)."""

    def __init__(self, envelopes: Sequence[EventEnvelope] = (), head: Head | None = None) -> None:
        super().__init__(envelopes)
        self.head = head


async def append(
    conn: AsyncConnection,
    stream_id: str,
    expected_version: int | None,
    new_events: Sequence[Payload],
    *,
    meta: Meta,
    clock: Clock,
    key: str | None = None,
    head: Head | None = None,
) -> Appended:
    """Append events to a stream inside the caller's transaction.

    ``expected_version`` is the version the caller decided on (0 for a new stream); ``None``
    appends after whatever is there. A concurrent writer makes this raise ConcurrencyError,
    after which the caller rolls back its transaction or savepoint. ``head`` (version, hash) is
    the stream's last event as the caller read it in this transaction (``Appended.head`` of an
    earlier append, ``StoredEvent``s of a read): used only when its version is the expected one,
    it saves reading it again; a stale one collides on the next version like any other writer.
    """
    if not new_events:
        return Appended()
    if expected_version == 0:  # a new stream: if it exists after all, version 1 conflicts below
        version, prev_hash = 0, None
    elif head is not None and expected_version == head[0]:
        version, prev_hash = head
    else:
        version, prev_hash = await stream_head(conn, stream_id)
    if expected_version is not None and version != expected_version:
        raise ConcurrencyError(stream_id, expected_version, version)
    envelopes, rows = build_rows(stream_id, version, prev_hash, new_events, meta,
                                 key or stream_id, clock.now())
    prev_hash = rows[-1]["hash"]
    # No savepoint of its own (two round trips per append): a version another writer took is
    # skipped by ON CONFLICT and shows as a missing RETURNING row. The caller's transaction or
    # savepoint must then be rolled back (every caller does: the inbox, commands, the jobs), so
    # rows of this append that did go in never commit.
    if len(rows) == 1:
        inserted = (await conn.execute(_INSERT, rows[0])).all()
    else:  # one statement, one round trip, whatever the number of events
        inserted = (await conn.execute(INSERT_ROWS_UNLESS_TAKEN, as_document(rows))).all()
    if len(inserted) != len(rows):
        actual, _ = await stream_head(conn, stream_id)
        raise ConcurrencyError(stream_id, expected_version, actual)
    return Appended(envelopes, head=(envelopes[-1].stream_version, prev_hash))


_INSERT = insert(events).values(
    event_id=bindparam("event_id"),
    stream_id=bindparam("stream_id"),
    stream_version=bindparam("stream_version"),
    event_type=bindparam("event_type"),
    schema_version=bindparam("schema_version"),
    occurred_at=bindparam("occurred_at"),
    correlation_id=bindparam("correlation_id"),
    causation_id=bindparam("causation_id"),
    actor=bindparam("actor", type_=JSONB),
    payload=bindparam("payload", type_=JSONB),
    message_key=bindparam("message_key"),
    prev_hash=bindparam("prev_hash"),
    hash=bindparam("hash"),
).on_conflict_do_nothing(
    constraint="events_stream_version_key").returning(events.c.stream_version)

# The text spelling of tx_id gets its own name: an output column called ``tx_id`` would make
# ``ORDER BY tx_id`` sort the text ('1001' < '983'), not the transaction ids.
_COLUMNS = (
    "position, tx_id::text AS tx_id_text, event_id, stream_id, stream_version, event_type, "
    "schema_version, occurred_at, correlation_id, causation_id, actor, payload, message_key, "
    "prev_hash, hash"
)


def _stored(row: Any, *, upcasted: bool = False, trusted: bool = False) -> StoredEvent:
    """A row as an event. ``upcasted``: old payload versions upgraded through the named upcasters
    (for deciding); without it, exactly as stored (what the hash covers: verifying, publishing).
    ``trusted``: the envelope built without validating again what was validated when written
    (the relay, loading states); verifying and exporting validate every row."""
    version, payload = (upcast(row.event_type, row.schema_version, row.payload) if upcasted
                        else (row.schema_version, row.payload))
    fields = {"event_id": row.event_id, "event_type": row.event_type, "schema_version": version,
              "stream_id": row.stream_id, "stream_version": row.stream_version,
              "occurred_at": row.occurred_at, "correlation_id": row.correlation_id,
              "causation_id": row.causation_id, "payload": payload}
    envelope = (EventEnvelope.model_construct(actor=Actor.model_construct(**row.actor), **fields)
                if trusted else EventEnvelope(actor=Actor.model_validate(row.actor), **fields))
    return StoredEvent(
        envelope=envelope,
        position=Position(int(row.tx_id_text), int(row.position)),
        key=row.message_key,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


async def read_stream(conn: AsyncConnection, stream_id: str, *, upcasted: bool = True
                      ) -> list[StoredEvent]:
    """One stream in version order; payloads upcast to their current version unless told not to."""
    result = await conn.execute(
        text(f"SELECT {_COLUMNS} FROM events WHERE stream_id = :s ORDER BY stream_version"),
        {"s": stream_id},
    )
    return [_stored(row, upcasted=upcasted) for row in result]


Streams = tuple[dict[str, str], dict[str, list[StoredEvent]]]  # (heads, events) by stream


async def read_streams(conn: AsyncConnection, stream_ids: Sequence[str],
                       known: Mapping[str, int] | None = None) -> Streams:
    """Several streams in one query (upcast payloads); a stream without events is absent.

    ``known``: per stream, a version the caller has already folded up to. Of that version only
    the hash is read (returned first, per stream: what the caller compares with its own), and
    the events after it in full; the other streams are read whole."""
    return await run(conn, read_streams_query(stream_ids, known))


def read_streams_query(stream_ids: Sequence[str], known: Mapping[str, int] | None = None
                       ) -> Query[Streams]:
    """``read_streams`` as a query (to send with others: ``shared.pipeline``)."""
    known = known or {}
    return Query(_READ_STREAMS,
                 {"ids": list(stream_ids), "firsts": [known.get(s, 1) for s in stream_ids],
                  "known": [s in known for s in stream_ids]}, _streams)


def _streams(rows: Sequence[Any]) -> Streams:
    heads: dict[str, str] = {}
    found: dict[str, list[StoredEvent]] = {}
    for row in rows:
        if row.head_only:
            heads[row.stream_id] = row.hash
        else:
            found.setdefault(row.stream_id, []).append(_stored(row, upcasted=True, trusted=True))
    return heads, found


# The known version's row comes without its payload and actor (not decoded, no envelope built).
_READ_STREAMS = text(
    "SELECT position, tx_id::text AS tx_id_text, event_id, stream_id, stream_version, event_type, "
    "schema_version, occurred_at, correlation_id, causation_id, message_key, prev_hash, hash, "
    "h.head_only, CASE WHEN h.head_only THEN NULL ELSE actor END AS actor, "
    "CASE WHEN h.head_only THEN NULL ELSE payload END AS payload "
    "FROM events JOIN unnest(CAST(:ids AS text[]), CAST(:firsts AS bigint[]), "
    "CAST(:known AS boolean[])) AS wanted(id, first, known) ON events.stream_id = wanted.id "
    "AND events.stream_version >= wanted.first "
    "CROSS JOIN LATERAL (SELECT wanted.known AND events.stream_version = wanted.first "
    "AS head_only) AS h ORDER BY stream_id, stream_version")
