"""Rebuild a service's projections from the event history into a fresh database (``oms replay``).

The service's wiring is loaded by name (``services.<name>.app`` through importlib: shared never
imports a service statically); its ``build(ctx)`` gives the topics it consumes and its handler.
Their events are read from the producers' databases, merged in (occurred_at, tx_id, position)
order, upcast, and fed through the IdempotentConsumer into ``oms_<service>_replay_<n>`` with a
manual clock set to each event's occurred_at. Background jobs (schedulers, notify's sender) never
start, so a replay sends nothing. The app module may declare (all optional):

- ``REPLAY_COMMANDS = {event_type: async fn(engine, envelope, clock)}``: events the service
  appended from its own commands (HTTP, CLI; no causation id) are re-run through these, in time
  order among the consumed events;
- ``REPLAY_SETUP = async fn(ctx, live_engine, hooks) -> hooks``: adapts the replay from the live
  database before anything is fed (wraps the handler, binds the commands, adds ``records``: own
  commands kept outside the event log, e.g. inventory's adjustments from before stock.adjusted;
  ``report``: lines to show once fed, e.g. reconcile's raises re-made as live made them;
  ``follow_live_order``: fed in the order and at the instants live handled the events, as
  inventory's answers say, ``liveorder.py``);
- ``REPLAY_BEFORE_SWAP = async fn(live_url, replay_url)``: run when the replay is done (so the
  comparison shows it) and again by ``--swap`` just before the swap (notify's delivery state).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any, cast

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.audit.clocked import Instant, clocked_batch, clocked_handler, occurred_at
from shared.audit.liveorder import LiveOrder, read_live_order
from shared.audit.prune import REPLAY_NAME
from shared.audit.sources import (
    Item,
    Record,
    Source,
    has_table,
    merged,
    read_records,
    routed_types,
    stored_types,
)
from shared.clock import ManualClock
from shared.contract.envelope import EventEnvelope
from shared.contract.topics import ORDER_REJECTIONS, SERVICE_TOPIC, STOREFRONT_ORDERS
from shared.db import create_engine, database_name, libpq_url
from shared.inbox import BatchStart, Handler, IdempotentConsumer, Incoming
from shared.kafka import Publisher
from shared.service import SchemaFn, ServiceContext, ServiceParts, prepare_database
from shared.settings import OmsSettings, with_database

ReplayCommand = Callable[[AsyncEngine, EventEnvelope, ManualClock], Awaitable[None]]
BeforeSwap = Callable[[str, str], Awaitable[None]]
BATCH = 5000  # large: a projection loads and saves what an order touches once per batch
PRODUCER_OF: dict[str, str] = {topic: service for service, topic in SERVICE_TOPIC.items()}
PRODUCER_OF[ORDER_REJECTIONS] = "order"


class ReplayError(Exception):
    """A replay that cannot be done as asked (said to the operator as is)."""


@dataclass(frozen=True)
class ReplayHooks:
    """What a replay feeds through: the consumer's handler (and batch work) and the service's own
    commands. A setup that wraps ``handle`` must wrap ``start_batch`` alike or set it to None."""

    handle: Handler
    commands: Mapping[str, ReplayCommand]
    records: Sequence[Record] = ()
    start_batch: BatchStart | None = None
    report: Callable[[], Sequence[str]] | None = None  # lines for the operator once fed
    # Feed the consumed events in the order and at the instants live handled them (its answers
    # say when: ``liveorder.py``), not in event time: for decisions that depend on that order.
    follow_live_order: bool = False


ReplaySetup = Callable[[ServiceContext, AsyncEngine, ReplayHooks], Awaitable[ReplayHooks]]


@dataclass
class ReplayPlan:
    service: str
    topics: tuple[str, ...]
    handle: Handler
    commands: Mapping[str, ReplayCommand]
    start_batch: BatchStart | None = None  # the service's batch work (used unless set up otherwise)
    handles: frozenset[str] | None = None  # the event types its handler acts on (None: all)


class _NoPublisher:
    """A replay publishes nothing: dead letters stay in the replay database's table."""

    async def publish(self, records: Any) -> None:  # pragma: no cover - never called
        raise ReplayError("a replay must not publish")


def service_module(service: str) -> ModuleType:
    return importlib.import_module(f"services.{service}.app")


def service_schema(module: ModuleType) -> SchemaFn:
    schema = getattr(module, "create_schema", None) or module.store.create_schema
    return cast(SchemaFn, schema)


def before_swap_hook(service: str) -> BeforeSwap | None:
    return cast(BeforeSwap | None, getattr(service_module(service), "REPLAY_BEFORE_SWAP", None))


def _build(module: ModuleType, service: str) -> Callable[[ServiceContext], Any]:
    build = getattr(module, "build", None)
    if build is not None:
        return cast(Callable[[ServiceContext], Any], build)
    if service == "reconcile":  # build is nested in make_app there (see the report)
        handlers = importlib.import_module("services.reconcile.handlers")

        def reconcile_build(ctx: ServiceContext) -> Any:
            grace = timedelta(seconds=ctx.settings.reconcile_grace_seconds)
            return ServiceParts(tuple(module.TOPICS), handlers.make_handler(ctx.clock, grace),
                                start_batch=handlers.make_batch_start(ctx.clock, grace))

        return reconcile_build
    raise ReplayError(f"services/{service}/app.py has no module-level build(ctx) to replay with")


def refusal(service: str, unstored: Sequence[str]) -> str:
    if STOREFRONT_ORDERS in unstored:
        return (f"`oms replay {service}` is refused: {service} decides on storefront messages "
                f"({STOREFRONT_ORDERS}), which are not stored anywhere, so its decisions cannot be "
                f"made again. Its event store is the system of record, not a projection: check it "
                f"with `oms audit verify --service {service}`, send it again with `oms republish`. "
                "Nothing was created.")
    return (f"`oms replay {service}` is refused: it consumes {', '.join(unstored)}, which no "
            "service stores as events. Nothing was created.")


def plan_for(service: str, ctx: ServiceContext) -> ReplayPlan:
    module = service_module(service)
    parts = _build(module, service)(ctx)
    topics = tuple(parts.topics)
    unstored = [t for t in topics if t not in PRODUCER_OF]
    if unstored:
        raise ReplayError(refusal(service, unstored))
    return ReplayPlan(service, topics, parts.handle, getattr(module, "REPLAY_COMMANDS", {}),
                      parts.start_batch, parts.handles)


# ---- the replay ------------------------------------------------------------------------------

async def next_replay_number(server_url: str, service: str) -> int:
    async with await psycopg.AsyncConnection.connect(
            libpq_url(with_database(server_url, "postgres")), autocommit=True) as conn:
        rows = await (await conn.execute("SELECT datname FROM pg_database")).fetchall()
    numbers = [int(m["n"]) for (name,) in rows
               if (m := REPLAY_NAME.match(name)) and m["service"] == service]
    return max(numbers, default=0) + 1


@dataclass
class ReplayRun:
    service: str
    number: int
    database_url: str
    fed: int = 0
    commands: int = 0
    dead_letters: int = 0
    left_out: int = 0  # events the live service has not handled yet (``handled_only``)
    refused: list[str] = field(default_factory=list)  # own commands that failed when re-run
    notes: list[str] = field(default_factory=list)  # what the service's setup reports

    @property
    def database(self) -> str:
        return database_name(self.database_url)


async def count_events(sources: list[Source]) -> int:
    total = 0
    for source in sources:
        async with source.engine.connect() as conn:
            found = await stored_types(conn)
        total += sum(found.get(t, 0) for t in source.topic_of)
    return total


async def replay_service(service: str, live_url: str, producer_urls: Mapping[str, str],
                         progress: Callable[[int, int], None] | None = None,
                         settings: OmsSettings | None = None, handled_only: bool = False
                         ) -> ReplayRun:
    """Feed the history into a fresh ``oms_<service>_replay_<n>``; ``progress(done, total)``.

    ``handled_only`` (for a swap): only the consumed events the live service has handled (its
    inbox), so the replay stands where the live database stands and the newer events reach it
    through the broker once it runs again. A service that cannot be replayed is refused
    (ReplayError) before any database is created."""
    settings = settings or OmsSettings()
    number = await next_replay_number(live_url, service)
    run = ReplayRun(service, number, with_database(live_url, f"oms_{service}_replay_{number}"))
    module = service_module(service)
    clock = ManualClock(datetime(1970, 1, 1, tzinfo=UTC))
    engine = create_engine(run.database_url)  # connects on first use: after the plan is known
    engines: dict[str, AsyncEngine] = {}
    try:
        ctx = ServiceContext(service, settings, engine, cast(Publisher, _NoPublisher()), clock,
                             run.database_url)
        plan = plan_for(service, ctx)
        await (await prepare_database(run.database_url, service_schema(module))).dispose()
        live = engines["live"] = create_engine(live_url, pool_size=2)
        hooks = ReplayHooks(plan.handle, plan.commands, start_batch=plan.start_batch)
        setup = cast(ReplaySetup | None, getattr(module, "REPLAY_SETUP", None))
        if setup is not None:
            hooks = await setup(ctx, live, hooks)
        live_order = None
        if hooks.follow_live_order:
            async with live.connect() as conn:  # a live database with no log yet: no answers
                live_order = (await read_live_order(conn) if await has_table(conn, "events")
                              else LiveOrder())
        sources = await _sources(plan, hooks, live if handled_only else None, producer_urls,
                                 engines, live_order)
        total = await count_events(sources) + len(hooks.records)
        # A setup that wrapped the handler but left the batch work as it was wants every message
        # through its handler: no batch work then.
        start = hooks.start_batch
        if hooks.handle is not plan.handle and start is plan.start_batch:
            start = None
        await _feed(run, engine, clock, hooks, start,
                    [*sources, read_records(service, hooks.records)], total, progress,
                    live_instant(live_order) if live_order is not None else occurred_at)
        run.left_out = sum(source.left_out[0] for source in sources)
        run.notes = list(hooks.report()) if hooks.report is not None else []
        async with engine.connect() as conn:
            run.dead_letters = int((await conn.execute(
                text("SELECT count(*) FROM dead_letters"))).scalar_one())
        before_swap = before_swap_hook(service)
        if before_swap is not None:
            await before_swap(live_url, run.database_url)
        return run
    finally:
        await engine.dispose()
        for other in engines.values():
            await other.dispose()


async def _feed(run: ReplayRun, engine: AsyncEngine, clock: ManualClock, hooks: ReplayHooks,
                start: BatchStart | None, sources: Sequence[Source | AsyncIterator[Item]],
                total: int, progress: Callable[[int, int], None] | None,
                instant: Instant = occurred_at) -> None:
    consumer = IdempotentConsumer(name=run.service, engine=engine, publisher=None,
                                  handle=clocked_handler(clock, hooks.handle, instant),
                                  start_batch=clocked_batch(clock, start, instant))
    batch: list[Incoming] = []

    async def flush() -> None:
        if batch:
            await consumer.process_incoming(batch)
            run.fed += len(batch)
            batch.clear()
            if progress:
                progress(run.fed + run.commands, total)

    async with contextlib.aclosing(merged(sources)) as history:  # its cursors end with it
        async for topic, message in history:
            if topic:
                batch.append(message)
                if len(batch) >= BATCH:
                    await flush()
                continue
            await flush()  # a command of the service's own: after everything before it
            envelope = message.event
            clock.set(envelope.occurred_at)
            try:
                await hooks.commands[envelope.event_type](engine, envelope, clock)
            except Exception as error:  # the comparison will show the difference; go on
                run.refused.append(f"{envelope.event_type} {envelope.event_id}: "
                                   f"{type(error).__name__}: {error}")
            run.commands += 1
    await flush()
    if progress:
        progress(total, total)


def live_instant(live_order: LiveOrder) -> Instant:
    """When live handled the message (its first answer's instant), else when it happened."""
    instants = live_order.instants

    def instant(message: Incoming) -> datetime:
        return instants.get(str(message.event.event_id), message.event.occurred_at)

    return instant


async def _sources(plan: ReplayPlan, hooks: ReplayHooks, handled_in: AsyncEngine | None,
                   producer_urls: Mapping[str, str], engines: dict[str, AsyncEngine],
                   live_order: LiveOrder | None = None) -> list[Source]:
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
        if plan.handles is not None:  # as the live consumer: the other types are never fed
            routed = {t: v for t, v in routed.items() if t in plan.handles}
        sources.append(Source(producer, engine, {t: topic for t, (topic, _) in routed.items()},
                              handled_in=handled_in, live_order=live_order))
    if hooks.commands:
        sources.append(Source(f"{plan.service} (own commands)", engines["live"],
                              dict.fromkeys(hooks.commands, ""), commands_only=True))
    return sources
