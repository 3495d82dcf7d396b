"""Reading the history a replay feeds: the producers' stored events of the consumed topics, in
(occurred_at, tx_id, position) order, upcast, merged with the service's own commands and records."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.contract.envelope import Actor, EventEnvelope
from shared.contract.topics import topic_for_event
from shared.upcasting import upcast


@dataclass(frozen=True, slots=True)
class Record:
    """An own command the service keeps outside its event log (re-run at ``at``, then ``tx_id``)."""

    at: datetime
    tx_id: int
    envelope: EventEnvelope  # event_type names the command in ``commands``


async def has_table(conn: AsyncConnection, table: str) -> bool:
    """Whether the database has ``table`` (a live database the service never ran on has not)."""
    found = await conn.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"public.{table}"})
    return bool(found.scalar_one())


_PAGE = text(
    "SELECT position, tx_id::text AS tx_id_text, event_id, stream_id, stream_version, event_type,"
    " schema_version, occurred_at, correlation_id, causation_id, actor, payload, message_key,"
    " prev_hash, hash FROM events WHERE (occurred_at, tx_id, position) >"
    " (CAST(:at AS timestamptz), CAST(:tx AS xid8), :pos) AND event_type = ANY(:types)"
    " AND (NOT :commands_only OR causation_id IS NULL)"
    " ORDER BY occurred_at, tx_id, position LIMIT :limit"
)

Item = tuple[tuple[Any, ...], str, EventEnvelope]  # (sort key, topic or "" for a command, event)


@dataclass(frozen=True, slots=True)
class Source:
    """One producer's database and which of its event types go to which consumed topic."""

    service: str
    engine: AsyncEngine
    topic_of: Mapping[str, str]  # event_type -> topic; for own commands: event_type -> ""
    # The service's own log: only events a command caused (no causation), not the ones its
    # handler appended in answer to a consumed event (the replay appends those again itself).
    commands_only: bool = False
    # Only the events this (live) database's inbox holds, i.e. the live service has handled.
    handled_in: AsyncEngine | None = None
    left_out: list[int] = field(default_factory=lambda: [0])  # events skipped for that


async def stored_types(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(text("SELECT event_type, count(*) FROM events GROUP BY 1"))
    return {str(r[0]): int(r[1]) for r in rows}


async def routed_types(conn: AsyncConnection, producer: str, topics: tuple[str, ...]
                       ) -> dict[str, tuple[str, int]]:
    """event_type -> (topic, count) of the producer's stored events that reach ``topics``."""
    found = await stored_types(conn)
    routed = {t: (topic_for_event(producer, t), n) for t, n in found.items()}
    return {t: v for t, v in routed.items() if v[0] in topics}


def _envelope(row: Any) -> EventEnvelope:
    return EventEnvelope(
        event_id=row.event_id, event_type=row.event_type, schema_version=row.schema_version,
        stream_id=row.stream_id, stream_version=row.stream_version, occurred_at=row.occurred_at,
        correlation_id=row.correlation_id, causation_id=row.causation_id,
        actor=Actor.model_validate(row.actor), payload=row.payload)


async def read_source(source: Source) -> AsyncIterator[Item]:
    """(sort key, topic, upcast envelope) in (occurred_at, tx_id, position) order, paged."""
    after: tuple[Any, str, int] = ("-infinity", "0", 0)
    types = list(source.topic_of)
    while True:
        async with source.engine.connect() as conn:
            rows = (await conn.execute(_PAGE, {"at": after[0], "tx": after[1], "pos": after[2],
                                               "types": types, "commands_only": source.commands_only,
                                               "limit": 2000})).all()
        handled = await _handled(source.handled_in, [row.event_id for row in rows])
        for row in rows:
            if handled is not None and row.event_id not in handled:
                source.left_out[0] += 1
                continue
            env = _envelope(row)
            version, payload = upcast(env.event_type, env.schema_version, env.payload)
            upgraded = env.model_copy(update={"schema_version": version, "payload": payload})
            key = (row.occurred_at, int(row.tx_id_text), int(row.position), source.service)
            yield key, source.topic_of[env.event_type], upgraded
        if len(rows) < 2000:
            return
        last = rows[-1]
        after = (last.occurred_at, last.tx_id_text, int(last.position))


async def _handled(live: AsyncEngine | None, ids: list[Any]) -> set[Any] | None:
    if live is None:
        return None
    async with live.connect() as conn:
        if not await has_table(conn, "inbox"):
            return set()
        found = await conn.execute(text("SELECT message_id FROM inbox WHERE message_id = "
                                        "ANY(CAST(:ids AS uuid[]))"), {"ids": ids})
        return {row[0] for row in found}


async def read_records(service: str, records: Sequence[Record]) -> AsyncIterator[Item]:
    for n, record in enumerate(sorted(records, key=lambda r: (r.at, r.tx_id))):
        yield (record.at, record.tx_id, 0, f"{service} (records)", n), "", record.envelope


async def merged(sources: Sequence[Source | AsyncIterator[Item]]
                 ) -> AsyncIterator[tuple[str, EventEnvelope]]:
    """Every source's events, merged by (occurred_at, tx_id, position, producer)."""
    readers = [read_source(s) if isinstance(s, Source) else s for s in sources]
    heads: dict[int, Item] = {}
    for index, reader in enumerate(readers):
        head = await anext(reader, None)
        if head is not None:
            heads[index] = head
    while heads:
        index = min(heads, key=lambda i: heads[i][0])
        _, topic, envelope = heads[index]
        yield topic, envelope
        following = await anext(readers[index], None)
        if following is None:
            del heads[index]
        else:
            heads[index] = following
