"""The reconcile service end to end: events of four topics in through the real broker."""

from __future__ import annotations

import json
from datetime import timedelta

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.reconcile.app import make_app
from shared.clock import ManualClock
from shared.contract.topics import RECONCILE_EVENTS
from shared.settings import OmsSettings
from tests.conftest import running, wait_until
from tests.unit.reconcile.flows import lifecycle
from tests.unit.reconcile.samples import AT, envelope, happy_flow, new_order_id, order_placed, topic_of

ADMIN = {"X-API-Key": "demo-admin"}


async def publish(bootstrap: str, events) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for event in events:
            await producer.send_and_wait(topic_of(event), event.to_json(), key=event.order_id.encode())
    finally:
        await producer.stop()


async def test_fact_sheets_through_the_broker(fresh_kafka, database_url):
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False)
    app = make_app(settings=settings, database_url=database_url)
    order_id, waiting = new_order_id(), new_order_id()
    events = happy_flow(order_id)
    async with running(app) as client:
        # notify's and billing's facts before the order's own, then a republish of everything
        await publish(fresh_kafka, [*reversed(events), envelope(order_placed(waiting))])
        await publish(fresh_kafka, events)

        async def settled() -> bool:
            summary = (await client.get("/summary", headers=ADMIN)).json()
            return summary["orders"] == 2 and summary["consistent"] == 1

        await wait_until(settled, timeout=30)
        silences = app.state.ctx.state["lag"].silences  # watched, an hour at most by default
        assert silences is not None and silences.cap == 3600.0
        found = (await client.get(f"/orders/{order_id}", headers=ADMIN)).json()
        assert (found["status"], found["reasons"]) == ("consistent", [])
        assert found["facts"]["invoices_count"] == 1
        assert found["facts"]["paid_total"] == "395.00"
        summary = (await client.get("/summary", headers=ADMIN)).json()
        assert summary["pending_orders"] == [
            {"order_id": waiting, "reasons": ["placed but not confirmed"]}
        ]
        assert (await client.get("/orders/O-UNKNOWN", headers=ADMIN)).status_code == 404
        assert (await client.get(f"/orders/{order_id}")).status_code == 401
        # how far behind reconcile judges its facts, read at each scrape (caught up here)
        gauges = dict(line.split(" ", 1) for line in (await client.get("/metrics")).text.splitlines()
                      if line.startswith(("oms_reconcile_behind_seconds ",
                                          "oms_reconcile_consumer_lag_seconds ")))
        assert set(gauges) == {"oms_reconcile_behind_seconds", "oms_reconcile_consumer_lag_seconds"}
        assert all(0.0 <= float(value) < 30.0 for value in gauges.values()), gauges


async def reconcile_events(bootstrap: str, wanted: int) -> list[tuple[str, dict]]:
    """The first ``wanted`` messages on reconcile's topic as (key, envelope)."""
    consumer = AIOKafkaConsumer(RECONCILE_EVENTS, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest")
    await consumer.start()
    seen: list[tuple[str, dict]] = []
    try:
        async def enough() -> bool:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                seen.extend((r.key.decode(), json.loads(r.value)) for r in records)
            return len(seen) >= wanted

        await wait_until(enough, timeout=30)
    finally:
        await consumer.stop()
    return seen


async def test_a_lost_revenue_event_raises_a_discrepancy_on_the_reconcile_topic(fresh_kafka, database_url):
    clock = ManualClock(AT)
    settings = OmsSettings(kafka_bootstrap=fresh_kafka, kafka_idempotence=False, scheduler_seconds=0.1,
                           relay_poll_seconds=0.1, reconcile_silence_cap_seconds=0)
    app = make_app(settings=settings, clock=clock, database_url=database_url,
                   grace=timedelta(seconds=60))
    order_id = new_order_id()
    events = lifecycle("shipped", order_id)
    [revenue] = [e for e in events if e.event_type == "revenue.recognized"]
    async with running(app) as client:
        assert app.state.ctx.state["lag"].silences is None  # OMS_RECONCILE_SILENCE_CAP_SECONDS=0
        await publish(fresh_kafka, [e for e in events if e is not revenue])

        async def shipped_seen() -> bool:
            found = await client.get(f"/orders/{order_id}", headers=ADMIN)
            return found.status_code == 200 and found.json()["facts"]["shipments"] == ["S-1"]

        await wait_until(shipped_seen)
        clock.advance(timedelta(seconds=61))

        async def raised() -> bool:
            body = (await client.get("/discrepancies", headers=ADMIN)).json()
            return body["count"] == 1

        await wait_until(raised)
        [open_one] = (await client.get("/discrepancies?open=true", headers=ADMIN)).json()["discrepancies"]
        assert (open_one["order_id"], open_one["kind"]) == (order_id, "shipped_revenue_not_recognised")
        summary = (await client.get("/summary", headers=ADMIN)).json()
        assert (summary["open_discrepancies"], summary["by_kind"]) == (
            1, {"shipped_revenue_not_recognised": 1})
        assert summary["pending_orders"] == [
            {"order_id": order_id, "reasons": ["shipped but revenue not recognised: S-1"]}]

        await publish(fresh_kafka, [revenue])

        async def resolved() -> bool:
            return (await client.get("/summary", headers=ADMIN)).json()["open_discrepancies"] == 0

        await wait_until(resolved)
        everything = (await client.get("/discrepancies?open=false", headers=ADMIN)).json()
        assert [d["open"] for d in everything["discrepancies"]] == [False]
        published = await reconcile_events(fresh_kafka, 2)
    assert [(key, e["event_type"], e["payload"]["kind"]) for key, e in published] == [
        (order_id, "discrepancy.detected", "shipped_revenue_not_recognised"),
        (order_id, "discrepancy.resolved", "shipped_revenue_not_recognised"),
    ]
