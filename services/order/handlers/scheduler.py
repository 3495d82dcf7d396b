"""Timers on the injected clock: escalate overdue approvals, complete delivered orders."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from services.order import store
from services.order.domain import fulfilment, lifecycle
from services.order.handlers.common import OrderDeps, commit
from shared import periodic
from shared.contract.envelope import SYSTEM
from shared.eventstore import ConcurrencyError, Meta
from shared.logging import get_logger

log = get_logger(__name__)


def _meta(order_id: str, why: str) -> Meta:
    return Meta(correlation_id=order_id, actor=SYSTEM, causation_id=f"scheduler:{why}")


async def escalate_overdue(deps: OrderDeps, engine: AsyncEngine) -> int:
    """One pass: every approval past its SLA is escalated (once per SLA period)."""
    escalated = 0
    async with engine.connect() as conn:
        waiting = await store.waiting_approvals(conn)
    for order_id in waiting:
        try:
            async with engine.begin() as conn:
                state = await store.load_order(conn, order_id)
                decided = lifecycle.escalate_if_overdue(state, deps.clock.now())
                await commit(deps, conn, state, decided, _meta(order_id, "escalation"))
                escalated += len(decided)
        except ConcurrencyError:
            continue  # someone decided meanwhile; the next pass looks again
    return escalated


async def complete_delivered(deps: OrderDeps, engine: AsyncEngine) -> int:
    """Delivered orders whose return window has passed without an open return are completed."""
    done = 0
    async with engine.connect() as conn:
        due = await store.delivered_before(conn, deps.clock.now() - deps.return_window)
    for order_id in due:
        try:
            async with engine.begin() as conn:
                state = await store.load_order(conn, order_id)
                if "complete" not in lifecycle.allowed_actions(state):
                    continue
                decided = fulfilment.complete(state, deps.clock.now(), reason="return window passed")
                await commit(deps, conn, state, decided, _meta(order_id, "completion"))
                done += len(decided)
        except ConcurrencyError:
            continue
    return done


async def run_scheduler(deps: OrderDeps, engine: AsyncEngine, every_seconds: float) -> None:
    async def step() -> None:
        escalated = await escalate_overdue(deps, engine)
        completed = await complete_delivered(deps, engine)
        if escalated or completed:
            log.info("scheduler pass", escalated=escalated, completed=completed)

    await periodic.every(every_seconds, step, log, "scheduler pass failed")
