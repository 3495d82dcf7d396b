"""Fact sheets are created when missing and locked, without writing the existing ones again, and
whoever waited for a sheet's lock works on the sheet as the lock holder left it."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.reconcile import store
from tests.integration.row_locks import assert_locked, row_version, waiter_after_holder
from tests.unit.reconcile.samples import AT, new_order_id

TABLE = "order_fact_sheets"


async def test_new_sheets_are_created_and_existing_ones_are_not_written_again(
        reconcile_engine: AsyncEngine) -> None:
    old, new = new_order_id(), new_order_id()
    async with reconcile_engine.begin() as conn:
        await store.lock_sheets(conn, [old], AT)
    before = await row_version(reconcile_engine, TABLE, old)
    async with reconcile_engine.begin() as conn:
        rows = await store.lock_sheets(conn, [new, old, new], AT)
        await assert_locked(reconcile_engine, TABLE, old)
    assert sorted((r.order_id, r.inserted) for r in rows) == sorted([(old, False), (new, True)])
    assert all(r.status == "pending" and list(r.open_kinds) == [] for r in rows)
    # the lock wrote no new version of the existing sheet (the old upsert did, every batch)
    assert await row_version(reconcile_engine, TABLE, old) == before


async def test_a_single_sheet_is_locked_until_the_transaction_ends(
        reconcile_engine: AsyncEngine) -> None:
    order_id = new_order_id()
    async with reconcile_engine.begin() as conn:
        await store.lock_sheets(conn, [order_id], AT)
    async with reconcile_engine.begin() as holder:
        row = await store.lock_sheet(holder, order_id, AT)
        await assert_locked(reconcile_engine, TABLE, order_id)
    assert row.order_id == order_id and not row.inserted


async def test_who_waited_for_the_lock_reads_what_the_holder_wrote(
        reconcile_engine: AsyncEngine) -> None:
    """Also for a sheet the holder itself created: the waiter's insert conflicts with a row its
    own statement's snapshot cannot see."""
    existing, created = new_order_id(), new_order_id()
    async with reconcile_engine.begin() as conn:
        await store.lock_sheets(conn, [existing], AT)

    async def lock(conn: AsyncConnection) -> list[tuple[str, str, bool]]:
        rows = await store.lock_sheets(conn, [existing, created], AT)
        return sorted((r.order_id, r.status, r.inserted) for r in rows)

    async def write(conn: AsyncConnection) -> None:
        await conn.execute(text("UPDATE order_fact_sheets SET status = 'consistent' "
                                "WHERE order_id = ANY(CAST(:o AS text[]))"), {"o": [existing, created]})

    seen = await waiter_after_holder(reconcile_engine, lock, write)
    assert seen == sorted([(existing, "consistent", False), (created, "consistent", False)])
