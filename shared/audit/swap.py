"""Comparing a replayed database with the live one, and swapping them (only while stopped).

Before the swap, the service's ``REPLAY_BEFORE_SWAP(live_url, replay_url)`` (if its app module
declares one) carries over what the replay cannot rebuild (notify: which notifications were
delivered), then the live event log, relay checkpoints and inbox are carried over.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.audit.checksum import TableChecksum, database_checksums
from shared.audit.replay import before_swap_hook
from shared.db import create_engine, database_name, libpq_url
from shared.eventstore import ensure_schema as ensure_event_schema
from shared.settings import with_database


class SwapRefused(Exception):
    """The swap would be unsafe (the service is running, or a name is taken)."""


@dataclass(frozen=True, slots=True)
class TableComparison:
    table: str
    live: TableChecksum | None
    replay: TableChecksum | None

    @property
    def matches(self) -> bool:
        return (self.live is not None and self.replay is not None
                and self.live.digest == self.replay.digest and self.live.rows == self.replay.rows)


async def checksums(url: str) -> dict[str, TableChecksum]:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await database_checksums(conn)
    finally:
        await engine.dispose()


async def compare(live_url: str, replay_url: str) -> list[TableComparison]:
    live, replay = await checksums(live_url), await checksums(replay_url)
    return [TableComparison(t, live.get(t), replay.get(t)) for t in sorted(set(live) | set(replay))]


async def other_sessions(server_url: str, *databases: str) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(
            libpq_url(with_database(server_url, "postgres")), autocommit=True) as conn:
        rows = await (await conn.execute(
            "SELECT datname, count(*) FROM pg_stat_activity WHERE datname = ANY(%s) "
            "AND pid <> pg_backend_pid() GROUP BY datname", (list(databases),))).fetchall()
    return {str(name): int(count) for name, count in rows}


_COPY_COLUMNS = ("position, tx_id, event_id, stream_id, stream_version, event_type, "
                 "schema_version, occurred_at, recorded_at, correlation_id, causation_id, actor, "
                 "payload, message_key, prev_hash, hash")


async def carry_over_log(live: AsyncEngine, replay: AsyncEngine, page: int = 5000) -> int:
    """Give the replayed database the live event log, relay checkpoints and inbox.

    The service's own log is its audit trail and what it has already published: it must not be
    replaced by the events the replay appended (new ids), nor published again after the swap.
    Transaction ids are server-wide, so they stay valid in the other database of the same server.
    Refused (SwapRefused, nothing changed) when the replay handled events the live service has not
    (it is behind): their answers are in no log, so they would never be published.
    """
    copied = 0
    async with replay.begin() as target:
        await target.execute(text("DROP TABLE events"))
        await target.execute(text("DROP SEQUENCE IF EXISTS events_position_seq"))
        await ensure_event_schema(target)
        await target.execute(text("DELETE FROM relay_checkpoints"))
        after = -1
        while True:
            async with live.connect() as source:
                rows = (await source.execute(text(
                    "SELECT position, tx_id::text AS tx, event_id, stream_id, stream_version, "
                    "event_type, schema_version, occurred_at, recorded_at, correlation_id, "
                    "causation_id, actor::text AS actor, payload::text AS payload, message_key, "
                    "prev_hash, hash FROM events WHERE position > :after ORDER BY position "
                    "LIMIT :page"), {"after": after, "page": page})).mappings().all()
            if not rows:
                break
            await target.execute(text(
                f"INSERT INTO events ({_COPY_COLUMNS}) VALUES (:position, CAST(:tx AS xid8), "
                ":event_id, :stream_id, :stream_version, :event_type, :schema_version, "
                ":occurred_at, :recorded_at, :correlation_id, :causation_id, "
                "CAST(:actor AS jsonb), CAST(:payload AS jsonb), :message_key, :prev_hash, :hash)"),
                [dict(r) for r in rows])
            copied += len(rows)
            after = int(rows[-1]["position"])
        await target.execute(text("SELECT setval('events_position_seq', "
                                  "greatest((SELECT max(position) FROM events), 1))"))
        async with live.connect() as source:
            checkpoints = (await source.execute(text(
                "SELECT name, tx_id::text AS tx, position FROM relay_checkpoints"))).mappings().all()
            inbox = (await source.execute(text(
                "SELECT message_id, consumer, topic FROM inbox"))).mappings().all()
        if checkpoints:
            await target.execute(text("INSERT INTO relay_checkpoints (name, tx_id, position) "
                                      "VALUES (:name, CAST(:tx AS xid8), :position)"),
                                 [dict(r) for r in checkpoints])
        if inbox:
            await target.execute(text("INSERT INTO inbox (message_id, consumer, topic) VALUES "
                                      "(:message_id, :consumer, :topic) ON CONFLICT DO NOTHING"),
                                 [dict(r) for r in inbox])
        ahead = int((await target.execute(text("SELECT count(*) FROM inbox"))).scalar_one()) - len(
            {r["message_id"] for r in inbox})
        if ahead > 0:
            raise SwapRefused(
                f"the live database has not handled {ahead} event(s) the replay did (the service "
                "is behind): their answers would never be published. Start the service to let "
                "it catch up, stop it, then `oms replay` with --swap again; the replay database "
                "is kept for inspection")
    return copied


async def swap(live_url: str, replay_url: str, service: str, number: int) -> str:
    """Rename live -> ``oms_<service>_before_replay_<n>`` and replay -> live; returns the old
    live database's new name. Refused while anything else is connected to either database."""
    live_name, replay_name = database_name(live_url), database_name(replay_url)
    busy = await other_sessions(live_url, live_name, replay_name)
    if busy:
        sessions = ", ".join(f"{n} session(s) on {db}" for db, n in busy.items())
        raise SwapRefused(f"{service} looks running ({sessions}): stop it (and `oms run`) before "
                          "--swap; the replay database is kept for inspection")
    before_swap = before_swap_hook(service)
    if before_swap is not None:  # again: the live state may have moved since the replay ended
        await before_swap(live_url, replay_url)
    live_engine, replay_engine = create_engine(live_url, pool_size=1), create_engine(replay_url,
                                                                                   pool_size=1)
    try:
        await carry_over_log(live_engine, replay_engine)
    finally:
        await live_engine.dispose()
        await replay_engine.dispose()
    before = f"oms_{service}_before_replay_{number}"
    async with await psycopg.AsyncConnection.connect(
            libpq_url(with_database(live_url, "postgres")), autocommit=True) as conn:
        await conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(live_name), sql.Identifier(before)))
        await conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(replay_name), sql.Identifier(live_name)))
    return before
