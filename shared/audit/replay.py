"""Rebuild a service's projections from the event history into a fresh database (``oms replay``).

Generic over services: the service's wiring is loaded by name (``services.<name>.app`` through
importlib, so shared never imports a service statically); its ``build(ctx)`` gives the topics it
consumes and its handler. The events of those topics are read from the producing services'
databases, merged in (occurred_at, tx_id, position) order, upcast, and fed through the
IdempotentConsumer into ``oms_<service>_replay_<n>`` on the same server, with a manual clock set
to each event's occurred_at. Background jobs (schedulers, notify's sender) are never started, so a
replay sends nothing. Events the service appended from its own commands (HTTP, CLI) are re-run
when the app module declares ``REPLAY_COMMANDS = {event_type: async fn(engine, envelope, clock)}``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, cast

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.clock import ManualClock
from shared.contract.envelope import Actor, EventEnvelope
from shared.contract.topics import ORDER_REJECTIONS, SERVICE_TOPIC, topic_for_event
from shared.db import create_engine, database_name, libpq_url
from shared.inbox import Handler, IdempotentConsumer, Incoming
from shared.kafka import Publisher
from shared.service import SchemaFn, ServiceContext, prepare_database
from shared.settings import OmsSettings, with_database
from shared.upcasting import upcast

ReplayCommand = Callable[[AsyncEngine, EventEnvelope, ManualClock], Awaitable[None]]
BATCH = 500
PRODUCER_OF: dict[str, str] = {topic: service for service, topic in SERVICE_TOPIC.items()}
PRODUCER_OF[ORDER_REJECTIONS] = "order"


class ReplayError(Exception):
    """A replay that cannot be done as asked (said to the operator as is)."""


@dataclass
class ReplayPlan:
    service: str
    topics: tuple[str, ...]
    handle: Handler
    commands: Mapping[str, ReplayCommand]


class _NoPublisher:
    """A replay publishes nothing: dead letters stay in the replay database's table."""

    async def publish(self, records: Any) -> None:  # pragma: no cover - never called
        raise ReplayError("a replay must not publish")


def service_module(service: str) -> ModuleType:
    return importlib.import_module(f"services.{service}.app")


def service_schema(module: ModuleType) -> SchemaFn:
    schema = getattr(module, "create_schema", None) or module.store.create_schema
    return cast(SchemaFn, schema)


def _build(module: ModuleType, service: str) -> Callable[[ServiceContext], Any]:
    build = getattr(module, "build", None)
    if build is not None:
        return cast(Callable[[ServiceContext], Any], build)
    if service == "reconcile":  # build is nested in make_app there (see the report)
        handlers = importlib.import_module("services.reconcile.handlers")

        def reconcile_build(ctx: ServiceContext) -> Any:
            grace = timedelta(seconds=ctx.settings.reconcile_grace_seconds)
            return _Parts(tuple(module.TOPICS), handlers.make_handler(ctx.clock, grace))

        return reconcile_build
    raise ReplayError(f"services/{service}/app.py has no module-level build(ctx) to replay with")


@dataclass
class _Parts:
    topics: tuple[str, ...]
    handle: Handler


def plan_for(service: str, ctx: ServiceContext) -> ReplayPlan:
    module = service_module(service)
    parts = _build(module, service)(ctx)
    topics = tuple(parts.topics)
    unstored = [t for t in topics if t not in PRODUCER_OF]
    if unstored:
        raise ReplayError(f"{service} consumes {', '.join(unstored)}, which no service stores as "
                          "events: its projections are rebuilt from its own log, not by replay")
    return ReplayPlan(service, topics, parts.handle, getattr(module, "REPLAY_COMMANDS", {}))


# ---- reading the history ---------------------------------------------------------------------

_PAGE = text(
    "SELECT position, tx_id::text AS tx_id_text, event_id, stream_id, stream_version, event_type,"
    " schema_version, occurred_at, correlation_id, causation_id, actor, payload, message_key,"
    " prev_hash, hash FROM events WHERE (occurred_at, tx_id, position) >"
    " (CAST(:at AS timestamptz), CAST(:tx AS xid8), :pos) AND event_type = ANY(:types)"
    " AND (NOT :commands_only OR causation_id IS NULL)"
    " ORDER BY occurred_at, tx_id, position LIMIT :limit"
)


@dataclass(frozen=True, slots=True)
class Source:
    """One producer's database and which of its event types go to which consumed topic."""

    service: str
    engine: AsyncEngine
    topic_of: Mapping[str, str]  # event_type -> topic; for own commands: event_type -> ""
    # The service's own log: only events a command caused (no causation), not the ones its
    # handler appended in answer to a consumed event (the replay appends those again itself).
    commands_only: bool = False


async def _types(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(text("SELECT event_type, count(*) FROM events GROUP BY 1"))
    return {str(r[0]): int(r[1]) for r in rows}


async def routed_types(conn: AsyncConnection, producer: str, topics: tuple[str, ...]
                       ) -> dict[str, tuple[str, int]]:
    """event_type -> (topic, count) of the producer's stored events that reach ``topics``."""
    found = await _types(conn)
    routed = {t: (topic_for_event(producer, t), n) for t, n in found.items()}
    return {t: v for t, v in routed.items() if v[0] in topics}


def _envelope(row: Any) -> EventEnvelope:
    return EventEnvelope(
        event_id=row.event_id, event_type=row.event_type, schema_version=row.schema_version,
        stream_id=row.stream_id, stream_version=row.stream_version, occurred_at=row.occurred_at,
        correlation_id=row.correlation_id, causation_id=row.causation_id,
        actor=Actor.model_validate(row.actor), payload=row.payload)


async def read_source(source: Source) -> AsyncIterator[tuple[tuple[Any, ...], str, EventEnvelope]]:
    """(sort key, topic, upcast envelope) in (occurred_at, tx_id, position) order, paged."""
    after: tuple[Any, str, int] = ("-infinity", "0", 0)
    types = list(source.topic_of)
    while True:
        async with source.engine.connect() as conn:
            rows = (await conn.execute(_PAGE, {"at": after[0], "tx": after[1], "pos": after[2],
                                               "types": types, "commands_only": source.commands_only,
                                               "limit": 2000})).all()
        for row in rows:
            env = _envelope(row)
            version, payload = upcast(env.event_type, env.schema_version, env.payload)
            upgraded = env.model_copy(update={"schema_version": version, "payload": payload})
            key = (row.occurred_at, int(row.tx_id_text), int(row.position), source.service)
            yield key, source.topic_of[env.event_type], upgraded
        if len(rows) < 2000:
            return
        last = rows[-1]
        after = (last.occurred_at, last.tx_id_text, int(last.position))


async def merged(sources: list[Source]) -> AsyncIterator[tuple[str, EventEnvelope]]:
    """Every source's events, merged by (occurred_at, tx_id, position, producer)."""
    readers = [read_source(s) for s in sources]
    heads: dict[int, tuple[tuple[Any, ...], str, EventEnvelope]] = {}
    for index, reader in enumerate(readers):
        head = await anext(reader, None)
        if head is not None:
            heads[index] = head
    while heads:
        index = min(heads, key=lambda i: heads[i][0])
        _, topic, envelope = heads[index]
        yield topic, envelope
        following = await anext(readers[index], None)
        if following is None:
            del heads[index]
        else:
            heads[index] = following


# ---- the replay ------------------------------------------------------------------------------

_REPLAY_NAME = re.compile(r"^oms_(?P<service>[a-z]+)_(?:replay|before_replay)_(?P<n>\d+)$")


async def next_replay_number(server_url: str, service: str) -> int:
    async with await psycopg.AsyncConnection.connect(
            libpq_url(with_database(server_url, "postgres")), autocommit=True) as conn:
        rows = await (await conn.execute("SELECT datname FROM pg_database")).fetchall()
    numbers = [int(m["n"]) for (name,) in rows
               if (m := _REPLAY_NAME.match(name)) and m["service"] == service]
    return max(numbers, default=0) + 1


@dataclass
class ReplayRun:
    service: str
    number: int
    database_url: str
    fed: int = 0
    commands: int = 0
    dead_letters: int = 0

    @property
    def database(self) -> str:
        return database_name(self.database_url)


async def count_events(sources: list[Source]) -> int:
    total = 0
    for source in sources:
        async with source.engine.connect() as conn:
            found = await _types(conn)
        total += sum(found.get(t, 0) for t in source.topic_of)
    return total


async def replay_service(service: str, live_url: str, producer_urls: Mapping[str, str],
                         progress: Callable[[int, int], None] | None = None,
                         settings: OmsSettings | None = None) -> ReplayRun:
    """Feed the history into a fresh ``oms_<service>_replay_<n>``; ``progress(done, total)``."""
    settings = settings or OmsSettings()
    number = await next_replay_number(live_url, service)
    run = ReplayRun(service, number, with_database(live_url, f"oms_{service}_replay_{number}"))
    module = service_module(service)
    engine = await prepare_database(run.database_url, service_schema(module))
    engines: dict[str, AsyncEngine] = {}
    try:
        clock = ManualClock(datetime(1970, 1, 1, tzinfo=UTC))
        ctx = ServiceContext(service, settings, engine, cast(Publisher, _NoPublisher()), clock,
                             run.database_url)
        plan = plan_for(service, ctx)
        sources = await _sources(plan, live_url, producer_urls, engines)
        total = await count_events(sources)

        async def handle(conn: AsyncConnection, incoming: Incoming) -> None:
            clock.set(incoming.event.occurred_at)
            await plan.handle(conn, incoming)

        consumer = IdempotentConsumer(name=service, engine=engine, publisher=None, handle=handle)
        batch: list[Incoming] = []

        async def flush() -> None:
            if batch:
                await consumer.process_incoming(batch)
                run.fed += len(batch)
                batch.clear()
                if progress:
                    progress(run.fed + run.commands, total)

        async for topic, envelope in merged(sources):
            if topic:
                batch.append(Incoming.from_envelope(envelope, topic))
                if len(batch) >= BATCH:
                    await flush()
                continue
            await flush()  # a command of the service's own: after everything before it
            clock.set(envelope.occurred_at)
            await plan.commands[envelope.event_type](engine, envelope, clock)
            run.commands += 1
        await flush()
        if progress:
            progress(total, total)
        async with engine.connect() as conn:
            run.dead_letters = int((await conn.execute(
                text("SELECT count(*) FROM dead_letters"))).scalar_one())
        return run
    finally:
        await engine.dispose()
        for other in engines.values():
            await other.dispose()


async def _sources(plan: ReplayPlan, live_url: str, producer_urls: Mapping[str, str],
                   engines: dict[str, AsyncEngine]) -> list[Source]:
    producers = sorted({PRODUCER_OF[t] for t in plan.topics})
    missing = [p for p in producers if p not in producer_urls]
    if missing:
        raise ReplayError(f"no database for {', '.join(missing)}, whose events {plan.service} "
                          "consumes")
    sources: list[Source] = []
    for producer in producers:
        engine = engines[producer] = create_engine(producer_urls[producer], pool_size=2)
        async with engine.connect() as conn:
            routed = await routed_types(conn, producer, plan.topics)
        sources.append(Source(producer, engine, {t: topic for t, (topic, _) in routed.items()}))
    if plan.commands:
        own = engines.setdefault(f"own:{plan.service}", create_engine(live_url, pool_size=2))
        sources.append(Source(f"{plan.service} (own commands)", own,
                              dict.fromkeys(plan.commands, ""), commands_only=True))
    return sources
