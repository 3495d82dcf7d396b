"""`oms replay reconcile` raises the discrepancies live raised, when live raised them.

Whether a disagreement had lasted the grace depended on how far behind live reconcile was at that
moment, which the history does not hold: a replay that decided again on event time raised what
live had held back while behind, and missed what live's grace-period job raised with no event to
cause it. Both made the replay "differ from live" on a healthy system. Each scenario below
differed before the replay took live's raises from live's log."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconcile.handlers import make_handler, raise_overdue_discrepancies
from shared.clock import ManualClock
from shared.commitorder import read_all
from shared.contract.envelope import EventEnvelope
from shared.contract.payloads import OrderConfirmed, Payload
from shared.contract.topics import BILLING_EVENTS, ORDER_EVENTS
from shared.db import create_engine
from shared.eventstore import append
from shared.inbox import Handler, IdempotentConsumer, Incoming
from shared.lag import ConsumerLag
from shared.settings import with_database
from tests.integration.audit.support import META, T0, cli, database_env, invoke, order_lifecycle, placed, rows
from tests.integration.audit.test_replay import drop, producers  # noqa: F401 (fixture)
from tests.unit.reconcile.samples import invoice_issued

pytestmark = pytest.mark.integration

APP = cli("shared.cli.replay")
GRACE = timedelta(seconds=60)
DISCREPANCIES = ("SELECT order_id, kind, reason, expected, actual, resolved_at IS NULL AS open "
                 "FROM discrepancies ORDER BY order_id, kind")


async def write(engine: AsyncEngine, order_id: str, payload: Payload, at: datetime) -> EventEnvelope:
    async with engine.begin() as conn:
        [envelope] = await append(conn, order_id, None, [payload], meta=META,
                                  clock=ManualClock(at), key=order_id)
    return envelope


async def live(url: str, handler: Handler, clock: ManualClock,
               handled: Sequence[tuple[datetime, str, EventEnvelope]]) -> None:
    """The running reconcile: each event handled at the given (wall-clock) instant."""
    engine = create_engine(url, pool_size=1)
    consumer = IdempotentConsumer(name="reconcile", engine=engine, publisher=None, handle=handler)
    try:
        for at, topic, envelope in handled:
            clock.set(at)
            await consumer.process_incoming([Incoming.from_envelope(envelope, topic)])
    finally:
        await engine.dispose()


async def job(url: str, at: datetime) -> int:
    engine = create_engine(url, pool_size=1)
    try:
        return await raise_overdue_discrepancies(engine, ManualClock(at), GRACE)
    finally:
        await engine.dispose()


async def replay(env: dict[str, str | None], postgres_url: str) -> tuple[str, list[tuple[object, ...]]]:
    result = await invoke(APP, ["replay", "reconcile"], env)
    created = re.findall(r"into (oms_reconcile_replay_\d+)", result.output)
    try:
        assert result.exit_code == 0, result.output
        return result.output, await rows(with_database(postgres_url, created[0]), DISCREPANCIES)
    finally:
        await drop(postgres_url, *created)


async def test_the_grace_period_jobs_raises_are_replayed_at_their_instants(
        engine: AsyncEngine, database_url: str, producers: dict[str, str],  # noqa: F811
        postgres_url: str, tmp_path: Path) -> None:
    """Live: confirmed, then nothing for ten minutes: its job raises three kinds; billing's
    invoice (dated four minutes in) reaches it only after that and resolves one. No event made
    the job's raises, so a replay deciding on events alone raised two of them at the invoice and
    never the third."""
    total = Decimal("400.00")
    placed_at = await write(engine, "O-1", placed("O-1"), T0)
    confirmed = await write(engine, "O-1", OrderConfirmed(order_id="O-1", total=total,
                                                          currency="CNY"), T0 + timedelta(minutes=1))
    billing = create_engine(producers["billing"], pool_size=1)
    try:
        invoice = await write(billing, "O-1", invoice_issued("O-1", total=total),
                              T0 + timedelta(minutes=4))
    finally:
        await billing.dispose()
    live_url = producers["reconcile"]
    clock = ManualClock(T0)
    handler = make_handler(clock, GRACE)
    await live(live_url, handler, clock, [(T0, ORDER_EVENTS, placed_at),
                                          (T0 + timedelta(minutes=1), ORDER_EVENTS, confirmed)])
    assert await job(live_url, T0 + timedelta(minutes=10)) == 3
    await live(live_url, handler, clock, [(T0 + timedelta(minutes=11), BILLING_EVENTS, invoice)])
    live_rows = await rows(live_url, DISCREPANCIES)
    assert [(kind, is_open) for _, kind, _, _, _, is_open in live_rows] == [
        ("confirmation_not_notified", True), ("confirmed_not_invoiced", False),
        ("confirmed_not_reserved", True)]

    output, replayed = await replay(database_env(tmp_path, order=database_url, **producers),
                                    postgres_url)
    assert "the replay matches the live projections" in output, output
    assert replayed == live_rows
    assert "3 discrepancies raised when live raised them (3 by the grace-period job)" in output
    # the invoice is dated before the job's pass: the replay has it by then
    assert re.search(r"O-1: confirmed_not_invoiced raised live \(by the grace-period job, "
                     r"[^)]*\) but not found by the replayed history there", output), output


class Behind(ConsumerLag):
    """A reconcile ten minutes behind its topics (what ``shared.lag`` would measure)."""

    def behind(self) -> float:
        return 600.0


async def test_what_live_held_back_while_behind_is_not_raised_by_the_replay(
        engine: AsyncEngine, database_url: str, producers: dict[str, str],  # noqa: F811
        postgres_url: str, tmp_path: Path) -> None:
    """Live, ten minutes behind, held the confirmed order's disagreements back (its horizon had
    not passed the grace); on event time the paid event comes a minute after confirmation, so a
    replay deciding again raised three discrepancies live never raised."""
    await order_lifecycle(engine, "O-1")
    async with engine.connect() as conn:
        history = [e.envelope for e in await read_all(conn)]
    live_url = producers["reconcile"]
    at = ManualClock(T0)
    await live(live_url, make_handler(at, GRACE, Behind()), at,
               [(e.occurred_at, ORDER_EVENTS, e) for e in history])
    assert await rows(live_url, DISCREPANCIES) == []

    output, replayed = await replay(database_env(tmp_path, order=database_url, **producers),
                                    postgres_url)
    assert "the replay matches the live projections" in output, output
    assert replayed == []
    assert "raised when live raised" not in output
