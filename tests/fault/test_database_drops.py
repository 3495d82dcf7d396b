"""A service's database connections are cut again and again mid-batch: nothing is lost."""

from __future__ import annotations

import threading
import time

import psycopg

from shared.db import database_name, libpq_url
from shared.runtime.supervisor import Runtime
from tests.fault.conftest import (
    Traffic,
    converge,
    dead_letters,
    doubled,
    expected,
    explain,
    send,
    snapshot,
)


def cut_connections(rt: Runtime, service: str) -> int:
    """pg_terminate_backend on every session of the service's database (as a failover would)."""
    url = rt.info.database_url(service)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (database_name(url),)).fetchall()
    return sum(1 for (done,) in rows if done)


def test_cut_database_connections_mid_batch_lose_nothing(runtime: Runtime) -> None:
    before = snapshot(runtime)
    letters = dead_letters(runtime)
    flow = Traffic("DBCUT")
    waves = [flow.wave(40) for _ in range(8)]
    stop = threading.Event()
    cut = {"billing": 0, "inventory": 0, "order": 0}

    def cutter() -> None:
        while not stop.is_set():
            for service in cut:
                cut[service] += cut_connections(runtime, service)
                time.sleep(0.15)

    thread = threading.Thread(target=cutter, daemon=True)
    thread.start()
    try:
        for wave in waves:
            send(runtime, wave)
            time.sleep(0.5)
        time.sleep(2.0)
    finally:
        stop.set()
        thread.join()
    assert all(n > 0 for n in cut.values()), cut

    want = expected(before, flow.sent)
    assert converge(runtime, want, timeout=150) == want, explain(runtime)
    assert doubled(runtime) == {}
    assert dead_letters(runtime) == letters  # a crash or a cut connection is no poison
