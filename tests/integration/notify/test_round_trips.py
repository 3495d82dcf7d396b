"""What an order costs notify in statements sent to PostgreSQL (round trips): handled alone, event
by event, and in batches (the consumer's fast path). Budgets, so a change that adds a round trip
per event is noticed; run with ``-s`` to see the statements."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notify import store
from services.notify.config import EXAMPLE_RULES, load_rules
from services.notify.domain import DeliverySetup
from services.notify.handlers import make_batch_start, make_handler
from shared.clock import ManualClock
from shared.inbox import IdempotentConsumer
from shared.service import prepare_database
from tests.integration.notify.history import order_events, statements
from tests.unit.reconcile.samples import AT, incoming

RULES = load_rules(EXAMPLE_RULES)
SETUP = DeliverySetup(email=True)  # the customer is told in the inbox and by email


@pytest_asyncio.fixture
async def notify_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = await prepare_database(database_url, store.create_schema)
    yield engine
    await engine.dispose()


def consumer(engine: AsyncEngine, *, batched: bool) -> IdempotentConsumer:
    clock = ManualClock(AT)
    return IdempotentConsumer(name="notify", engine=engine, publisher=None,
                              handle=make_handler(clock, RULES, SETUP),
                              start_batch=make_batch_start(clock, RULES, SETUP) if batched else None)


async def test_an_order_handled_event_by_event(notify_engine: AsyncEngine) -> None:
    inbox = consumer(notify_engine, batched=False)
    costs: dict[str, int] = {}
    for env in order_events("O-00000000000000r1", short=True):
        with statements(notify_engine) as sent:
            await inbox.process_incoming([incoming(env)])
        print(env.event_type, len(sent), *sent, sep="\n  ")
        costs[env.event_type] = len(sent)
    # Each counts the inbox's claim, SAVEPOINT and RELEASE (3). A notified event: its customer,
    # its notifications' state, the notifications, the attempts (one statement each) and an
    # append per outcome logged; was 4, 8, 10, 3, 3, 10 before (a stream read and an insert per
    # notification).
    budget = {"order.placed": 4, "stock.shortage": 8, "order.confirmed": 8, "invoice.issued": 3,
              "payment.recorded": 3, "order.paid": 8}
    assert {kind: n for kind, n in costs.items() if n > budget[kind]} == {}


async def test_orders_handled_in_batches(notify_engine: AsyncEngine) -> None:
    """50 orders, a batch per step of their lifecycle (as a busy partition delivers them)."""
    inbox = consumer(notify_engine, batched=True)
    flows = [order_events(f"O-batch-{n:03d}", short=n % 5 == 0) for n in range(50)]
    with statements(notify_engine) as sent:
        for step in zip(*flows, strict=True):
            await inbox.process_incoming([incoming(env, n) for n, env in enumerate(step)])
    per_order = len(sent) / len(flows)
    print(f"{len(sent)} statements for {len(flows)} orders: {per_order} per order")
    # An append per outcome logged (the inbox's notifications of confirmed, paid and the odd
    # shortage: 2.2 per order); everything else per batch. Was 16.4 per order.
    assert per_order < 3
