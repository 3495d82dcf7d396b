"""Verifying the hash chain (``oms audit verify``): every stream's events follow each other with
no gap, each ``prev_hash`` is the previous event's hash, and each hash matches its content."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.contract.envelope import Actor, EventEnvelope
from shared.eventstore import _COLUMNS, Position, StoredEvent, _stored, chain_hash, read_stream


def chain_break(event: StoredEvent, previous: StoredEvent | None) -> str | None:
    """Why ``event`` does not follow ``previous`` (the event before it in its stream), or None."""
    env = event.envelope
    expected_version = 1 if previous is None else previous.envelope.stream_version + 1
    if env.stream_version != expected_version:
        return f"stream version {env.stream_version} follows {expected_version - 1}: an event is missing"
    expected_prev = None if previous is None else previous.hash
    if event.prev_hash != expected_prev:
        return "prev_hash is not the hash of the previous event in the stream"
    if chain_hash(env, event.key, event.prev_hash) != event.hash:
        return "hash does not match the event's content (edited after it was appended)"
    return None


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first event whose hash chain does not hold, and why."""

    event: StoredEvent
    reason: str


def _unvalidated(row: Any) -> StoredEvent:
    """A stored row as an event without validation, to name it in an audit finding."""
    actor: Any = Actor.model_construct(**row.actor) if isinstance(row.actor, dict) else row.actor
    envelope = EventEnvelope.model_construct(
        event_id=row.event_id, event_type=row.event_type, schema_version=row.schema_version,
        stream_id=row.stream_id, stream_version=row.stream_version, occurred_at=row.occurred_at,
        correlation_id=row.correlation_id, causation_id=row.causation_id, actor=actor,
        payload=row.payload,
    )
    return StoredEvent(envelope, Position(int(row.tx_id_text), int(row.position)), row.message_key,
                       row.prev_hash, row.hash)


async def verify_stream(conn: AsyncConnection, stream_id: str) -> ChainBreak | None:
    """Recompute one stream's hash chain; the first broken event, or None when it is intact."""
    return (await read_verified(conn, stream_id))[1]


async def read_verified(conn: AsyncConnection, stream_id: str
                        ) -> tuple[list[StoredEvent], ChainBreak | None]:
    """One stream as stored and its first broken event (None: intact). A row that no longer
    reads as an event is found and named; the stream's events are then not returned."""
    try:
        stored = await read_stream(conn, stream_id, upcasted=False)
    except ValueError:  # a row no longer reads as an event: find and name it
        return [], await verify_chain(conn, only_stream=stream_id)
    return stored, first_break(stored)


def first_break(stored: Sequence[StoredEvent]) -> ChainBreak | None:
    """The first event of one stream (in version order) that does not follow the one before."""
    previous: StoredEvent | None = None
    for event in stored:
        reason = chain_break(event, previous)
        if reason is not None:
            return ChainBreak(event, reason)
        previous = event
    return None


async def verify_chain(conn: AsyncConnection, *, page_size: int = 2000,
                       only_stream: str | None = None) -> ChainBreak | None:
    """Recompute every stream's hash chain (``oms audit verify``), paging through the table.

    Returns the first broken event in (stream_id, stream_version) order, or None. Reads the
    table directly, not through the commit-order barrier, so nothing committed is left out.
    """
    previous: StoredEvent | None = None
    after: tuple[str, int] = ("", 0)
    while True:
        rows = (
            await conn.execute(
                text(
                    f"SELECT {_COLUMNS} FROM events WHERE (stream_id, stream_version) > (:s, :v) "
                    "AND (CAST(:only AS text) IS NULL OR stream_id = :only) "
                    "ORDER BY stream_id, stream_version LIMIT :limit"
                ),
                {"s": after[0], "v": after[1], "only": only_stream, "limit": page_size},
            )
        ).all()
        for row in rows:
            try:
                event = _stored(row)
            except ValueError as error:  # edited into something that is not even an event
                return ChainBreak(_unvalidated(row), f"not a valid event: {error}".replace("\n", "; "))
            env = event.envelope
            if previous is not None and previous.envelope.stream_id != env.stream_id:
                previous = None
            reason = chain_break(event, previous)
            if reason is not None:
                return ChainBreak(event, reason)
            previous = event
        if len(rows) < page_size:
            return None
        last = rows[-1]
        after = (str(last.stream_id), int(last.stream_version))
