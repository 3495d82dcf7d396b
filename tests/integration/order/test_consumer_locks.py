"""The order consumer takes the same per-order lock as people's HTTP commands.

Without it, a reservation handled while a person approves the order is a write skew: the
consumer decides on the order before the approval (nothing to confirm yet), the approval reads
the order not yet reserved (nothing to confirm either), neither appends anything, so nothing
collides and the order is never confirmed (seen once in `make demo`)."""

from __future__ import annotations

import asyncio
from functools import partial

import pytest

from services.order.handlers import handle
from services.order.handlers.batch import make_batch_start
from shared.contract.payloads import StockReserved
from shared.inbox import IdempotentConsumer, lock_stream
from tests.integration.order.flows import order_message, order_of, order_service
from tests.integration.order.test_batch import result, storefront


@pytest.mark.parametrize("batched", [False, True])
async def test_a_reservation_waits_for_a_command_holding_the_order(
        database_url: str, kafka_bootstrap: str, batched: bool) -> None:
    async with order_service(database_url, kafka_bootstrap) as flow:
        message = order_message(1)
        order_id = order_of(message)
        await flow.deliver(storefront(message))
        consumer = IdempotentConsumer(
            name="order", engine=flow.ctx.engine, publisher=None, handle=partial(handle, flow.deps),
            start_batch=make_batch_start(flow.deps) if batched else None)
        reserved = result(StockReserved(order_id=order_id, lines=[]), order_id)
        async with flow.ctx.engine.begin() as command:  # a person's command, mid-transaction
            await lock_stream(command, order_id)
            handling = asyncio.create_task(consumer.process_incoming([reserved]))
            await asyncio.sleep(1.0)
            assert not handling.done(), "the reservation was decided under a command's feet"
        await asyncio.wait_for(handling, timeout=30)
        assert await flow.status(order_id) != "placed"
