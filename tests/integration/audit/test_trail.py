"""`oms audit trail ORDER` on real PostgreSQL: what every service's log holds about an order, in the
order it happened, each event with its actor and cause; a bank line matched by hand shows what
came before it; an event edited behind the system's back is named and the command exits 1."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text

from shared.clock import ManualClock
from shared.contract.bank_events import BankLineMatched, BankLineUnmatched
from shared.contract.envelope import Actor
from shared.db import create_engine
from shared.eventstore import Meta, append
from shared.service import prepare_database
from tests.conftest import create_database
from tests.integration.audit.support import T0, cli, database_env, invoke, order_lifecycle
from tests.integration.audit.test_replay import drop

pytestmark = pytest.mark.integration

APP = cli("shared.cli.audit")
CLERK = Actor(kind="user", id="fei.finance", role="finance")


@pytest_asyncio.fixture
async def stores(postgres_url: str) -> AsyncIterator[dict[str, str]]:
    names = {s: f"t_{s}_{uuid.uuid4().hex[:8]}" for s in ("order", "reconcile")}
    urls = {s: await create_database(postgres_url, n) for s, n in names.items()}
    for url in urls.values():
        await (await prepare_database(url, None)).dispose()  # the event store alone
    yield urls
    await drop(postgres_url, *names.values())


def matched(order_id: str, voucher: str, transaction_id: str) -> BankLineMatched:
    return BankLineMatched(
        transaction_id=transaction_id, order_id=order_id, voucher_number=voucher,
        applied=Decimal("400.00"), bank_amount=Decimal("400.00"), currency="CNY",
        booked_on=T0.date(), rule="manual", score=Decimal("1.00"), tolerance=Decimal("5.00"),
        window_days=7, reason="matched by hand by fei.finance: customer called")


async def bank_history(url: str) -> None:
    """TX-1 imported unmatched, then matched by hand to O-T; TX-2 paid another order."""
    engine = create_engine(url)
    clock = ManualClock(T0 + timedelta(seconds=30))
    try:
        async with engine.begin() as conn:
            await append(conn, "bank-line:TX-1", 0, [BankLineUnmatched(
                transaction_id="TX-1", bank_amount=Decimal("400.00"), currency="CNY",
                booked_on=T0.date(), reason="ambiguous: 2 candidates", tolerance=Decimal("5.00"),
                window_days=7, flagged=True)], meta=Meta(correlation_id="import-1", actor=CLERK),
                clock=clock, key="TX-1")
            await append(conn, "bank-line:TX-2", 0, [matched("O-OTHER", "INV-9", "TX-2")],
                         meta=Meta(correlation_id="import-1", actor=CLERK), clock=clock,
                         key="O-OTHER")
        clock.set(T0 + timedelta(seconds=100))  # then the order is paid (at +2 min)
        async with engine.begin() as conn:
            other = (await conn.execute(text(
                "SELECT event_id FROM events WHERE stream_id = 'bank-line:TX-2'"))).scalar_one()
            # (caused, for the test, by an event about another order: named by its type)
            await append(conn, "bank-line:TX-1", 1, [matched("O-T", "INV-1", "TX-1")],
                         meta=Meta(correlation_id="match-1", actor=CLERK,
                                   causation_id=str(other)), clock=clock, key="O-T")
    finally:
        await engine.dispose()


async def test_an_orders_trail_through_the_logs(stores: dict[str, str], tmp_path: Path) -> None:
    order_engine = create_engine(stores["order"])
    try:
        await order_lifecycle(order_engine, "O-T")  # placed T0, confirmed +1 min, paid +2 min
    finally:
        await order_engine.dispose()
    await bank_history(stores["reconcile"])
    env = database_env(tmp_path, **stores)

    result = await invoke(APP, ["audit", "trail", "O-T", "--json"], env)
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["intact"], body["streams_checked"]) == (True, 2)  # O-T in order, TX-1's line
    assert [(e["service"], e["event_type"]) for e in body["events"]] == [
        ("order", "order.placed"), ("reconcile", "bank_line.unmatched"),
        ("order", "order.confirmed"), ("reconcile", "bank_line.matched"),
        ("order", "order.paid")]
    by_hand = body["events"][3]
    assert (by_hand["actor"], by_hand["payload"]["rule"], by_hand["caused_by"]) == (
        "user:fei.finance (finance)", "manual", "reconcile bank_line.matched")
    assert body["events"][1]["caused_by"] == ""  # no cause recorded
    assert all(len(e["hash"]) == 64 for e in body["events"])

    earlier = await invoke(APP, ["audit", "trail", "O-T", "--json", "--as-of",
                                 (T0 + timedelta(seconds=45)).isoformat()], env)
    assert [e["event_type"] for e in json.loads(earlier.stdout)["events"]] == [
        "order.placed", "bank_line.unmatched"]
    table = await invoke(APP, ["audit", "trail", "O-T"], env | {"COLUMNS": "250"})
    assert table.exit_code == 0, table.output
    said = " ".join(table.output.split())
    assert "rule=manual" in said and "hash chains of the 2 stream(s) they are on: intact" in said
    unknown = await invoke(APP, ["audit", "trail", "O-NONE"], env)
    assert unknown.exit_code == 1 and "no service recorded anything" in unknown.output

    reconcile = create_engine(stores["reconcile"])
    try:
        async with reconcile.begin() as conn:  # behind the system's back
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
            await conn.execute(text(
                "UPDATE events SET payload = jsonb_set(payload, '{applied}', '\"4000.00\"')"
                " WHERE stream_id = 'bank-line:TX-1' AND stream_version = 2"))
            await conn.execute(text("ALTER TABLE events ENABLE TRIGGER events_append_only"))
    finally:
        await reconcile.dispose()
    broken = await invoke(APP, ["audit", "trail", "O-T"], env | {"COLUMNS": "250"})
    assert broken.exit_code == 1
    said = " ".join(broken.output.split())
    assert "BROKEN" in said and "reconcile bank-line:TX-1 v2" in said and "edited" in said

    order_store = create_engine(stores["order"])
    try:
        async with order_store.begin() as conn:  # a row that no longer reads as an event at all
            await conn.execute(text("ALTER TABLE events DISABLE TRIGGER events_append_only"))
            await conn.execute(text("UPDATE events SET schema_version = 0"
                                    " WHERE stream_id = 'O-T' AND stream_version = 3"))
            await conn.execute(text("ALTER TABLE events ENABLE TRIGGER events_append_only"))
    finally:
        await order_store.dispose()
    unreadable = await invoke(APP, ["audit", "trail", "O-T", "--json"], env)
    assert unreadable.exit_code == 1  # named, not a traceback
    named = json.loads(unreadable.stdout)
    assert any(b.startswith("order O-T v3:") for b in named["breaks"]), named["breaks"]
