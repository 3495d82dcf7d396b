"""Fact sheets are created when missing and locked, without writing the existing ones again, and
whoever waited for a sheet's lock works on the sheet as the lock holder left it."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconcile import store
from tests.unit.reconcile.samples import AT, new_order_id


async def _row_version(engine: AsyncEngine, order_id: str) -> str:
    async with engine.connect() as conn:
        return str((await conn.execute(
            text("SELECT xmin::text FROM order_fact_sheets WHERE order_id = :o"),
            {"o": order_id})).scalar_one())


async def test_new_sheets_are_created_and_existing_ones_are_not_written_again(
        reconcile_engine: AsyncEngine) -> None:
    old, new = new_order_id(), new_order_id()
    async with reconcile_engine.begin() as conn:
        await store.lock_sheets(conn, [old], AT)
    before = await _row_version(reconcile_engine, old)
    async with reconcile_engine.begin() as conn:
        rows = await store.lock_sheets(conn, [new, old, new], AT)
    assert sorted((r.order_id, r.inserted) for r in rows) == sorted([(old, False), (new, True)])
    assert all(r.status == "pending" and list(r.open_kinds) == [] for r in rows)
    # the lock wrote no new version of the existing sheet (the old upsert did, every batch)
    assert await _row_version(reconcile_engine, old) == before


async def test_a_sheet_is_locked_until_the_transaction_ends(reconcile_engine: AsyncEngine) -> None:
    order_id = new_order_id()
    async with reconcile_engine.begin() as conn:
        await store.lock_sheets(conn, [order_id], AT)
    async with reconcile_engine.begin() as holder:
        await store.lock_sheet(holder, order_id, AT)
        async with reconcile_engine.connect() as other:
            await other.execute(text("SET lock_timeout = '200ms'"))
            try:
                await other.execute(text("SELECT 1 FROM order_fact_sheets WHERE order_id = :o "
                                         "FOR UPDATE"), {"o": order_id})
            except Exception as error:  # lock_not_available
                assert "lock timeout" in str(error)
            else:
                raise AssertionError("the sheet was not locked")


async def test_who_waited_for_the_lock_reads_what_the_holder_wrote(
        reconcile_engine: AsyncEngine) -> None:
    """Also for a sheet the holder itself created: the waiter's insert conflicts with a row its
    own statement's snapshot cannot see."""
    existing, created = new_order_id(), new_order_id()
    async with reconcile_engine.begin() as conn:
        await store.lock_sheets(conn, [existing], AT)
    holder_locked = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with reconcile_engine.begin() as conn:
            await store.lock_sheets(conn, [existing, created], AT)
            holder_locked.set()
            await release.wait()
            await conn.execute(text("UPDATE order_fact_sheets SET status = 'consistent' "
                                    "WHERE order_id = ANY(CAST(:o AS text[]))"),
                               {"o": [existing, created]})

    async def waiter() -> list[tuple[str, str, bool]]:
        await holder_locked.wait()
        async with reconcile_engine.begin() as conn:
            rows = await store.lock_sheets(conn, [existing, created], AT)
        return sorted((r.order_id, r.status, r.inserted) for r in rows)

    holding = asyncio.create_task(holder())
    waiting = asyncio.create_task(waiter())
    await holder_locked.wait()
    await asyncio.sleep(0.3)  # the waiter is blocked on the holder's locks by now
    assert not waiting.done()
    release.set()
    await holding
    assert await waiting == sorted([(existing, "consistent", False), (created, "consistent", False)])
