"""Reconcile's application layer: add each event's fact to the order's sheet and re-assess it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from services.reconcile import store
from services.reconcile.domain import FACT_EVENT_TYPES, apply_event, assess, status_since
from shared.clock import Clock
from shared.contract.envelope import EventEnvelope
from shared.inbox import Handler, Incoming


def make_handler(clock: Clock) -> Handler:
    """The consumer handler; the inbox gives it an open transaction (it opens none itself)."""

    async def handle(conn: AsyncConnection, incoming: Incoming) -> None:
        await handle_event(conn, incoming.event, clock)

    return handle


async def handle_event(conn: AsyncConnection, event: EventEnvelope, clock: Clock) -> None:
    order_id = event.order_id
    if event.event_type not in FACT_EVENT_TYPES or order_id is None:
        return
    now = clock.now()
    row = await store.lock_facts(conn, order_id, now)
    facts = apply_event(store.facts_from_row(row), str(event.event_id), event.event_type,
                        event.payload)
    assessment = assess(facts)
    since = status_since(row.status, row.status_since, assessment.status, now)
    await store.save_facts(conn, facts, assessment, since=since, now=now)
