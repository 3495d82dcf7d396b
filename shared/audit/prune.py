"""The databases replays leave behind: listed, and the older ones dropped (``oms replays``).

``oms replay`` keeps every ``oms_<service>_replay_<n>`` for inspection and ``--swap`` keeps the
database it replaced as ``oms_<service>_before_replay_<n>``; nothing else removes them, and on a
server with a large history each is as big as the live one. Pruning keeps the newest ``keep`` of
each kind per service and never drops a database that is live (named by a service's database
URL) or that has a session open on it (a replay still running, someone inspecting it).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psycopg

from shared.db import drop_databases, libpq_url
from shared.settings import with_database

REPLAY_NAME = re.compile(r"^oms_(?P<service>[a-z]+)_(?P<kind>replay|before_replay)_(?P<n>\d+)$")


@dataclass(frozen=True, slots=True)
class KeptDatabase:
    service: str
    kind: str  # "replay" (a replay's own database) | "before_replay" (live before a swap)
    number: int
    name: str
    size: int  # bytes
    sessions: int  # other sessions connected to it now


def _order(database: KeptDatabase) -> tuple[str, str, int]:
    return database.service, database.kind, database.number


async def kept_databases(server_url: str, services: Iterable[str]) -> list[KeptDatabase]:
    """``services``' replay databases on ``server_url``'s server, by service, kind and number."""
    wanted = set(services)
    async with await psycopg.AsyncConnection.connect(
            libpq_url(with_database(server_url, "postgres")), autocommit=True) as conn:
        rows = await (await conn.execute(
            "SELECT d.datname, pg_database_size(d.datname),"
            " (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname"
            "  AND a.pid <> pg_backend_pid())"
            " FROM pg_database d WHERE d.datname LIKE 'oms\\_%'")).fetchall()
    found = [KeptDatabase(m["service"], m["kind"], int(m["n"]), name, int(size), int(sessions))
             for name, size, sessions in rows
             if (m := REPLAY_NAME.match(name)) and m["service"] in wanted]
    return sorted(found, key=_order)


def to_prune(kept: Sequence[KeptDatabase], keep: int, live: Iterable[str] = ()
             ) -> tuple[list[KeptDatabase], list[KeptDatabase]]:
    """(what to drop, what is spared although old: live or in use). The newest ``keep`` of each
    service's replays and of its pre-swap databases stay."""
    if keep < 0:
        raise ValueError("keep must be 0 or more")
    live_names = set(live)
    by_kind: dict[tuple[str, str], list[KeptDatabase]] = defaultdict(list)
    for database in kept:
        by_kind[(database.service, database.kind)].append(database)
    drop: list[KeptDatabase] = []
    spared: list[KeptDatabase] = []
    for databases in by_kind.values():
        newest_first = sorted(databases, key=lambda d: d.number, reverse=True)
        for database in newest_first[keep:]:
            (spared if database.name in live_names or database.sessions else drop).append(database)
    return sorted(drop, key=_order), sorted(spared, key=_order)


def prune(server_url: str, databases: Sequence[KeptDatabase]) -> None:
    """Drop ``databases`` (chosen by ``to_prune``) from ``server_url``'s server."""
    drop_databases(server_url, [d.name for d in databases])
