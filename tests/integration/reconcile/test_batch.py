"""Reconcile's batch work (bulk lock and load, fold in memory, one executemany) has exactly the
effect of handling each event alone: same fact sheets (every column, times included), same
discrepancies raised and resolved, same events appended."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from itertools import zip_longest
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconcile import store
from services.reconcile.handlers import make_batch_start, make_handler
from shared.audit.clocked import clocked_batch, clocked_handler
from shared.clock import ManualClock
from shared.contract.envelope import EventEnvelope
from shared.inbox import IdempotentConsumer, Incoming
from shared.metrics import METRICS
from shared.service import prepare_database
from tests.conftest import create_database
from tests.unit.reconcile.flows import LIFECYCLES, lifecycle
from tests.unit.reconcile.samples import AT, incoming, new_order_id

GRACE = timedelta(seconds=60)


def interleaved_history() -> list[EventEnvelope]:
    """Two orders of every lifecycle, their events interleaved (as four topics deliver them);
    one shipped order's revenue arrives last, long after the grace, so the batch raises and
    resolves a discrepancy on its own (not through the job)."""
    flows = [lifecycle(name, new_order_id()) for name in sorted(LIFECYCLES) for _ in range(2)]
    late = next(e for flow in flows for e in flow if e.event_type == "revenue.recognized")
    mixed = [e for group in zip_longest(*flows) for e in group if e is not None and e is not late]
    return [*mixed, late]


async def run(engine: AsyncEngine, events: list[EventEnvelope], batched: bool) -> None:
    """Feed ``events``; each is handled at its own instant (10 s apart), as a replay does."""
    clock = ManualClock(AT)
    at = {e.event_id: AT + timedelta(seconds=10 * n) for n, e in enumerate(events)}
    handle, start = make_handler(clock, GRACE), make_batch_start(clock, GRACE)

    def instant(message: Incoming) -> datetime:
        return at[message.event.event_id]

    consumer = IdempotentConsumer(name="reconcile", engine=engine, publisher=None,
                                  handle=clocked_handler(clock, handle, instant),
                                  start_batch=clocked_batch(clock, start, instant) if batched else None)
    size = 9 if batched else 1
    for first in range(0, len(events), size):
        await consumer.process_incoming([incoming(e) for e in events[first:first + size]])


async def contents(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        sheets = [{k: v for k, v in r._mapping.items() if k != "revision"}  # counts saves
                  for r in await conn.execute(
                      text("SELECT * FROM order_fact_sheets ORDER BY order_id"))]
        found = [dict(r._mapping) for r in await conn.execute(text(
            "SELECT order_id, kind, reason, expected, actual, since, detected_at, resolved_at "
            "FROM discrepancies ORDER BY order_id, kind, detected_at"))]
        appended = [tuple(r) for r in await conn.execute(text(
            "SELECT stream_id, stream_version, event_type, occurred_at FROM events "
            "ORDER BY stream_id, stream_version"))]
        open_items = [dict(r._mapping) for r in await conn.execute(text(
            "SELECT * FROM report_orders ORDER BY order_id"))]
        invoices = [dict(r._mapping) for r in await conn.execute(text(
            "SELECT * FROM bank_invoices ORDER BY voucher_number"))]
    return {"sheets": sheets, "discrepancies": found, "events": appended,
            "open_items": open_items, "invoices": invoices}


async def test_a_batch_has_the_effect_of_each_event_alone(postgres_url: str,
                                                          reconcile_engine: AsyncEngine) -> None:
    events = interleaved_history()
    other = await prepare_database(
        await create_database(postgres_url, f"t_{uuid.uuid4().hex[:12]}"), store.create_schema)
    fallbacks = METRICS.value("oms_consumer_batch_fallbacks_total", consumer="reconcile")
    try:
        await run(reconcile_engine, events, batched=False)
        await run(other, events, batched=True)
        alone, together = await contents(reconcile_engine), await contents(other)
    finally:
        await other.dispose()
    assert METRICS.value("oms_consumer_batch_fallbacks_total", consumer="reconcile") == fallbacks
    assert len(alone["sheets"]) == 2 * len(LIFECYCLES)
    assert alone["discrepancies"], "the late revenue should have raised a discrepancy"
    assert any(d["resolved_at"] is not None for d in alone["discrepancies"])
    for part in ("sheets", "discrepancies", "events", "open_items", "invoices"):
        assert len(together[part]) == len(alone[part]), part
        for mine, theirs in zip(together[part], alone[part], strict=True):
            if isinstance(mine, dict):
                assert {k: v for k, v in mine.items() if theirs.get(k) != v} == {}, (part, theirs)
            assert mine == theirs, part
