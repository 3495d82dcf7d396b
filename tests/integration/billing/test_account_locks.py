"""A batch's accounts are created when missing and locked without writing the existing rows
again, and whoever waited for an account's lock loads it as the lock holder left it."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing.account_store import lock_accounts


def _order() -> str:
    return f"O-{uuid.uuid4().hex[:12].upper()}"


async def _row_version(engine: AsyncEngine, order_id: str) -> str:
    async with engine.connect() as conn:
        return str((await conn.execute(
            text("SELECT xmin::text FROM billing_orders WHERE order_id = :o"),
            {"o": order_id})).scalar_one())


async def test_existing_accounts_are_locked_without_being_written_again(
        billing_engine: AsyncEngine) -> None:
    old, new = _order(), _order()
    async with billing_engine.begin() as conn:
        await lock_accounts(conn, [old])
    before = await _row_version(billing_engine, old)
    async with billing_engine.begin() as conn:
        stored = await lock_accounts(conn, [new, old, new])
        # (a row this transaction made is invisible to others: only the existing one is probed)
        async with billing_engine.connect() as other:
            await other.execute(text("SET lock_timeout = '200ms'"))
            try:
                await other.execute(text("SELECT 1 FROM billing_orders WHERE order_id = :o "
                                         "FOR UPDATE"), {"o": old})
            except Exception as error:  # lock_not_available
                assert "lock timeout" in str(error)
            else:
                raise AssertionError("the existing account was not locked")
    assert sorted(stored) == sorted([old, new])
    assert await _row_version(billing_engine, old) == before


async def test_who_waited_for_the_lock_loads_what_the_holder_wrote(
        billing_engine: AsyncEngine) -> None:
    existing, created = _order(), _order()
    async with billing_engine.begin() as conn:
        await lock_accounts(conn, [existing])
    holder_locked, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with billing_engine.begin() as conn:
            await lock_accounts(conn, [existing, created])
            holder_locked.set()
            await release.wait()
            await conn.execute(text("UPDATE billing_orders SET currency = 'CNY' "
                                    "WHERE order_id = ANY(CAST(:o AS text[]))"),
                               {"o": [existing, created]})

    async def waiter() -> dict[str, object]:
        await holder_locked.wait()
        async with billing_engine.begin() as conn:
            stored = await lock_accounts(conn, [existing, created])
        return {order_id: s.facts["currency"] for order_id, s in stored.items()}

    holding = asyncio.create_task(holder())
    waiting = asyncio.create_task(waiter())
    await holder_locked.wait()
    await asyncio.sleep(0.3)  # the waiter is blocked on the holder's locks by now
    assert not waiting.done()
    release.set()
    await holding
    assert await waiting == {existing: "CNY", created: "CNY"}
