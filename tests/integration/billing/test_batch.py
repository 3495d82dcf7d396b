"""Billing's batch work (accounts locked and loaded in bulk, decided on in memory, saved with one
statement per table) has exactly the effect of handling each event alone: the same rows in every
billing table (voucher numbers, invoices and their standing, payments, revenue, credit notes,
refunds), the same events appended, the same messages dead-lettered."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from functools import partial
from itertools import zip_longest
from typing import Any

import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing import handlers, store
from shared.clock import ManualClock
from shared.contract.envelope import EventEnvelope
from tests.integration import batch_support
from tests.integration.batch_support import MakeDatabase, assert_same, fresh_databases
from tests.integration.billing.conftest import (
    START,
    amended,
    bank_matched,
    cancelled,
    captured,
    confirmed,
    incoming,
    placed,
    presale_placed,
    returned,
    shipped,
)

SHARED_PAYMENT = "P-SHARED"


def again(env: EventEnvelope) -> EventEnvelope:
    """The same fact sent again under a new event id (the inbox lets it through)."""
    return env.model_copy(update={"event_id": uuid.uuid4()})


def returned_flow(o: str) -> list[EventEnvelope]:
    paid = captured(o, f"P-{o}", "395.00")
    back = returned(o, f"R-{o}", ("X-100", 1))
    return [placed(o), confirmed(o), paid, again(paid), shipped(o, f"S1-{o}", (1, "X-100", 1)),
            shipped(o, f"S2-{o}", (1, "X-100", 1), (2, "GIFT-MUG", 1)), back, again(back)]


def presale_flow(o: str) -> list[EventEnvelope]:
    return [presale_placed(o), confirmed(o, "598.00"),
            captured(o, f"PD-{o}", "100.00", kind="deposit"),
            captured(o, f"PB-{o}", "498.00", kind="balance"), shipped(o, f"S-{o}", (1, "PRE-1", 2))]


def amended_flow(o: str) -> list[EventEnvelope]:
    first = amended(o, f"A1-{o}", 1)
    return [placed(o), confirmed(o), captured(o, f"P-{o}", "395.00"), first, again(first),
            amended(o, f"A2-{o}", 3), shipped(o, f"S-{o}", (1, "X-100", 3), (2, "GIFT-MUG", 1))]


def cancelled_paid_flow(o: str) -> list[EventEnvelope]:
    return [placed(o), confirmed(o), captured(o, f"P-{o}", "395.00"), cancelled(o),
            captured(o, f"PL-{o}", "100.00")]  # paid after the cancellation: refunded at once


def cancelled_unpaid_flow(o: str) -> list[EventEnvelope]:
    stop = cancelled(o)
    return [placed(o), confirmed(o), stop, again(stop)]


def paid_first_flow(o: str) -> list[EventEnvelope]:
    first = placed(o)
    return [captured(o, f"P-{o}", "395.00"), confirmed(o), first, again(first)]


def bank_paid_flow(o: str) -> list[EventEnvelope]:
    """Paid by bank transfer: one statement line over two parts, sent again, and a flagged
    match (waits for finance: no effect)."""
    part = bank_matched(o, f"T1-{o}", "200.00", f"INV-{o}")
    return [placed(o), confirmed(o), part, again(part), bank_matched(o, f"T2-{o}", "195.00"),
            bank_matched(o, f"T3-{o}", "50.00", flagged=True)]


FLOWS: dict[str, Callable[[str], list[EventEnvelope]]] = {
    "returned": returned_flow, "presale": presale_flow, "amended": amended_flow,
    "cancelled_paid": cancelled_paid_flow, "cancelled_unpaid": cancelled_unpaid_flow,
    "paid_first": paid_first_flow, "bank_paid": bank_paid_flow,
}


def interleaved_history() -> list[EventEnvelope]:
    """Two orders of every flow, their events interleaved; a payment id captured on two orders
    (payment ids are global: the second has no effect, and makes no account of its own), the
    second time in the same batch and once more much later."""
    flows = [FLOWS[name](f"O-{name}-{n}") for name in sorted(FLOWS) for n in range(2)]
    mixed = [e for group in zip_longest(*flows) for e in group if e is not None]
    shared = captured("O-returned-0", SHARED_PAYMENT, "1.00")
    elsewhere = captured("O-nobody", SHARED_PAYMENT, "1.00")
    return [*mixed[:20], shared, elsewhere, *mixed[20:], again(elsewhere)]


async def run(engine: AsyncEngine, events: Sequence[EventEnvelope], size: int | None) -> None:
    """Feed ``events``; each is handled at its own instant (18 hours apart, so the voucher
    numbering crosses into a new year); ``size``: batches through the batch work, else alone."""
    clock = ManualClock(START)
    at = {e.event_id: START + timedelta(hours=18 * n) for n, e in enumerate(events)}
    handle = partial(handlers.handle_order_event, clock=clock)
    start = handlers.make_batch_start(clock)
    messages = [incoming(e, n) for n, e in enumerate(events)]
    await batch_support.feed(engine, "billing", clock, handle, start, at, messages, size)


TABLES = {"billing_orders": "order_id", "voucher_counters": "series, year",
          "invoices": "invoice_id", "invoice_lines": "invoice_id, line_no",
          "payments": "payment_id", "recognitions": "order_id, shipment_id",
          "credit_notes": "credit_note_id", "document_lines": "order_id, document, n",
          "refunds": "refund_id"}


async def contents(engine: AsyncEngine) -> dict[str, list[Any]]:
    async with engine.connect() as conn:
        found = {table: [dict(r._mapping) for r in await conn.execute(
            text(f"SELECT * FROM {table} ORDER BY {key}"))] for table, key in TABLES.items()}
        found["events"] = [dict(r._mapping) for r in await conn.execute(text(
            "SELECT stream_id, stream_version, event_type, schema_version, occurred_at,"
            " correlation_id, causation_id, actor, payload, message_key FROM events"
            " ORDER BY stream_id, stream_version"))]
        found["dead_letters"] = [tuple(r) for r in await conn.execute(text(
            "SELECT message_id, error FROM dead_letters ORDER BY message_id"))]
    return found


@pytest_asyncio.fixture
async def other_billing(postgres_url: str) -> AsyncIterator[MakeDatabase]:
    async with fresh_databases(postgres_url, store.create_schema) as make:
        yield make


def fallbacks() -> float:
    return batch_support.fallbacks("billing")


def batches() -> float:
    return batch_support.batches("billing")


async def test_a_batch_has_the_effect_of_each_event_alone(billing_engine, other_billing) -> None:
    events = interleaved_history()
    before, worked = fallbacks(), batches()
    await run(billing_engine, events, size=None)
    alone = await contents(billing_engine)
    assert batches() == worked
    for size in (9, len(events)):
        other = await other_billing()
        await run(other, events, size=size)
        assert_same(await contents(other), alone)
    assert fallbacks() == before
    assert batches() == worked + len([n for n in range(0, len(events), 9)
                                      if len(events[n:n + 9]) > 1]) + 1
    assert "O-nobody" not in {row["order_id"] for row in alone["billing_orders"]}
    assert not alone["dead_letters"]
    vouchers = {(row["series"], row["year"]) for row in alone["voucher_counters"]}
    assert vouchers == {("INV", 2026), ("INV", 2027), ("CN", 2026), ("CN", 2027)}
    assert alone["recognitions"] and alone["refunds"] and alone["credit_notes"]
    assert {row["status"] for row in alone["invoices"]} == {"open", "paid", "voided", "credited"}


async def test_a_refused_event_in_a_batch_is_dead_lettered_as_alone(billing_engine,
                                                                     other_billing) -> None:
    o = "O-refused"
    early = shipped(o, "S-early", (1, "X-100", 1))  # no invoice yet: refused
    events = [placed(o), early, confirmed(o), captured(o, "P-1", "395.00"),
              shipped(o, "S-1", (1, "X-100", 2))]
    before = fallbacks()
    await run(billing_engine, events, size=None)
    other = await other_billing()
    await run(other, events, size=len(events))
    alone = await contents(billing_engine)
    assert_same(await contents(other), alone)
    assert fallbacks() == before + 1
    assert [message_id for message_id, _ in alone["dead_letters"]] == [early.event_id]
