"""Reading the history a replay feeds: the producers' stored events of the consumed topics, in
(occurred_at, tx_id, position) order, upcast, merged with the service's own commands and records."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.audit.liveorder import STREAM_IN_LIVE_ORDER, LiveOrder
from shared.contract.envelope import EventEnvelope
from shared.contract.topics import topic_for_event
from shared.incoming import Incoming, decode_message
from shared.outbox import ENVELOPE_JSON, relay_headers

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


# One ordered pass over a producer's events of the consumed types, each as the relay would send
# it (the same envelope bytes, key and headers), with its place in (occurred_at, tx_id, position)
# order; streamed through a server-side cursor, so the database sorts once however long the
# history (a paged read sorted what was left of it again for every page).
_STREAM = text(
    "SELECT (extract(epoch FROM occurred_at) * 1000000)::bigint AS at_us, tx_id::text AS tx,"
    " position, message_key, event_type, event_id::text AS id, correlation_id,"
    f" {ENVELOPE_JSON} AS value FROM events WHERE event_type = ANY(:types)"
    " AND (NOT :commands_only OR causation_id IS NULL)"
    " ORDER BY occurred_at, tx_id, position"
)
CHUNK = 2000  # rows fetched at a time

# (sort key, topic or "" for a command, the message as a consumer decodes it). The key's first
# element is the instant in microseconds since the epoch.
Item = tuple[tuple[Any, ...], str, Incoming]


def micros(at: datetime) -> int:
    """An aware instant as microseconds since the epoch (the sort key's first element)."""
    return (at - EPOCH) // timedelta(microseconds=1)


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
    # In the order and at the instants the live service handled them (``liveorder.py``).
    live_order: LiveOrder | None = None


async def stored_types(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(text("SELECT event_type, count(*) FROM events GROUP BY 1"))
    return {str(r[0]): int(r[1]) for r in rows}


async def routed_types(conn: AsyncConnection, producer: str, topics: tuple[str, ...]
                       ) -> dict[str, tuple[str, int]]:
    """event_type -> (topic, count) of the producer's stored events that reach ``topics``."""
    found = await stored_types(conn)
    routed = {t: (topic_for_event(producer, t), n) for t, n in found.items()}
    return {t: v for t, v in routed.items() if v[0] in topics}


async def read_source(source: Source) -> AsyncIterator[Item]:
    """(sort key, topic, message) in (occurred_at, tx_id, position) order, or in live's
    (``Source.live_order``: the key is then the live place, then the event's own)."""
    topic_of = source.topic_of
    live = source.live_order
    params: dict[str, Any] = {"types": list(topic_of), "commands_only": source.commands_only}
    async with source.engine.connect() as conn:
        if live is not None:
            result = await conn.stream(STREAM_IN_LIVE_ORDER, {**params, **live.params()})
        else:
            result = await conn.stream(_STREAM, params)
        async for rows in result.partitions(CHUNK):
            handled = await _handled(source.handled_in, [row.id for row in rows])
            for row in rows:
                if handled is not None and row.id not in handled:
                    source.left_out[0] += 1
                    continue
                topic = topic_of[row.event_type]
                message = decode_message(topic, 0, 0, row.message_key, row.value.encode(),
                                         relay_headers(row.event_type, row.id, row.correlation_id),
                                         envelopes=True)
                if message.envelope is None:  # stored events were validated when appended
                    raise ValueError(f"stored event {row.id} cannot be read: "
                                     f"{message.decode_error}")
                if live is None:
                    yield (row.at_us, int(row.tx), row.position, source.service), topic, message
                    continue
                if row.at_us != row.own_at:
                    live.instants[row.id] = EPOCH + timedelta(microseconds=row.at_us)
                yield ((row.at_us, int(row.tx), row.position, source.service, row.own_at,
                        int(row.own_tx), row.own_position), topic, message)


async def _handled(live: AsyncEngine | None, ids: list[str]) -> set[str] | None:
    if live is None:
        return None
    async with live.connect() as conn:
        if not await has_table(conn, "inbox"):
            return set()
        found = await conn.execute(text("SELECT message_id::text FROM inbox WHERE message_id = "
                                        "ANY(CAST(:ids AS uuid[]))"), {"ids": ids})
        return {row[0] for row in found}


async def read_records(service: str, records: Sequence[Record]) -> AsyncIterator[Item]:
    for n, record in enumerate(sorted(records, key=lambda r: (r.at, r.tx_id))):
        yield ((micros(record.at), record.tx_id, 0, f"{service} (records)", n), "",
               Incoming.from_envelope(record.envelope, ""))


async def merged(sources: Sequence[Source | AsyncIterator[Item]]
                 ) -> AsyncGenerator[tuple[str, Incoming], None]:
    """Every source's events, merged by (occurred_at, tx_id, position, producer). Each source's
    cursor (and connection) is closed when the merge ends, however it ends."""
    readers = [read_source(s) if isinstance(s, Source) else s for s in sources]
    try:
        heads: dict[int, Item] = {}
        for index, reader in enumerate(readers):
            head = await anext(reader, None)
            if head is not None:
                heads[index] = head
        while heads:
            index = min(heads, key=lambda i: heads[i][0])
            _, topic, message = heads[index]
            yield topic, message
            following = await anext(readers[index], None)
            if following is None:
                del heads[index]
            else:
                heads[index] = following
    finally:
        for reader in readers:
            close = getattr(reader, "aclose", None)
            if close is not None:
                await close()
