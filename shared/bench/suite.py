"""Runs the benchmarks in one process on one PostgreSQL server and one broker; builds the report."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from shared.bench.appends import run_appends, run_batches
from shared.bench.bank import run_bank, run_bank_import
from shared.bench.infra import BenchInfra
from shared.bench.replay import run_replay
from shared.bench.results import Report, Row, Sizes, machine, utc_stamp
from shared.settings import SERVICES

BENCHES: tuple[str, ...] = ("appends", "batches", "e2e", "latency", "replay", "bank")


def run(sizes: Sizes, *, only: str | None = None, quick: bool = False,
        log: Callable[[str], None] = print) -> Report:
    """Every benchmark (or ``only`` one of BENCHES); infrastructure is started and stopped here."""
    chosen = [b for b in BENCHES if only is None or b == only]
    if not chosen:
        raise ValueError(f"unknown benchmark {only!r}; choose from {', '.join(BENCHES)}")
    report = Report(machine=machine(), started_at=utc_stamp(), quick=quick)
    started = time.perf_counter()
    # The full replay (every projection) replays what benches 3-4 leave in the services' databases.
    needs_broker = bool({"e2e", "latency", "replay"} & set(chosen))
    infra = BenchInfra().start(kafka=needs_broker)
    try:
        if "appends" in chosen:
            log("bench 1: single-event appends")
            run_appends(report, infra.create_database, sizes.single_appends, log,
                        sizes.repeats)
        if "batches" in chosen:
            log("bench 2: batched appends")
            run_batches(report, infra.create_database, sizes.batch_events, sizes.batch_size, log,
                        sizes.repeats)
        if "replay" in chosen:
            log("bench 5: replay into reconcile's projection (synthetic history)")
            run_replay(report, infra.create_database, sizes.replay_events, sizes.replay_batch, log)
        if needs_broker:
            _services(report, infra, sizes, chosen, log)
        if "bank" in chosen:
            log("bench 6: bank matching")
            run_bank(report, sizes.bank_lines, sizes.bank_items, sizes.bank_budget, log)
            run_bank_import(report, infra.create_database, sizes.bank_lines, sizes.bank_items, log)
    finally:
        infra.stop()
        report.seconds = time.perf_counter() - started
    return report


def _services(report: Report, infra: BenchInfra, sizes: Sizes, chosen: list[str],
              log: Callable[[str], None]) -> None:
    from shared.bench.endtoend import (
        run_end_to_end,
        run_latency,
        runtime_root,
        seed_stock,
        start_runtime,
    )
    from shared.bench.replayall import run_replay_all

    log("starting the five services on the bench's PostgreSQL and broker")
    root = runtime_root()
    urls = {name: infra.create_database(name) for name in SERVICES}
    runtime = start_runtime(urls, infra.bootstrap, root, dict(sizes.scale))
    if sizes.scale:
        report.add(Row("3 end-to-end", "instances per service (--scale)",
                       None, "", note=", ".join(f"{k}={v}" for k, v in sizes.scale)))
    stopped = False
    try:
        total_orders = sizes.e2e_orders + int(sizes.latency_rate * sizes.latency_seconds) + 10
        seed_stock(runtime.info, units_per_sku=12 * total_orders + 100)
        if "e2e" in chosen or "replay" in chosen:  # the replay needs a history
            log(f"bench 3: {sizes.e2e_orders} orders end to end")
            processes = {name: runtime.pid(name) for name in runtime.instances}
            processes["postgresql"] = infra.postgres_pid
            processes["broker"] = infra.broker_pid
            run_end_to_end(report, runtime.info, sizes.e2e_orders, log=log, processes=processes)
        if "latency" in chosen:  # last: a load the services cannot keep up with leaves a backlog
            log(f"bench 4: latency at {sizes.latency_low_rate:.0f} orders/s")
            run_latency(report, runtime.info, sizes.latency_low_rate, sizes.latency_low_seconds,
                        settle=sizes.latency_settle, log=log, target=False)
            log(f"bench 4: latency at {sizes.latency_rate:.0f} orders/s")
            run_latency(report, runtime.info, sizes.latency_rate, sizes.latency_seconds,
                        settle=sizes.latency_settle, log=log, target=sizes.latency_rate >= 300)
        runtime.stop()
        stopped = True
        if "replay" in chosen:
            log("bench 5: oms replay of every projection from the services' history")
            run_replay_all(report, urls, infra.adopt, log)
    finally:
        if not stopped:
            runtime.stop()
        shutil.rmtree(root, ignore_errors=True)


def default_out() -> Path:
    return Path("bench-results")
