"""`oms replay inventory` on real PostgreSQL: order events from the order store, receipts and
adjustments re-run as commands from inventory's own log (stock.received, stock.adjusted), and
adjustments a database holds from before stock.adjusted existed (ledger lines only) from its ledger
(through the REPLAY_COMMANDS and REPLAY_SETUP hooks services/inventory/app.py declares), warehouse
priority changes re-run at their time; after a swap a second replay still re-runs each adjustment
once."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inventory import store as inventory_store
from services.inventory.catalog import load_thresholds
from services.inventory.domain import Movement
from services.inventory.handlers import LedgerSession
from services.inventory.handlers.orders import handle_order_event
from services.inventory.handlers.stock import (
    Adjustment,
    Receipt,
    adjust_stock,
    receive_stock,
    set_warehouse_priority,
)
from shared.clock import ManualClock
from shared.commitorder import read_all
from shared.contract.envelope import SYSTEM, Actor
from shared.db import create_engine
from shared.inbox import IdempotentConsumer, Incoming
from shared.service import prepare_database
from shared.settings import with_database
from tests.conftest import create_database
from tests.integration.audit.support import T0, cli, database_env, invoke, order_lifecycle, rows
from tests.integration.audit.test_replay import drop

pytestmark = pytest.mark.integration

APP = cli("shared.cli.replay")
AUDIT = cli("shared.cli.audit")
THRESHOLDS = load_thresholds(None)  # the demo catalog's low-stock thresholds, as the service loads


@pytest_asyncio.fixture
async def stores(postgres_url: str) -> AsyncIterator[dict[str, str]]:
    names = {"inventory": f"t_inventory_{uuid.uuid4().hex[:8]}"}
    urls = {s: await create_database(postgres_url, n) for s, n in names.items()}
    await (await prepare_database(urls["inventory"], inventory_store.create_schema)).dispose()
    yield urls
    await drop(postgres_url, *names.values())


KEEPER = Actor(kind="user", id="li.lei", role="warehouse")


async def adjust_as_before(engine: AsyncEngine, adjustment: Adjustment, clock: ManualClock
                           ) -> None:
    """An adjustment as inventory recorded it before stock.adjusted existed: a ledger line with an
    id of its own (no event), backorders served and thresholds checked in the same transaction."""
    async with engine.begin() as conn:
        s = LedgerSession(conn, clock, THRESHOLDS, "count", actor=KEEPER)
        await s.lock([adjustment.sku])
        await inventory_store.ensure_warehouse(conn, adjustment.warehouse, s.now)
        await s.move([Movement(adjustment.sku, adjustment.warehouse, "adjusted",
                               adjustment.quantity)],
                     uuid.uuid4(), reason=adjustment.reason, actor=KEEPER)
        await s.finish()


def live_consumer(engine: AsyncEngine, clock: ManualClock) -> IdempotentConsumer:
    """The running inventory service's consumer, its clock at each event's time."""

    async def handle(conn: object, incoming: Incoming) -> None:
        clock.set(incoming.event.occurred_at)
        await handle_order_event(conn, incoming, clock=clock,  # type: ignore[arg-type]
                                 thresholds=THRESHOLDS)

    return IdempotentConsumer(name="inventory", engine=engine, publisher=None, handle=handle)


async def live_inventory(order: AsyncEngine, live_url: str, *, old_first_adjustment: bool
                         ) -> None:
    """The running inventory service: a priority set and stock received an hour before, the order
    events (O-2 waits for X-100), then an adjustment that serves O-2 (recorded as before
    stock.adjusted existed when ``old_first_adjustment``) and a loss of a mug."""
    clock = ManualClock(T0 - timedelta(hours=1))
    engine = create_engine(live_url)
    await set_warehouse_priority(engine, "WH-HZ", 7, clock=clock)
    for sku, quantity in (("X-100", 3), ("GIFT-MUG", 5)):
        clock.advance(timedelta(minutes=1))
        await receive_stock(engine, Receipt(sku, "WH-HZ", quantity), actor=SYSTEM,
                            correlation_id="receipt", clock=clock, thresholds=THRESHOLDS)

    consumer = live_consumer(engine, clock)
    async with order.connect() as conn:
        for stored in await read_all(conn):
            await consumer.process_incoming(
                [Incoming.from_envelope(stored.envelope, "oms.order.events.v1")])
    clock.set(T0 + timedelta(hours=1))
    for n, (sku, quantity, reason) in enumerate((("X-100", 1, "count found one"),
                                                 ("GIFT-MUG", -1, "damaged"))):
        clock.advance(timedelta(minutes=1))
        adjustment = Adjustment(sku, "WH-HZ", quantity, reason)
        if old_first_adjustment and n == 0:
            await adjust_as_before(engine, adjustment, clock)
        else:
            await adjust_stock(engine, adjustment, actor=KEEPER, correlation_id="count",
                               clock=clock, thresholds=THRESHOLDS)
    await engine.dispose()


ADJUSTED = "SELECT sku, quantity, reason, actor, event_id FROM stock_ledger WHERE kind = 'adjusted' "\
           "ORDER BY entry_id"



async def replay_matching(env: dict[str, str | None], created: list[str]) -> Any:
    """`oms replay inventory`, its database noted in ``created``; it must match live."""
    result = await invoke(APP, ["replay", "inventory"], env)
    if "into oms_" in result.output:
        created.append(replay_database(result.output))
    assert result.exit_code == 0, result.output
    assert "the replay matches the live projections" in result.output, result.output
    return result


def replay_database(output: str) -> str:
    found = re.search(r"into (oms_inventory_replay_\d+)", output)
    assert found, output
    return found.group(1)


@pytest.mark.parametrize("old_first_adjustment", [False, True], ids=["events", "old-ledger-line"])
async def test_inventory_replay_matches_the_live_ledger(
        engine: AsyncEngine, database_url: str, stores: dict[str, str], postgres_url: str,
        tmp_path: Path, old_first_adjustment: bool) -> None:
    clock = await order_lifecycle(engine, "O-1")  # 2 x X-100 + 1 gift mug: reserved
    await order_lifecycle(engine, "O-2", clock)  # only 1 X-100 left: short, until the adjustment
    live_url = stores["inventory"]
    await live_inventory(engine, live_url, old_first_adjustment=old_first_adjustment)
    statuses = dict(await rows(live_url, "SELECT order_id, status FROM inventory_orders"))
    assert statuses == {"O-1": "reserved", "O-2": "reserved"}
    adjusted = await rows(live_url, "SELECT event_id, payload FROM events "
                                    "WHERE event_type = 'stock.adjusted' ORDER BY position")
    live_ledger = await rows(live_url, ADJUSTED)
    x100_id = live_ledger[0][4]  # the X-100 adjustment's id (its event's, or the old line's)
    assert [r[1] for r in adjusted] == [
        *([] if old_first_adjustment else [{"sku": "X-100", "warehouse": "WH-HZ", "quantity": 1,
                                            "on_hand": 4, "reason": "count found one"}]),
        {"sku": "GIFT-MUG", "warehouse": "WH-HZ", "quantity": -1, "on_hand": 4,
         "reason": "damaged"}]
    # O-2 is served by the X-100 adjustment, which its stock.reserved names (an old one: nothing)
    [(cause,)] = await rows(live_url, "SELECT causation_id FROM events "
                                      "WHERE event_type = 'stock.reserved' AND stream_id = 'O-2'")
    assert cause == (None if old_first_adjustment else str(x100_id))
    env = database_env(tmp_path, order=database_url, **stores)
    created: list[str] = []
    try:
        result = await replay_matching(env, created)
        assert "5 own commands re-run" in result.output  # the priority, 2 receipts, 2 adjustments
        assert "failed when re-run" not in result.output
        replayed = with_database(postgres_url, created[0])
        # the same adjustments, with the live ids (the event's, or the old line's own)
        assert await rows(replayed, ADJUSTED) == live_ledger
        assert [r[:4] for r in live_ledger] == [
            ("X-100", 1, "count found one", "user:li.lei (warehouse)"),
            ("GIFT-MUG", -1, "damaged", "user:li.lei (warehouse)")]
        assert await rows(replayed, "SELECT priority FROM warehouses WHERE code = 'WH-HZ'") == [(7,)]

        # After a swap the live log comes along; a second replay re-runs each adjustment once.
        swapped = await invoke(APP, ["replay", "inventory", "--swap"], env)
        assert swapped.exit_code == 0, swapped.output
        created.append(replay_database(swapped.output))
        before = re.search(r"kept as\s+(oms_inventory_before_replay_\d+)", swapped.output)
        assert before, swapped.output
        created.append(before.group(1))
        again = await invoke(APP, ["replay", "inventory"], env)
        if "into oms_" in again.output:
            created.append(replay_database(again.output))
        assert again.exit_code == 0, again.output
        assert "5 own commands re-run" in again.output
        assert "the replay matches the live projections" in again.output, again.output
        assert await rows(live_url, ADJUSTED) == live_ledger
        verified = await invoke(AUDIT, ["audit", "verify", "--service", "inventory"], env)
        assert verified.exit_code == 0, verified.output
    finally:
        await drop(postgres_url, *created)


async def test_a_priority_change_between_two_orders_is_replayed_at_its_time(
        engine: AsyncEngine, database_url: str, stores: dict[str, str], postgres_url: str,
        tmp_path: Path) -> None:
    """WH-A serves O-1; then WH-B is put first and serves O-2. The replay must decide each order
    under the priority in force then (copying today's priorities would send O-1 to WH-B)."""
    clock = await order_lifecycle(engine, "O-1")
    await order_lifecycle(engine, "O-2", clock)
    live_url = stores["inventory"]
    live = create_engine(live_url)
    at = ManualClock(T0 - timedelta(hours=1))
    for code, priority in (("WH-A", 1), ("WH-B", 2)):
        await set_warehouse_priority(live, code, priority, clock=at, actor=KEEPER)
        for sku in ("X-100", "GIFT-MUG"):
            await receive_stock(live, Receipt(sku, code, 5), actor=SYSTEM, correlation_id="r",
                                clock=at, thresholds=THRESHOLDS)

    consumer = live_consumer(live, at)
    async with engine.connect() as conn:
        history = [s.envelope for s in await read_all(conn)]
    for order_id in ("O-1", "O-2"):
        if order_id == "O-2":  # between the two orders' events
            at.set(T0 + timedelta(seconds=150))
            changed = await set_warehouse_priority(live, "WH-B", 0, clock=at, actor=KEEPER)
            assert changed["previous"] == 2 and changed["event_id"]
            unchanged = await set_warehouse_priority(live, "WH-B", 0, clock=at, actor=KEEPER)
            assert unchanged["event_id"] is None  # the same priority again records nothing
        for envelope in history:
            if envelope.stream_id == order_id:
                await consumer.process_incoming(
                    [Incoming.from_envelope(envelope, "oms.order.events.v1")])
    await live.dispose()
    served = "SELECT order_id, warehouse FROM order_holdings WHERE sku = 'X-100' ORDER BY order_id"
    assert await rows(live_url, served) == [("O-1", "WH-A"), ("O-2", "WH-B")]
    recorded = await rows(live_url, "SELECT stream_id, payload, actor FROM events "
                                    "WHERE event_type = 'warehouse.priority_set' ORDER BY position")
    assert [(r[0], r[1]) for r in recorded] == [
        ("warehouse:WH-A", {"warehouse": "WH-A", "priority": 1}),  # no previous: a new row
        ("warehouse:WH-B", {"warehouse": "WH-B", "priority": 2}),
        ("warehouse:WH-B", {"warehouse": "WH-B", "priority": 0, "previous": 2})]
    assert all(r[2]["id"] == "li.lei" for r in recorded)
    env = database_env(tmp_path, order=database_url, **stores)
    created: list[str] = []
    try:
        await replay_matching(env, created)
        replayed = with_database(postgres_url, created[0])
        assert await rows(replayed, served) == [("O-1", "WH-A"), ("O-2", "WH-B")]
        assert await rows(replayed, "SELECT code, priority FROM warehouses ORDER BY code") == [
            ("WH-A", 1), ("WH-B", 0)]
    finally:
        await drop(postgres_url, *created)
