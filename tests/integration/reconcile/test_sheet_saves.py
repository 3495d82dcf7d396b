"""Settled fact sheets are written together, one statement for the whole batch, and read back
exactly as they were settled: every column, instants to the microsecond, the documents whole."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconcile import store
from services.reconcile.domain import apply_event, assess
from shared.metrics import METRICS
from tests.unit.reconcile.samples import AT, happy_flow, new_order_id


def statements() -> float:
    return METRICS.total("oms_db_statements_total")


async def test_a_batch_of_sheets_is_saved_in_one_statement_and_reads_back_as_settled(
        reconcile_engine: AsyncEngine) -> None:
    orders = [new_order_id() for _ in range(3)]
    now = AT + timedelta(minutes=5, microseconds=123457)
    async with reconcile_engine.begin() as conn:
        sheets = [store.Sheet.from_row(row) for row in await store.lock_sheets(conn, orders, AT)]
        for n, sheet in enumerate(sheets):  # a different point of the flow for each order
            sheet.begin(AT + timedelta(microseconds=n + 1))
            for event in happy_flow(sheet.facts.order_id)[:n + 2]:
                sheet.facts = apply_event(sheet.facts, str(event.event_id), event.event_type,
                                          event.payload, event.stream_version)
            assessment = assess(sheet.facts)
            since = {f.kind: now - timedelta(seconds=n, microseconds=7) for f in assessment.findings}
            unraised = min(since.values()) if since and n < 2 else None  # the last: none
            sheet.settled(assessment, since, unraised, now - timedelta(microseconds=n), now)
        expected = {sheet.facts.order_id: store._saved(sheet) for sheet in sheets}
        before = statements()
        await store.save_sheets(conn, sheets)
        assert statements() - before == 1
    assert any(row["findings"] for row in expected.values())  # the documents are not all empty
    assert any(row["unraised_since"] is None for row in expected.values())
    assert [sheet.revision for sheet in sheets] == [1, 1, 1]  # counted up by the save
    async with reconcile_engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM order_fact_sheets WHERE order_id = "
                                        "ANY(:orders)"), {"orders": orders})).all()
        locked = {row.order_id: row for row in await store.lock_sheets(conn, orders, AT)}
    for row in rows:
        saved = expected[row.order_id]
        assert (row.facts, row.status, list(row.reasons), list(row.findings), row.finding_since,
                row.unraised_since, row.status_since, row.first_seen_at, row.updated_at,
                row.revision) == (
            saved["facts"], saved["status"], saved["reasons"], saved["findings"],
            saved["finding_since"], saved["unraised_since"], saved["status_since"],
            saved["first_seen_at"], saved["updated_at"], 1)
        assert store.Sheet.from_row(locked[row.order_id]).facts == store.facts_from_row(row)


async def test_unsettled_sheets_are_not_written(reconcile_engine: AsyncEngine) -> None:
    async with reconcile_engine.begin() as conn:
        sheets = [store.Sheet.from_row(r)
                  for r in await store.lock_sheets(conn, [new_order_id()], AT)]
        before = statements()
        await store.save_sheets(conn, sheets)
        assert statements() - before == 0
