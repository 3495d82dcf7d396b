"""The order consumer's batch work (orders loaded together, projections written once) has exactly
the effect of handling each message alone: same events, same projections, same refusals."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import event, text

from services.order.handlers import handle
from services.order.handlers.batch import make_batch_start
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import InvoiceIssued, Payload, StockReserved, StockShortage
from shared.contract.topics import BILLING_EVENTS, INVENTORY_EVENTS, STOREFRONT_ORDERS
from shared.db import create_engine
from shared.demo.traffic import order_total, payment
from shared.inbox import IdempotentConsumer, Incoming, content_id
from shared.metrics import METRICS
from tests.conftest import create_database
from tests.integration.order.flows import START, Flow, order_message, order_of, order_service


def storefront(message: dict[str, Any] | str) -> Incoming:
    value = (message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)).encode()
    return Incoming(topic=STOREFRONT_ORDERS, partition=0, offset=0, key=None, value=value,
                    headers={}, message_id=content_id(value))


def result(payload: Payload, order_id: str) -> Incoming:
    topic = INVENTORY_EVENTS if payload.event_type.startswith("stock.") else BILLING_EVENTS
    env = EventEnvelope(event_id=uuid.uuid4(), event_type=payload.event_type, schema_version=1,
                        stream_id=order_id, stream_version=1, occurred_at=START,
                        correlation_id=order_id, actor=SYSTEM, payload=payload.wire())
    return Incoming.from_envelope(env, topic)


def settled(message: dict[str, Any], n: int) -> Incoming:
    order_id, total = order_of(message), Decimal(str(order_total(message)))
    return result(InvoiceIssued(
        order_id=order_id, invoice_id=f"I-{order_id}", voucher_number=f"INV-2026-{n:06d}",
        currency="CNY", lines=[], net_total=total, tax_total=0, total=total, paid_total=total,
        outstanding=0, settled=True, issued_at=START), order_id)


def history() -> list[Incoming]:
    """Orders placed, paid, reserved (one short first), settled; a resend, a conflicting
    duplicate, a cancellation, garbage and a result for an unknown order, interleaved."""
    orders = [order_message(n, channel=("tmall", "jd", "web")[n % 3]) for n in range(1, 10)]
    out: list[Incoming] = []
    for n, message in enumerate(orders):
        out.append(storefront(message))
        out.append(storefront(payment(message, captured_at=START)))
        if n == 2:
            out.append(storefront(message))  # the same submission again: no second effect
            out.append(storefront({**message, "buyer_note": "changed"}))  # conflicting duplicate
        if n == 3:
            out.append(result(StockShortage(order_id=order_of(message), missing=[]), order_of(message)))
        out.append(result(StockReserved(order_id=order_of(message), lines=[]), order_of(message)))
        if n == 4:
            out.append(storefront({"type": "order.cancellation_requested", "channel": message["channel"],
                                   "channel_order_id": message["channel_order_id"],
                                   "request_id": "C-1", "reason": "changed my mind",
                                   "requested_at": START.isoformat()}))
        else:
            out.append(settled(message, n))
    out.insert(5, storefront("{not json"))
    out.append(result(StockReserved(order_id="O-NOT-KNOWN", lines=[]), "O-NOT-KNOWN"))
    return out + likely_duplicates(orders[0])


def twin(message: dict[str, Any], channel: str, **overrides: Any) -> dict[str, Any]:
    """The same purchase sent again through another storefront (a likely duplicate)."""
    return {**message, "channel": channel,
            "channel_order_id": f"{message['channel_order_id']}-{channel}", **overrides}


def likely_duplicates(early: dict[str, Any]) -> list[Incoming]:
    """Twins in one batch and across batches, a twin of an amended order's new goods (and not of
    its old ones), and no twin of a cancelled order."""
    first, second = order_message(20, channel="tmall"), order_message(21, channel="tmall")
    new_lines = [{"sku": "tea 500", "quantity": 3, "unit_price": "88.00"}]
    amended = {"type": "order.amendment_requested", "channel": "tmall",
               "channel_order_id": first["channel_order_id"], "request_id": "AM-1",
               "requested_at": START.isoformat(), "lines": new_lines}
    cancelled = {"type": "order.cancellation_requested", "channel": "tmall",
                 "channel_order_id": second["channel_order_id"], "request_id": "CX-2",
                 "reason": "ordered twice", "requested_at": START.isoformat()}
    return [storefront(m) for m in (
        twin(early, "pdd"),  # batches after its twin
        first, twin(first, "jd"),  # in one batch
        amended, twin(first, "web", discounts=[],  # the new goods' twin, in an alias spelling
                      lines=[{"sku": "lj-tea-500", "quantity": 3, "unit_price": "88.00"}]),
        twin(first, "pos"),  # the old goods: a twin of the jd order only
        second, cancelled, twin(second, "jd"))]  # forgotten with the cancellation


async def run(flow: Flow, messages: list[Incoming], batched: bool) -> None:
    consumer = IdempotentConsumer(name="order", engine=flow.ctx.engine, publisher=None,
                                  handle=partial(handle, flow.deps),
                                  start_batch=make_batch_start(flow.deps) if batched else None)
    size = 7 if batched else 1
    for first in range(0, len(messages), size):
        await consumer.process_incoming(messages[first:first + size])


async def contents(flow: Flow) -> dict[str, list[Any]]:
    queries = {
        "events": "SELECT stream_id, stream_version, event_type, payload, correlation_id, "
                  "causation_id, occurred_at FROM events ORDER BY stream_id, stream_version",
        "orders": "SELECT * FROM orders ORDER BY order_id",
        "dead_letters": "SELECT message_id, error FROM dead_letters ORDER BY message_id",
        "inbox": "SELECT message_id FROM inbox ORDER BY message_id",
        "readiness": "SELECT * FROM order_readiness ORDER BY order_id",
        "fingerprints": "SELECT * FROM order_fingerprints ORDER BY order_id",
    }
    found: dict[str, list[Any]] = {}
    async with flow.ctx.engine.connect() as conn:
        for name, query in queries.items():
            found[name] = [dict(r._mapping) for r in await conn.execute(text(query))]
    return found


async def test_a_batch_has_the_effect_of_each_message_alone(postgres_url: str, database_url: str,
                                                            kafka_bootstrap: str) -> None:
    messages = history()
    other_url = await create_database(postgres_url, f"t_{uuid.uuid4().hex[:12]}")
    fallbacks = METRICS.value("oms_consumer_batch_fallbacks_total", consumer="order")
    batches = METRICS.value("oms_consumer_batch_work_total", consumer="order")
    async with order_service(database_url, kafka_bootstrap) as alone_flow:
        await run(alone_flow, messages, batched=False)
        alone = await contents(alone_flow)
    async with order_service(other_url, kafka_bootstrap) as batch_flow:
        await run(batch_flow, messages, batched=True)
        together = await contents(batch_flow)
    # the unknown order's result is a dead letter in both: the batch holding it fell back to one
    # message at a time, the others took the batch work (garbage is a refusal, not a failure)
    assert METRICS.value("oms_consumer_batch_fallbacks_total", consumer="order") == fallbacks + 1
    assert METRICS.value("oms_consumer_batch_work_total", consumer="order") >= batches + 6
    assert [d["error"][:11] for d in alone["dead_letters"]] == ["LookupError"]
    assert sum(1 for o in alone["orders"] if o["paid"]) >= 7
    assert len(alone["orders"]) == 9 + 7
    assert {e["event_type"] for e in alone["events"]} >= {
        "order.placed", "order.confirmed", "order.paid", "order.cancelled", "submission.rejected"}
    assert alone["readiness"], "the history reserves orders"
    flagged = sorted(flag.split(":")[1][-12:] for e in alone["events"]
                     if e["event_type"] == "order.placed" for flag in e["payload"].get("flags", [])
                     if flag.startswith("possible_duplicate_of:"))
    assert len(flagged) == 4, flagged  # early's, first's (twice: old and new goods) and jd's twins
    for part in ("events", "orders", "dead_letters", "inbox", "readiness", "fingerprints"):
        assert len(together[part]) == len(alone[part]), part
        for mine, theirs in zip(together[part], alone[part], strict=True):
            assert {k: v for k, v in mine.items() if theirs.get(k) != v} == {}, (part, theirs)


async def test_a_batch_of_submissions_costs_three_round_trips(database_url: str,
                                                               kafka_bootstrap: str) -> None:
    """The inbox's claim; the orders' locks with their states, readiness and likely-duplicate
    rows (one round trip: ``shared.pipeline``; four before); every write. BEGIN and COMMIT
    besides."""
    messages = [storefront(order_message(n, channel="tmall")) for n in range(40, 45)]
    own = create_engine(database_url)  # the service's relay uses its engine meanwhile
    async with order_service(database_url, kafka_bootstrap) as flow:
        consumer = IdempotentConsumer(name="order", engine=own, publisher=None,
                                      handle=partial(handle, flow.deps),
                                      start_batch=make_batch_start(flow.deps))
        sent: list[str] = []

        def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            sent.append(" ".join(statement.split()))

        event.listen(own.sync_engine, "before_cursor_execute", count)
        try:
            await consumer.process_incoming(messages)
        finally:
            event.remove(own.sync_engine, "before_cursor_execute", count)
            await own.dispose()
        print(len(sent), *(s[:100] for s in sent), sep="\n  ")
        async with flow.ctx.engine.connect() as conn:
            placed = (await conn.execute(text(
                "SELECT count(*) FROM events WHERE event_type = 'order.placed'"))).scalar_one()
    assert placed == 5
    assert len(sent) == 3, sent
    claim, start, writes = sent
    assert claim.startswith("INSERT INTO inbox") and writes.startswith("WITH")
    assert start.startswith("SELECT pg_advisory_xact_lock") and start.count("; SELECT") == 3
