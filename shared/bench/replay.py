"""Bench 5: replay of order events into a fresh projection (reconcile's handler, via the inbox)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text

from shared.bench.results import Report, Row
from shared.clock import ManualClock
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import OrderConfirmed, OrderLine, OrderPaid, OrderPlaced, Payload
from shared.contract.topics import ORDER_EVENTS
from shared.inbox import IdempotentConsumer, Incoming
from shared.service import prepare_database

MILLION = 1_000_000
TARGET_SECONDS = 60.0


def order_history(n: int, at: datetime) -> list[Payload]:
    """The three order events of one prepaid order: placed, confirmed, paid."""
    order_id = f"ORD-R{n:08d}"
    total = Decimal("398.00")
    placed = OrderPlaced(
        order_id=order_id, channel="web", channel_order_id=f"WEB-R{n:08d}", order_type="standard",
        submitted_at=at, customer={"id": "C-1001", "name": "王芳"},
        shipping_address={"recipient": "王芳", "country": "CN", "city": "杭州市"},
        lines=[OrderLine(line_no=1, sku="X-100", name="X-100", quantity=2,
                         unit_price=Decimal("199.00"))],
        shipping_fee=Decimal("0.00"), currency="CNY", subtotal=total,
        discount_total=Decimal("0.00"), total=total,
        payment={"method": "alipay", "terms": "prepaid"}, content_hash=f"h{n}")
    confirmed = OrderConfirmed(order_id=order_id, total=total, currency="CNY")
    paid = OrderPaid(order_id=order_id, paid_amount=total, currency="CNY")
    return [placed, confirmed, paid]


def incoming_events(count: int) -> list[Incoming]:
    """``count`` order events (three per order) as the reconcile consumer receives them."""
    at = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    out: list[Incoming] = []
    n = 0
    while len(out) < count:
        for version, payload in enumerate(order_history(n, at), start=1):
            envelope = EventEnvelope(
                event_id=uuid.uuid4(), event_type=payload.event_type,
                schema_version=payload.schema_version, stream_id=f"ORD-R{n:08d}",
                stream_version=version, occurred_at=at, correlation_id=f"c{n}", actor=SYSTEM,
                payload=payload.wire())
            out.append(Incoming.from_envelope(envelope, ORDER_EVENTS, offset=len(out)))
        n += 1
    return out[:count]


async def replay_rate(url: str, count: int, batch: int) -> tuple[float, float]:
    """(events/s, seconds) of feeding ``count`` events through reconcile's consumer (its batch
    work, as ``oms replay reconcile`` does); checks every order got its complete sheet."""
    from services.reconcile import store
    from services.reconcile.handlers import make_batch_start, make_handler

    events = incoming_events(count)
    engine = await prepare_database(url, store.create_schema)
    clock = ManualClock(datetime(2026, 11, 1, 9, 1, tzinfo=UTC))
    grace = timedelta(hours=1)
    consumer = IdempotentConsumer(name="reconcile-replay", engine=engine, publisher=None,
                                  handle=make_handler(clock, grace),
                                  start_batch=make_batch_start(clock, grace))
    try:
        started = time.perf_counter()
        for i in range(0, len(events), batch):
            await consumer.process_incoming(events[i:i + batch])
        seconds = time.perf_counter() - started
        async with engine.connect() as conn:
            sheets, placed = (await conn.execute(text(
                "SELECT count(*), count(*) FILTER (WHERE (facts->>'placed')::boolean) "
                "FROM order_fact_sheets"))).one()
    finally:
        await engine.dispose()
    orders = len({e.event.order_id for e in events})
    if (sheets, placed) != (orders, orders):
        raise RuntimeError(f"replay bench: {sheets} sheets ({placed} placed) for {orders} orders")
    return count / seconds, seconds


def run_replay(report: Report, make_database: Callable[[str], str], count: int, batch: int,
               log: Callable[[str], None] = print) -> None:
    rate, seconds = asyncio.run(replay_rate(make_database("replay"), count, batch))
    million = MILLION / rate
    report.add(Row("5 replay", f"{count:,} order events -> reconcile projection (inbox, "
                   f"batches of {batch})", rate, "events/s", note=f"{seconds:.1f} s measured"))
    report.add(Row("5 replay", "1,000,000 events (extrapolated, linear)" if count < MILLION
                   else "1,000,000 events", million, "s", target="<= 60",
                   met=million <= TARGET_SECONDS,
                   note="extrapolated from the run above" if count < MILLION else "measured"))
    log(f"  replay: {rate:,.0f} events/s -> 1M in {million:,.0f} s")
