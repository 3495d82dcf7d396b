"""One composition root for every service process: database, broker, relay, consumer, HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared import eventstore, gctune, inbox, outbox
from shared.clock import Clock, SystemClock
from shared.contract.topics import ALL_TOPICS, consumer_group, topic_for_event
from shared.db import create_engine, ensure_database, libpq_url
from shared.kafka import Publisher, make_broker, make_publisher, subscribe_batches
from shared.logging import configure_logging, get_logger
from shared.metrics import METRICS
from shared.runtime.embedded import create_topics
from shared.settings import OmsSettings

log = get_logger(__name__)

# A Kafka client that has not stopped after this long is left behind so that the service still
# stops (aiokafka consumers can wait forever on their group coordinator while stopping,
# aio-libs/aiokafka#773). Nothing is lost: offsets not committed are delivered again (the inbox
# drops what it has handled) and events not acknowledged are sent again by the relay.
STOP_SECONDS = 15.0

# Set by ``serve``: only a service's own process tunes the garbage collector once started (an app
# started inside another program, a test run say, leaves that program's collector alone).
_OWN_PROCESS = False


async def stop_within(what: str, stopping: Awaitable[None]) -> None:
    """Wait at most ``STOP_SECONDS`` for ``stopping``; after that it is cancelled and left behind.

    Not ``asyncio.wait_for``: on its timeout that cancels the work and then waits for the work to
    end, which a client that does not end when cancelled (a retry loop that catches the
    cancellation, say) never does, and the service would not stop."""
    task = asyncio.ensure_future(stopping)
    try:
        done, _ = await asyncio.wait({task}, timeout=STOP_SECONDS)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if done:
        task.result()  # its failure is the caller's, as before
        return
    task.cancel()  # not awaited
    log.warning(f"{what} did not stop within {STOP_SECONDS:g}s: left behind (what it had "
                "not acknowledged is delivered or sent again)")

SchemaFn = Callable[[AsyncConnection], Awaitable[None]]


@dataclass
class ServiceContext:
    name: str
    settings: OmsSettings
    engine: AsyncEngine
    publisher: Publisher
    clock: Clock
    database_url: str
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServiceParts:
    """What a service plugs into the shared runtime."""

    topics: Sequence[str]
    handle: inbox.Handler
    # Optional: handles a whole batch at once (bulk loads and writes); same effect as ``handle``.
    start_batch: inbox.BatchStart | None = None
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = ()
    # Awaited once before consuming starts (load reference data, warm caches).
    startup: Callable[[], Coroutine[Any, Any, None]] | None = None
    # The event types the handler acts on (None: every one). Others on the oms.* topics are
    # skipped before they are decoded or claimed (a replay skips them alike).
    handles: frozenset[str] | None = None
    # More /metrics lines in the Prometheus text format, read at each scrape (gauges).
    metrics: Callable[[], str] | None = None


BuildFn = Callable[[ServiceContext], ServiceParts]


async def prepare_database(url: str, service_schema: SchemaFn | None) -> AsyncEngine:
    await ensure_database(url)
    engine = create_engine(url)
    async with engine.begin() as conn:
        await eventstore.ensure_schema(conn)
        await outbox.ensure_schema(conn)
        await inbox.ensure_schema(conn)
        if service_schema is not None:
            await service_schema(conn)
    return engine


def create_app(name: str, *, schema: SchemaFn, build: BuildFn, router: APIRouter | None = None,
               clock: Clock | None = None, settings: OmsSettings | None = None,
               database_url: str | None = None) -> FastAPI:
    """The FastAPI app of one service; its lifespan runs the relay, consumer and jobs.

    ``settings``, ``clock`` and ``database_url`` are injectable for tests; by default they come
    from the environment (OMS_*), the system clock and OMS_<SERVICE>_DATABASE_URL.
    """
    settings = settings or OmsSettings()
    configure_logging(settings.log_format, settings.log_level, service=name,
                      instance=settings.instance)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        url = database_url or settings.service_database_url(name)
        if not url:
            raise RuntimeError(f"no database for {name}: set OMS_DATABASE_URL or use `oms run`")
        assert settings.kafka_bootstrap, "OMS_KAFKA_BOOTSTRAP is required"
        engine = await prepare_database(url, schema)
        await create_topics(settings.kafka_bootstrap, ALL_TOPICS, settings.topic_partitions)
        publisher = make_publisher(settings)
        await publisher.start()
        ctx = ServiceContext(name, settings, engine, publisher, clock or SystemClock(), url)
        parts = build(ctx)
        if parts.startup is not None:
            await parts.startup()
        app.state.ctx = ctx
        app.state.metrics = parts.metrics
        relay = outbox.OutboxRelay(
            engine, publisher, name=name,
            topic_for=lambda e: topic_for_event(name, e.event_type),
            listen_url=libpq_url(url), poll_seconds=settings.relay_poll_seconds,
        )
        app.state.relay = relay
        if settings.republish_on_start:
            await relay.reset()
        tasks = [asyncio.create_task(relay.run(), name=f"{name}-relay")]
        tasks += [asyncio.create_task(job(), name=f"{name}-job") for job in parts.background]
        broker = make_broker(settings)
        consumer = inbox.IdempotentConsumer(
            name=name, engine=engine, publisher=publisher, handle=parts.handle,
            start_batch=parts.start_batch, handles=parts.handles,
        )
        if parts.topics:
            subscribe_batches(broker, parts.topics, group_id=consumer_group(name),
                              on_batch=consumer.process, max_records=settings.consumer_batch_size,
                              fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
                              batch_timeout_ms=settings.kafka_batch_timeout_ms,
                              session_timeout_ms=settings.kafka_session_timeout_ms)
        await consumer.flush_dead_letters()
        await broker.start()
        if _OWN_PROCESS:
            gctune.tune(settings.gc_threshold)
        log.info("service started", topics=list(parts.topics))
        try:
            yield
        finally:
            await stop_within("the Kafka consumers", broker.stop())
            for task in tasks:
                task.cancel()
            # Bounded too: a job that lost its cancellation (see the relay's wait) must not keep
            # the service from stopping.
            ended, running = await asyncio.wait(tasks, timeout=STOP_SECONDS)
            for task in ended:  # retrieved, as gather did (no "exception never retrieved")
                if not task.cancelled():
                    task.exception()
            if running:
                log.warning(f"jobs did not stop within {STOP_SECONDS:g}s of being cancelled: "
                            "left behind", jobs=sorted(t.get_name() for t in running))
            await stop_within("the Kafka producer", publisher.stop())
            await engine.dispose()
            log.info("service stopped")

    app = FastAPI(title=f"OMS {name} service", lifespan=lifespan)

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, Any]:
        ctx: ServiceContext = app.state.ctx
        async with ctx.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"service": name, "status": "ok", "published": app.state.relay.published}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics() -> str:
        own: Callable[[], str] | None = getattr(app.state, "metrics", None)
        return METRICS.render() + gctune.render() + (own() if own is not None else "")

    if router is not None:
        app.include_router(router)
    return app


async def context(request: Request) -> ServiceContext:
    """FastAPI dependency: the running service's context. (The dependencies are ``async``: FastAPI
    runs a plain ``def`` dependency in a worker thread, two or three thread hops per request.)"""
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def serve(app_path: str, name: str) -> None:
    """Run one service process (``python -m services.<name>``); ``app_path`` names a factory."""
    import uvicorn

    global _OWN_PROCESS
    _OWN_PROCESS = True
    settings = OmsSettings()
    uvicorn.run(app_path, factory=True, host=settings.http_host, port=settings.http_port(name),
                log_level="warning", lifespan="on")
