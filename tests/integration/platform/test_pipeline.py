"""Statements sent together in one round trip (``shared.pipeline``) on a real PostgreSQL: each
gives what it gives alone, in order; a read sent after a lock sees what the lock's last holder
committed (each statement its own snapshot); a failure is SQLAlchemy's error and aborts the
transaction, as for a statement sent alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.pipeline import Query, pipelined, run
from shared.streamlocks import lock_streams_query

_NOTES = text("SELECT body FROM notes ORDER BY body")


def _bodies(rows: Sequence[Any]) -> list[str]:
    return [row.body for row in rows]


async def _notes_table(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE notes (body text PRIMARY KEY)"))
        await conn.execute(text("INSERT INTO notes VALUES ('a'), ('b')"))


async def test_each_query_gives_what_it_gives_alone_in_order(engine: AsyncEngine) -> None:
    await _notes_table(engine)
    queries: list[Query[Any]] = [
        Query(_NOTES, {}, _bodies),
        Query(text("INSERT INTO notes VALUES (:body)"), {"body": "c"}),
        Query(_NOTES, {}, _bodies),  # runs after the insert: sees it
        Query(text("SELECT count(*) AS n FROM notes WHERE body = ANY(CAST(:wanted AS text[]))"),
              {"wanted": ["a", "c", "z"]}, lambda rows: rows[0].n),
    ]
    async with engine.begin() as conn:  # the first statements of a transaction
        together = await pipelined(conn, queries)
    assert together == [["a", "b"], None, ["a", "b", "c"], 2]
    async with engine.begin() as conn:
        assert await run(conn, queries[0]) == ["a", "b", "c"]  # the insert was committed
        assert await pipelined(conn, queries[:1]) == [["a", "b", "c"]]
        assert await pipelined(conn, []) == []


async def test_a_read_sent_with_a_lock_sees_what_the_last_holder_committed(
        engine: AsyncEngine) -> None:
    """The consumer's batch and the relay send their lock and their reads together. Each
    statement takes its own snapshot, so the reads see what the holder they waited for committed;
    folded into one statement they would read what was there before the wait."""
    await _notes_table(engine)
    async with engine.connect() as holder:
        await holder.begin()
        await run(holder, lock_streams_query(["O-1"]))
        await holder.execute(text("INSERT INTO notes VALUES ('by the holder')"))

        async def waiter() -> list[Any]:
            async with engine.begin() as conn:
                return await pipelined(conn, [lock_streams_query(["O-1"]),
                                              Query(_NOTES, {}, _bodies)])

        waiting = asyncio.create_task(waiter())
        await asyncio.sleep(0.5)
        assert not waiting.done()  # waits for the lock
        await holder.commit()
    _, seen = await asyncio.wait_for(waiting, 10)
    assert seen == ["a", "b", "by the holder"]


async def test_a_failing_statement_raises_sqlalchemys_error_and_aborts_the_transaction(
        engine: AsyncEngine) -> None:
    await _notes_table(engine)
    with pytest.raises(exc.ProgrammingError, match="no_such_table"):
        async with engine.begin() as conn:
            await pipelined(conn, [
                Query(text("INSERT INTO notes VALUES ('c')")),
                Query(text("SELECT * FROM no_such_table")),
                Query(text("INSERT INTO notes VALUES ('d')"))])
    with pytest.raises(exc.IntegrityError):
        async with engine.begin() as conn:
            await pipelined(conn, [Query(text("INSERT INTO notes VALUES ('e')")),
                                   Query(text("INSERT INTO notes VALUES ('a')"))])
    async with engine.connect() as conn:
        assert await run(conn, Query(_NOTES, {}, _bodies)) == ["a", "b"]  # nothing of either
