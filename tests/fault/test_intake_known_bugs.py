"""Storefront messages the fuzzer found that the intake once dead-lettered instead of refusing
with reasons (a `type` that is an object, NUL characters, lone surrogates): now refused."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest

from services.order.handlers import handle
from shared.contract.topics import STOREFRONT_ORDERS
from shared.inbox import IdempotentConsumer, Incoming, content_id
from tests.integration.order.flows import order_message, order_service

CASES: dict[str, dict[str, Any] | bytes] = {
    "NUL byte in a message that is not JSON": b'{"type": "order.submitted\x00',
    "a lone surrogate escape": b'{"type": "order.submitted", "channel": "\\udb0b"}',
    "type is an object": {"type": {}},
    "type is a list": {"type": [1, 2]},
    "NUL in a refused message": {"order_type": "x\u0000", "channel": "ebay"},
    "NUL in a customer name": {"customer": {"id": "C-1", "name": "Anna\u0000", "phone": "+8613800000000",
                                            "email": "a@example.com", "tier": "regular"}},
}


@pytest.mark.parametrize("case", sorted(CASES))
async def test_bad_storefront_message_is_refused_not_dead_lettered(
        case: str, database_url: str, fresh_kafka: str) -> None:
    change = CASES[case]
    value = change if isinstance(change, bytes) else json.dumps(
        {**order_message(7, channel="web"), **change}, ensure_ascii=False).encode()
    async with order_service(database_url, fresh_kafka) as flow:
        consumer = IdempotentConsumer(name="order-fuzz", engine=flow.ctx.engine, publisher=None,
                                      handle=partial(handle, flow.deps))
        await consumer.process_incoming([Incoming(
            topic=STOREFRONT_ORDERS, partition=0, offset=0, key=None, value=value, headers={},
            message_id=content_id(value))])
        async with flow.ctx.engine.connect() as conn:
            dead = (await conn.exec_driver_sql("SELECT error FROM dead_letters")).scalars().all()
            kinds = (await conn.exec_driver_sql(
                "SELECT event_type FROM events WHERE causation_id = %(c)s",
                {"c": str(content_id(value))})).scalars().all()
    assert dead == [], dead
    assert kinds in (["submission.rejected"], ["order.placed"]), kinds
