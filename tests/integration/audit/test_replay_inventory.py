"""`oms replay inventory` on real PostgreSQL: order events from the order store, receipts re-run as
commands from inventory's own log (through the REPLAY_COMMANDS hook the app module declares)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

import services.inventory.app as inventory_app
from services.inventory import store as inventory_store
from services.inventory.catalog import load_thresholds
from services.inventory.handlers.orders import handle_order_event
from services.inventory.handlers.stock import Receipt, receive_stock
from shared.clock import ManualClock
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.db import create_engine
from shared.eventstore import read_all
from shared.inbox import IdempotentConsumer, Incoming
from shared.service import prepare_database
from tests.conftest import create_database
from tests.integration.audit.support import T0, cli, database_env, invoke, order_lifecycle
from tests.integration.audit.test_replay import drop

pytestmark = pytest.mark.integration

APP = cli("shared.cli.replay")
THRESHOLDS = load_thresholds(None)  # the demo catalog's low-stock thresholds, as the service loads


async def replay_receipt(engine: AsyncEngine, event: EventEnvelope, clock: ManualClock) -> None:
    """The hook services/inventory/app.py should declare (REPLAY_COMMANDS['stock.received'])."""
    p = event.payload
    await receive_stock(engine, Receipt(p["sku"], p["warehouse"], p["quantity"], p.get("reason")),
                        actor=event.actor, correlation_id=event.correlation_id, clock=clock,
                        thresholds=THRESHOLDS)


@pytest_asyncio.fixture
async def stores(postgres_url: str) -> AsyncIterator[dict[str, str]]:
    names = {"inventory": f"t_inventory_{uuid.uuid4().hex[:8]}"}
    urls = {s: await create_database(postgres_url, n) for s, n in names.items()}
    await (await prepare_database(urls["inventory"], inventory_store.create_schema)).dispose()
    yield urls
    await drop(postgres_url, *names.values())


async def live_inventory(order: AsyncEngine, live_url: str) -> None:
    """The running inventory service: stock received an hour before, then the order events."""
    clock = ManualClock(T0 - timedelta(hours=1))
    engine = create_engine(live_url)
    for sku, quantity in (("X-100", 3), ("GIFT-MUG", 5)):
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
    await engine.dispose()


async def test_inventory_replay_matches_the_live_ledger(
        engine: AsyncEngine, database_url: str, stores: dict[str, str], postgres_url: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = await order_lifecycle(engine, "O-1")  # 2 x X-100 + 1 gift mug: reserved
    await order_lifecycle(engine, "O-2", clock)  # only 1 X-100 left: short
    await live_inventory(engine, stores["inventory"])
    monkeypatch.setattr(inventory_app, "REPLAY_COMMANDS", {"stock.received": replay_receipt},
                        raising=False)
    env = database_env(tmp_path, order=database_url, **stores)
    created: list[str] = []
    try:
        result = await invoke(APP, ["replay", "inventory"], env)
        found = re.search(r"into (oms_inventory_replay_\d+)", result.output)
        if found:
            created.append(found.group(1))
        assert result.exit_code == 0, result.output
        assert "2 own commands re-run" in result.output
        assert "the replay matches the live projections" in result.output, result.output
    finally:
        await drop(postgres_url, *created)
