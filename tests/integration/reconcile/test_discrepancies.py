"""Discrepancies on the real database through the inbox: raised once past the grace period (on a
ManualClock), appended to reconcile's event store for the relay, resolved when the facts catch up."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconcile import store
from services.reconcile.handlers import (
    make_batch_start,
    make_handler,
    raise_overdue_discrepancies,
)
from shared.clock import ManualClock
from shared.eventstore import read_stream
from shared.inbox import IdempotentConsumer
from tests.unit.reconcile.flows import LIFECYCLES, lifecycle
from tests.unit.reconcile.samples import AT, incoming, new_order_id

GRACE = timedelta(seconds=60)


def consumer(engine: AsyncEngine, clock: ManualClock, name: str = "reconcile") -> IdempotentConsumer:
    return IdempotentConsumer(name=name, engine=engine, publisher=None,
                              handle=make_handler(clock, GRACE))


async def stream(engine: AsyncEngine, order_id: str):
    async with engine.connect() as conn:
        return await read_stream(conn, order_id)


async def discrepancies(engine: AsyncEngine, order_id: str, open_only: bool = True) -> list[dict]:
    async with engine.connect() as conn:
        return await store.list_discrepancies(conn, open_only=open_only, order_id=order_id)


async def test_a_lost_revenue_event_is_raised_after_the_grace_and_resolved_when_it_arrives(
        reconcile_engine):
    """Issue 5's "done when": one event does not reach reconcile on its way from billing."""
    engine, clock = reconcile_engine, ManualClock(AT)
    inbox = consumer(engine, clock)
    order_id = new_order_id()
    events = lifecycle("shipped", order_id)
    [revenue] = [e for e in events if e.event_type == "revenue.recognized"]
    await inbox.process_incoming([incoming(e) for e in events if e is not revenue])

    assert await raise_overdue_discrepancies(engine, clock, GRACE) == 0  # facts may be in flight
    clock.advance(GRACE - timedelta(seconds=1))
    assert await raise_overdue_discrepancies(engine, clock, GRACE) == 0
    clock.advance(timedelta(seconds=1))
    assert await raise_overdue_discrepancies(engine, clock, GRACE) == 1

    [raised] = await discrepancies(engine, order_id)
    assert (raised["kind"], raised["reason"]) == ("shipped_revenue_not_recognised",
                                                  "shipped but revenue not recognised: S-1")
    assert (raised["expected"], raised["actual"]) == ("revenue.recognized for S-1",
                                                      "revenue.recognized for none")
    assert raised["since"] == AT.isoformat() and raised["open"]
    [detected] = await stream(engine, order_id)
    assert detected.key == order_id  # the relay publishes it keyed by the order
    assert detected.envelope.event_type == "discrepancy.detected"
    assert detected.envelope.payload["kind"] == "shipped_revenue_not_recognised"

    clock.advance(GRACE * 5)
    assert await raise_overdue_discrepancies(engine, clock, GRACE) == 0  # once per order and kind

    await inbox.process_incoming([incoming(revenue)])  # the event finally arrives
    assert await discrepancies(engine, order_id) == []
    [closed] = await discrepancies(engine, order_id, open_only=False)
    assert closed["resolved_at"] == clock.now().isoformat()
    _, resolved = await stream(engine, order_id)
    assert resolved.envelope.event_type == "discrepancy.resolved"
    assert resolved.envelope.payload == {"order_id": order_id, "kind": "shipped_revenue_not_recognised",
                                         "resolved_at": clock.now().isoformat().replace("+00:00", "Z")}
    assert resolved.envelope.causation_id == str(revenue.event_id)
    async with engine.connect() as conn:
        sheet = await store.fact_sheet(conn, order_id)
    assert sheet is not None and (sheet["status"], sheet["open_discrepancies"]) == ("consistent", [])


@pytest.mark.parametrize("name", sorted(LIFECYCLES))
async def test_healthy_lifecycles_raise_nothing(reconcile_engine, name):
    clock = ManualClock(AT)
    order_id = new_order_id()
    await consumer(reconcile_engine, clock).process_incoming(
        [incoming(e) for e in lifecycle(name, order_id)])
    clock.advance(GRACE * 10)
    assert await raise_overdue_discrepancies(reconcile_engine, clock, GRACE) == 0
    async with reconcile_engine.connect() as conn:
        sheet = await store.fact_sheet(conn, order_id)
        summary = await store.summary(conn)
    assert sheet is not None and (sheet["status"], sheet["reasons"]) == ("consistent", [])
    assert (summary["open_discrepancies"], summary["by_kind"]) == (0, {})


async def test_facts_that_catch_up_within_the_grace_raise_nothing(reconcile_engine):
    clock = ManualClock(AT)
    inbox = consumer(reconcile_engine, clock)
    order_id = new_order_id()
    events = lifecycle("paid", order_id)
    late = [e for e in events if e.event_type in ("invoice.issued", "notification.sent")]
    await inbox.process_incoming([incoming(e) for e in events if e not in late])
    clock.advance(GRACE - timedelta(seconds=1))
    await inbox.process_incoming([incoming(e) for e in late])
    clock.advance(GRACE * 10)
    assert await raise_overdue_discrepancies(reconcile_engine, clock, GRACE) == 0
    assert await stream(reconcile_engine, order_id) == []


async def test_an_event_arriving_after_the_grace_raises_without_waiting_for_the_job(reconcile_engine):
    clock = ManualClock(AT)
    inbox = consumer(reconcile_engine, clock)
    order_id = new_order_id()
    events = lifecycle("cancelled_unpaid", order_id)
    release_and_void = [e for e in events if e.event_type in ("stock.released", "invoice.voided")]
    [release, void] = release_and_void
    await inbox.process_incoming([incoming(e) for e in events if e not in release_and_void])
    clock.advance(GRACE)
    await inbox.process_incoming([incoming(void)])  # the stock is still held: raised now
    [raised] = await discrepancies(reconcile_engine, order_id)
    assert (raised["kind"], raised["actual"]) == ("cancelled_stock_not_released", "GIFT-MUG x1, X-100 x2")
    await inbox.process_incoming([incoming(release)])
    assert await discrepancies(reconcile_engine, order_id) == []
    kinds = [(s.envelope.event_type, s.envelope.payload["kind"])
             for s in await stream(reconcile_engine, order_id)]
    assert kinds == [("discrepancy.detected", "cancelled_stock_not_released"),
                     ("discrepancy.resolved", "cancelled_stock_not_released")]


async def test_redelivery_and_replay_raise_nothing_twice(reconcile_engine):
    clock = ManualClock(AT)
    order_id = new_order_id()
    events = [e for e in lifecycle("shipped", order_id) if e.event_type != "revenue.recognized"]
    await consumer(reconcile_engine, clock).process_incoming([incoming(e) for e in events])
    clock.advance(GRACE)
    assert await raise_overdue_discrepancies(reconcile_engine, clock, GRACE) == 1
    await consumer(reconcile_engine, clock).process_incoming([incoming(e, 1) for e in events])
    async with reconcile_engine.begin() as conn:
        await conn.execute(text("DELETE FROM inbox"))  # a replay: the inbox remembers nothing
    clock.advance(GRACE)
    await consumer(reconcile_engine, clock, "reconcile-replay").process_incoming(
        [incoming(e) for e in reversed(events)])
    assert await raise_overdue_discrepancies(reconcile_engine, clock, GRACE) == 0
    assert len(await stream(reconcile_engine, order_id)) == 1
    assert len(await discrepancies(reconcile_engine, order_id)) == 1


async def test_a_wait_is_reported_as_pending_but_never_raised(reconcile_engine):
    clock = ManualClock(AT)
    order_id = new_order_id()
    [placed] = [e for e in lifecycle("paid", order_id) if e.event_type == "order.placed"]
    await consumer(reconcile_engine, clock).process_incoming([incoming(placed)])
    clock.advance(GRACE * 100)
    assert await raise_overdue_discrepancies(reconcile_engine, clock, GRACE) == 0
    async with reconcile_engine.connect() as conn:
        sheet = await store.fact_sheet(conn, order_id)
    assert sheet is not None and sheet["status"] == "pending"
    assert [(f["kind"], f["waiting"]) for f in sheet["findings"]] == [("awaiting_confirmation", True)]


async def test_facts_in_flight_while_reconcile_is_behind_are_not_raised(reconcile_engine):
    """Reconcile ten minutes behind its topics (a backlog: a restart, a burst) has not seen what
    billing said in those ten minutes: a missing revenue event is no discrepancy until reconcile
    has caught up and the grace has passed on its own horizon (the bench's 111,000 orders raised
    and resolved 140,000 of them before)."""
    from dataclasses import replace

    from shared.lag import ConsumerLag
    from shared.metrics import METRICS

    engine, clock = reconcile_engine, ManualClock(AT)
    wall = [1_800_000_000.0]
    lag = ConsumerLag(fresh_for=5.0, wall=lambda: wall[0])
    inbox = IdempotentConsumer(name="reconcile", engine=engine, publisher=None,
                               handle=make_handler(clock, GRACE, lag),
                               start_batch=make_batch_start(clock, GRACE, lag))
    order_id = new_order_id()
    events = lifecycle("shipped", order_id)
    [revenue] = [e for e in events if e.event_type == "revenue.recognized"]
    sent_ms = int((wall[0] - 600) * 1000)  # each sent ten minutes before it is handled
    await inbox.process_incoming([replace(incoming(e, n), timestamp_ms=sent_ms)
                                  for n, e in enumerate(events) if e is not revenue])
    assert lag.behind() == 600.0

    deferred = METRICS.total("oms_reconcile_raises_deferred_total")
    clock.advance(GRACE * 2)
    assert await raise_overdue_discrepancies(engine, clock, GRACE, lag) == 0
    assert await discrepancies(engine, order_id) == []
    await inbox.process_incoming([replace(incoming(events[0], 99), message_id=uuid.uuid4(),
                                          timestamp_ms=sent_ms)])  # another look, still behind
    assert METRICS.total("oms_reconcile_raises_deferred_total") > deferred
    assert await discrepancies(engine, order_id) == []

    wall[0] += 6  # nothing more arrives: reconcile has caught up, and the facts still disagree
    assert lag.behind() == 0.0
    assert await raise_overdue_discrepancies(engine, clock, GRACE, lag) == 1
    [raised] = await discrepancies(engine, order_id)
    assert (raised["kind"], raised["since"]) == ("shipped_revenue_not_recognised", AT.isoformat())


async def test_a_missing_answer_waits_while_its_producer_answers_late_and_is_raised_after(
        reconcile_engine):
    """Billing minutes behind (its revenue events come five minutes after the shipments they
    answer): a shipment without revenue is no discrepancy yet; once billing is heard from no
    more and the grace has passed, it is (a stopped producer cannot hide what it lost)."""
    from dataclasses import replace

    from shared.lag import ConsumerLag

    engine, clock = reconcile_engine, ManualClock(AT)
    wall = [1_800_000_000.0]
    lag = ConsumerLag(wall=lambda: wall[0], remember=100, sample=1)
    inbox = IdempotentConsumer(name="reconcile", engine=engine, publisher=None,
                               handle=make_handler(clock, GRACE, lag),
                               start_batch=make_batch_start(clock, GRACE, lag))
    now_ms = int(wall[0] * 1000)

    def fresh(events, first):  # sent just now: reconcile is not behind
        return [replace(incoming(e, first + n), timestamp_ms=now_ms) for n, e in enumerate(events)]

    lost = new_order_id()
    events = lifecycle("shipped", lost)
    await inbox.process_incoming(fresh([e for e in events if e.event_type != "revenue.recognized"],
                                       0))
    slow = new_order_id()
    other = lifecycle("shipped", slow)
    [shipped] = [e for e in other if e.event_type == "order.shipped"]
    [revenue] = [e for e in other if e.event_type == "revenue.recognized"]
    late = revenue.model_copy(update={"causation_id": str(shipped.event_id),
                                      "occurred_at": shipped.occurred_at + timedelta(minutes=5)})
    await inbox.process_incoming(fresh([e for e in other if e is not revenue], 100))
    await inbox.process_incoming(fresh([late], 200))
    assert lag.behind() == 300.0

    clock.advance(GRACE * 2)
    assert await raise_overdue_discrepancies(engine, clock, GRACE, lag) == 0
    wall[0] += 61  # billing not heard from for a minute: no news of its pace
    assert await raise_overdue_discrepancies(engine, clock, GRACE, lag) == 1
    [raised] = await discrepancies(engine, lost)
    assert raised["kind"] == "shipped_revenue_not_recognised"


async def test_what_a_silent_producer_owes_waits_for_it_and_what_it_lost_is_raised_after(
        reconcile_engine):
    """Billing down (stopped, stuck) answers none of the orders confirmed meanwhile. They are not
    lost, and one outage must not become a discrepancy per order, each alerting people: while
    billing owes answers without a word, its orders wait. Once it speaks again, what it did
    lose is raised, once the backlog it works through has had time."""
    from dataclasses import replace

    from shared.lag import ConsumerLag
    from shared.silence import Silences

    engine, clock = reconcile_engine, ManualClock(AT)
    wall = [1_800_000_000.0]
    lag = ConsumerLag(wall=lambda: wall[0], remember=100, sample=1,
                      silences=Silences(owed_before_silent=2))
    inbox = IdempotentConsumer(name="reconcile", engine=engine, publisher=None,
                               handle=make_handler(clock, GRACE, lag),
                               start_batch=make_batch_start(clock, GRACE, lag))
    offsets = iter(range(1000))

    async def hear(events):  # sent just now: reconcile itself is not behind
        await inbox.process_incoming([replace(incoming(e, next(offsets)),
                                              timestamp_ms=int(wall[0] * 1000)) for e in events])

    taught = lifecycle("paid", new_order_id())  # billing seen answering a confirmation
    [confirmed] = [e for e in taught if e.event_type == "order.confirmed"]
    await hear([e.model_copy(update={"causation_id": str(confirmed.event_id)})
                if e.event_type == "invoice.issued" else e for e in taught])
    billing_down = ("order.placed", "stock.reserved", "order.confirmed", "notification.sent")
    answered, lost = new_order_id(), new_order_id()
    flows = {order_id: lifecycle("paid", order_id) for order_id in (answered, lost)}
    await hear([e for order_id in (answered, lost) for e in flows[order_id]
                if e.event_type in billing_down])

    clock.advance(GRACE * 2)
    wall[0] += 120
    assert lag.silent() == {"oms.billing.events.v1": 120.0}
    assert await raise_overdue_discrepancies(engine, clock, GRACE, lag) == 0
    assert await discrepancies(engine, answered) == [] and await discrepancies(engine, lost) == []

    await hear([e for e in flows[answered] if e.event_type == "invoice.issued"])  # back: it lost one
    assert lag.silent() == {} and lag.behind() == 120.0  # the rest may be behind its backlog
    assert await raise_overdue_discrepancies(engine, clock, GRACE, lag) == 0
    wall[0] += 61  # a minute later its backlog has been answered
    assert lag.behind() == 0.0
    assert await raise_overdue_discrepancies(engine, clock, GRACE, lag) == 1
    [raised] = await discrepancies(engine, lost)
    assert raised["kind"] == "confirmed_not_invoiced"
    assert await discrepancies(engine, answered) == []
