"""Notify's composition root: consumes order, billing and inventory events; serves the inbox."""

from __future__ import annotations

from fastapi import FastAPI

from services.notify import api, store
from services.notify.handlers import make_handler
from shared.clock import Clock
from shared.contract.topics import BILLING_EVENTS, INVENTORY_EVENTS, ORDER_EVENTS
from shared.service import ServiceContext, ServiceParts, create_app
from shared.settings import OmsSettings

NAME = "notify"
TOPICS: tuple[str, ...] = (ORDER_EVENTS, BILLING_EVENTS, INVENTORY_EVENTS)


def build(ctx: ServiceContext) -> ServiceParts:
    return ServiceParts(topics=TOPICS, handle=make_handler(ctx.clock))


def make_app(settings: OmsSettings | None = None, clock: Clock | None = None,
             database_url: str | None = None) -> FastAPI:
    return create_app(NAME, schema=store.create_schema, build=build, router=api.router,
                      clock=clock, settings=settings, database_url=database_url)
