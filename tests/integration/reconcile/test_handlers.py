"""Reconcile's handlers on the real database, driven through the idempotent inbox."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reconcile import store
from services.reconcile.handlers import make_handler
from shared.clock import ManualClock
from shared.inbox import IdempotentConsumer
from tests.unit.reconcile.samples import (
    AT,
    envelope,
    happy_flow,
    incoming,
    invoice_issued,
    new_order_id,
    order_placed,
    payment_recorded,
)

GRACE = timedelta(seconds=60)


def consumer(engine: AsyncEngine, clock: ManualClock, name: str = "reconcile") -> IdempotentConsumer:
    return IdempotentConsumer(name=name, engine=engine, publisher=None,
                              handle=make_handler(clock, GRACE))


async def sheet(engine: AsyncEngine, order_id: str) -> dict:
    async with engine.connect() as conn:
        found = await store.fact_sheet(conn, order_id)
    assert found is not None
    return found


async def test_the_happy_flow_ends_consistent_with_every_fact(reconcile_engine):
    order_id = new_order_id()
    await consumer(reconcile_engine, ManualClock(AT)).process_incoming(
        [incoming(e) for e in happy_flow(order_id)]
    )
    found = await sheet(reconcile_engine, order_id)
    assert (found["status"], found["reasons"]) == ("consistent", [])
    facts = found["facts"]
    assert facts["ordered"] == facts["reserved"] == {"X-100": 2, "GIFT-MUG": 1}
    assert (facts["order_total"], facts["invoiced_total"], facts["paid_total"]) == ("395.00",) * 3
    assert (facts["invoices_count"], facts["notifications_count"]) == (1, 1)
    assert facts["placed"] and facts["confirmed"] and facts["paid_flag"] and not facts["cancelled"]


async def test_out_of_order_arrival_across_topics_still_ends_consistent(reconcile_engine):
    clock = ManualClock(AT)
    inbox = consumer(reconcile_engine, clock)
    order_id = new_order_id()
    placed, reserved, confirmed, invoice, payment, paid, notified = happy_flow(order_id)
    # billing and notify first, one batch each, the order's own events last
    await inbox.process_incoming([incoming(payment), incoming(invoice)])
    found = await sheet(reconcile_engine, order_id)
    assert (found["status"], found["reasons"]) == ("pending", ["order.placed not seen"])
    clock.advance(timedelta(seconds=5))
    await inbox.process_incoming([incoming(notified), incoming(reserved)])
    clock.advance(timedelta(seconds=5))
    await inbox.process_incoming([incoming(confirmed), incoming(paid)])
    found = await sheet(reconcile_engine, order_id)
    assert found["status"] == "pending"
    assert found["status_since"] == AT.isoformat()  # pending since the first fact, not reset
    clock.advance(timedelta(seconds=5))
    await inbox.process_incoming([incoming(placed)])
    found = await sheet(reconcile_engine, order_id)
    assert (found["status"], found["reasons"]) == ("consistent", [])
    assert found["status_since"] == clock.now().isoformat()


async def test_redelivery_and_replay_count_each_fact_once(reconcile_engine):
    clock = ManualClock(AT)
    order_id = new_order_id()
    events = happy_flow(order_id)
    await consumer(reconcile_engine, clock).process_incoming([incoming(e) for e in events])
    await consumer(reconcile_engine, clock).process_incoming([incoming(e, 1) for e in events])
    async with reconcile_engine.begin() as conn:
        await conn.execute(text("DELETE FROM inbox"))  # a replay: the inbox remembers nothing
    await consumer(reconcile_engine, clock, "reconcile-replay").process_incoming(
        [incoming(e) for e in reversed(events)]
    )
    found = await sheet(reconcile_engine, order_id)
    assert found["status"] == "consistent"
    assert (found["facts"]["invoices_count"], found["facts"]["paid_total"]) == (1, "395.00")
    assert found["facts"]["reserved"] == {"X-100": 2, "GIFT-MUG": 1}


async def test_concurrent_consumers_of_different_topics_lose_no_fact(reconcile_engine):
    clock = ManualClock(AT)
    order_id = new_order_id()
    by_topic: dict[str, list] = {}
    for event in happy_flow(order_id):
        by_topic.setdefault(incoming(event).topic, []).append(incoming(event))
    # one instance per topic, as partitions of four topics spread over a consumer group
    await asyncio.gather(*(consumer(reconcile_engine, clock).process_incoming(batch)
                           for batch in by_topic.values()))
    found = await sheet(reconcile_engine, order_id)
    assert (found["status"], found["reasons"]) == ("consistent", [])


async def test_summary_lists_pending_orders_with_reasons(reconcile_engine):
    clock = ManualClock(AT)
    good, short_paid = new_order_id(), new_order_id()
    events = [incoming(e) for e in happy_flow(good)]
    events += [incoming(e) for e in happy_flow(short_paid) if e.event_type != "payment.recorded"]
    events.append(incoming(envelope(payment_recorded(short_paid, amount=Decimal("100.00")))))
    events.append(incoming(envelope(order_placed(new_order_id()))))
    await consumer(reconcile_engine, clock).process_incoming(events)
    async with reconcile_engine.connect() as conn:
        summary = await store.summary(conn)
    assert (summary["orders"], summary["consistent"], summary["pending"]) == (3, 1, 2)
    assert (summary["open_discrepancies"], summary["by_kind"]) == (0, {})  # all within the grace
    reasons = {p["order_id"]: p["reasons"] for p in summary["pending_orders"]}
    assert reasons[short_paid] == ["paid 100.00 != invoiced 395.00"]
    assert len(reasons) == 2


async def test_a_second_invoice_makes_a_consistent_order_pending(reconcile_engine):
    clock = ManualClock(AT)
    order_id = new_order_id()
    inbox = consumer(reconcile_engine, clock)
    await inbox.process_incoming([incoming(e) for e in happy_flow(order_id)])
    clock.advance(timedelta(hours=1))
    await inbox.process_incoming([incoming(envelope(invoice_issued(order_id, invoice_id="I-2")))])
    found = await sheet(reconcile_engine, order_id)
    assert found["status"] == "pending"
    assert found["status_since"] == clock.now().isoformat()
    assert found["reasons"] == ["invoiced total 790.00 != order total 395.00",
                                "paid 395.00 != invoiced 790.00"]
