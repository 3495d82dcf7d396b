"""Checksums of a service's projection tables, to compare a replayed database with the live one.

Per table: a SHA-256 over every row, ordered by primary key, of the columns that do not depend on
when or in which run a row was written (rows are ordered by the primary key's stable columns,
else by every stable column). Left out: the platform tables (events, inbox, dead letters,
relay checkpoints, consumer horizons), time columns (timestamp, date) and identifiers minted when a
row is written (uuid columns, sequence-drawn ids and columns named ``*event_id*``: the replay
appends its own events and draws its own sequence numbers), and write counters (``revision``:
how many times a row was saved depends on how the events were batched). Whether a nullable time
column is set is kept, though: a discrepancy open in one database and resolved in the other, or a
notification finished in one only, must not compare equal. Instants inside JSON
documents (``"since": "2026-12-05T03:00:59.26+00:00"``) are left out the same way: a replay's
clock is each event's time, the live one's was the moment it handled it (they differ by the lag).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

PLATFORM_TABLES = frozenset({"events", "inbox", "dead_letters", "relay_checkpoints",
                             "consumer_horizons", "consumer_answers"})
VOLATILE_TYPES = ("timestamp", "date", "time", "uuid", "serial")
TIME_TYPES = ("timestamp", "date", "time")
JSON_TYPES = ("json", "jsonb")
# Columns that count a row's writes: a replay writes in other batches than live did.
WRITE_COUNTERS = frozenset({"revision"})
_INSTANT = re.compile(r'"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?'
                      r'(?:Z|[+-]\d{2}(?::?\d{2})?)?"')


def without_instants(document: str | None) -> str | None:
    """A JSON text with every ISO 8601 instant in it replaced by ``"<instant>"``."""
    return None if document is None else _INSTANT.sub('"<instant>"', document)


@dataclass(frozen=True, slots=True)
class TableChecksum:
    table: str
    rows: int
    digest: str
    columns: tuple[str, ...]


def stable_column(name: str, data_type: str) -> bool:
    return (not data_type.startswith(VOLATILE_TYPES) and "event_id" not in name
            and name not in WRITE_COUNTERS)


async def projection_tables(conn: AsyncConnection) -> list[str]:
    result = await conn.execute(text(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"))
    return [row[0] for row in result if row[0] not in PLATFORM_TABLES]


def set_or_not(name: str, data_type: str, nullable: bool) -> bool:
    """Whether the checksum keeps, for a column it leaves out, whether it is set (not null)."""
    return nullable and data_type.startswith(TIME_TYPES)


async def _columns(conn: AsyncConnection, table: str) -> list[tuple[str, str, bool]]:
    """(name, type, nullable) of each column; one drawn from a sequence reads as ``serial``."""
    result = await conn.execute(text(
        "SELECT column_name, data_type, coalesce(column_default, '') LIKE 'nextval(%' "
        "OR is_identity = 'YES', is_nullable = 'YES' "
        "FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = :t ORDER BY ordinal_position"), {"t": table})
    return [(str(row[0]), "serial" if row[2] else str(row[1]), bool(row[3])) for row in result]


async def _primary_key(conn: AsyncConnection, table: str) -> list[str]:
    result = await conn.execute(text(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = CAST(:t AS regclass) AND i.indisprimary "
        "ORDER BY array_position(i.indkey, a.attnum)"), {"t": f'public."{table}"'})
    return [str(row[0]) for row in result]


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def table_checksum(conn: AsyncConnection, table: str) -> TableChecksum:
    columns = await _columns(conn, table)
    stable = [(name, data_type) for name, data_type, _ in columns if stable_column(name, data_type)]
    kept = [name for name, _ in stable]
    documents = [i for i, (_, data_type) in enumerate(stable) if data_type in JSON_TYPES]
    order = [c for c in await _primary_key(conn, table) if c in kept] or kept
    whether_set = [name for name, data_type, nullable in columns
                   if not stable_column(name, data_type) and set_or_not(name, data_type, nullable)]
    digest = hashlib.sha256()
    rows = 0
    if kept:
        select = ", ".join([f"{_quoted(c)}::text" for c in kept]
                           + [f"({_quoted(c)} IS NOT NULL)::text" for c in whether_set])
        ordering = ", ".join(_quoted(c) for c in order)
        result = await conn.stream(text(f"SELECT {select} FROM {_quoted(table)} "
                                        f"ORDER BY {ordering}"))
        async for row in result:
            values = list(row)
            for i in documents:
                values[i] = without_instants(values[i])
            digest.update(json.dumps(values, ensure_ascii=False).encode() + b"\n")
            rows += 1
    else:
        rows = int((await conn.execute(text(f"SELECT count(*) FROM {_quoted(table)}"))).scalar_one())
    return TableChecksum(table, rows, digest.hexdigest(),
                         tuple(kept) + tuple(f"{c} is set" for c in whether_set))


async def database_checksums(conn: AsyncConnection) -> dict[str, TableChecksum]:
    return {table: await table_checksum(conn, table) for table in await projection_tables(conn)}
