"""Billing service wiring: its database schema, the order-events consumer and the HTTP API."""

from __future__ import annotations

from functools import partial

from fastapi import FastAPI

from services.billing import api, handlers, store
from shared.clock import Clock
from shared.contract.topics import ORDER_EVENTS
from shared.service import ServiceContext, ServiceParts, create_app
from shared.settings import OmsSettings


def build(ctx: ServiceContext) -> ServiceParts:
    return ServiceParts(topics=[ORDER_EVENTS],
                        handle=partial(handlers.handle_order_event, clock=ctx.clock))


def make_app(settings: OmsSettings | None = None, clock: Clock | None = None,
             database_url: str | None = None) -> FastAPI:
    return create_app("billing", schema=store.create_schema, build=build, router=api.router,
                      clock=clock, settings=settings, database_url=database_url)
