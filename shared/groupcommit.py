"""Group commit: concurrent appends to the event store share one transaction (one fsync).

Each caller still gets its own optimistic-concurrency check: the flusher reads the heads of all
streams in the group at once, applies the requests in arrival order (a second request on the same
stream sees the first one's events), hash-chains them, and inserts every row in one statement
(on an autocommit connection: the statement is the transaction, one round trip per group).
The flusher talks to PostgreSQL on a psycopg connection of its own, not through SQLAlchemy: a
group's cost is one round trip plus the Python that builds its rows, and SQLAlchemy's async layer
(greenlet switches, statement compilation) was a third of it.
If the insert meets a writer outside this appender (unique violation on (stream, version)), the
group is redone one request per savepoint through ``shared.eventstore.append``, so each caller
gets exactly the ConcurrencyError or the envelopes it would have got alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import Clock
from shared.contract.envelope import EventEnvelope
from shared.contract.payloads import Payload
from shared.db import libpq_url
from shared.eventrows import HEADS_PSYCOPG, INSERT_ROWS_PSYCOPG, as_document
from shared.eventstore import ConcurrencyError, Meta, append, build_rows
from shared.metrics import METRICS

# One statement for the whole group: the rows travel as one JSON document (one parameter, one
# round trip, C-speed encoding) and PostgreSQL unpacks them.


@dataclass(slots=True)
class _Request:
    stream_id: str
    expected_version: int | None
    payloads: Sequence[Payload]
    meta: Meta
    key: str | None
    done: asyncio.Future[list[EventEnvelope]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitAppender:
    """Appends from many concurrent tasks, committed together in groups of up to ``max_group``.

    ``in_flight`` groups may be committing at once, each on its own connection: while
    PostgreSQL writes one group, the next one is built (the Python side and the database side
    overlap instead of taking turns). A stream belongs to one group in flight at a time: a request
    for a stream that is being committed waits for that group's outcome, so its head (version and
    hash) is always one that committed, and requests on one stream keep their arrival order.
    """

    def __init__(self, engine: AsyncEngine, clock: Clock, *, max_group: int = 500,
                 in_flight: int = 2) -> None:
        self.engine = engine
        self.clock = clock
        self.max_group = max_group
        self.in_flight = max(1, in_flight)
        self._pending: deque[_Request] = deque()  # arrival order
        self._busy: set[str] = set()  # streams of the groups being committed
        self._committing = 0  # groups being committed
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.groups = 0  # how many transactions were committed (for measurements)
        self.appends = 0
        # Heads this appender committed. A stale entry is harmless: the insert then collides with
        # the newer event on (stream, version) and the group is redone the careful way.
        self._heads: dict[str, tuple[int, str | None]] = {}
        self.max_cached_heads = 100_000

    async def __aenter__(self) -> GroupCommitAppender:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [asyncio.create_task(self._run(), name=f"group-commit-{n}")
                           for n in range(self.in_flight)]

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self._pending:  # never picked up: tell the callers
            request = self._pending.popleft()
            if not request.done.done():
                request.done.set_exception(RuntimeError("group-commit appender stopped"))

    async def append(self, stream_id: str, expected_version: int | None,
                     new_events: Sequence[Payload], *, meta: Meta, key: str | None = None
                     ) -> list[EventEnvelope]:
        """Like ``shared.eventstore.append`` but committed: returns once the group is durable."""
        if not new_events:
            return []
        self.start()
        request = _Request(stream_id, expected_version, new_events, meta, key)
        self._pending.append(request)
        self._wake.set()
        return await request.done

    def _pick(self) -> list[_Request]:
        """The next group: waiting requests in arrival order, except those whose stream is in a
        group being committed (and, to keep a stream's order, every later one of that stream)."""
        group: list[_Request] = []
        if not self._pending:
            return group
        # With more than one group allowed in flight, what waits is shared out: the first group
        # goes to PostgreSQL while the next is being built, instead of one group and idle hands.
        limit = self.max_group
        idle = self.in_flight - self._committing  # this flusher included
        if idle > 1:
            limit = min(limit, -(-len(self._pending) // idle))
        left: deque[_Request] = deque()
        blocked = set(self._busy)
        for request in self._pending:
            if len(group) >= limit or request.stream_id in blocked:
                blocked.add(request.stream_id)
                left.append(request)
            else:
                group.append(request)
        self._pending = left
        if group:
            self._busy.update(request.stream_id for request in group)
            self._committing += 1
        return group

    async def _run(self) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None  # kept between groups: no checkout/ping
        try:
            while True:
                group = self._pick()
                if not group:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                try:
                    if conn is None:
                        # Autocommit: the group's rows go in as one INSERT, atomic on its own, so
                        # a group costs one round trip (no BEGIN, no COMMIT) and one fsync.
                        conn = await psycopg.AsyncConnection.connect(
                            libpq_url(self.engine.url), autocommit=True)
                    await self._commit(conn, group)
                except asyncio.CancelledError:  # stopped mid-group: the outcome is unknown
                    for request in group:
                        if not request.done.done():
                            request.done.set_exception(RuntimeError("group-commit appender stopped"))
                    raise
                except Exception as error:  # the whole group failed: every caller learns why
                    for request in group:
                        if not request.done.done():
                            request.done.set_exception(error)
                    if conn is not None:  # start afresh (the connection may be broken)
                        with contextlib.suppress(Exception):
                            await conn.close()
                        conn = None
                finally:
                    self._committing -= 1
                    self._busy.difference_update(request.stream_id for request in group)
                    self._wake.set()  # requests held back for these streams may go now
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _commit(self, conn: psycopg.AsyncConnection[Any], group: list[_Request]) -> None:
        heads: dict[str, tuple[int, str | None]] = {}
        try:
            outcomes = await self._fast_path(conn, group, heads)
        except psycopg.errors.IntegrityError:
            # A writer outside the group got there first (the one INSERT took nothing): each
            # request alone, in a real transaction, one savepoint each.
            async with self.engine.begin() as alone:
                outcomes = await self._one_by_one(alone, group)
            for request in group:  # read from the table next time
                self._heads.pop(request.stream_id, None)
            heads = {}
        if len(self._heads) > self.max_cached_heads:
            self._heads.clear()
        self._heads.update(heads)
        self.groups += 1
        self.appends += len(group)
        for request, outcome in zip(group, outcomes, strict=True):
            if request.done.done():
                continue
            if isinstance(outcome, BaseException):
                request.done.set_exception(outcome)
            else:
                request.done.set_result(outcome)

    async def _fast_path(self, conn: psycopg.AsyncConnection[Any], group: list[_Request],
                         heads: dict[str, tuple[int, str | None]]
                         ) -> list[list[EventEnvelope] | ConcurrencyError]:
        """Fills ``heads`` with the streams' new heads (to be cached once committed)."""
        unknown: set[str] = set()
        for request in group:
            stream = request.stream_id
            if stream in heads or stream in unknown:
                continue
            if stream in self._heads:
                heads[stream] = self._heads[stream]
            elif request.expected_version == 0:
                heads[stream] = (0, None)  # a new stream: an existing one collides on version 1
            else:
                unknown.add(stream)
        if unknown:
            METRICS.inc("oms_db_statements_total")
            cursor = await conn.execute(HEADS_PSYCOPG, {"ids": sorted(unknown)})
            for stream_id, stream_version, digest in await cursor.fetchall():
                heads[stream_id] = (int(stream_version), str(digest))
        now = self.clock.now()
        rows: list[dict[str, Any]] = []
        outcomes: list[list[EventEnvelope] | ConcurrencyError] = []
        for request in group:
            version, prev_hash = heads.get(request.stream_id, (0, None))
            if request.expected_version is not None and version != request.expected_version:
                outcomes.append(ConcurrencyError(request.stream_id, request.expected_version, version))
                continue
            envelopes, new_rows = build_rows(request.stream_id, version, prev_hash, request.payloads,
                                             request.meta, request.key or request.stream_id, now)
            heads[request.stream_id] = (envelopes[-1].stream_version, new_rows[-1]["hash"])
            rows.extend(new_rows)
            outcomes.append(envelopes)
        if rows:
            METRICS.inc("oms_db_statements_total")
            await conn.execute(INSERT_ROWS_PSYCOPG, as_document(rows))
        return outcomes

    async def _one_by_one(self, conn: AsyncConnection, group: list[_Request]
                          ) -> list[list[EventEnvelope] | ConcurrencyError]:
        outcomes: list[list[EventEnvelope] | ConcurrencyError] = []
        for request in group:
            try:
                async with conn.begin_nested():
                    outcomes.append(await append(
                        conn, request.stream_id, request.expected_version, request.payloads,
                        meta=request.meta, clock=self.clock, key=request.key))
            except ConcurrencyError as error:
                outcomes.append(error)
        return outcomes
