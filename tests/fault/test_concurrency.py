"""Many commands on one order at once: optimistic concurrency with retry loses no update."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from shared.chainverify import verify_stream
from shared.eventstore import read_stream
from tests.integration.order.flows import Flow, key, order_message, order_of, order_service

AMENDS = 14
CANCELS = 6


async def amend(flow: Flow, order_id: str, address: dict[str, Any], n: int) -> httpx.Response:
    return await flow.post(f"/orders/{order_id}/amend", "support", {
        "request_id": f"AMD-FAULT-{n:03d}",
        "shipping_address": {**address, "line1": f"文三路 {n} 号"}})


async def test_concurrent_commands_on_one_order_lose_no_update(database_url: str, fresh_kafka: str
                                                               ) -> None:
    async with order_service(database_url, fresh_kafka) as flow:
        message = order_message(1, channel="web")
        await flow.storefront(message)
        order_id = order_of(message)
        address = message["shipping_address"]
        # a first round of amends only (all must land), then amends, cancels and a stock
        # confirmation from the consumer all at once
        first = await asyncio.gather(*(amend(flow, order_id, address, n) for n in range(AMENDS)))
        assert [r.status_code for r in first] == [200] * AMENDS, [r.text for r in first]
        jobs = [amend(flow, order_id, address, 100 + n) for n in range(AMENDS)]
        jobs += [flow.post(f"/orders/{order_id}/cancel", "support", {"reason": f"clash {n}"})
                 for n in range(CANCELS)]
        jobs.insert(AMENDS // 2, flow.reserved(order_id))
        answers = await asyncio.gather(*jobs)
        responses = [a for a in answers if isinstance(a, httpx.Response)]
        status = Counter(r.status_code for r in responses)
        assert set(status) <= {200, 409}, [(r.status_code, r.text[:300]) for r in responses]

        async with flow.ctx.engine.connect() as conn:
            events = await read_stream(conn, order_id)
            broken = await verify_stream(conn, order_id)
        detail = (await flow.client.get(f"/orders/{order_id}", headers=key("admin"))).json()

    assert broken is None, broken
    versions = [e.envelope.stream_version for e in events]
    assert versions == list(range(1, len(events) + 1))
    kinds = [e.envelope.event_type for e in events]
    assert kinds.count("order.cancelled") == 1, kinds
    assert kinds[0] == "order.placed"
    # every amend answered 200 left exactly one fact in the log (amended, or refused once the
    # order was cancelled): none lost, none doubled
    by_request = Counter(e.envelope.payload.get("request_id") for e in events)
    answered = [f"AMD-FAULT-{n:03d}" for n in range(AMENDS)]
    answered += [f"AMD-FAULT-{100 + n:03d}" for n, r in enumerate(responses[:AMENDS])
                 if r.status_code == 200]
    assert {rid: by_request[rid] for rid in answered} == dict.fromkeys(answered, 1), kinds
    assert kinds.index("order.cancelled") > max(i for i, k in enumerate(kinds) if k == "order.amended")
    assert any(r.status_code == 200 for r in responses[AMENDS:])
    assert detail["order"]["status"] == "cancelled"
