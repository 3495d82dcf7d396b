"""`oms replay billing` on real PostgreSQL: order events from the order store through billing's real
handler, payments finance entered (billing's own command, the `POST /payments` code path) re-run
from billing's own log, with the voucher numbers the live service drew, then a swap after which
the numbering goes on without a gap."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing import handlers
from services.billing import store as billing_store
from shared.auth import Principal
from shared.clock import ManualClock
from shared.contract.envelope import EventEnvelope
from shared.contract.payloads import parse_payload
from shared.db import create_engine
from shared.eventstore import append
from shared.inbox import IdempotentConsumer, Incoming
from shared.service import prepare_database
from shared.settings import with_database
from tests.conftest import create_database
from tests.integration.audit.support import META, T0, cli, database_env, invoke, rows
from tests.integration.audit.test_replay import drop
from tests.integration.billing import conftest as orders

pytestmark = pytest.mark.integration

APP = cli("shared.cli.replay")
AUDIT = cli("shared.cli.audit")
FINANCE = Principal(user="zhang.wei", role="finance")


@pytest_asyncio.fixture
async def stores(postgres_url: str) -> AsyncIterator[dict[str, str]]:
    names = {s: f"t_{s}_{uuid.uuid4().hex[:8]}" for s in ("billing", "reconcile")}
    urls = {s: await create_database(postgres_url, n) for s, n in names.items()}
    await (await prepare_database(urls["billing"], billing_store.create_schema)).dispose()
    await (await prepare_database(urls["reconcile"], None)).dispose()  # its event store
    yield urls
    await drop(postgres_url, *names.values())


async def order_history(engine: AsyncEngine) -> dict[tuple[str, str], EventEnvelope]:
    """Three orders in the order store. By time, O-1 is confirmed first, then O-2, then O-3."""
    steps: list[tuple[timedelta, EventEnvelope]] = [
        (timedelta(seconds=0), orders.placed("O-1")),
        (timedelta(seconds=10), orders.placed("O-2")),
        (timedelta(seconds=20), orders.placed("O-3")),
        (timedelta(minutes=1), orders.confirmed("O-1")),
        (timedelta(seconds=70), orders.confirmed("O-2")),
        (timedelta(seconds=80), orders.confirmed("O-3")),
        (timedelta(minutes=2), orders.captured("O-1", "P-1", "395.00")),
        (timedelta(minutes=3), orders.shipped("O-1", "S-1", (1, "X-100", 2), (2, "GIFT-MUG", 1))),
        (timedelta(minutes=4), orders.returned("O-1", "R-1", ("X-100", 1))),
        (timedelta(minutes=5), orders.amended("O-2", "A-1", 3)),
        (timedelta(minutes=6), orders.cancelled("O-3")),
    ]
    stored: dict[tuple[str, str], EventEnvelope] = {}
    for offset, sample in steps:
        order_id = sample.payload["order_id"]
        async with engine.begin() as conn:
            [event] = await append(conn, order_id, None,
                                   [parse_payload(sample.event_type, sample.payload)],
                                   meta=META, clock=ManualClock(T0 + offset), key=order_id)
        stored[(order_id, event.event_type)] = event
    return stored


async def bank_history(reconcile_url: str) -> EventEnvelope:
    """A statement line reconcile matched to O-2's invoice (``oms bank import``), in its store."""
    sample = orders.bank_matched("O-2", "TX-5", "100.00", "INV-2026-000004")
    engine = create_engine(reconcile_url)
    async with engine.begin() as conn:
        [event] = await append(conn, sample.stream_id, None,
                               [parse_payload(sample.event_type, sample.payload)], meta=META,
                               clock=ManualClock(T0 + timedelta(minutes=9)), key="O-2")
    await engine.dispose()
    return event


async def live_billing(events: dict[tuple[str, str], EventEnvelope], live_url: str,
                       banked: EventEnvelope) -> None:
    """The running billing service, which handled O-2 and O-3 before O-1 (another partition,
    lagging), then a bank line reconcile matched to O-2, then payments finance entered: one on
    O-2, one on the cancelled O-3 (refunded)."""
    clock = ManualClock(T0)
    engine = create_engine(live_url)
    inbox = IdempotentConsumer(name="billing", engine=engine, publisher=None,
                               handle=partial(handlers.handle_order_event, clock=clock))
    live_order = [("O-2", "order.placed"), ("O-2", "order.confirmed"), ("O-3", "order.placed"),
                  ("O-3", "order.confirmed"), ("O-1", "order.placed"), ("O-1", "order.confirmed"),
                  ("O-1", "order.payment_captured"), ("O-1", "order.shipped"),
                  ("O-1", "order.returned"), ("O-2", "order.amended"), ("O-3", "order.cancelled")]
    for n, key in enumerate(live_order):
        clock.set(T0 + timedelta(minutes=2, seconds=30 * n))  # each a little after it happened
        await inbox.process_incoming([Incoming.from_envelope(events[key], "oms.order.events.v1",
                                                             offset=n)])
    clock.set(T0 + timedelta(minutes=9, seconds=10))
    await inbox.process_incoming([Incoming.from_envelope(banked, "oms.reconcile.events.v1")])
    clock.set(T0 + timedelta(minutes=10))
    await handlers.record_transfer(engine, handlers.Transfer(
        "O-2", "BANK-7", "bank_transfer", Decimal("200.00"), "CNY",
        received_at=T0 + timedelta(minutes=9, seconds=30)), FINANCE, clock)
    clock.set(T0 + timedelta(minutes=11))
    await handlers.record_transfer(engine, handlers.Transfer(
        "O-3", "BANK-8", "bank_transfer", Decimal("50.00"), "CNY"), FINANCE, clock)
    await engine.dispose()



VOUCHERS = ("SELECT order_id, voucher_number, issued_at, voided FROM invoices UNION ALL "
            "SELECT order_id, voucher_number, issued_at, NULL FROM credit_notes ORDER BY 2")
PAYMENTS = "SELECT payment_id, order_id, source, recorded_by, received_at FROM payments ORDER BY 1"


async def test_billing_replay_keeps_the_live_vouchers_and_reruns_finance_payments(
        engine: AsyncEngine, database_url: str, stores: dict[str, str], postgres_url: str,
        tmp_path: Path) -> None:
    live_url = stores["billing"]
    await live_billing(await order_history(engine), live_url, await bank_history(stores["reconcile"]))
    live_vouchers = await rows(live_url, VOUCHERS)
    assert [(o, v) for o, v, _, _ in live_vouchers] == [
        ("O-1", "CN-2026-000001"), ("O-2", "INV-2026-000001"), ("O-3", "INV-2026-000002"),
        ("O-1", "INV-2026-000003"), ("O-2", "INV-2026-000004")]  # not in the orders' time order
    live_payments = await rows(live_url, PAYMENTS)
    assert ("bank:TX-5:INV-2026-000004", "O-2", "bank") in [p[:3] for p in live_payments]
    own = await rows(live_url, "SELECT event_type FROM events WHERE causation_id IS NULL "
                               "ORDER BY position")
    assert own == [("payment.recorded",), ("payment.recorded",), ("refund.issued",)]

    env = database_env(tmp_path, order=database_url, **stores)
    created: list[str] = []
    try:
        result = await invoke(APP, ["replay", "billing"], env)
        found = re.search(r"into (oms_billing_replay_\d+)", result.output)
        if found:
            created.append(found.group(1))
        assert result.exit_code == 0, result.output
        assert "12 events fed, 2 own commands re-run, 0 dead letters" in result.output
        assert "failed when re-run" not in result.output
        assert "the replay matches the live projections" in result.output, result.output
        replay_url = with_database(postgres_url, created[0])
        assert await rows(replay_url, VOUCHERS) == live_vouchers  # numbers, issue times too
        assert await rows(replay_url, PAYMENTS) == live_payments  # received_at as finance said
        refunds = "SELECT refund_id, payment_id, amount FROM refunds ORDER BY 1"
        assert await rows(replay_url, refunds) == await rows(live_url, refunds)

        swapped = await invoke(APP, ["replay", "billing", "--swap"], env)
        assert swapped.exit_code == 0, swapped.output
        created.append(re.findall(r"into (oms_billing_replay_\d+)", swapped.output)[0])
        before = re.search(r"kept as\s+(oms_billing_before_replay_\d+)", swapped.output)
        assert before, swapped.output
        created.append(before.group(1))
        assert "the replay matches the live projections" in swapped.output
        verified = await invoke(AUDIT, ["audit", "verify", "--service", "billing"], env)
        assert verified.exit_code == 0, verified.output
        assert await rows(live_url, VOUCHERS) == live_vouchers

        # The swapped database numbers on from the live counters: no gap, no number twice.
        live = create_engine(live_url)
        inbox = IdempotentConsumer(name="billing", engine=live, publisher=None,
                                   handle=partial(handlers.handle_order_event,
                                                  clock=ManualClock(T0 + timedelta(hours=1))))
        for sample in (orders.placed("O-4"), orders.confirmed("O-4")):
            await inbox.process_incoming([Incoming.from_envelope(sample, "oms.order.events.v1")])
        await live.dispose()
        newest = await rows(live_url, "SELECT voucher_number FROM invoices WHERE order_id = 'O-4'")
        assert newest == [("INV-2026-000005",)]
    finally:
        await drop(postgres_url, *created)

