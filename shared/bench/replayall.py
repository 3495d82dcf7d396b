"""Bench 5 as the issue puts it: the history the five services wrote during benches 3 and 4,
replayed with ``oms replay``'s own code into every projection that can be rebuilt (inventory,
billing, notify, reconcile; the order service's log is the system of record and is refused),
each compared with its live database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psycopg

from shared.bench.results import Report, Row
from shared.db import libpq_url
from shared.logging import configure_logging

REPLAYED: tuple[str, ...] = ("inventory", "billing", "notify", "reconcile")
MILLION = 1_000_000
TARGET_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Replayed:
    service: str
    fed: int
    seconds: float
    matches: bool
    differing: tuple[str, ...]


async def history_events(urls: Mapping[str, str]) -> int:
    """Every event stored by the five services (the history a replay reads from)."""
    total = 0
    for url in urls.values():
        async with await psycopg.AsyncConnection.connect(libpq_url(url)) as conn:
            row = await (await conn.execute("SELECT count(*) FROM events")).fetchone()
            total += int(row[0]) if row else 0
    return total


async def replay_one(service: str, urls: Mapping[str, str], made: Callable[[str], None]
                     ) -> Replayed:
    """``oms replay SERVICE`` without the swap: up to what the live service has handled (so the
    comparison is like for like even when a backlog was left), then the checksums compared;
    ``made(url)`` is told of the replay's database (for the bench to drop)."""
    from shared.audit.replay import replay_service
    from shared.audit.swap import compare

    started = time.perf_counter()
    run = await replay_service(service, urls[service], urls, handled_only=True)
    seconds = time.perf_counter() - started
    made(run.database_url)
    comparison = await compare(urls[service], run.database_url)
    differing = tuple(item.table for item in comparison if not item.matches)
    return Replayed(service, run.fed + run.commands, seconds, not differing, differing)


def run_replay_all(report: Report, urls: Mapping[str, str], made: Callable[[str], None],
                   log: Callable[[str], None] = print) -> None:
    """Replays every rebuildable projection from the services' databases (stopped); ``made``
    is told of each replay's database."""
    configure_logging(level="ERROR")  # a replayed notification's channel fallbacks are not news
    history = asyncio.run(history_events(urls))
    total_seconds = 0.0
    all_match = True
    for service in REPLAYED:
        done = asyncio.run(replay_one(service, urls, made))
        total_seconds += done.seconds
        all_match = all_match and done.matches
        report.add(Row("5 replay", f"oms replay {service} (history of benches 3-4)",
                       done.fed / done.seconds if done.seconds else None, "events/s",
                       note=f"{done.fed:,} events in {done.seconds:.1f} s; "
                       + ("matches the live projection" if done.matches
                          else f"differs from live: {', '.join(done.differing)}")))
        log(f"  replay {service}: {done.fed:,} events in {done.seconds:.1f} s "
            f"({'matches live' if done.matches else 'DIFFERS: ' + ', '.join(done.differing)})")
    per_million = total_seconds * MILLION / history if history else None
    report.add(Row("5 replay", f"all projections, per 1,000,000 events of history "
                   f"(extrapolated from {history:,} stored events)", per_million, "s",
                   target="<= 60", met=(per_million or float("inf")) <= TARGET_SECONDS,
                   note=f"{total_seconds:.1f} s for the four replays, one after another"
                   + ("" if all_match else "; a replay differed from live (see above)")))
    log(f"  replay, all projections: {total_seconds:.1f} s for {history:,} events of history "
        f"-> {per_million or 0:,.0f} s per million")
