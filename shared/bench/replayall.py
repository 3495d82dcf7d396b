"""Bench 5 as the issue puts it: the history the five services wrote during benches 3 and 4,
replayed with ``oms replay``'s own code into every projection that can be rebuilt (inventory,
billing, notify, reconcile; the order service's log is the system of record and is refused),
each compared with its live database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

import psycopg

from shared.audit.replay_many import REPLAYABLE, replay_many
from shared.bench.results import Report, Row
from shared.db import libpq_url
from shared.logging import configure_logging

REPLAYED = REPLAYABLE  # every projection that can be rebuilt
MILLION = 1_000_000
TARGET_SECONDS = 60.0


async def history_events(urls: Mapping[str, str]) -> int:
    """Every event stored by the five services (the history a replay reads from)."""
    total = 0
    for url in urls.values():
        async with await psycopg.AsyncConnection.connect(libpq_url(url)) as conn:
            row = await (await conn.execute("SELECT count(*) FROM events")).fetchone()
            total += int(row[0]) if row else 0
    return total


def run_replay_all(report: Report, urls: Mapping[str, str], made: Callable[[str], None],
                   log: Callable[[str], None] = print) -> None:
    """``oms replay all`` without the swap on the services' databases (stopped): every
    rebuildable projection side by side, one process each, up to what each live service has
    handled (so the comparison is like for like even when a backlog was left); ``made`` is told
    of each replay's database (for the bench to drop)."""
    configure_logging(level="ERROR")  # a replayed notification's channel fallbacks are not news
    history = asyncio.run(history_events(urls))
    started = time.perf_counter()
    replayed = replay_many(REPLAYED, urls, handled_only=True)
    wall = time.perf_counter() - started
    all_match = True
    for done in replayed:
        made(done.run.database_url)
        fed = done.run.fed + done.run.commands
        differing = ", ".join(item.table for item in done.comparison if not item.matches)
        all_match = all_match and done.matches
        report.add(Row("5 replay", f"oms replay {done.service} (history of benches 3-4)",
                       fed / done.seconds if done.seconds else None, "events/s",
                       note=f"{fed:,} events in {done.seconds:.1f} s (beside the others); "
                       + ("matches the live projection" if done.matches
                          else f"differs from live: {differing}")))
        log(f"  replay {done.service}: {fed:,} events in {done.seconds:.1f} s "
            f"({'matches live' if done.matches else 'DIFFERS: ' + differing})")
    one_by_one = sum(done.seconds for done in replayed)
    per_million = wall * MILLION / history if history else None
    report.add(Row("5 replay", f"all projections, per 1,000,000 events of history "
                   f"(extrapolated from {history:,} stored events)", per_million, "s",
                   target="<= 60", met=(per_million or float("inf")) <= TARGET_SECONDS,
                   note=f"{wall:.1f} s for `oms replay all` (the four side by side, one process "
                   f"each; their own times add up to {one_by_one:.1f} s)"
                   + ("" if all_match else "; a replay differed from live (see above)")))
    log(f"  replay, all projections: {wall:.1f} s side by side for {history:,} events of history "
        f"-> {per_million or 0:,.0f} s per million (one after another: {one_by_one:.1f} s)")
