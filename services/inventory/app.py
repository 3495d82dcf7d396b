"""Inventory service wiring: its database schema, the order-events consumer and the HTTP API."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from services.inventory import api, handlers, store
from services.inventory.catalog import load_thresholds
from shared.clock import Clock
from shared.contract.topics import ORDER_EVENTS
from shared.logging import get_logger
from shared.service import ServiceContext, ServiceParts, create_app
from shared.settings import OmsSettings

log = get_logger(__name__)


def build(ctx: ServiceContext) -> ServiceParts:
    thresholds = load_thresholds(ctx.settings.catalog_file)
    ctx.state["thresholds"] = thresholds
    log.info("low-stock thresholds loaded", skus=len(thresholds),
             file=str(ctx.settings.catalog_file or "demo catalog"))
    return ServiceParts(topics=[ORDER_EVENTS],
                        handle=partial(handlers.handle_order_event, clock=ctx.clock,
                                       thresholds=thresholds))


def make_app(settings: OmsSettings | None = None, clock: Clock | None = None,
             database_url: str | None = None) -> FastAPI:
    return create_app("inventory", schema=store.create_schema, build=build, router=api.router,
                      clock=clock, settings=settings, database_url=database_url)
