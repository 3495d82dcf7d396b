"""Kept order states (services/order/snapshots.py) always equal a fold of the whole log.

A kept state is reused only when the log's event at its version has the hash it was folded up
to; these tests make that check matter: a state folded inside a transaction that rolls back, and
the same order id in a second database with a different history."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from functools import partial

import psycopg
import pytest
from psycopg import sql

from services.order import snapshots, store
from services.order.domain.state import OrderState
from services.order.handlers import handle
from services.order.handlers.batch import make_batch_start
from shared.contract.envelope import SYSTEM
from shared.contract.payloads import OrderConfirmed, OrderPaid
from shared.db import libpq_url
from shared.eventstore import Meta, append, read_stream
from shared.inbox import IdempotentConsumer
from shared.metrics import METRICS
from shared.settings import with_database
from tests.conftest import create_database
from tests.integration.order.flows import Flow, order_message, order_of, order_service
from tests.integration.order.test_batch import storefront


async def _whole(flow: Flow, order_id: str) -> OrderState:
    async with flow.ctx.engine.connect() as conn:
        return snapshots.folded(order_id, await read_stream(conn, order_id))


async def _loaded(flow: Flow, order_id: str) -> OrderState:
    async with flow.ctx.engine.connect() as conn:
        return await store.load_order(conn, order_id)


async def _append(flow: Flow, order_id: str, payload: OrderConfirmed | OrderPaid) -> None:
    async with flow.ctx.engine.begin() as conn:
        state = await store.load_order(conn, order_id)
        await append(conn, order_id, state.version, [payload], clock=flow.deps.clock,
                     meta=Meta(correlation_id=order_id, actor=SYSTEM), key=order_id)


def _confirmed(order_id: str) -> OrderConfirmed:
    return OrderConfirmed(order_id=order_id, total=Decimal("1.00"), currency="CNY")


def _paid(order_id: str) -> OrderPaid:
    return OrderPaid(order_id=order_id, paid_amount=Decimal("1.00"), currency="CNY")


async def test_a_kept_state_moves_on_with_the_log(database_url: str, kafka_bootstrap: str) -> None:
    snapshots.STATES.clear()
    async with order_service(database_url, kafka_bootstrap) as flow:
        message = order_message(1)
        order_id = order_of(message)
        await flow.storefront(message)
        first = await _loaded(flow, order_id)
        assert first.exists and snapshots.STATES.get(order_id) == first
        hits = METRICS.value("oms_order_states_kept_total")
        await _append(flow, order_id, _confirmed(order_id))
        again = await _loaded(flow, order_id)
        assert METRICS.value("oms_order_states_kept_total") > hits, "the kept state was not reused"
        assert again == await _whole(flow, order_id)
        assert again.confirmed and again.version == first.version + 1
        assert again.head == (await _whole(flow, order_id)).head


async def test_a_state_folded_in_a_rolled_back_transaction_is_not_reused(
        database_url: str, kafka_bootstrap: str) -> None:
    snapshots.STATES.clear()
    async with order_service(database_url, kafka_bootstrap) as flow:
        message = order_message(2)
        order_id = order_of(message)
        await flow.storefront(message)
        with pytest.raises(RuntimeError):
            async with flow.ctx.engine.begin() as conn:
                state = await store.load_order(conn, order_id)
                await append(conn, order_id, state.version, [_confirmed(order_id)],
                             meta=Meta(correlation_id=order_id, actor=SYSTEM), clock=flow.deps.clock,
                             key=order_id)
                # Read back inside the transaction: the kept state now holds its event.
                assert (await store.load_order(conn, order_id)).confirmed
                raise RuntimeError("roll back")
        assert snapshots.STATES.get(order_id) is not None
        # Another writer (another replica, say) appends an event at the rolled-back one's version.
        flow.clock.advance(timedelta(seconds=1))
        async with flow.ctx.engine.begin() as conn:
            version = len(await read_stream(conn, order_id))
            await append(conn, order_id, version, [_paid(order_id)], clock=flow.deps.clock,
                         meta=Meta(correlation_id=order_id, actor=SYSTEM), key=order_id)
        loaded = await _loaded(flow, order_id)
        assert loaded == await _whole(flow, order_id)
        assert not loaded.confirmed, "a rolled-back event reached the state"


async def test_the_same_order_in_another_database_is_folded_from_its_own_log(
        database_url: str, postgres_url: str, kafka_bootstrap: str) -> None:
    snapshots.STATES.clear()
    message = order_message(3)
    order_id = order_of(message)
    async with order_service(database_url, kafka_bootstrap) as flow:
        await flow.storefront(message)
        await _append(flow, order_id, _confirmed(order_id))
        assert (await _loaded(flow, order_id)).confirmed
    name = f"t_{uuid.uuid4().hex[:12]}"
    other = await create_database(postgres_url, name)
    try:
        async with order_service(other, kafka_bootstrap) as flow:
            await flow.storefront(message)
            loaded = await _loaded(flow, order_id)
            assert loaded == await _whole(flow, order_id)
            assert not loaded.confirmed
    finally:
        async with await psycopg.AsyncConnection.connect(
                libpq_url(with_database(postgres_url, "postgres")), autocommit=True) as conn:
            await conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                               .format(sql.Identifier(name)))


async def test_a_batch_keeps_its_orders_once_committed(database_url: str,
                                                       kafka_bootstrap: str) -> None:
    """The states a batch leaves are kept after its commit (the next message on those orders
    reads no whole stream), and they equal a fold of the log."""
    snapshots.STATES.clear()
    async with order_service(database_url, kafka_bootstrap) as flow:
        messages = [order_message(40 + n) for n in range(3)]
        consumer = IdempotentConsumer(name="order", engine=flow.ctx.engine, publisher=None,
                                      handle=partial(handle, flow.deps),
                                      start_batch=make_batch_start(flow.deps))
        await consumer.process_incoming([storefront(m) for m in messages])
        for message in messages:
            kept = snapshots.STATES.get(order_of(message))
            assert kept is not None and kept.exists
            assert kept == await _whole(flow, order_of(message))
            assert kept.head == (await _whole(flow, order_of(message))).head
