"""Wiring of the order service: storefront intake, results from other services, HTTP, scheduler."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from fastapi import FastAPI

from services.order import api, catalog_api, catalog_store, commands_api, duplicate_store, store
from services.order.domain.approval import RuleSet
from services.order.domain.catalog import DEMO_CATALOG, CatalogRef, parse_catalog
from services.order.domain.rules_file import load_rules
from services.order.handlers import HANDLED, OrderDeps, handle
from services.order.handlers.batch import make_batch_start
from services.order.handlers.scheduler import run_scheduler
from shared.clock import Clock
from shared.contract.topics import CONSUMED
from shared.logging import get_logger
from shared.service import ServiceContext, ServiceParts, create_app
from shared.settings import OmsSettings

log = get_logger(__name__)


async def create_schema(conn: object) -> None:
    for module in (store, catalog_store, duplicate_store):
        await module.create_schema(conn)  # type: ignore[arg-type]


def build(ctx: ServiceContext) -> ServiceParts:
    settings = ctx.settings
    rules = load_rules(settings.rules_file) if settings.rules_file else RuleSet.empty()
    log.info("approval rules loaded", source=rules.source, version=rules.version, rules=len(rules.rules))
    deps = OrderDeps(catalog=CatalogRef(parse_catalog(DEMO_CATALOG)), clock=ctx.clock, rules=rules,
                     duplicate_window=timedelta(minutes=settings.duplicate_window_minutes),
                     return_window=timedelta(days=settings.return_window_days))
    ctx.state["deps"] = deps
    ctx.state["catalog_ref"] = deps.catalog

    async def load_catalog() -> None:
        """The catalog file (OMS_CATALOG_FILE) is loaded at start; without one, the stored catalog
        is used, seeded from the demo catalog on an empty database."""
        async with ctx.engine.begin() as conn:
            stored = await catalog_store.load_catalog(conn)
            if settings.catalog_file is not None:
                counts = await catalog_store.replace_catalog(conn, parse_catalog(settings.catalog_file),
                                                             now=ctx.clock.now())
                log.info("catalog file loaded", file=str(settings.catalog_file), **counts)
            elif len(stored) == 0:
                await catalog_store.replace_catalog(conn, deps.catalog.current, now=ctx.clock.now())
            deps.catalog.current = await catalog_store.load_catalog(conn)
        log.info("catalog ready", skus=len(deps.catalog.current))

    return ServiceParts(
        topics=CONSUMED["order"],
        handle=partial(handle, deps),
        start_batch=make_batch_start(deps),
        handles=HANDLED,  # on the oms.* topics; storefront messages are always handled
        startup=load_catalog,
        background=[partial(run_scheduler, deps, ctx.engine, settings.scheduler_seconds),
                    # a catalog loaded by `oms catalog load` or another instance takes effect here
                    partial(catalog_store.follow_catalog, ctx.engine, deps.catalog)],
    )


def make_app(settings: OmsSettings | None = None, clock: Clock | None = None,
             database_url: str | None = None) -> FastAPI:
    app = create_app("order", schema=create_schema, build=build, router=api.router, clock=clock,
                     settings=settings, database_url=database_url)
    app.include_router(commands_api.router)
    app.include_router(catalog_api.router)
    return app
