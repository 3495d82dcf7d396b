"""Wiring of the order service: storefront intake, inventory and billing results, HTTP."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from services.order import api, handlers, store
from services.order.domain.catalog import DEMO_CATALOG, parse_catalog
from shared.clock import Clock
from shared.contract.topics import BILLING_EVENTS, INVENTORY_EVENTS, STOREFRONT_ORDERS
from shared.logging import get_logger
from shared.service import ServiceContext, ServiceParts, create_app
from shared.settings import OmsSettings

log = get_logger(__name__)


def build(ctx: ServiceContext) -> ServiceParts:
    catalog_file = ctx.settings.catalog_file or DEMO_CATALOG
    catalog = parse_catalog(catalog_file)
    log.info("catalog loaded", file=str(catalog_file), skus=len(catalog))
    deps = handlers.OrderDeps(catalog=catalog, clock=ctx.clock)
    ctx.state["deps"] = deps
    return ServiceParts(
        topics=[STOREFRONT_ORDERS, INVENTORY_EVENTS, BILLING_EVENTS],
        handle=partial(handlers.handle, deps),
    )


def make_app(settings: OmsSettings | None = None, clock: Clock | None = None,
             database_url: str | None = None) -> FastAPI:
    return create_app("order", schema=store.create_schema, build=build, router=api.router,
                      clock=clock, settings=settings, database_url=database_url)
