"""Two instances of reconcile (``oms run --scale reconcile=2``) share how far behind they are
through the database (shared/lagshare.py): one instance must not raise a discrepancy whose facts
are still in the other instance's backlog."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

from sqlalchemy import text

from services.reconcile.handlers import make_batch_start, make_handler, raise_overdue_discrepancies
from shared.clock import ManualClock
from shared.inbox import IdempotentConsumer
from shared.lag import ConsumerLag
from shared.lagshare import instance_id, share_once
from tests.integration.reconcile.test_discrepancies import (
    AT,
    GRACE,
    discrepancies,
    incoming,
    lifecycle,
    new_order_id,
)

WALL = 1_800_000_000.0


def lag_at(wall: list[float]) -> ConsumerLag:
    return ConsumerLag(fresh_for=5.0, wall=lambda: wall[0])


async def test_each_instance_hears_the_others_while_they_report(reconcile_engine):
    wall = [WALL]
    a, b = lag_at(wall), lag_at(wall)
    a.hear_elsewhere(0.0)
    inbox = IdempotentConsumer(name="reconcile", engine=reconcile_engine, publisher=None,
                               handle=make_handler(ManualClock(AT), GRACE, a))
    events = lifecycle("paid", new_order_id())
    await inbox.process_incoming([replace(incoming(e, n), timestamp_ms=int((WALL - 300) * 1000))
                                  for n, e in enumerate(events)])
    assert a.local() == 300.0
    assert await share_once(reconcile_engine, a, "reconcile", "reconcile") == 0.0
    assert await share_once(reconcile_engine, b, "reconcile", "reconcile-2") == 300.0
    assert (b.local(), b.behind()) == (0.0, 300.0)
    assert await share_once(reconcile_engine, a, "reconcile", "reconcile") == 0.0  # b is not behind
    assert a.behind() == 300.0
    # Another consumer's rows are not this one's business.
    other = lag_at(wall)
    assert await share_once(reconcile_engine, other, "billing", "billing") == 0.0
    # An instance that stopped reporting (killed) soon stops counting, by the database's clock.
    async with reconcile_engine.begin() as conn:
        await conn.execute(text("UPDATE consumer_horizons SET reported_at = now() - interval '11 s' "
                                "WHERE instance = 'reconcile'"))
    assert await share_once(reconcile_engine, b, "reconcile", "reconcile-2") == 0.0


async def test_the_grace_job_waits_for_facts_in_the_other_instances_backlog(reconcile_engine):
    """Instance A is ten minutes behind its partitions; instance B, caught up, runs the
    grace-period job: an order's missing revenue may be in A's backlog, so B raises nothing
    until A has caught up (or stopped reporting)."""
    engine, clock = reconcile_engine, ManualClock(AT)
    wall = [WALL]
    a, b = lag_at(wall), lag_at(wall)
    inbox_b = IdempotentConsumer(name="reconcile", engine=engine, publisher=None,
                                 handle=make_handler(clock, GRACE, b),
                                 start_batch=make_batch_start(clock, GRACE, b))
    order_id = new_order_id()
    events = lifecycle("shipped", order_id)
    [revenue] = [e for e in events if e.event_type == "revenue.recognized"]
    now_ms = int(wall[0] * 1000)
    await inbox_b.process_incoming([replace(incoming(e, n), timestamp_ms=now_ms)
                                    for n, e in enumerate(events) if e is not revenue])
    inbox_a = IdempotentConsumer(name="reconcile", engine=engine, publisher=None,
                                 handle=make_handler(clock, GRACE, a))
    other = lifecycle("paid", new_order_id())
    await inbox_a.process_incoming([replace(incoming(e, 50 + n), message_id=uuid.uuid4(),
                                            timestamp_ms=now_ms - 600_000)
                                    for n, e in enumerate(other)])
    assert a.local() == 600.0 and b.local() == 0.0
    await share_once(engine, a, "reconcile", "reconcile")
    await share_once(engine, b, "reconcile", "reconcile-2")
    clock.advance(GRACE * 2)
    assert await raise_overdue_discrepancies(engine, clock, GRACE, b) == 0
    assert await discrepancies(engine, order_id) == []

    wall[0] += 6  # A has caught up (nothing more arrives) and says so
    await share_once(engine, a, "reconcile", "reconcile")
    await share_once(engine, b, "reconcile", "reconcile-2")
    assert b.behind() == 0.0
    assert await raise_overdue_discrepancies(engine, clock, GRACE, b) == 1
    [raised] = await discrepancies(engine, order_id)
    assert raised["kind"] == "shipped_revenue_not_recognised"


def test_an_instance_without_a_name_is_this_host_and_process() -> None:
    assert instance_id("reconcile-2") == "reconcile-2"
    host, _, pid = instance_id(None).rpartition(":")
    assert host and pid.isdigit()


async def test_who_answers_what_is_shared_and_kept_for_the_next_start(reconcile_engine):
    """One instance learned that billing answers confirmations; another (or this one restarted
    while billing is down) knows it from the database, so billing's silence holds from the start."""
    from shared.silence import Silences
    from tests.unit.shared.test_silence import BILLING, ORDERS, event, incoming

    consumer = f"reconcile-{uuid.uuid4().hex[:6]}"

    def heard(topic, envelope):
        return incoming(topic, envelope, WALL)

    wall = [WALL]
    learned = ConsumerLag(wall=lambda: wall[0], silences=Silences(owed_before_silent=2))
    confirmed = event("order.confirmed")
    learned.observe([heard(ORDERS, confirmed), heard(BILLING, event("invoice.issued", confirmed))])
    await share_once(reconcile_engine, learned, consumer, "one")
    await share_once(reconcile_engine, learned, consumer, "one")  # nothing new: nothing written
    async with reconcile_engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT answerer, cause_topic, cause_type FROM consumer_answers "
            "WHERE consumer = :c"), {"c": consumer})).all()
    assert [tuple(r) for r in rows] == [(BILLING, ORDERS, "order.confirmed")]

    started = ConsumerLag(wall=lambda: wall[0], silences=Silences(owed_before_silent=2))
    await share_once(reconcile_engine, started, consumer, "two")
    assert started.silences is not None and started.silences.untold() == set()
    started.observe([heard(ORDERS, event("order.confirmed")) for _ in range(2)])  # billing down
    wall[0] += 90
    assert started.silent() == {BILLING: 90.0}
    stranger = ConsumerLag(wall=lambda: wall[0], silences=Silences())  # another consumer's rows
    await share_once(reconcile_engine, stranger, "billing", "billing")
    assert stranger.silences is not None and stranger.silences.answers() == {}


async def test_the_grace_job_leaves_a_sheet_another_transaction_holds(reconcile_engine):
    """With two instances both run the grace-period job, and a consumer's batch may hold an
    order's sheet: the pass skips that order instead of waiting for it (the holder settles it,
    or the next pass does), so one busy order never stalls the others."""
    engine, clock = reconcile_engine, ManualClock(AT)
    inbox = IdempotentConsumer(name="reconcile", engine=engine, publisher=None,
                               handle=make_handler(clock, GRACE))
    held, free = new_order_id(), new_order_id()
    for n, order_id in enumerate((held, free)):
        events = [e for e in lifecycle("shipped", order_id) if e.event_type != "revenue.recognized"]
        await inbox.process_incoming([replace(incoming(e, 10 * n + k), message_id=uuid.uuid4())
                                      for k, e in enumerate(events)])
    clock.advance(GRACE * 2)
    async with engine.connect() as other:
        busy = await other.begin()
        await other.execute(text("SELECT 1 FROM order_fact_sheets WHERE order_id = :o FOR UPDATE"),
                            {"o": held})
        async with asyncio.timeout(10):  # it used to wait here until the holder was done
            assert await raise_overdue_discrepancies(engine, clock, GRACE) == 1
        await busy.rollback()
    assert [d["kind"] for d in await discrepancies(engine, free)] == [
        "shipped_revenue_not_recognised"]
    assert await discrepancies(engine, held) == []
    assert await raise_overdue_discrepancies(engine, clock, GRACE) == 1  # the next pass
    assert [d["kind"] for d in await discrepancies(engine, held)] == [
        "shipped_revenue_not_recognised"]
