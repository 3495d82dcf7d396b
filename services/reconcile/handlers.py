"""Reconcile's application layer: add each event's fact to the order's sheet, re-assess it, and
raise or resolve discrepancies; the grace-period job raises those that outlast the grace."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.reconcile import store
from services.reconcile.bank.handlers import keep_open_items
from services.reconcile.domain import (
    FACT_EVENT_TYPES,
    OrderFacts,
    apply_event,
    assess,
    review,
    status_since,
)
from shared.clock import Clock
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import DiscrepancyDetected, DiscrepancyResolved, Payload
from shared.eventstore import Meta, append
from shared.inbox import Handler, Incoming
from shared.logging import get_logger

log = get_logger(__name__)


def make_handler(clock: Clock, grace: timedelta) -> Handler:
    """The consumer handler; the inbox gives it an open transaction (it opens none itself)."""

    async def handle(conn: AsyncConnection, incoming: Incoming) -> None:
        await keep_open_items(conn, incoming.event)  # the open items bank lines are matched to
        await handle_event(conn, incoming.event, clock, grace)

    return handle


async def handle_event(conn: AsyncConnection, event: EventEnvelope, clock: Clock,
                       grace: timedelta) -> None:
    order_id = event.order_id
    if event.event_type not in FACT_EVENT_TYPES or order_id is None:
        return
    row = await store.lock_sheet(conn, order_id, clock.now())
    facts = apply_event(store.facts_from_row(row), str(event.event_id), event.event_type,
                        event.payload, event.stream_version)
    meta = Meta(correlation_id=event.correlation_id, causation_id=str(event.event_id), actor=SYSTEM)
    await settle(conn, row, facts, clock, grace, meta)


async def settle(conn: AsyncConnection, row: Any, facts: OrderFacts, clock: Clock, grace: timedelta,
                 meta: Meta) -> int:
    """Assess the order, append discrepancy events as the review decides, save the sheet.

    Returns how many discrepancies were raised or resolved.
    """
    now = clock.now()
    assessment = assess(facts)
    decided = review(facts.order_id, assessment, store.finding_since_from_row(row),
                     set(row.open_kinds), now, grace)
    outgoing: list[Payload] = [*decided.detected, *decided.resolved]
    appended = await append(conn, facts.order_id, None, outgoing, meta=meta, clock=clock,
                            key=facts.order_id)
    reasons = {f.kind: f.reason for f in assessment.findings}
    for payload, envelope in zip(outgoing, appended, strict=True):
        if isinstance(payload, DiscrepancyDetected):
            await store.record_detected(conn, payload, reason=reasons[payload.kind],
                                        event_id=envelope.event_id, now=now)
            log.warning("discrepancy detected", order_id=facts.order_id, kind=payload.kind,
                        expected=payload.expected, actual=payload.actual)
        elif isinstance(payload, DiscrepancyResolved):
            await store.record_resolved(conn, payload, event_id=envelope.event_id)
            log.info("discrepancy resolved", order_id=facts.order_id, kind=payload.kind)
    await store.save_sheet(
        conn, facts, assessment, finding_since=decided.finding_since,
        unraised_since=decided.unraised_since,
        status_since=status_since(row.status, row.status_since, assessment.status, now), now=now,
    )
    return len(outgoing)


async def raise_overdue_discrepancies(engine: AsyncEngine, clock: Clock, grace: timedelta) -> int:
    """One pass of the job: every disagreement found longer than ``grace`` ago is raised.

    Facts only change when events arrive (the handler reviews then); time passing without events
    is what this pass is for. Returns how many discrepancies were raised or resolved.
    """
    async with engine.connect() as conn:
        due = await store.orders_due(conn, clock.now() - grace)
    changed = 0
    for order_id in due:
        meta = Meta(correlation_id=order_id, actor=SYSTEM, causation_id="reconcile:grace-period")
        try:
            async with engine.begin() as conn:
                row = await store.lock_sheet(conn, order_id, clock.now())
                changed += await settle(conn, row, store.facts_from_row(row), clock, grace, meta)
        except (asyncio.CancelledError, OSError):
            raise
        except Exception as error:  # one unreadable sheet must not stop the others being checked
            log.warning("discrepancy check failed for an order", order_id=order_id, error=str(error))
    return changed


async def run_discrepancy_job(engine: AsyncEngine, clock: Clock, grace: timedelta,
                              every_seconds: float) -> None:
    while True:
        try:
            changed = await raise_overdue_discrepancies(engine, clock, grace)
            if changed:
                log.info("discrepancy pass", changed=changed)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the database may be away; try again next period
            log.warning("discrepancy pass failed", error=str(error))
        await asyncio.sleep(every_seconds)
