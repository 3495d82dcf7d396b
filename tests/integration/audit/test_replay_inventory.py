"""`oms replay inventory` on real PostgreSQL: order events from the order store, receipts re-run as
commands from inventory's own log and adjustments from its ledger (through the REPLAY_COMMANDS and
REPLAY_SETUP hooks services/inventory/app.py declares), warehouse priorities carried over."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inventory import store as inventory_store
from services.inventory.catalog import load_thresholds
from services.inventory.handlers.orders import handle_order_event
from services.inventory.handlers.stock import (
    Adjustment,
    Receipt,
    adjust_stock,
    receive_stock,
    set_warehouse_priority,
)
from shared.clock import ManualClock
from shared.contract.envelope import SYSTEM, Actor
from shared.db import create_engine
from shared.eventstore import read_all
from shared.inbox import IdempotentConsumer, Incoming
from shared.service import prepare_database
from shared.settings import with_database
from tests.conftest import create_database
from tests.integration.audit.support import T0, cli, database_env, invoke, order_lifecycle
from tests.integration.audit.test_replay import drop

pytestmark = pytest.mark.integration

APP = cli("shared.cli.replay")
THRESHOLDS = load_thresholds(None)  # the demo catalog's low-stock thresholds, as the service loads


@pytest_asyncio.fixture
async def stores(postgres_url: str) -> AsyncIterator[dict[str, str]]:
    names = {"inventory": f"t_inventory_{uuid.uuid4().hex[:8]}"}
    urls = {s: await create_database(postgres_url, n) for s, n in names.items()}
    await (await prepare_database(urls["inventory"], inventory_store.create_schema)).dispose()
    yield urls
    await drop(postgres_url, *names.values())


KEEPER = Actor(kind="user", id="li.lei", role="warehouse")


async def live_inventory(order: AsyncEngine, live_url: str) -> None:
    """The running inventory service: a priority set and stock received an hour before, the order
    events (O-2 waits for X-100), then an adjustment that serves O-2 and a loss of a mug."""
    clock = ManualClock(T0 - timedelta(hours=1))
    engine = create_engine(live_url)
    await set_warehouse_priority(engine, "WH-HZ", 7, clock=clock)
    for sku, quantity in (("X-100", 3), ("GIFT-MUG", 5)):
        clock.advance(timedelta(minutes=1))
        await receive_stock(engine, Receipt(sku, "WH-HZ", quantity), actor=SYSTEM,
                            correlation_id="receipt", clock=clock, thresholds=THRESHOLDS)

    async def handle(conn: object, incoming: Incoming) -> None:
        clock.set(incoming.event.occurred_at)
        await handle_order_event(conn, incoming, clock=clock,  # type: ignore[arg-type]
                                 thresholds=THRESHOLDS)

    consumer = IdempotentConsumer(name="inventory", engine=engine, publisher=None, handle=handle)
    async with order.connect() as conn:
        for stored in await read_all(conn):
            await consumer.process_incoming(
                [Incoming.from_envelope(stored.envelope, "oms.order.events.v1")])
    clock.set(T0 + timedelta(hours=1))
    for sku, quantity, reason in (("X-100", 1, "count found one"), ("GIFT-MUG", -1, "damaged")):
        clock.advance(timedelta(minutes=1))
        await adjust_stock(engine, Adjustment(sku, "WH-HZ", quantity, reason), actor=KEEPER,
                           correlation_id="count", clock=clock, thresholds=THRESHOLDS)
    await engine.dispose()


async def test_inventory_replay_matches_the_live_ledger(
        engine: AsyncEngine, database_url: str, stores: dict[str, str], postgres_url: str,
        tmp_path: Path) -> None:
    clock = await order_lifecycle(engine, "O-1")  # 2 x X-100 + 1 gift mug: reserved
    await order_lifecycle(engine, "O-2", clock)  # only 1 X-100 left: short, until the adjustment
    await live_inventory(engine, stores["inventory"])
    live = create_engine(stores["inventory"], pool_size=1)
    async with live.connect() as conn:
        statuses = dict((await conn.execute(text(
            "SELECT order_id, status FROM inventory_orders"))).all())
        served = (await conn.execute(text(
            "SELECT count(*) FROM events WHERE event_type = 'stock.reserved' "
            "AND causation_id IS NULL"))).scalar_one()
    await live.dispose()
    assert statuses == {"O-1": "reserved", "O-2": "reserved"} and served == 1
    env = database_env(tmp_path, order=database_url, **stores)
    created: list[str] = []
    try:
        result = await invoke(APP, ["replay", "inventory"], env)
        found = re.search(r"into (oms_inventory_replay_\d+)", result.output)
        if found:
            created.append(found.group(1))
        assert result.exit_code == 0, result.output
        assert "4 own commands re-run" in result.output
        assert "failed when re-run" not in result.output
        assert "the replay matches the live projections" in result.output, result.output
        replayed = create_engine(with_database(postgres_url, created[0]), pool_size=1)
        async with replayed.connect() as conn:
            ledger = (await conn.execute(text(
                "SELECT sku, quantity, reason, actor FROM stock_ledger WHERE kind = 'adjusted' "
                "ORDER BY entry_id"))).all()
            priority = (await conn.execute(text(
                "SELECT priority FROM warehouses WHERE code = 'WH-HZ'"))).scalar_one()
        await replayed.dispose()
        assert [tuple(r) for r in ledger] == [
            ("X-100", 1, "count found one", "user:li.lei (warehouse)"),
            ("GIFT-MUG", -1, "damaged", "user:li.lei (warehouse)")]
        assert priority == 7
    finally:
        await drop(postgres_url, *created)
