"""Notify's composition root: consumes order, billing, inventory and reconcile events; delivers."""

from __future__ import annotations

from fastapi import FastAPI

from services.notify import api, store
from services.notify.channels import Channels
from services.notify.config import NotifyConfig, load_rules
from services.notify.handlers import make_handler
from services.notify.sender import Sender
from shared.clock import Clock
from shared.contract.topics import BILLING_EVENTS, INVENTORY_EVENTS, ORDER_EVENTS, RECONCILE_EVENTS
from shared.logging import get_logger
from shared.service import ServiceContext, ServiceParts, create_app
from shared.settings import OmsSettings

NAME = "notify"
TOPICS: tuple[str, ...] = (ORDER_EVENTS, BILLING_EVENTS, INVENTORY_EVENTS, RECONCILE_EVENTS)
CONFIG_KEY = "notify_config"

log = get_logger(__name__)


def build(ctx: ServiceContext) -> ServiceParts:
    """The consumer and the background sender (``oms replay`` uses the consumer only)."""
    config: NotifyConfig = ctx.state.get(CONFIG_KEY) or NotifyConfig()
    rules = load_rules(config.notify_rules_file)
    setup = config.delivery_setup()
    log.info("notification rules loaded", file=rules.source, version=rules.version,
             rules=len(rules.rules), email=setup.email, webhook_secret=setup.webhook_secret)
    sender = Sender(ctx.engine, Channels(config, ctx.clock), ctx.clock, config.retry_policy(),
                    batch=config.notify_send_batch)
    ctx.state["sender"] = sender

    async def send_forever() -> None:
        await sender.run(config.notify_send_poll_seconds)

    return ServiceParts(topics=TOPICS, handle=make_handler(ctx.clock, rules, setup),
                        background=[send_forever])


def make_app(settings: OmsSettings | None = None, clock: Clock | None = None,
             database_url: str | None = None, *, notify: NotifyConfig | None = None) -> FastAPI:
    """``notify`` (tests) overrides OMS_NOTIFY_RULES_FILE, OMS_SMTP_* and the other settings."""
    config = notify or NotifyConfig()
    load_rules(config.notify_rules_file)  # a bad rules file stops the start here, saying why

    def build_configured(ctx: ServiceContext) -> ServiceParts:
        ctx.state[CONFIG_KEY] = config
        return build(ctx)

    return create_app(NAME, schema=store.create_schema, build=build_configured, router=api.router,
                      clock=clock, settings=settings, database_url=database_url)
