"""Notify's composition root: consumes order, billing, inventory and reconcile events; delivers.

Also the hook ``oms replay notify`` runs before comparing and swapping (REPLAY_BEFORE_SWAP)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notify import api, store
from services.notify.channels import Channels
from services.notify.config import NotifyConfig, load_rules
from services.notify.handlers import make_batch_start, make_handler
from services.notify.sender import Sender
from shared.audit.carry import carrying_over
from shared.clock import Clock
from shared.contract.payloads import OrderPlaced
from shared.contract.topics import CONSUMED
from shared.db import copy_rows
from shared.logging import get_logger
from shared.service import ServiceContext, ServiceParts, create_app
from shared.settings import OmsSettings

NAME = "notify"
TOPICS: tuple[str, ...] = CONSUMED[NAME]
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

    told: set[str] = set()  # channel fallbacks logged by this process (once each)
    return ServiceParts(topics=TOPICS, handle=make_handler(ctx.clock, rules, setup, told),
                        start_batch=make_batch_start(ctx.clock, rules, setup, told),
                        background=[send_forever],
                        handles=frozenset({OrderPlaced.event_type}) | rules.event_types)


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


# ---- oms replay notify --swap ------------------------------------------------------------------
# The replay rebuilds every notification from the events, but only the live database knows which
# of them the sender delivered (or is still retrying). Before the replay is compared and again
# before it is swapped in, that delivery state is carried over, so that once live the sender
# sends nothing a second time and what was pending in live stays pending (same attempts, same
# next attempt). A notification only the replay has is left as the replay made it when the live
# service had not handled its event yet (it would have sent it too); for an event the live
# service had handled without it (rules or settings changed since), it is never delivered.

NOT_DELIVERED = ("not delivered: `oms replay` made it for an event the live service had already "
                 "handled without it (rules or settings changed since)")
_PAGE = 5000
_STATE = ("source_event_id text, recipient text, channel text, status text, attempts integer, "
          "next_attempt_at timestamptz, failure_reason text, created_at timestamptz, "
          "finished_at timestamptz")
_STATE_COLUMNS = ("source_event_id", "recipient", "channel", "status", "attempts",
                  "next_attempt_at", "failure_reason", "created_at", "finished_at")
_ATTEMPT_COLUMNS = ("id", "notification_id", "attempt", "at", "status", "error")
_TWIN = ("l.source_event_id = n.source_event_id AND l.recipient = n.recipient "
         "AND l.channel = n.channel")


async def _copy(source: AsyncConnection, target: AsyncConnection, table: str, into: str,
                columns: tuple[str, ...]) -> None:
    names = ", ".join(columns)
    await copy_rows(source, target, text(f"SELECT {names} FROM {table}"),
                    text(f"INSERT INTO {into} ({names}) VALUES "
                         f"({', '.join(':' + c for c in columns)})"), _PAGE)


async def carry_over_deliveries(live_url: str, replay_url: str) -> None:
    """Give the replay database the live delivery state of the same (event, recipient, channel)."""
    async with carrying_over(live_url, replay_url, "notifications") as both:
        if both is None:
            return  # notify never ran on the live database: nothing was delivered
        source, target = both
        await target.execute(text(f"CREATE TEMP TABLE live_notifications ({_STATE}) "
                                  "ON COMMIT DROP"))
        await target.execute(text("CREATE TEMP TABLE live_attempts (id bigint, "
                                  "notification_id text, attempt integer, at timestamptz, "
                                  "status text, error text) ON COMMIT DROP"))
        await _copy(source, target, "notifications", "live_notifications", _STATE_COLUMNS)
        await _copy(source, target, "delivery_attempts", "live_attempts", _ATTEMPT_COLUMNS)
        await target.execute(text(
            "UPDATE notifications n SET status = l.status, attempts = l.attempts, "
            "next_attempt_at = l.next_attempt_at, failure_reason = l.failure_reason, "
            "created_at = l.created_at, finished_at = l.finished_at "
            f"FROM live_notifications l WHERE {_TWIN}"))
        await target.execute(text(
            "DELETE FROM delivery_attempts WHERE notification_id IN (SELECT notification_id "
            "FROM live_attempts UNION SELECT n.notification_id FROM notifications n "
            f"JOIN live_notifications l ON {_TWIN})"))
        await target.execute(text(
            "INSERT INTO delivery_attempts (notification_id, attempt, at, status, error) "
            "SELECT notification_id, attempt, at, status, error FROM live_attempts ORDER BY id"))
        only_replayed = (await target.execute(text(
            "SELECT DISTINCT n.source_event_id FROM notifications n WHERE n.status <> 'failed' "
            f"AND NOT EXISTS (SELECT 1 FROM live_notifications l WHERE {_TWIN})"))).scalars().all()
        handled = (await source.execute(text(
            "SELECT message_id::text FROM inbox WHERE message_id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": list(only_replayed)})).scalars().all() if only_replayed else []
        if handled:
            await target.execute(text(
                "UPDATE notifications n SET status = 'failed', failure_reason = :reason, "
                "next_attempt_at = NULL, finished_at = now() WHERE n.status <> 'failed' "
                "AND n.source_event_id = ANY(:ids) AND NOT EXISTS "
                f"(SELECT 1 FROM live_notifications l WHERE {_TWIN})"),
                {"reason": NOT_DELIVERED, "ids": list(handled)})


REPLAY_BEFORE_SWAP = carry_over_deliveries
