"""`oms replay reconcile` on real PostgreSQL: the history of the producing services' databases is fed
into a fresh database, checksums are compared with the live one, and --swap renames the databases
only while the service is stopped."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconcile import store as reconcile_store
from services.reconcile.handlers import make_handler
from shared.clock import ManualClock
from shared.commitorder import read_all
from shared.db import create_engine, libpq_url
from shared.inbox import IdempotentConsumer, Incoming
from shared.metrics import METRICS
from shared.service import prepare_database
from shared.settings import with_database
from tests.conftest import create_database
from tests.integration.audit.support import T0, cli, database_env, invoke, order_lifecycle

pytestmark = pytest.mark.integration

APP = cli("shared.cli.replay")
AUDIT = cli("shared.cli.audit")


async def drop(server_url: str, *names: str) -> None:
    async with await psycopg.AsyncConnection.connect(
            libpq_url(with_database(server_url, "postgres")), autocommit=True) as conn:
        for name in names:
            await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


@pytest_asyncio.fixture
async def producers(postgres_url: str) -> AsyncIterator[dict[str, str]]:
    """Empty stores of the other producers reconcile listens to, plus the live reconcile store."""
    names = {s: f"t_{s}_{uuid.uuid4().hex[:8]}" for s in ("inventory", "billing", "notify",
                                                          "reconcile")}
    urls = {s: await create_database(postgres_url, n) for s, n in names.items()}
    for service, url in urls.items():
        schema = reconcile_store.create_schema if service == "reconcile" else None
        await (await prepare_database(url, schema)).dispose()
    yield urls
    await drop(postgres_url, *names.values())


async def live_reconcile(order: AsyncEngine, live_url: str) -> None:
    """What the running reconcile service did: every order event through its consumer."""
    clock = ManualClock(T0)
    inner = make_handler(clock, timedelta(seconds=60))

    async def handle(conn: object, incoming: Incoming) -> None:
        clock.set(incoming.event.occurred_at)
        await inner(conn, incoming)  # type: ignore[arg-type]

    async with order.connect() as conn:
        events = [e.envelope for e in await read_all(conn)]
    engine = create_engine(live_url)
    consumer = IdempotentConsumer(name="reconcile", engine=engine, publisher=None, handle=handle)
    for envelope in events:  # one by one, as a live consumer might
        await consumer.process_incoming([Incoming.from_envelope(envelope, "oms.order.events.v1")])
    await engine.dispose()


def replay_database(output: str) -> str:
    found = re.search(r"into (oms_reconcile_replay_\d+)", output)
    assert found, output
    return found.group(1)


async def test_replay_matches_then_detects_drift_then_swaps(
        engine: AsyncEngine, database_url: str, producers: dict[str, str], postgres_url: str,
        tmp_path: Path) -> None:
    clock = await order_lifecycle(engine, "O-1")
    await order_lifecycle(engine, "O-2", clock)
    live_url = producers["reconcile"]
    await live_reconcile(engine, live_url)
    env = database_env(tmp_path, order=database_url, **producers)
    created: list[str] = []
    batches = METRICS.value("oms_consumer_batch_work_total", consumer="reconcile")
    fallbacks = METRICS.value("oms_consumer_batch_fallbacks_total", consumer="reconcile")
    try:
        result = await invoke(APP, ["replay", "reconcile"], env)
        assert result.exit_code == 0, result.output
        created.append(replay_database(result.output))
        assert "6 events fed" in result.output
        # through reconcile's batch work (bulk load, fold in memory), never falling back
        assert METRICS.value("oms_consumer_batch_work_total", consumer="reconcile") > batches
        assert METRICS.value("oms_consumer_batch_fallbacks_total", consumer="reconcile") == fallbacks
        assert "the replay matches the live projections" in result.output
        assert "order_fact_sheets" in result.output

        live = create_engine(live_url, pool_size=1)
        async with live.begin() as conn:
            await conn.execute(text("UPDATE order_fact_sheets SET status = 'bogus' "
                                    "WHERE order_id = 'O-2'"))
            live_events = [e.envelope.event_id for e in await read_all(conn)]
        drifted = await invoke(APP, ["replay", "reconcile"], env)  # found, named, not mended
        created.append(replay_database(drifted.output))
        said = " ".join(drifted.output.split())
        assert drifted.exit_code == 1, drifted.output
        assert "the replay differs from the live projections" in said
        assert "every event store is intact" in said and "fails verification" not in said
        async with live.connect() as held:  # the service is "running"
            await held.execute(text("SELECT 1"))
            refused = await invoke(APP, ["replay", "reconcile", "--swap"], env)
        await live.dispose()
        assert refused.exit_code == 3, refused.output
        assert "looks running" in refused.output and "into oms_" not in refused.output

        swapped = await invoke(APP, ["replay", "reconcile", "--swap"], env)
        assert swapped.exit_code == 0, swapped.output
        created.append(replay_database(swapped.output))
        assert "differs" in swapped.output
        before = re.search(r"kept as\s+(oms_reconcile_before_replay_\d+)", swapped.output)
        assert before, swapped.output
        created.append(before.group(1))
        live = create_engine(live_url, pool_size=1)
        async with live.connect() as conn:
            statuses = (await conn.execute(text(
                "SELECT DISTINCT status FROM order_fact_sheets"))).scalars().all()
            carried = [e.envelope.event_id for e in await read_all(conn)]
        await live.dispose()
        assert "bogus" not in statuses
        assert carried == live_events  # the live log (audit trail) is carried over unchanged
        verified = await invoke(AUDIT, ["audit", "verify", "--service", "reconcile"], env)
        assert verified.exit_code == 0, verified.output
    finally:
        await drop(postgres_url, *created)


async def test_order_cannot_be_replayed_from_other_stores(
        database_url: str, producers: dict[str, str], tmp_path: Path) -> None:
    env = database_env(tmp_path, order=database_url, **producers)
    result = await invoke(APP, ["replay", "order"], env)
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "`oms replay order` is refused" in said and "storefront.orders.v1" in said
    assert "not stored anywhere" in said and "Nothing was created" in said
    async with await psycopg.AsyncConnection.connect(
            libpq_url(with_database(database_url, "postgres")), autocommit=True) as conn:
        names = await (await conn.execute("SELECT datname FROM pg_database")).fetchall()
    assert not [n for (n,) in names if n.startswith("oms_order_replay_")]


async def test_notify_replays_without_sending(
        engine: AsyncEngine, database_url: str, producers: dict[str, str], postgres_url: str,
        tmp_path: Path) -> None:
    """The replay runs notify's consumer only (its sender is a background job and never starts);
    swapping is tested in test_replay_notify.py."""
    await order_lifecycle(engine, "O-N")
    env = database_env(tmp_path, order=database_url, **producers)
    result = await invoke(APP, ["replay", "notify"], env)
    found = re.search(r"into (oms_notify_replay_\d+)", result.output)
    try:
        # live notify never ran here: its empty tables differ from the replay's, exit 1
        assert result.exit_code == 1, result.output
        assert "3 events fed" in result.output
    finally:
        if found:
            await drop(postgres_url, found.group(1))


async def test_several_services_are_replayed_side_by_side_each_in_a_process(
        engine: AsyncEngine, database_url: str, producers: dict[str, str], postgres_url: str,
        tmp_path: Path) -> None:
    """`oms replay reconcile inventory`: both replays run (each in its own process, reporting
    progress), each reported and compared as alone; an unknown name is refused before anything."""
    clock = await order_lifecycle(engine, "O-1")
    await order_lifecycle(engine, "O-2", clock)
    await live_reconcile(engine, producers["reconcile"])
    env = database_env(tmp_path, order=database_url, **producers)
    refused = await invoke(APP, ["replay", "reconcile", "stock"], env)
    assert refused.exit_code == 2 and "unknown service 'stock'" in refused.output
    never = await invoke(APP, ["replay", "reconcile", "order"], env)
    assert never.exit_code == 2 and "order cannot be replayed" in never.output, never.output
    assert "into oms_" not in never.output
    created: list[str] = []
    try:
        result = await invoke(APP, ["replay", "reconcile", "inventory"], env)
        created += re.findall(r"into (oms_[a-z]+_replay_\d+)", result.output)
        # live inventory never ran here: its missing tables differ from the replay's, exit 1
        assert result.exit_code == 1, result.output
        assert sorted(created) == ["oms_inventory_replay_1", "oms_reconcile_replay_1"], result.output
        assert "reconcile: 6 events fed" in result.output
        assert "inventory: 2 events fed" in result.output  # the two order.placed it handles
        reconcile_part = result.output.split("inventory: 2 events fed")[0]
        assert "the replay matches the live projections" in reconcile_part, result.output
    finally:
        await drop(postgres_url, *created)


async def test_a_swap_is_refused_while_an_event_store_fails_verification(
        engine: AsyncEngine, database_url: str, producers: dict[str, str], postgres_url: str,
        tmp_path: Path) -> None:
    """An order's total edited in the order log behind the system's back (the trigger
    disabled): a replay without --swap still shows what the history now says (and names the
    store that fails verification as the likely cause of the difference), but a swap would
    install projections built from the edit, so it is refused before anything is created."""
    await order_lifecycle(engine, "O-1")
    await live_reconcile(engine, producers["reconcile"])
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
        await conn.execute(text("UPDATE events SET payload = jsonb_set(payload, '{total}', "
                                "'\"1.00\"') WHERE event_type = 'order.placed'"))
        await conn.execute(text("ALTER TABLE events ENABLE TRIGGER events_append_only"))
    env = database_env(tmp_path, order=database_url, **producers)
    shown = await invoke(APP, ["replay", "reconcile"], env)
    found = re.search(r"into (oms_reconcile_replay_\d+)", shown.output)
    if found:
        await drop(postgres_url, found.group(1))
    said = " ".join(shown.output.split())
    assert shown.exit_code == 1, shown.output  # the edited total is on the rebuilt fact sheet
    assert "the replay differs from the live projections" in said
    assert ("order's event store fails verification: stream 'O-1' version 1" in said
            and "may come from an event edited after it was sent" in said), said
    refused = await invoke(APP, ["replay", "reconcile", "--swap"], env)
    said = " ".join(refused.output.split())
    assert refused.exit_code == 3, refused.output
    assert "swap refused: order's event store fails verification: stream 'O-1' version 1" in said
    assert "hash does not match" in said and "Nothing was created" in said
    assert "into oms_" not in refused.output
