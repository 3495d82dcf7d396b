"""Several replays at once (``oms replay all``, bench 5): each service's replay in a process of
its own, as many at a time as the machine has cores, so that the replays, which are
Python-bound, use every core (on 2 cores: 13.2 s instead of 14.9 s one after another for the four
replays of 2,000 orders' history, since reconcile's alone takes 7-8 s; four at once on 2 cores
took 18.2 s).

Each process runs ``replay_service`` and the checksum comparison, exactly as ``oms replay
SERVICE`` does, and reports its progress through a queue; the caller gets, per service, the run,
the comparison and the seconds it took. A failure in one process is raised as a ReplayError
naming the service, after the others finished (their databases are theirs to keep or drop)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue as queues
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from shared import gctune
from shared.audit.replay import ReplayError, ReplayRun, replay_service
from shared.audit.swap import TableComparison, compare
from shared.settings import OmsSettings

# Every service whose projections can be rebuilt (order's log is the system of record).
REPLAYABLE: tuple[str, ...] = ("inventory", "billing", "notify", "reconcile")
# Started heaviest first, so that with fewer cores than replays the long one is not left for last
# (measured on 2,000 orders' history: reconcile 7.2 s, billing 3.9, notify 2.6, inventory 1.2).
HEAVIEST_FIRST: tuple[str, ...] = ("reconcile", "billing", "notify", "inventory")
Progress = Callable[[str, int, int], None]  # (service, done, total)


@dataclass(frozen=True, slots=True)
class Replayed:
    service: str
    run: ReplayRun
    comparison: list[TableComparison]
    seconds: float

    @property
    def matches(self) -> bool:
        return all(item.matches for item in self.comparison)


async def replay_and_compare(service: str, urls: Mapping[str, str], handled_only: bool,
                             progress: Callable[[int, int], None] | None = None) -> Replayed:
    started = time.perf_counter()
    run = await replay_service(service, urls[service], urls, progress, handled_only=handled_only)
    seconds = time.perf_counter() - started
    return Replayed(service, run, await compare(urls[service], run.database_url), seconds)


def _in_process(service: str, urls: dict[str, str], handled_only: bool, log_level: str,
                reports: Any) -> Replayed:
    from shared.logging import configure_logging

    configure_logging(level=log_level)
    gctune.tune(OmsSettings().gc_threshold)  # a long run of batches, as a service is

    def tell(done: int, total: int) -> None:
        reports.put((service, done, total))

    try:
        return asyncio.run(replay_and_compare(service, urls, handled_only, tell))
    except ReplayError:
        raise
    except Exception as error:  # a database error may not survive pickling: say it in words
        raise ReplayError(f"{type(error).__name__}: {error}") from None


def replay_many(services: Sequence[str], urls: Mapping[str, str], *, handled_only: bool = False,
                progress: Progress | None = None, log_level: str = "ERROR",
                workers: int | None = None) -> list[Replayed]:
    """Replay ``services`` side by side, one process each, at most ``workers`` at a time (the
    machine's cores: more only compete with each other and their PostgreSQL backends); results in
    the order asked."""
    workers = workers or min(len(services), os.cpu_count() or 1)
    started = sorted(services, key=lambda s: HEAVIEST_FIRST.index(s) if s in HEAVIEST_FIRST
                     else -1)
    context = multiprocessing.get_context("spawn")  # no forked event loops or connections
    with context.Manager() as manager:
        reports = manager.Queue()
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures: dict[Future[Replayed], str] = {
                pool.submit(_in_process, service, dict(urls), handled_only, log_level, reports):
                service for service in started}
            pending = set(futures)
            while pending:
                _, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(reports, progress)
            _drain(reports, progress)
    failed = [f"{futures[f]}: {f.exception()}" for f in futures if f.exception() is not None]
    if failed:
        raise ReplayError("; ".join(failed))
    by_service = {futures[f]: f.result() for f in futures}
    return [by_service[service] for service in services]


def _drain(reports: Any, progress: Progress | None) -> None:
    while True:
        try:
            service, done, total = reports.get_nowait()
        except queues.Empty:
            return
        if progress is not None:
            progress(service, done, total)
