"""Billing service wiring: its database schema, the order-events consumer and the HTTP API, and
the hooks ``oms replay billing`` uses (shared/audit/replay.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.billing import api, handlers, store
from shared.audit.replay import ReplayCommand, ReplayHooks
from shared.audit.sources import has_table
from shared.auth import Principal
from shared.clock import Clock, ManualClock
from shared.contract.envelope import EventEnvelope
from shared.contract.topics import CONSUMED
from shared.inbox import BatchStart, BatchWork, Handler, Incoming
from shared.service import ServiceContext, ServiceParts, create_app
from shared.settings import OmsSettings


def build(ctx: ServiceContext) -> ServiceParts:
    return ServiceParts(topics=CONSUMED["billing"],
                        handle=partial(handlers.handle_order_event, clock=ctx.clock),
                        start_batch=handlers.make_batch_start(ctx.clock),
                        handles=handlers.BOOKED)


def make_app(settings: OmsSettings | None = None, clock: Clock | None = None,
             database_url: str | None = None) -> FastAPI:
    return create_app("billing", schema=store.create_schema, build=build, router=api.router,
                      clock=clock, settings=settings, database_url=database_url)


# ---- oms replay billing ------------------------------------------------------------------------
# Voucher numbers (INV/CN, gapless per series and year) are drawn in the order the live service
# handled events, which the replay's time order need not repeat (partitions, lag, instances). So
# the replay gives every event the numbers and the issue time the live service gave it (from the
# live invoice.issued / credit_note.issued events it caused), and starts from the live counters:
# an event the live service has not answered yet draws after every live number, as it would have.


@dataclass(frozen=True, slots=True)
class LiveAnswer:
    at: datetime  # when the live service decided (the invoice's or refund's issued_at)
    first: dict[tuple[str, int], int]  # (series, year) -> the first number it drew


_ANSWERS = text(  # refunds too: their issued_at is the live decision's time as well
    "SELECT causation_id, min(coalesce((payload->>'issued_at')::timestamptz, occurred_at)) AS at,"
    " array_remove(array_agg(payload->>'voucher_number' ORDER BY position), NULL) AS vouchers"
    " FROM events WHERE causation_id IS NOT NULL"
    " AND event_type IN ('invoice.issued', 'credit_note.issued', 'refund.issued')"
    " GROUP BY causation_id")
def _answer(at: datetime, vouchers: list[str]) -> LiveAnswer:
    first: dict[tuple[str, int], int] = {}
    for voucher in vouchers:
        series, year, number = store.voucher_parts(voucher)
        first[(series, year)] = min(number, first.get((series, year), number))
    return LiveAnswer(at, first)


@contextlib.contextmanager
def _as_answered(answers: dict[str, LiveAnswer], clock: ManualClock, event_id: object
                 ) -> Iterator[None]:
    """Around an event the live service answered: its time, and its numbers for the draw."""
    answer = answers.get(str(event_id))
    if answer is None:
        yield
        return
    clock.set(answer.at)
    token = handlers.LIVE_NUMBERS.set(answer.first)
    try:
        yield
    finally:
        handlers.LIVE_NUMBERS.reset(token)


def replay_handle(inner: Handler, answers: dict[str, LiveAnswer], clock: ManualClock) -> Handler:
    """Billing's handler with the live numbers and time of each event it answered live."""

    async def handle(conn: AsyncConnection, incoming: Incoming) -> None:
        with _as_answered(answers, clock, incoming.event.event_id):
            await inner(conn, incoming)

    return handle


class _AnsweredWork:
    """Billing's batch work, each event with the live numbers and time it was answered with."""

    def __init__(self, work: BatchWork, answers: dict[str, LiveAnswer], clock: ManualClock) -> None:
        self.work, self.answers, self.clock = work, answers, clock

    async def handle(self, message: Incoming) -> None:
        with _as_answered(self.answers, self.clock, message.event.event_id):
            await self.work.handle(message)

    async def finish(self) -> None:
        await self.work.finish()


def replay_batch(inner: BatchStart, answers: dict[str, LiveAnswer], clock: ManualClock
                 ) -> BatchStart:
    async def start(conn: AsyncConnection, messages: Sequence[Incoming]) -> BatchWork:
        return _AnsweredWork(await inner(conn, messages), answers, clock)

    return start


async def replay_transfer(engine: AsyncEngine, event: EventEnvelope, clock: ManualClock, *,
                          received: dict[str, datetime] | None = None) -> None:
    """A payment finance entered (``POST /payments``, ``oms billing pay``) again, from its
    payment.recorded; ``received``: the live received_at per payment id (not in the event)."""
    p = event.payload
    transfer = handlers.Transfer(p["order_id"], p["payment_id"], p["method"],
                                 Decimal(str(p["amount"])), p["currency"],
                                 (received or {}).get(p["payment_id"]))
    who = Principal(user=event.actor.id, role=event.actor.role or "finance")
    await handlers.record_transfer(engine, transfer, who, clock)


REPLAY_COMMANDS: dict[str, ReplayCommand] = {"payment.recorded": replay_transfer}


async def replay_setup(ctx: ServiceContext, live: AsyncEngine, hooks: ReplayHooks) -> ReplayHooks:
    """Read the live answers, counters and finance payments' received_at; start from the counters."""
    answers: dict[str, LiveAnswer] = {}
    counters: list[dict[str, Any]] = []
    received: dict[str, datetime] = {}
    async with live.connect() as conn:
        if await has_table(conn, "voucher_counters"):
            answers = {str(r.causation_id): _answer(r.at, list(r.vouchers))
                       for r in await conn.execute(_ANSWERS)}
            counters = [dict(r._mapping) for r in await conn.execute(select(store.voucher_counters))]
            received = {str(r.payment_id): r.received_at for r in await conn.execute(
                select(store.payments.c.payment_id, store.payments.c.received_at)
                .where(store.payments.c.source == "finance"))}
    if counters:
        async with ctx.engine.begin() as conn:
            await conn.execute(insert(store.voucher_counters).values(counters))
    if not isinstance(ctx.clock, ManualClock):
        raise TypeError("a replay runs on a ManualClock")
    return replace(hooks, handle=replay_handle(hooks.handle, answers, ctx.clock),
                   start_batch=None if hooks.start_batch is None
                   else replay_batch(hooks.start_batch, answers, ctx.clock),
                   commands={"payment.recorded": partial(replay_transfer, received=received)})


REPLAY_SETUP = replay_setup
