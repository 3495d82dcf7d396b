"""Rows the store wrote, read without validating them again (the relay, loading states), give
the same envelopes and the same wire bytes as rows read with validation (verify, export)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.clock import ManualClock
from shared.commitorder import read_committed_after
from shared.contract.envelope import SYSTEM, Actor
from shared.contract.payloads import OrderConfirmed, OrderPaid
from shared.eventstore import _COLUMNS, Meta, Position, _stored, append


async def test_trusted_and_validated_rows_are_the_same_events(engine: AsyncEngine) -> None:
    clock = ManualClock(datetime(2026, 12, 5, 8, 0, 0, 123456, tzinfo=UTC))
    person = Actor(kind="user", id="ada", role="admin")
    storefront = Actor(kind="storefront", id="tmall")
    async with engine.begin() as conn:
        for n, actor in enumerate((SYSTEM, person, storefront)):
            order_id = f"O-{n}"
            await append(conn, order_id, 0, [
                OrderConfirmed(order_id=order_id, total=Decimal("12.30"), currency="CNY"),
                OrderPaid(order_id=order_id, paid_amount=Decimal("12.30"), currency="CNY",
                          voucher_number=None if n else "INV-2026-000001"),
            ], meta=Meta(correlation_id=f"c-{n}", actor=actor,
                         causation_id=None if n else "cause"), clock=clock, key=order_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(text(f"SELECT {_COLUMNS} FROM events ORDER BY position"))).all()
        relayed = await read_committed_after(conn, Position.start(), trusted=True)
    assert len(rows) == len(relayed) == 6
    for row, fast in zip(rows, relayed, strict=True):
        for upcasted in (False, True):
            checked = _stored(row, upcasted=upcasted)
            trusted = _stored(row, upcasted=upcasted, trusted=True)
            assert trusted == checked
            assert trusted.envelope.to_json() == checked.envelope.to_json()
        assert fast.envelope.to_json() == _stored(row).envelope.to_json()


async def test_what_the_relay_sends_is_the_stored_envelope(engine: AsyncEngine) -> None:
    """The relay sends the JSON PostgreSQL spells from the row: a consumer reads from it exactly
    the envelope a validated read of the row gives (in any session time zone), and the
    headers and key it is routed by."""
    from shared.contract.envelope import EventEnvelope
    from shared.outbox import read_publishable, to_record

    clock = ManualClock(datetime(2026, 12, 5, 23, 59, 59, 999999, tzinfo=UTC))
    async with engine.begin() as conn:
        await append(conn, "O-王", 0, [
            OrderConfirmed(order_id="O-王", total=Decimal("1234567890.10"), currency="CNY"),
            OrderPaid(order_id="O-王", paid_amount=Decimal("0.00"), currency="CNY",
                      voucher_number="发票 \"1\"\n\\"),
        ], meta=Meta(correlation_id="c-ü", actor=Actor(kind="user", id="王芳", role="finance"),
                     causation_id="cause"), clock=clock, key="K-1")
        await append(conn, "O-2", 0, [OrderConfirmed(order_id="O-2", total=Decimal("1"),
                                                     currency="CNY")],
                     meta=Meta(correlation_id="c-2", actor=SYSTEM), clock=clock)
    for zone in ("UTC", "Asia/Shanghai", "America/St_Johns"):
        async with engine.connect() as conn:
            await conn.execute(text(f"SET TIME ZONE '{zone}'"))
            rows = (await conn.execute(text(f"SELECT {_COLUMNS} FROM events ORDER BY position"))
                    ).all()
            sent = await read_publishable(conn, "not published yet", 100)  # from the start
        assert len(sent) == len(rows) == 3
        for row, event in zip(rows, sent, strict=True):
            stored = _stored(row)
            received = EventEnvelope.from_json(event.value)
            assert received == stored.envelope  # the instant too, whatever offset it is spelt in
            assert event.position == stored.position
            record = to_record(event, "t")
            assert (record.key, record.headers) == (stored.key, {
                "event_type": row.event_type, "event_id": str(row.event_id),
                "correlation_id": row.correlation_id})
