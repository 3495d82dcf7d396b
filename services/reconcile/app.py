"""Reconcile's composition root: consumes every service's order events, raises discrepancies.

``oms replay reconcile`` carries the imported bank statements over from the live database
(REPLAY_BEFORE_SWAP, ``bank/replay.py``): they are people's input, not derived from events; and
it raises the discrepancies live raised, when live raised them (REPLAY_SETUP, ``recorded.py``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from functools import partial

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconcile import api, reports, store
from services.reconcile.bank import api as bank_api
from services.reconcile.bank.matching import MatchPolicy
from services.reconcile.bank.replay import carry_over_statements
from services.reconcile.handlers import (
    make_batch_start,
    make_handler,
    raise_as_recorded,
    run_discrepancy_job,
    watch_silences,
)
from services.reconcile.recorded import JOB_RAISE, RecordedRaises, read_raises
from shared.audit.replay import ReplayCommand, ReplayHooks
from shared.audit.sources import has_table
from shared.clock import Clock
from shared.contract.topics import CONSUMED
from shared.lag import ConsumerLag
from shared.lagshare import instance_id, share_forever
from shared.service import ServiceContext, ServiceParts, create_app
from shared.settings import OmsSettings
from shared.silence import Silences

NAME = "reconcile"
TOPICS: tuple[str, ...] = CONSUMED[NAME]
REPLAY_BEFORE_SWAP = carry_over_statements


async def replay_setup(ctx: ServiceContext, live: AsyncEngine, hooks: ReplayHooks) -> ReplayHooks:
    """Raise what live raised (its discrepancy.detected events), at the facts that caused them
    and, for the grace-period job's, at the instants live ran it; nothing else is raised."""
    recorded = RecordedRaises()
    async with live.connect() as conn:
        if await has_table(conn, "discrepancies"):
            recorded = await read_raises(conn)
    grace = timedelta(seconds=ctx.settings.reconcile_grace_seconds)
    commands: dict[str, ReplayCommand] = {
        **hooks.commands, JOB_RAISE: partial(raise_as_recorded, grace=grace, recorded=recorded)}
    return replace(hooks, handle=make_handler(ctx.clock, grace, recorded=recorded),
                   start_batch=make_batch_start(ctx.clock, grace, recorded=recorded),
                   commands=commands, records=(*hooks.records, *recorded.job),
                   report=recorded.report)


REPLAY_SETUP = replay_setup


def horizon_metrics(lag: ConsumerLag) -> str:
    """How far behind reconcile judges its facts (what its raises wait for, on top of the
    grace), which services' answers come late and which have gone silent while owing answers:
    what ``raises_deferred`` holds back."""
    lines = [f"oms_reconcile_behind_seconds {lag.behind():.3f}",
             f"oms_reconcile_consumer_lag_seconds {lag.own():.3f}",
             f"oms_reconcile_other_instances_behind_seconds {lag.elsewhere():.3f}"]
    lines += [f'oms_reconcile_answer_seconds{{topic="{topic}",event_type="{event_type}"}} '
              f"{took:.3f}" for (topic, event_type), took in sorted(lag.answer_times().items())]
    lines += [f'oms_reconcile_silent_seconds{{topic="{topic}"}} {seconds:.3f}'
              for topic, seconds in sorted(lag.silent().items())]
    return "\n".join(lines) + "\n"


def make_app(settings: OmsSettings | None = None, clock: Clock | None = None,
             database_url: str | None = None, grace: timedelta | None = None,
             bank_policy: MatchPolicy | None = None) -> FastAPI:
    """``grace`` overrides the settings' OMS_RECONCILE_GRACE_SECONDS (tests); ``bank_policy``
    the bank matching window and tolerance (else OMS_BANK_MATCH_WINDOW_DAYS / _TOLERANCE)."""

    def build(ctx: ServiceContext) -> ServiceParts:
        chosen = grace if grace is not None else timedelta(seconds=ctx.settings.reconcile_grace_seconds)
        ctx.state["grace"] = chosen
        ctx.state["bank_policy"] = bank_policy or bank_api.default_policy()
        # How far behind the facts reconcile sees are (its own lag, how late answers come): its
        # grace counts from there. 20,000 of one event in 64: minutes of a busy stream.
        # A producer silent while it owes answers (down, stuck) holds raises back too: its
        # orders are not lost, and one outage must not become a discrepancy per order.
        cap = ctx.settings.reconcile_silence_cap_seconds
        lag = ConsumerLag(remember=20_000, silences=Silences(cap=cap) if cap else None)
        ctx.state["lag"] = lag
        return ServiceParts(
            topics=TOPICS, handle=make_handler(ctx.clock, chosen, lag),
            start_batch=make_batch_start(ctx.clock, chosen, lag),
            background=[partial(run_discrepancy_job, ctx.engine, ctx.clock, chosen,
                                ctx.settings.scheduler_seconds, lag),
                        partial(watch_silences, lag, chosen),
                        # several instances: each one's horizon counts for all (shared/lagshare.py)
                        partial(share_forever, ctx.engine, lag, NAME,
                                instance_id(ctx.settings.instance))],
            metrics=partial(horizon_metrics, lag),
        )

    app = create_app(NAME, schema=store.create_schema, build=build, router=api.router,
                     clock=clock, settings=settings, database_url=database_url)
    app.include_router(bank_api.router)
    app.include_router(reports.router)
    return app
