"""What a replay reads (shared/audit/sources.py) on real PostgreSQL: every stored event of the
consumed types, once, in (occurred_at, tx_id, position) order across fetches, as a live consumer
decodes the record the relay would send for it; only what the live service handled when asked."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.audit import sources
from shared.audit.sources import Source, merged, read_source
from shared.clock import ManualClock
from shared.contract.payloads import OrderConfirmed
from shared.contract.topics import topic_for_event
from shared.db import create_engine
from shared.eventstore import append
from shared.incoming import incoming_from_record
from shared.outbox import read_publishable, to_record
from shared.service import prepare_database
from tests.conftest import create_database
from tests.integration.audit.support import META, T0, placed
from tests.integration.audit.test_replay import drop

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def stores(postgres_url: str) -> AsyncIterator[dict[str, AsyncEngine]]:
    """Two producers' stores and a live consumer's database (its inbox says what it handled)."""
    names = {s: f"t_src_{s}_{uuid.uuid4().hex[:8]}" for s in ("order", "billing", "live")}
    engines: dict[str, AsyncEngine] = {}
    for service, name in names.items():
        url = await create_database(postgres_url, name)
        await (await prepare_database(url, None)).dispose()
        engines[service] = create_engine(url, pool_size=2)
    yield engines
    for engine in engines.values():
        await engine.dispose()
    await drop(postgres_url, *names.values())


async def _history(engine: AsyncEngine, orders: int, clock: ManualClock) -> None:
    """order.placed (+ order.confirmed, in a transaction of its own) per order; some at one
    instant (then the transaction, then the position decide), some with the clock going back."""
    for n in range(orders):
        order_id = f"SRC-{n:03d}"
        async with engine.begin() as conn:
            await append(conn, order_id, 0, [placed(order_id)], meta=META, clock=clock,
                         key=order_id)
            if n % 3 == 0:  # the same instant as the next order's placement
                continue
            clock.advance(timedelta(seconds=1) if n % 4 else -timedelta(seconds=5))
        async with engine.begin() as conn:
            await append(conn, order_id, 1, [OrderConfirmed(order_id=order_id, total="400.00",
                                                             currency="CNY")],
                         meta=META, clock=clock, key=order_id)


def _source(name: str, engine: AsyncEngine, live: AsyncEngine | None = None) -> Source:
    topic = topic_for_event("order", "order.placed")
    return Source(name, engine, {"order.placed": topic, "order.confirmed": topic},
                  handled_in=live)


async def _stored_order(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        found = await conn.execute(text(
            "SELECT event_id::text FROM events ORDER BY occurred_at, tx_id, position"))
        return [row[0] for row in found]


async def _as_consumed(engine: AsyncEngine, topic: str) -> dict[str, Any]:
    """What a live consumer decodes from each record the relay would publish."""
    async with engine.connect() as conn:
        published = await read_publishable(conn, "not published yet", 10_000)  # from the start
    consumed: dict[str, Any] = {}
    for event in published:
        record = to_record(event, topic)
        as_handed = SimpleNamespace(  # as aiokafka hands it over
            topic=topic, partition=0, offset=0, value=record.value,
            key=record.key.encode() if record.key else None,
            headers=[(k, v.encode()) for k, v in record.headers.items()])
        consumed[str(event.event_id)] = incoming_from_record(as_handed, envelopes=True)
    return consumed


async def test_every_event_once_in_history_order_across_fetches_as_consumed(
        stores: dict[str, AsyncEngine], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "CHUNK", 4)  # many fetches from the one cursor
    await _history(stores["order"], 15, ManualClock(T0))
    expected = await _stored_order(stores["order"])
    source = _source("order", stores["order"])
    items = [item async for item in read_source(source)]
    assert [str(message.message_id) for _, _, message in items] == expected
    assert [key for key, _, _ in items] == sorted(key for key, _, _ in items)
    topic = topic_for_event("order", "order.placed")
    consumed = await _as_consumed(stores["order"], topic)
    for _, item_topic, message in items:
        assert item_topic == topic
        live = consumed[str(message.message_id)]
        assert (message.key, message.value, message.headers, message.envelope) == \
            (live.key, live.value, live.headers, live.envelope)


async def test_merges_producers_by_instant_and_leaves_out_what_live_did_not_handle(
        stores: dict[str, AsyncEngine], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "CHUNK", 3)
    clock = ManualClock(T0)
    await _history(stores["order"], 6, clock)
    await _history(stores["billing"], 6, ManualClock(T0 + timedelta(milliseconds=500)))
    handled = (await _stored_order(stores["order"]))[::2]  # every other one of order's events
    async with stores["live"].begin() as conn:
        await conn.execute(text(
            "INSERT INTO inbox (message_id, consumer, topic) SELECT id, 'test', 't' "
            "FROM unnest(CAST(:ids AS uuid[])) AS id"), {"ids": handled})
    order = _source("order", stores["order"], stores["live"])
    billing = _source("billing", stores["billing"])
    out = [message async for _, message in merged([order, billing])]
    instants = [message.event.occurred_at for message in out]
    assert instants == sorted(instants)
    ids = [str(message.message_id) for message in out]
    assert [i for i in ids if i in handled] == handled
    assert len(ids) == len(handled) + len(await _stored_order(stores["billing"]))
    assert order.left_out[0] == len(await _stored_order(stores["order"])) - len(handled)


async def test_a_merge_ended_early_gives_its_connections_back(
        stores: dict[str, AsyncEngine], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "CHUNK", 2)
    await _history(stores["order"], 6, ManualClock(T0))
    async with contextlib.aclosing(merged([_source("order", stores["order"])])) as history:
        async for _ in history:
            assert stores["order"].pool.checkedout() == 1  # the cursor's
            break
    assert stores["order"].pool.checkedout() == 0
