"""Sheets kept in memory between batches (services/reconcile/kept.py) on the real database: a
batch takes a kept sheet's facts only while the database still has the revision it was kept at;
a sheet another instance (or the grace-period job) wrote since is read again."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconcile import store
from services.reconcile.domain import OrderFacts, apply_event, to_document
from services.reconcile.handlers import make_batch_start, make_handler, raise_overdue_discrepancies
from services.reconcile.kept import KeptSheets
from shared.clock import ManualClock
from shared.contract.envelope import EventEnvelope
from shared.inbox import IdempotentConsumer
from shared.metrics import METRICS
from tests.unit.reconcile.flows import lifecycle
from tests.unit.reconcile.samples import AT, incoming, new_order_id

GRACE = timedelta(seconds=60)


def instance(engine: AsyncEngine, clock: ManualClock, kept: KeptSheets) -> IdempotentConsumer:
    return IdempotentConsumer(name="reconcile", engine=engine, publisher=None,
                              handle=make_handler(clock, GRACE),
                              start_batch=make_batch_start(clock, GRACE, kept=kept))


def folded(order_id: str, events: list[EventEnvelope]) -> dict[str, Any]:
    facts = OrderFacts(order_id)
    for e in events:
        facts = apply_event(facts, str(e.event_id), e.event_type, e.payload, e.stream_version)
    return to_document(facts)


async def stored(engine: AsyncEngine, order_id: str) -> tuple[dict[str, Any], int]:
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT facts, revision FROM order_fact_sheets "
                                       "WHERE order_id = :o"), {"o": order_id})).one()
    return row.facts, row.revision


async def test_two_instances_each_keeping_sheets_never_lose_the_others_facts(
        reconcile_engine: AsyncEngine) -> None:
    clock = ManualClock(AT)
    kept_a, kept_b = KeptSheets(), KeptSheets()
    a, b = instance(reconcile_engine, clock, kept_a), instance(reconcile_engine, clock, kept_b)
    order_id = new_order_id()
    events = lifecycle("shipped", order_id)
    assert len(events) >= 8
    reused = METRICS.total("oms_reconcile_sheets_kept_total")

    await a.process_incoming([incoming(e) for e in events[0:2]])
    await a.process_incoming([incoming(e) for e in events[2:4]])  # from what A kept
    assert METRICS.total("oms_reconcile_sheets_kept_total") == reused + 1
    assert kept_a.revisions([order_id]) == {order_id: 2}
    await b.process_incoming([incoming(e) for e in events[4:6]])  # B reads it: revision 3
    await a.process_incoming([incoming(e) for e in events[6:]])  # A's is stale: read again
    assert METRICS.total("oms_reconcile_sheets_kept_total") == reused + 1

    facts, revision = await stored(reconcile_engine, order_id)
    assert facts == folded(order_id, events)  # nothing B added was lost
    assert revision == 4 and kept_a.revisions([order_id]) == {order_id: 4}
    async with reconcile_engine.connect() as conn:
        sheet = await store.fact_sheet(conn, order_id)
    assert sheet is not None and sheet["status"] == "consistent"


async def test_a_sheet_the_grace_period_job_saved_is_read_again(
        reconcile_engine: AsyncEngine) -> None:
    clock = ManualClock(AT)
    kept = KeptSheets()
    consumer = instance(reconcile_engine, clock, kept)
    order_id = new_order_id()
    events = lifecycle("shipped", order_id)
    [revenue] = [e for e in events if e.event_type == "revenue.recognized"]
    rest = [e for e in events if e is not revenue]
    await consumer.process_incoming([incoming(e) for e in rest])
    clock.advance(GRACE)
    assert await raise_overdue_discrepancies(reconcile_engine, clock, GRACE) == 1  # saves it
    _, revision = await stored(reconcile_engine, order_id)
    assert revision == 2 and kept.revisions([order_id]) == {order_id: 1}

    again = replace(incoming(rest[0], 99), message_id=uuid.uuid4())  # (a batch of two)
    reused = METRICS.total("oms_reconcile_sheets_kept_total")
    await consumer.process_incoming([incoming(revenue), again])
    assert METRICS.total("oms_reconcile_sheets_kept_total") == reused  # read again
    facts, revision = await stored(reconcile_engine, order_id)
    assert facts == folded(order_id, events) and revision == 3
    async with reconcile_engine.connect() as conn:
        assert await store.list_discrepancies(conn, order_id=order_id) == []  # resolved


def test_the_least_recently_kept_go_first() -> None:
    kept = KeptSheets(limit=2)
    sheets = [store.Sheet(OrderFacts(f"O-{n}"), "pending", AT, AT, {}, None, set(), False,
                          revision=n) for n in range(3)]
    kept.keep(sheets[:2])
    kept.keep([sheets[0]])  # kept again: now the most recent
    kept.keep([sheets[2]])
    assert kept.revisions(["O-0", "O-1", "O-2"]) == {"O-0": 0, "O-2": 2}
    assert len(kept) == 2


async def test_a_sheet_table_made_before_revisions_gets_the_column(
        reconcile_engine: AsyncEngine) -> None:
    order_id = new_order_id()
    async with reconcile_engine.begin() as conn:
        await conn.execute(text("ALTER TABLE order_fact_sheets DROP COLUMN revision"))
        await conn.execute(text(
            "INSERT INTO order_fact_sheets (order_id, facts, status, reasons, findings,"
            " finding_since, status_since, first_seen_at, updated_at) VALUES"
            " (:o, '{}', 'pending', '[]', '[]', '{}', now(), now(), now())"), {"o": order_id})
        await store.create_schema(conn)
    clock = ManualClock(AT)
    events = lifecycle("shipped", order_id)
    await instance(reconcile_engine, clock, KeptSheets()).process_incoming(
        [incoming(e) for e in events])
    facts, revision = await stored(reconcile_engine, order_id)
    assert facts == folded(order_id, events) and revision == 1
