"""`oms replay reconcile` after bank statements were imported: the statements (people's input, not
derived from events) are carried over from the live database, so the replay matches live and a
swap keeps them; imports after the swap go on (allocation ids do not collide)."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconcile.bank.handlers import import_statement
from services.reconcile.bank.matching import MatchPolicy
from services.reconcile.handlers import make_handler
from shared.clock import ManualClock
from shared.commitorder import read_all
from shared.contract.envelope import Actor
from shared.contract.topics import BILLING_EVENTS, ORDER_EVENTS
from shared.db import create_engine
from shared.eventstore import append
from shared.inbox import IdempotentConsumer, Incoming
from shared.settings import with_database
from tests.integration.audit.support import META, T0, cli, database_env, invoke, order_lifecycle, rows
from tests.integration.audit.test_replay import drop, producers  # noqa: F401 (fixture)
from tests.unit.reconcile.samples import invoice_issued

pytestmark = pytest.mark.integration

APP = cli("shared.cli.replay")
FINANCE = Actor(kind="user", id="chen.jing", role="finance")
POLICY = MatchPolicy(window_days=7, tolerance=Decimal("5.00"))
HEADER = "transaction_id,booked_at,amount,currency,counterparty,memo\n"


async def invoiced(billing_url: str, order_id: str, voucher: str, at: ManualClock) -> None:
    engine = create_engine(billing_url, pool_size=1)
    invoice = invoice_issued(order_id, total=Decimal("400.00")).model_copy(
        update={"voucher_number": voucher, "invoice_id": f"I-{order_id}"})
    async with engine.begin() as conn:
        await append(conn, order_id, None, [invoice], meta=META, clock=at, key=order_id)
    await engine.dispose()


async def live_reconcile(stores: dict[str, AsyncEngine], live_url: str) -> None:
    """The running reconcile service: order and billing events in the order they happened."""
    clock = ManualClock(T0)
    inner = make_handler(clock, timedelta(seconds=60))

    async def handle(conn: object, incoming: Incoming) -> None:
        clock.set(incoming.event.occurred_at)
        await inner(conn, incoming)  # type: ignore[arg-type]

    history = []
    for topic, engine in stores.items():
        async with engine.connect() as conn:
            history += [(e.envelope.occurred_at, e.position, topic, e.envelope)
                        for e in await read_all(conn)]
    engine = create_engine(live_url)
    consumer = IdempotentConsumer(name="reconcile", engine=engine, publisher=None, handle=handle)
    for _, _, topic, envelope in sorted(history, key=lambda h: (h[0], h[1])):
        await consumer.process_incoming([Incoming.from_envelope(envelope, topic)])
    await engine.dispose()



async def bank_import(url: str, csv: str, at: ManualClock) -> tuple[int, int]:
    engine = create_engine(url, pool_size=1)
    try:
        result = await import_statement(engine, at, (HEADER + csv).encode(), "standard", POLICY,
                                        FINANCE)
    finally:
        await engine.dispose()
    return result.imported, result.matched


LINES = "SELECT transaction_id, status, imported_by FROM bank_lines ORDER BY 1"
MATCHED = "SELECT voucher_number, matched FROM bank_invoices ORDER BY 1"


async def test_imported_statements_survive_a_replay_and_its_swap(
        engine: AsyncEngine, database_url: str, producers: dict[str, str],  # noqa: F811
        postgres_url: str, tmp_path: Path) -> None:
    clock = await order_lifecycle(engine, "O-1")
    await order_lifecycle(engine, "O-2", clock)
    at = ManualClock(T0 + timedelta(seconds=30))
    await invoiced(producers["billing"], "O-1", "INV-2026-000101", at)
    await invoiced(producers["billing"], "O-2", "INV-2026-000102", at)
    billing = create_engine(producers["billing"], pool_size=1)
    try:
        await live_reconcile({ORDER_EVENTS: engine, BILLING_EVENTS: billing}, producers["reconcile"])
    finally:
        await billing.dispose()
    live_url = producers["reconcile"]
    later = ManualClock(T0 + timedelta(hours=1))
    assert await bank_import(live_url, "T-1,2026-11-21,400.00,CNY,王芳,货款 INV-2026-000101\n"
                                       "T-3,2026-11-21,50.00,CNY,Nobody,unknown\n", later) == (2, 1)
    lines = await rows(live_url, LINES)
    assert lines == [("T-1", "matched", "chen.jing"), ("T-3", "unmatched", "chen.jing")]
    assert await rows(live_url, MATCHED) == [("INV-2026-000101", Decimal("400.00")),
                                             ("INV-2026-000102", Decimal("0.00"))]
    env = database_env(tmp_path, order=database_url, **producers)
    created: list[str] = []
    try:
        result = await invoke(APP, ["replay", "reconcile"], env)
        created += re.findall(r"into (oms_reconcile_replay_\d+)", result.output)
        assert result.exit_code == 0, result.output
        assert "the replay matches the live projections" in result.output, result.output
        replayed = with_database(postgres_url, created[0])
        assert await rows(replayed, LINES) == lines
        assert await rows(replayed, MATCHED) == await rows(live_url, MATCHED)

        swapped = await invoke(APP, ["replay", "reconcile", "--swap"], env)
        created += re.findall(r"into (oms_reconcile_replay_\d+)", swapped.output)
        created += re.findall(r"kept as\s+(oms_reconcile_before_replay_\d+)", swapped.output)
        assert swapped.exit_code == 0, swapped.output
        assert "swapped: the replay is live" in swapped.output, swapped.output
        assert await rows(live_url, LINES) == lines  # the statements are still there
        # the next import allocates (a new allocation row) without taking a copied id
        assert await bank_import(live_url, "T-6,2026-11-21,400.00,CNY,李雷,INV-2026-000102\n",
                                 later) == (1, 1)
        assert await rows(live_url, "SELECT id, transaction_id FROM bank_allocations "
                                    "ORDER BY id") == [(1, "T-1"), (2, "T-6")]
    finally:
        await drop(postgres_url, *created)
