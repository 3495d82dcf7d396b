"""Checks shared by the tests of "create when missing, lock, read" statements (reconcile's fact
sheets, billing's accounts): a row's version, whether it is locked, and a waiter that must see
what the lock's holder wrote."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

T = TypeVar("T")


async def row_version(engine: AsyncEngine, table: str, order_id: str) -> str:
    """The row's ``xmin``: it changes when a new version of the row is written."""
    async with engine.connect() as conn:
        return str((await conn.execute(
            text(f"SELECT xmin::text FROM {table} WHERE order_id = :o"), {"o": order_id}
        )).scalar_one())


async def assert_locked(engine: AsyncEngine, table: str, order_id: str) -> None:
    """Another session cannot lock the (committed) row within 200 ms."""
    async with engine.connect() as other:
        await other.execute(text("SET lock_timeout = '200ms'"))
        try:
            await other.execute(text(f"SELECT 1 FROM {table} WHERE order_id = :o FOR UPDATE"),
                                {"o": order_id})
        except Exception as error:  # lock_not_available
            assert "lock timeout" in str(error)
        else:
            raise AssertionError(f"{table} row {order_id} was not locked")


async def waiter_after_holder(engine: AsyncEngine, lock: Callable[[AsyncConnection], Awaitable[T]],
                              write: Callable[[AsyncConnection], Awaitable[object]]) -> T:
    """A holder takes the locks (``lock``), waits, then ``write``s and commits; a waiter calls
    ``lock`` meanwhile, is checked to be blocked, and returns what its ``lock`` gave it."""
    holder_locked, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with engine.begin() as conn:
            await lock(conn)
            holder_locked.set()
            await release.wait()
            await write(conn)

    async def waiter() -> T:
        await holder_locked.wait()
        async with engine.begin() as conn:
            return await lock(conn)

    holding = asyncio.create_task(holder())
    waiting = asyncio.create_task(waiter())
    await holder_locked.wait()
    await asyncio.sleep(0.3)  # the waiter is blocked on the holder's locks by now
    assert not waiting.done(), "the waiter did not wait for the holder's locks"
    release.set()
    await holding
    return await waiting
