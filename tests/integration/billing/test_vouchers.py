"""Voucher numbers stay unique and gapless per series and year under concurrent issuing."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from shared.db import create_engine
from tests.integration.billing.conftest import (
    amended,
    cancelled,
    captured,
    confirmed,
    consumer,
    deliver,
    incoming,
    placed,
)

INSTANCES = 4


async def _concurrently(engines, orders, message_for) -> None:
    """Each instance takes its own partition's orders in small batches, as Kafka would."""

    async def instance(k: int) -> None:
        inbox = consumer(engines[k])
        mine = orders[k::INSTANCES]
        for start in range(0, len(mine), 3):
            await inbox.process_incoming(
                [incoming(message_for(o), n) for n, o in enumerate(mine[start:start + 3])])

    await asyncio.gather(*(instance(k) for k in range(INSTANCES)))


async def _numbers(engine, table: str) -> list[tuple[str, int, str]]:
    async with engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(
            f"SELECT order_id, number, voucher_number FROM {table} ORDER BY number"))]


async def test_concurrent_instances_issue_gapless_unique_invoice_and_credit_note_numbers(
        billing_engine, database_url):
    orders = [f"O-{n:016x}" for n in range(1, 41)]
    await deliver(consumer(billing_engine), *(placed(o) for o in orders))
    engines = [billing_engine] + [create_engine(database_url) for _ in range(INSTANCES - 1)]
    try:
        await _concurrently(engines, orders, confirmed)
        invoices = await _numbers(billing_engine, "invoices")
        assert [n for _, n, _ in invoices] == list(range(1, 41))
        assert {o for o, _, _ in invoices} == set(orders)

        paid = orders[::2]
        await deliver(consumer(billing_engine), *(captured(o, f"P-{o}", "395.00") for o in paid))
        # Paid orders are cancelled (a credit note each) while the others are amended (a void
        # and a new invoice each): both series are drawn from at the same time.
        await _concurrently(engines, orders,
                            lambda o: cancelled(o) if o in paid else amended(o, f"A-{o}", 1))
    finally:
        for eng in engines[1:]:
            await eng.dispose()
    invoices = await _numbers(billing_engine, "invoices")
    notes = await _numbers(billing_engine, "credit_notes")
    assert [n for _, n, _ in invoices] == list(range(1, 61))
    assert len({v for _, _, v in invoices}) == 60
    assert [n for _, n, _ in notes] == list(range(1, 21))
    assert [v for _, _, v in notes] == [f"CN-2026-{n:06d}" for n in range(1, 21)]
    assert {o for o, _, _ in notes} == set(paid)
    async with billing_engine.connect() as conn:
        counts = dict((await conn.execute(text(
            "SELECT event_type, count(*) FROM events GROUP BY event_type"))).all())
        dead = (await conn.execute(text("SELECT count(*) FROM dead_letters"))).scalar()
    assert dead == 0
    assert counts == {"invoice.issued": 60, "invoice.voided": 20, "payment.recorded": 20,
                      "credit_note.issued": 20, "refund.issued": 20}
