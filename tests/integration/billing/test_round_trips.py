"""What an order costs billing in statements sent to PostgreSQL (round trips): handled alone, event
by event, and in batches (the consumer's fast path). Budgets, so a change that adds a round trip
per event is noticed; run with ``-s`` to see the statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from services.billing import handlers
from shared.clock import ManualClock
from shared.inbox import IdempotentConsumer
from tests.integration.billing.conftest import (
    START,
    captured,
    confirmed,
    consumer,
    deliver,
    incoming,
    placed,
    shipped,
)


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split())[:100])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


def order_events(order: str) -> list[Any]:
    return [placed(order), confirmed(order), captured(order, f"P-{order}", "395.00"),
            shipped(order, f"S-{order}", (1, "X-100", 2), (2, "GIFT-MUG", 1))]


async def test_an_order_handled_event_by_event(billing_engine: AsyncEngine) -> None:
    inbox = consumer(billing_engine)
    costs: dict[str, int] = {}
    for env in order_events("O-00000000000000r1"):
        with statements(billing_engine) as sent:
            await deliver(inbox, env)
        print(env.event_type, len(sent), *sent, sep="\n  ")
        costs[env.event_type] = len(sent)
    # Each counts the inbox's claim, SAVEPOINT and RELEASE (3); was 5, 11, 12, 13 before the
    # saves wrote only what changed and the loads and locks were folded.
    budget = {"order.placed": 5, "order.confirmed": 9, "order.payment_captured": 9,
              "order.shipped": 10}
    assert {kind: n for kind, n in costs.items() if n > budget[kind]} == {}


async def test_orders_handled_in_batches(billing_engine: AsyncEngine) -> None:
    """50 orders, a batch per step of their lifecycle (as a busy partition delivers them)."""
    clock = ManualClock(START)
    inbox = IdempotentConsumer(name="billing", engine=billing_engine, publisher=None,
                               handle=partial(handlers.handle_order_event, clock=clock),
                               start_batch=handlers.make_batch_start(clock))
    flows = [order_events(f"O-batch-{n:03d}") for n in range(50)]
    with statements(billing_engine) as sent:
        for step in zip(*flows, strict=True):
            await inbox.process_incoming([incoming(env, n) for n, env in enumerate(step)])
    per_order = len(sent) / len(flows)
    print(f"{len(sent)} statements for {len(flows)} orders: {per_order} per order")
    # An invoice number and an append (the stream's head read, then the insert) per event that
    # states something; everything else per batch.
    assert per_order < 7
