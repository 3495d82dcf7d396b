"""A test that stalls says what it waits for, before pytest-timeout ends it.

pytest-timeout prints the threads' stacks, and with asyncio those end in the selector: the event
loop is idle and every task waits. So a watchdog thread notes each test's start; when one runs
longer than ``OMS_TEST_STALL_SECONDS`` (default 120) it prints, once, every asyncio task's chain of
awaits (through ``cr_await``) and the test PostgreSQL's sessions that are not idle, with their
waits and the locks not granted. The report goes to the test's captured stderr, so it shows with
the failure. Later (``OMS_TEST_CANCEL_SECONDS``, default 540, under pytest-timeout's 600; the
slowest fault test takes about two minutes) it cancels the test's task.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
import sys
import threading
import time
import traceback
from types import FrameType
from typing import Any

import psycopg

from shared.db import libpq_url
from shared.settings import with_database

STALL_SECONDS = float(os.environ.get("OMS_TEST_STALL_SECONDS", "120"))
# Then the test's task is cancelled, so its `async with` blocks stop the services it started:
# a test ended by pytest-timeout instead leaves them running in the session's event loop, where
# they go on logging into later tests' output (CI's last run lost a second test that way).
CANCEL_SECONDS = float(os.environ.get("OMS_TEST_CANCEL_SECONDS", "540"))

_SESSIONS = """
SELECT a.pid, a.datname, a.state, a.wait_event_type, a.wait_event, a.backend_type,
       round(extract(epoch FROM now() - a.xact_start)::numeric, 1) AS xact_seconds,
       left(a.query, 300) AS query,
       (SELECT string_agg(l.locktype || ' ' || l.mode || coalesce(' obj ' || l.objid::text, '')
                          || coalesce(' rel ' || l.relation::regclass::text, ''), '; ')
          FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted) AS waiting_for,
       pg_blocking_pids(a.pid) AS blocked_by
  FROM pg_stat_activity a
 WHERE a.pid <> pg_backend_pid() AND a.state IS DISTINCT FROM 'idle' AND a.datname IS NOT NULL
"""


class StallWatch:
    """One per test session: ``started``/``finished`` around each test's call."""

    def __init__(self) -> None:
        self.server_url: str | None = None  # set once the session's PostgreSQL is known
        self._test: str | None = None
        self._since = 0.0
        self._reported = False
        self._cancelled = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="stall-watch", daemon=True)
        self._thread.start()

    def started(self, nodeid: str) -> None:
        with self._lock:
            self._test, self._since = nodeid, time.monotonic()
            self._reported = self._cancelled = False

    def finished(self) -> None:
        with self._lock:
            self._test = None

    def _watch(self) -> None:
        while True:
            time.sleep(5)
            with self._lock:
                running = time.monotonic() - self._since if self._test is not None else 0.0
                due = running > STALL_SECONDS and not self._reported
                cancel = running > CANCEL_SECONDS and not self._cancelled
                self._reported |= due
                self._cancelled |= cancel
                test = self._test
            if due:
                self.report(test or "?")
            if cancel:
                self.cancel(test or "?")

    def cancel(self, test: str) -> None:
        loop = _main_loop()
        if loop is None:
            return
        print(f"\n===== {test} has run for over {CANCEL_SECONDS:.0f}s: its task is cancelled "
              "=====", file=sys.stderr, flush=True)

        def cancel_roots() -> None:
            for task in asyncio.all_tasks():
                if any(getattr(cb, "__name__", "") == "_run_until_complete_cb"
                       for cb, _ in getattr(task, "_callbacks", None) or ()):
                    task.cancel(f"{test} stalled for over {CANCEL_SECONDS:.0f}s")

        loop.call_soon_threadsafe(cancel_roots)

    def report(self, test: str) -> None:
        out = sys.stderr
        print(f"\n===== {test} has run for over {STALL_SECONDS:.0f}s: what it waits for =====",
              file=out)
        loop = _main_loop()
        if loop is None:
            print("no event loop runs in the main thread", file=out)
        else:
            done = threading.Event()

            def dump() -> None:
                try:
                    print(tasks_report(), file=out)
                except Exception as error:  # a report must not fail the test on its own
                    print(f"tasks not reported: {error!r}", file=out)
                finally:
                    done.set()

            loop.call_soon_threadsafe(dump)
            if not done.wait(10):
                print("the event loop did not run the report within 10s (it is blocked)", file=out)
        print(self.database_report(), file=out, flush=True)

    def database_report(self) -> str:
        if self.server_url is None:
            return "no test PostgreSQL was started"
        try:
            url = libpq_url(with_database(self.server_url, "postgres"))
            with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                cursor = conn.execute(_SESSIONS)
                rows = cursor.fetchall()
                names = [c.name for c in cursor.description or ()]
        except Exception as error:  # a report must not fail the test on its own
            return f"PostgreSQL sessions not read: {error}"
        lines = ["PostgreSQL sessions not idle:"]
        lines += ["  " + ", ".join(f"{n}={v}" for n, v in zip(names, row, strict=True)) for row in rows]
        return "\n".join(lines)


def _main_loop() -> asyncio.AbstractEventLoop | None:
    frame: FrameType | None = sys._current_frames().get(threading.main_thread().ident or 0)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, asyncio.AbstractEventLoop):
            return candidate
        frame = frame.f_back
    return None


def _generator_of(awaited: Any) -> Any:
    """The async generator behind an ``asend``/``athrow`` awaitable (an ``async with`` on an
    ``asynccontextmanager`` awaits one), which exposes no attribute for it."""
    if type(awaited).__name__ not in ("async_generator_asend", "async_generator_athrow"):
        return None
    return next((r for r in gc.get_referents(awaited) if inspect.isasyncgen(r)), None)


def tasks_report() -> str:
    """Every task of the running loop with its chain of awaits, outermost first."""
    lines = []
    for task in asyncio.all_tasks():
        lines.append(f"task {task.get_name()}:")
        awaited: Any = task.get_coro()
        if awaited is None:
            lines.append(f"    {task!r}"[:300])
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None) \
                or getattr(awaited, "ag_frame", None)
            if frame is not None:
                summary = traceback.FrameSummary(frame.f_code.co_filename, frame.f_lineno,
                                                 frame.f_code.co_name)
                lines.append(f"    {summary.filename}:{summary.lineno} in {summary.name}")
            nxt = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None) \
                or getattr(awaited, "ag_await", None) or _generator_of(awaited)
            if frame is None:
                lines.append(f"    awaiting {awaited!r}"[:300])
            awaited = nxt
    return "\n".join(lines)
