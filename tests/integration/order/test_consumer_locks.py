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
from shared.inbox import IdempotentConsumer, Incoming
from shared.streamlocks import lock_stream
from tests.integration.order.flows import order_message, order_of, order_service
from tests.integration.order.test_batch import result, storefront


def with_other(message: Incoming, batched: bool) -> list[Incoming]:
    """The message alone, or in a batch with another order's placement (a batch of one is
    handled as alone)."""
    return [storefront(order_message(99)), message] if batched else [message]


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
            handling = asyncio.create_task(consumer.process_incoming(with_other(reserved, batched)))
            await asyncio.sleep(1.0)
            assert not handling.done(), "the reservation was decided under a command's feet"
        await asyncio.wait_for(handling, timeout=30)
        assert await flow.status(order_id) != "placed"


@pytest.mark.parametrize("batched", [False, True])
async def test_a_closing_group_waits_for_a_command_holding_another_member(
        database_url: str, kafka_bootstrap: str, batched: bool) -> None:
    """The last member's placement closes the group and confirms the members already reserved:
    it takes their locks first, so it never decides on a member a person is changing meanwhile."""
    async with order_service(database_url, kafka_bootstrap) as flow:
        members = [order_message(30 + n, order_type="group_buy",
                                 group_buy={"group_id": "GB-LOCK", "size": 2}) for n in range(2)]
        first, last = (order_of(m) for m in members)
        await flow.deliver(storefront(members[0]))
        await flow.reserved(first)
        assert await flow.status(first) == "placed"  # the group is not closed yet
        consumer = IdempotentConsumer(
            name="order", engine=flow.ctx.engine, publisher=None, handle=partial(handle, flow.deps),
            start_batch=make_batch_start(flow.deps) if batched else None)
        async with flow.ctx.engine.begin() as command:  # a person's command on the first member
            await lock_stream(command, first)
            handling = asyncio.create_task(
                consumer.process_incoming(with_other(storefront(members[1]), batched)))
            await asyncio.sleep(1.0)
            assert not handling.done(), "a member was confirmed under a command's feet"
        await asyncio.wait_for(handling, timeout=30)
        assert await flow.status(first) == "confirmed"
        assert await flow.status(last) == "placed"  # closed the group, not reserved yet
