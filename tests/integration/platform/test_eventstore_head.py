"""Appending with a known head: the stream's last (version, hash) as the caller read it in its
transaction saves reading it again; a stale or mismatched head can never break the chain."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.chainverify import verify_stream
from shared.eventbatch import PendingEvents
from shared.eventstore import ConcurrencyError, append, read_stream
from tests.integration.platform.test_eventstore import CLOCK, META, confirmed


def counting(engine: AsyncEngine) -> list[str]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    return seen


async def test_a_known_head_is_not_read_again_and_the_chain_holds(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await append(conn, "O-1", 0, [confirmed("O-1", "1.00")], meta=META, clock=CLOCK)
    assert first.head is not None and first.head[0] == 1
    statements = counting(engine)
    async with engine.begin() as conn:
        second = await append(conn, "O-1", 1, [confirmed("O-1", "2.00"), confirmed("O-1", "3.00")],
                              meta=META, clock=CLOCK, head=first.head)
    assert [s for s in statements if "ORDER BY" in s and "stream_version DESC" in s] == []
    assert second.head is not None and second.head[0] == 3
    async with engine.connect() as conn:
        stored = await read_stream(conn, "O-1")
        assert await verify_stream(conn, "O-1") is None
    assert second.head == (3, stored[-1].hash)
    assert stored[1].prev_hash == stored[0].hash


async def test_a_stale_head_collides_like_any_other_writer(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await append(conn, "O-2", 0, [confirmed("O-2")], meta=META, clock=CLOCK)
    async with engine.begin() as conn:  # someone else moves the stream on
        await append(conn, "O-2", 1, [confirmed("O-2", "5.00")], meta=META, clock=CLOCK)
    with pytest.raises(ConcurrencyError) as caught:
        async with engine.begin() as conn:
            await append(conn, "O-2", 1, [confirmed("O-2", "9.00")], meta=META, clock=CLOCK,
                         head=first.head)
    assert (caught.value.expected, caught.value.actual) == (1, 2)
    async with engine.connect() as conn:
        assert len(await read_stream(conn, "O-2")) == 2
        assert await verify_stream(conn, "O-2") is None


async def test_a_head_of_another_version_is_ignored(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await append(conn, "O-3", 0, [confirmed("O-3")], meta=META, clock=CLOCK)
        await append(conn, "O-3", 1, [confirmed("O-3", "2.00")], meta=META, clock=CLOCK)
    async with engine.begin() as conn:  # expected 2, head says 1: the head is read instead
        await append(conn, "O-3", None, [confirmed("O-3", "3.00")], meta=META, clock=CLOCK,
                     head=first.head)
        await append(conn, "O-3", 3, [confirmed("O-3", "4.00")], meta=META, clock=CLOCK,
                     head=first.head)
    async with engine.connect() as conn:
        assert [s.envelope.stream_version for s in await read_stream(conn, "O-3")] == [1, 2, 3, 4]
        assert await verify_stream(conn, "O-3") is None


async def test_a_batch_prepared_on_a_stale_head_collides_and_names_the_stream(
        engine: AsyncEngine) -> None:
    """``PendingEvents`` built (``prepared``, as a worker thread builds a bank import's chunk)
    after a head another writer has since moved: sending it raises ConcurrencyError for that
    stream and version, and nothing of the batch is kept once the transaction rolls back."""
    async with engine.begin() as conn:
        first = await append(conn, "O-5", 0, [confirmed("O-5")], meta=META, clock=CLOCK)
    batch = PendingEvents()
    batch.add("O-6", [confirmed("O-6")], meta=META, key="O-6", now=CLOCK.now())
    assert first.head is not None
    batch.add("O-5", [confirmed("O-5", "7.00")], meta=META, key="O-5", now=CLOCK.now(),
              head=first.head)
    prepared = batch.prepared()
    assert batch.rows == [] and prepared.versions == [("O-6", 1), ("O-5", 2)]
    async with engine.begin() as conn:  # someone else moves O-5 on
        await append(conn, "O-5", 1, [confirmed("O-5", "5.00")], meta=META, clock=CLOCK)
    with pytest.raises(ConcurrencyError) as caught:
        async with engine.begin() as conn:
            await prepared.send(conn)
    assert (caught.value.stream_id, caught.value.expected, caught.value.actual) == ("O-5", 1, 2)
    async with engine.connect() as conn:
        assert await read_stream(conn, "O-6") == []
        assert [e.envelope.payload["total"] for e in await read_stream(conn, "O-5")] == ["10.00", "5.00"]
