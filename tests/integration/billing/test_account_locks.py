"""A batch's accounts are created when missing and locked without writing the existing rows
again, and whoever waited for an account's lock loads it as the lock holder left it."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.billing.account_store import lock_accounts
from tests.integration.row_locks import assert_locked, row_version, waiter_after_holder

TABLE = "billing_orders"


def _order() -> str:
    return f"O-{uuid.uuid4().hex[:12].upper()}"


async def test_existing_accounts_are_locked_without_being_written_again(
        billing_engine: AsyncEngine) -> None:
    old, new = _order(), _order()
    async with billing_engine.begin() as conn:
        await lock_accounts(conn, [old])
    before = await row_version(billing_engine, TABLE, old)
    async with billing_engine.begin() as conn:
        stored = await lock_accounts(conn, [new, old, new])
        # (a row this transaction made is invisible to others: only the existing one is probed)
        await assert_locked(billing_engine, TABLE, old)
    assert sorted(stored) == sorted([old, new])
    assert await row_version(billing_engine, TABLE, old) == before


async def test_who_waited_for_the_lock_loads_what_the_holder_wrote(
        billing_engine: AsyncEngine) -> None:
    existing, created = _order(), _order()
    async with billing_engine.begin() as conn:
        await lock_accounts(conn, [existing])

    async def lock(conn: AsyncConnection) -> dict[str, object]:
        stored = await lock_accounts(conn, [existing, created])
        return {order_id: s.facts["currency"] for order_id, s in stored.items()}

    async def write(conn: AsyncConnection) -> None:
        await conn.execute(text("UPDATE billing_orders SET currency = 'CNY' "
                                "WHERE order_id = ANY(CAST(:o AS text[]))"), {"o": [existing, created]})

    assert await waiter_after_holder(billing_engine, lock, write) == {existing: "CNY",
                                                                     created: "CNY"}
