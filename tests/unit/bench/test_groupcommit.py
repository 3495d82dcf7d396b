"""The group-commit appender keeps each stream's optimistic concurrency and hash chain."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.chainverify import verify_chain
from shared.clock import SystemClock
from shared.contract.envelope import SYSTEM
from shared.contract.payloads import OrderConfirmed
from shared.eventstore import ConcurrencyError, Meta, append, read_stream
from shared.groupcommit import GroupCommitAppender

CLOCK = SystemClock()
META = Meta(correlation_id="test", actor=SYSTEM)


def confirmed(order_id: str) -> OrderConfirmed:
    return OrderConfirmed(order_id=order_id, total=Decimal("10.00"), currency="CNY")


async def test_concurrent_appends_to_one_stream_get_a_concurrency_error(engine: AsyncEngine) -> None:
    async with GroupCommitAppender(engine, CLOCK) as appender:
        outcomes = await asyncio.gather(
            *(appender.append("ORD-1", 0, [confirmed("ORD-1")], meta=META) for _ in range(5)),
            return_exceptions=True)
    won = [o for o in outcomes if isinstance(o, list)]
    lost = [o for o in outcomes if isinstance(o, ConcurrencyError)]
    assert len(won) == 1 and len(lost) == 4
    assert all(e.expected == 0 and e.actual == 1 for e in lost)
    async with engine.connect() as conn:
        assert [e.envelope.stream_version for e in await read_stream(conn, "ORD-1")] == [1]
        assert await verify_chain(conn) is None


async def test_many_writers_many_streams_keep_intact_chains(engine: AsyncEngine) -> None:
    async with GroupCommitAppender(engine, CLOCK) as appender:

        async def writer(w: int) -> None:
            for version in range(10):
                await appender.append(f"ORD-{w}", 2 * version, [confirmed(f"ORD-{w}")] * 2,
                                      meta=META)

        await asyncio.gather(*(writer(w) for w in range(8)))
        assert appender.groups < appender.appends  # some appends shared a transaction
    async with engine.connect() as conn:
        assert await verify_chain(conn) is None
        stream = await read_stream(conn, "ORD-3")
    assert [e.envelope.stream_version for e in stream] == list(range(1, 21))
    assert all(e.prev_hash == p.hash for p, e in itertools.pairwise(stream))


async def test_a_writer_outside_the_group_is_noticed(engine: AsyncEngine) -> None:
    async with GroupCommitAppender(engine, CLOCK) as appender:
        await appender.append("ORD-X", 0, [confirmed("ORD-X")], meta=META)
        async with engine.begin() as conn:  # another process moves the stream on
            await append(conn, "ORD-X", 1, [confirmed("ORD-X")], meta=META, clock=CLOCK)
        with pytest.raises(ConcurrencyError) as raised:  # the appender's cached head is stale
            await appender.append("ORD-X", 1, [confirmed("ORD-X")], meta=META)
        assert raised.value.actual == 2
        envelopes = await appender.append("ORD-X", 2, [confirmed("ORD-X")], meta=META)
        assert envelopes[0].stream_version == 3
        appended = await appender.append("ORD-X", None, [confirmed("ORD-X")], meta=META)
        assert appended[0].stream_version == 4
    async with engine.connect() as conn:
        assert await verify_chain(conn) is None


async def test_new_stream_that_exists_elsewhere_is_refused(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await append(conn, "ORD-Y", 0, [confirmed("ORD-Y")], meta=META, clock=CLOCK)
    async with GroupCommitAppender(engine, CLOCK) as appender:
        results = await asyncio.gather(
            appender.append("ORD-Y", 0, [confirmed("ORD-Y")], meta=META),
            appender.append("ORD-Z", 0, [confirmed("ORD-Z")], meta=META),
            return_exceptions=True)
    assert isinstance(results[0], ConcurrencyError)
    assert isinstance(results[1], list) and results[1][0].stream_version == 1
    async with engine.connect() as conn:
        assert await verify_chain(conn) is None
