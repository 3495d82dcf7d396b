"""What an order costs inventory in statements sent to PostgreSQL (round trips), placed then
shipped. Budgets, so a change that adds a round trip per movement is noticed; run with ``-s`` to
see the statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.inventory.conftest import (
    consumer,
    incoming,
    levels,
    placed,
    receive,
    reservation,
    shipped,
)

THRESHOLDS = {"X-100": 3, "GIFT-MUG": 1}


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


async def test_a_typical_order_placed_then_shipped(inventory_engine: AsyncEngine) -> None:
    for sku, warehouse in (("X-100", "WH-A"), ("X-100", "WH-B"), ("GIFT-MUG", "WH-A")):
        await receive(inventory_engine, sku, warehouse, 50, thresholds=THRESHOLDS)
    inbox = consumer(inventory_engine, thresholds=THRESHOLDS)
    order = "O-00000000000000r1"
    envelopes = [placed(order, [("X-100", 2), ("GIFT-MUG", 1)]),
                 shipped(order, "S-1", "WH-A", [("X-100", 2), ("GIFT-MUG", 1)], complete=True)]
    costs: dict[str, int] = {}
    for n, env in enumerate(envelopes):
        with statements(inventory_engine) as sent:
            await inbox.process_incoming([incoming(env, offset=n)])
        print(env.event_type, len(sent), *sent, sep="\n  ")
        costs[env.event_type] = len(sent)
    assert (await reservation(inventory_engine, order))["status"] == "shipped"
    assert await levels(inventory_engine) == {("X-100", "WH-A"): (48, 0), ("X-100", "WH-B"): (50, 0),
                                              ("GIFT-MUG", "WH-A"): (49, 0)}
    # Each counts the inbox's claim, SAVEPOINT and RELEASE (3); was 23 and 26 before the locks, the
    # balances and holdings of a movement set and the order's reads were each folded into one.
    budget = {"order.placed": 15, "order.shipped": 16}
    assert {kind: n for kind, n in costs.items() if n > budget[kind]} == {}
