"""Benches 1 and 2: event appends/s, our store vs the ``eventsourcing`` library vs raw psycopg."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bench.esbaseline import eventsourcing_rate
from shared.bench.results import Report, Row, ratio
from shared.clock import SystemClock
from shared.contract.envelope import SYSTEM
from shared.contract.payloads import OrderConfirmed
from shared.db import libpq_url
from shared.eventstore import Meta, append, build_rows
from shared.groupcommit import GroupCommitAppender
from shared.service import prepare_database

CLOCK = SystemClock()
META = Meta(correlation_id="bench", actor=SYSTEM)
WRITERS: tuple[int, ...] = (1, 4, 16)  # the issue asks for 1 and 4; 16 shows the trend


def payload(n: int) -> OrderConfirmed:
    return OrderConfirmed(order_id=f"ORD-{n:08d}", total=Decimal("199.00"), currency="CNY")


async def _writers(count: int, commands: int, command: Callable[[int, int], Any]) -> float:
    """Run ``commands`` calls of ``command(writer, i)`` spread over ``count`` writers; rate/s."""
    per_writer = max(1, commands // count)

    async def writer(w: int) -> None:
        for i in range(per_writer):
            await command(w, i)

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(count)))
    return per_writer * count / (time.perf_counter() - started)


async def oms_store_rate(engine: AsyncEngine, writers: int, commands: int, batch: int,
                         tag: str) -> float:
    """Events/s through ``shared.eventstore.append``, one transaction per command."""
    payloads = [payload(i) for i in range(batch)]

    async def command(w: int, i: int) -> None:
        async with engine.begin() as conn:
            await append(conn, f"{tag}-{w}-{i}", 0, payloads, meta=META, clock=CLOCK)

    return batch * await _writers(writers, commands, command)


async def group_commit_rate(engine: AsyncEngine, writers: int, commands: int, batch: int,
                            tag: str) -> tuple[float, float]:
    """Events/s through the group-commit appender; also the mean appends per transaction."""
    payloads = [payload(i) for i in range(batch)]
    async with GroupCommitAppender(engine, CLOCK) as appender:

        async def command(w: int, i: int) -> None:
            await appender.append(f"{tag}-{w}-{i}", 0, payloads, meta=META)

        rate = batch * await _writers(writers, commands, command)
        per_group = appender.appends / max(1, appender.groups)
    return rate, per_group


def _raw_rows(count: int) -> list[tuple[Any, ...]]:
    envelopes_rows = []
    for n in range(0, count, 100):
        _, rows = build_rows(f"raw-{n}", 0, None, [payload(i) for i in range(min(100, count - n))],
                             META, f"raw-{n}", CLOCK.now())
        envelopes_rows.extend(rows)
    return [(r["event_id"], r["stream_id"], r["stream_version"], r["event_type"],
             r["schema_version"], r["occurred_at"], r["correlation_id"], r["causation_id"],
             json.dumps(r["actor"]), json.dumps(r["payload"]), r["message_key"], r["prev_hash"],
             r["hash"]) for r in envelopes_rows]


RAW_COLUMNS = ("event_id, stream_id, stream_version, event_type, schema_version, occurred_at, "
               "correlation_id, causation_id, actor, payload, message_key, prev_hash, hash")


def raw_limits(url: str, events: int, batch: int) -> tuple[float, float]:
    """(executemany rows/s, COPY rows/s) into a copy of ``events`` (same columns, constraints,
    indexes; no triggers), ``batch`` rows per transaction, rows prepared before the clock runs."""
    rows = _raw_rows(events)
    asyncio.run(_prepare(url))
    with psycopg.connect(libpq_url(url)) as conn:
        for table in ("events_raw_many", "events_raw_copy"):
            conn.execute(f"CREATE TABLE {table} (LIKE events INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        _executemany(conn, "events_raw_many", rows, batch)
        many = len(rows) / (time.perf_counter() - started)
        started = time.perf_counter()
        with conn.cursor() as cur:
            for i in range(0, len(rows), batch):
                with cur.copy(f"COPY events_raw_copy ({RAW_COLUMNS}) FROM STDIN") as copy:
                    for row in rows[i:i + batch]:
                        copy.write_row(row)
                conn.commit()
        copied = len(rows) / (time.perf_counter() - started)
    return many, copied


def _executemany(conn: psycopg.Connection[Any], table: str, rows: list[tuple[Any, ...]],
                 batch: int) -> None:
    placeholders = ", ".join(["%s"] * 13)
    with conn.cursor() as cur:
        for i in range(0, len(rows), batch):
            cur.executemany(f"INSERT INTO {table} ({RAW_COLUMNS}) VALUES ({placeholders})",
                            rows[i:i + batch])
            conn.commit()


def raw_executemany_writers(url: str, events: int, batch: int, writers: int) -> float:
    """Rows/s of ``writers`` threads, each on its own connection, doing what ``raw_limits``'s
    executemany does with its share of the rows (the like-for-like limit for ``writers``)."""
    rows = _raw_rows(events)
    asyncio.run(_prepare(url))
    table = f"events_raw_many_{writers}"
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (LIKE events INCLUDING ALL)")
        conn.commit()
    connections = [psycopg.connect(libpq_url(url)) for _ in range(writers)]
    share = -(-len(rows) // writers)
    threads = [threading.Thread(target=_executemany,
                                args=(c, table, rows[n * share:(n + 1) * share], batch))
               for n, c in enumerate(connections)]
    try:
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return len(rows) / (time.perf_counter() - started)
    finally:
        for c in connections:
            c.close()


def _raw_writers(make_database: Callable[[str], str], events: int, batch: int, writers: int,
                 run: int) -> tuple[float]:
    return (raw_executemany_writers(make_database(f"raw{writers}r{run}"), events, batch, writers),)


def raw_commit_limit(url: str, commands: int) -> float:
    """Rows/s of raw psycopg inserting one prepared row per transaction (the fsync-bound limit
    of any one-event-per-command writer that waits for its commit)."""
    rows = _raw_rows(commands)
    asyncio.run(_prepare(url))
    placeholders = ", ".join(["%s"] * 13)
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS events_raw_one (LIKE events INCLUDING ALL)")
        conn.commit()
        started = time.perf_counter()
        for row in rows:
            conn.execute(f"INSERT INTO events_raw_one ({RAW_COLUMNS}) VALUES ({placeholders})", row)
            conn.commit()
        return len(rows) / (time.perf_counter() - started)


async def _prepare(url: str) -> None:
    engine = await prepare_database(url, None)
    await engine.dispose()


async def _ours(url: str, writers: int, commands: int, batch: int, tag: str
                ) -> tuple[float, float, float]:
    engine = await prepare_database(url, None)
    try:
        plain = await oms_store_rate(engine, writers, commands, batch, f"{tag}-p")
        grouped, per_group = await group_commit_rate(engine, writers, commands, batch, f"{tag}-g")
    finally:
        await engine.dispose()
    return plain, grouped, per_group


def _single_side_by_side(url: str, make_database: Callable[[str], str], writers: int,
                         commands: int, run: int) -> tuple[float, ...]:
    ours = asyncio.run(_ours(url, writers, commands, 1, f"w{writers}r{run}"))
    return (*ours, eventsourcing_rate(make_database("es"), writers, commands, 1))


def _batched(url: str, writers: int, commands: int, batch: int, run: int) -> tuple[float, ...]:
    return asyncio.run(_ours(url, writers, commands, batch, f"b{writers}r{run}"))


def best_of(repeats: int, measure: Callable[[int], tuple[float, ...]]) -> tuple[float, ...]:
    """Each figure's best over ``repeats`` runs (the machine is shared: noise only slows down)."""
    runs = [measure(r) for r in range(max(1, repeats))]
    return tuple(max(values) for values in zip(*runs, strict=True))


def run_appends(report: Report, make_database: Callable[[str], str], commands: int,
                log: Callable[[str], None] = print, repeats: int = 1) -> None:
    """Bench 1: one event per command, 1 and 4 writers (best of ``repeats`` runs each)."""
    url = make_database("appends")
    (limit,) = best_of(repeats, lambda r: (raw_commit_limit(make_database("rawone"), commands),))
    report.add(Row("1 appends", "raw psycopg, 1 prepared row per transaction, 1 writer", limit,
                   "rows/s", "commit (fsync) limit of one waiting writer"))
    for writers in WRITERS:
        plain, grouped, per_group, lib = best_of(
            repeats, partial(_single_side_by_side, url, make_database, writers, commands))
        best = max(plain, grouped)
        report.add(Row("1 appends", f"eventsourcing 9.5.6, {writers} writer(s)", lib, "events/s"))
        report.add(Row("1 appends", f"oms store, tx per command, {writers} writer(s)", plain,
                       "events/s", f"{ratio(plain, lib) or 0:.2f}x eventsourcing"))
        report.add(Row("1 appends", f"oms group commit, {writers} writer(s)", grouped, "events/s",
                       f"{ratio(grouped, lib) or 0:.2f}x eventsourcing; "
                       f"{per_group:.1f} appends per transaction"))
        report.add(Row("1 appends", f"best ours / eventsourcing, {writers} writer(s)",
                       ratio(best, lib), "x", target=">= 5x" if writers <= 4 else "",
                       met=(ratio(best, lib) or 0) >= 5 if writers <= 4 else None))
        log(f"  appends, {writers} writer(s): ours {plain:,.0f}/s, group {grouped:,.0f}/s, "
            f"eventsourcing {lib:,.0f}/s")


def run_batches(report: Report, make_database: Callable[[str], str], events: int, batch: int,
                log: Callable[[str], None] = print, repeats: int = 1) -> None:
    """Bench 2: ``batch`` events per append vs raw executemany and COPY (best of ``repeats``).

    Each writer count is compared with executemany by as many connections: 4 writers against one
    connection's executemany would flatter us."""
    url = make_database("batches")
    commands = max(1, events // batch)
    many, copied = best_of(repeats, lambda r: raw_limits(make_database("raw"), events, batch))
    report.add(Row("2 batches", f"raw psycopg executemany, {batch} rows/tx, 1 connection", many,
                   "rows/s"))
    report.add(Row("2 batches", f"raw psycopg COPY, {batch} rows/tx, 1 connection", copied,
                   "rows/s"))
    for writers in WRITERS[:2]:
        limit = many if writers == 1 else best_of(repeats, partial(
            _raw_writers, make_database, events, batch, writers))[0]
        if writers > 1:
            report.add(Row("2 batches", f"raw psycopg executemany, {batch} rows/tx, "
                           f"{writers} connections", limit, "rows/s"))
        plain, grouped, per_group = best_of(
            repeats, partial(_batched, url, writers, commands, batch))
        share = ratio(max(plain, grouped), limit) or 0.0
        report.add(Row("2 batches", f"oms store, {batch}/append, {writers} writer(s)", plain,
                       "events/s", f"{ratio(plain, limit) or 0:.0%} of executemany"))
        report.add(Row("2 batches", f"oms group commit, {batch}/append, {writers} writer(s)",
                       grouped, "events/s", f"{ratio(grouped, limit) or 0:.0%} of executemany; "
                       f"{per_group:.1f} appends per transaction"))
        report.add(Row("2 batches", f"best ours / executemany, {writers} writer(s)", share, "x",
                       target=">= 0.5", met=share >= 0.5,
                       note=f"COPY (1 connection) {ratio(max(plain, grouped), copied) or 0:.0%}"))
        log(f"  batches, {writers} writer(s): ours {plain:,.0f}/s, group {grouped:,.0f}/s, "
            f"executemany {limit:,.0f}/s, COPY {copied:,.0f}/s")
    (lib,) = best_of(repeats, lambda r: (eventsourcing_rate(make_database("esb"), 1, commands,
                                                             batch),))
    report.add(Row("2 batches", f"eventsourcing 9.5.6, {batch} events/save, 1 writer", lib,
                   "events/s"))
