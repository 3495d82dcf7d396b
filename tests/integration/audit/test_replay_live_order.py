"""A replay in the order, and at the instants, live handled the events (``shared/audit/
liveorder.py``; inventory's replay): live's consumer fetched different orders' events in an order
no producer's log holds (different partitions), and for inventory that order decides which
warehouse serves whom. Each test fails with the replay in event time."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inventory import store as inventory_store
from services.inventory.catalog import load_thresholds
from services.inventory.handlers.orders import handle_order_event
from services.inventory.handlers.stock import Receipt, receive_stock, set_warehouse_priority
from shared.audit.liveorder import read_live_order
from shared.audit.sources import Source, merged
from shared.clock import ManualClock
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import OrderLine, OrderPaid, Payload
from shared.contract.topics import ORDER_EVENTS
from shared.db import create_engine
from shared.eventstore import Meta, append
from shared.inbox import IdempotentConsumer, Incoming
from shared.service import prepare_database
from shared.settings import with_database
from tests.conftest import create_database
from tests.integration.audit.support import META, T0, cli, database_env, invoke, placed, rows
from tests.integration.audit.test_replay import drop

pytestmark = pytest.mark.integration

APP = cli("shared.cli.replay")
THRESHOLDS = load_thresholds(None)
HOLDINGS = "SELECT order_id, sku, warehouse, quantity FROM order_holdings ORDER BY 1, 2, 3"


@pytest_asyncio.fixture
async def inventory_url(postgres_url: str) -> AsyncIterator[str]:
    name = f"t_inventory_{uuid.uuid4().hex[:8]}"
    url = await create_database(postgres_url, name)
    await (await prepare_database(url, inventory_store.create_schema)).dispose()
    yield url
    await drop(postgres_url, name)


async def write(engine: AsyncEngine, order_id: str, payload: Payload, at: datetime) -> EventEnvelope:
    async with engine.begin() as conn:
        [envelope] = await append(conn, order_id, None, [payload], meta=META,
                                  clock=ManualClock(at), key=order_id)
    return envelope


def one_kettle(order_id: str) -> Payload:
    line = OrderLine(line_no=1, sku="X-100", name="Kettle", quantity=1,
                     unit_price=Decimal("199.00"))
    return placed(order_id).model_copy(update={"lines": [line]})


async def test_the_last_unit_of_the_first_warehouse_goes_where_live_gave_it(
        engine: AsyncEngine, database_url: str, inventory_url: str, postgres_url: str,
        tmp_path: Path) -> None:
    """WH-HZ (served first) has one kettle, WH-SH five. O-1 was placed a second before O-2, but
    live's consumer fetched O-2 first (another partition): O-2 got WH-HZ's kettle, O-1 one of
    WH-SH's. In event time the replay gave WH-HZ's to O-1 and "differed from live"."""
    first = await write(engine, "O-1", one_kettle("O-1"), T0)
    second = await write(engine, "O-2", one_kettle("O-2"), T0 + timedelta(seconds=1))
    clock = ManualClock(T0 - timedelta(hours=1))
    live = create_engine(inventory_url, pool_size=1)
    try:
        await set_warehouse_priority(live, "WH-HZ", 7, clock=clock)
        for warehouse, units in (("WH-HZ", 1), ("WH-SH", 5)):
            clock.advance(timedelta(minutes=1))
            await receive_stock(live, Receipt("X-100", warehouse, units), actor=SYSTEM,
                                correlation_id="receipt", clock=clock, thresholds=THRESHOLDS)

        async def handle(conn: object, incoming: Incoming) -> None:
            await handle_order_event(conn, incoming, clock=clock,  # type: ignore[arg-type]
                                     thresholds=THRESHOLDS)

        consumer = IdempotentConsumer(name="inventory", engine=live, publisher=None, handle=handle)
        for at, envelope in ((T0 + timedelta(seconds=2), second), (T0 + timedelta(seconds=3), first)):
            clock.set(at)
            await consumer.process_incoming([Incoming.from_envelope(envelope, ORDER_EVENTS)])
    finally:
        await live.dispose()
    live_holdings = await rows(inventory_url, HOLDINGS)
    assert live_holdings == [("O-1", "X-100", "WH-SH", 1), ("O-2", "X-100", "WH-HZ", 1)]

    result = await invoke(APP, ["replay", "inventory"],
                          database_env(tmp_path, order=database_url, inventory=inventory_url))
    created = re.findall(r"into (oms_inventory_replay_\d+)", result.output)
    try:
        assert result.exit_code == 0, result.output
        assert "the replay matches the live projections" in result.output, result.output
        assert await rows(with_database(postgres_url, created[0]), HOLDINGS) == live_holdings
    finally:
        await drop(postgres_url, *created)


async def test_answered_events_come_at_their_answers_place_and_an_orders_own_order_holds(
        engine: AsyncEngine, inventory_url: str) -> None:
    """A (t=1) and B (t=2) answered live at t=20 and t=10: B, then A. A's later event (t=3)
    that live answered with nothing must still come after A (one order, one partition), and
    each answered event is handled at its answer's instant."""
    a1 = await write(engine, "A", one_kettle("A"), T0 + timedelta(seconds=1))
    b1 = await write(engine, "B", one_kettle("B"), T0 + timedelta(seconds=2))
    a2 = await write(engine, "A", OrderPaid(order_id="A", paid_amount=Decimal("199.00"),
                                             currency="CNY"), T0 + timedelta(seconds=3))
    live = create_engine(inventory_url, pool_size=1)
    try:
        for cause, at in ((b1, 10), (a1, 20)):
            meta = Meta(correlation_id="c", actor=SYSTEM, causation_id=str(cause.event_id))
            async with live.begin() as conn:
                await append(conn, f"answer-{cause.stream_id}", None,
                             [OrderPaid(order_id=cause.stream_id, paid_amount=Decimal("1.00"),
                                        currency="CNY")],
                             meta=meta, clock=ManualClock(T0 + timedelta(seconds=at)),
                             key=cause.stream_id)
        async with live.connect() as conn:
            order = await read_live_order(conn)
    finally:
        await live.dispose()
    assert len(order) == 2
    source = Source("order", engine, {"order.placed": ORDER_EVENTS, "order.paid": ORDER_EVENTS},
                    live_order=order)
    fed = [message.event.event_id async for _, message in merged([source])]
    assert fed == [b1.event_id, a1.event_id, a2.event_id]
    assert order.instants[str(b1.event_id)] == T0 + timedelta(seconds=10)
    assert order.instants[str(a1.event_id)] == T0 + timedelta(seconds=20)
    assert order.instants[str(a2.event_id)] == T0 + timedelta(seconds=20)  # with A's answer
