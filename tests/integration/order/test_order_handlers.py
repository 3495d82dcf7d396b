"""Order service handlers on a real PostgreSQL: intake, duplicates, rejections, the happy path."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from services.order import handlers, store
from services.order.domain.catalog import DEMO_CATALOG, CatalogRef, parse_catalog
from shared import eventstore
from shared.clock import ManualClock
from shared.contract.envelope import SYSTEM, EventEnvelope
from shared.contract.payloads import InvoiceIssued, PaymentRecorded, StockReserved, StockShortage
from shared.contract.topics import BILLING_EVENTS, INVENTORY_EVENTS, STOREFRONT_ORDERS
from shared.demo.traffic import payment, submission
from shared.inbox import IdempotentConsumer, Incoming, content_id

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def storefront(message, offset=0) -> Incoming:
    value = message if isinstance(message, bytes) else json.dumps(message).encode()
    return Incoming(topic=STOREFRONT_ORDERS, partition=0, offset=offset, key=None, value=value,
                    headers={}, message_id=content_id(value))


def result(topic, payload, order_id) -> Incoming:
    env = EventEnvelope(event_id=uuid.uuid4(), event_type=payload.event_type, schema_version=1,
                        stream_id=order_id, stream_version=1, occurred_at=NOW,
                        correlation_id=order_id, actor=SYSTEM, payload=payload.wire())
    return Incoming.from_envelope(env, topic)


@pytest.fixture
async def engine(database_url):
    from services.order.app import create_schema
    from shared.service import prepare_database

    eng = await prepare_database(database_url, create_schema)
    yield eng
    await eng.dispose()


@pytest.fixture
def consumer(engine):
    deps = handlers.OrderDeps(catalog=CatalogRef(parse_catalog(DEMO_CATALOG)), clock=ManualClock(NOW))
    return IdempotentConsumer(name="order", engine=engine, publisher=None,
                              handle=lambda conn, m: handlers.handle(deps, conn, m))


async def events_of(engine, stream_id):
    async with engine.connect() as conn:
        return [e.envelope for e in await eventstore.read_stream(conn, stream_id)]


async def all_types(engine):
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT event_type FROM events ORDER BY position"))
        return [r[0] for r in rows]


def sample(number=1):
    return submission("tmall", number, rng=random.Random(number), submitted_at=NOW - timedelta(minutes=3))


async def test_happy_path_placed_confirmed_captured_paid(engine, consumer):
    message = sample()
    await consumer.process_incoming([storefront(message)])
    async with engine.connect() as conn:
        order_id = await store.find_by_channel(conn, "tmall", message["channel_order_id"])
    (placed,) = await events_of(engine, order_id)
    assert placed.event_type == "order.placed" and placed.actor.kind == "storefront"
    total = Decimal(placed.payload["total"])

    await consumer.process_incoming([result(INVENTORY_EVENTS, StockReserved(order_id=order_id, lines=[]),
                                            order_id)])
    await consumer.process_incoming([storefront(payment(message, captured_at=NOW), offset=1)])
    invoice = InvoiceIssued(order_id=order_id, invoice_id="i1", voucher_number="INV-2026-000001",
                            currency="CNY", lines=[], net_total=total, tax_total=0, total=total,
                            paid_total=total, outstanding=0, settled=True, issued_at=NOW)
    await consumer.process_incoming([result(BILLING_EVENTS, invoice, order_id)])
    types = [e.event_type for e in await events_of(engine, order_id)]
    assert types == ["order.placed", "order.confirmed", "order.payment_captured", "order.paid"]
    async with engine.connect() as conn:
        row = await store.order_row(conn, order_id)
    assert row["status"] == "paid" and row["total"] == total and row["version"] == 4
    # a settled payment.recorded after the order is paid changes nothing
    late = PaymentRecorded(order_id=order_id, payment_id="p", method="alipay", ledger_category="x",
                           amount=total, currency="CNY", paid_total=total, settled=True)
    await consumer.process_incoming([result(BILLING_EVENTS, late, order_id)])
    assert len(await events_of(engine, order_id)) == 4


async def test_same_message_twice_has_no_second_effect_and_conflicts_are_refused(engine, consumer):
    message = sample(2)
    await consumer.process_incoming([storefront(message), storefront(message)])
    await consumer.process_incoming([storefront(message)])
    # same content, different spelling of the JSON: still no second effect
    await consumer.process_incoming([storefront(json.dumps(message, indent=2).encode())])
    assert await all_types(engine) == ["order.placed"]
    changed = {**message, "shipping_fee": "99.00"}
    await consumer.process_incoming([storefront(changed)])
    types = await all_types(engine)
    assert types == ["order.placed", "submission.rejected"]
    key = f"tmall:{message['channel_order_id']}"
    (rejection,) = await events_of(engine, f"rejection:{key}")
    assert rejection.payload["reasons"][0]["code"] == "conflicting_duplicate"


async def test_bad_input_becomes_stored_rejections_never_a_crash(engine, consumer):
    bad_sku = {**sample(3), "lines": [{"sku": "X-1OO", "quantity": 1, "unit_price": "199.00"}]}
    batch = [storefront(bad_sku), storefront(b"{not json", offset=1),
             storefront({"type": "order.beamed"}, offset=2), storefront(sample(4), offset=3)]
    await consumer.process_incoming(batch)
    types = await all_types(engine)
    assert types.count("submission.rejected") == 3 and types.count("order.placed") == 1
    async with engine.connect() as conn:
        payloads = [r[0] for r in await conn.execute(text(
            "SELECT payload FROM events WHERE event_type = 'submission.rejected' ORDER BY position"))]
        dead = (await conn.execute(text("SELECT count(*) FROM dead_letters"))).scalar()
    assert payloads[0]["reasons"][0]["field"] == "lines[0].sku"
    assert payloads[0]["reasons"][0]["suggestion"] == "X-100"
    assert payloads[1]["reasons"][0]["code"] == "invalid_json" and payloads[1]["message"] == "{not json"
    assert payloads[2]["reasons"][0]["code"] == "unknown_type"
    assert dead == 0


async def test_payment_for_unknown_order_is_refused(engine, consumer):
    await consumer.process_incoming([storefront(payment(sample(5), captured_at=NOW))])
    async with engine.connect() as conn:
        (payload,) = [r[0] for r in await conn.execute(text("SELECT payload FROM events"))]
    assert payload["reasons"][0]["code"] == "unknown_order"


async def test_shortage_backorders_and_result_for_unknown_order_is_dead_lettered(engine, consumer):
    message = sample(6)
    await consumer.process_incoming([storefront(message)])
    async with engine.connect() as conn:
        order_id = await store.find_by_channel(conn, "tmall", message["channel_order_id"])
    shortage = StockShortage(order_id=order_id, missing=[{"sku": "X-100", "requested": 2, "available": 0}])
    stray = StockReserved(order_id="O-DOESNOTEXIST0000", lines=[])
    await consumer.process_incoming([result(INVENTORY_EVENTS, shortage, order_id),
                                     result(INVENTORY_EVENTS, stray, "O-DOESNOTEXIST0000")])
    types = [e.event_type for e in await events_of(engine, order_id)]
    assert types == ["order.placed", "order.backordered"]
    async with engine.connect() as conn:
        errors = [r[0] for r in await conn.execute(text("SELECT error FROM dead_letters"))]
    assert len(errors) == 1 and "unknown order" in errors[0]


async def test_a_settlement_decided_before_an_amendment_raised_the_total_pays_nothing(engine, consumer):
    """Billing settled the old total (its payment.recorded follows the order's payment_captured);
    the order was amended up meanwhile: that settlement is stale. Billing's next settlement,
    decided on the amendment, pays the order."""
    from shared.contract.order_events import OrderAmended
    from shared.eventstore import Meta

    message = sample(7)
    await consumer.process_incoming([storefront(message)])
    async with engine.connect() as conn:
        order_id = await store.find_by_channel(conn, "tmall", message["channel_order_id"])
    await consumer.process_incoming([result(INVENTORY_EVENTS, StockReserved(order_id=order_id, lines=[]),
                                            order_id)])
    await consumer.process_incoming([storefront(payment(message, captured_at=NOW), offset=1)])
    placed, _, captured = await events_of(engine, order_id)
    total = Decimal(placed.payload["total"])
    raised = total + Decimal("199.00")
    async with engine.begin() as conn:
        await eventstore.append(conn, order_id, 3, [OrderAmended(
            order_id=order_id, request_id="UP", before={}, after={"total": str(raised)},
            total_before=total, total_after=raised, currency="CNY", approved_by=["dora"])],
            meta=Meta(correlation_id=order_id, actor=SYSTEM), clock=ManualClock(NOW))
    amended = (await events_of(engine, order_id))[-1]

    def settled(paid: Decimal, after: EventEnvelope, payment_id: str) -> Incoming:
        recorded = PaymentRecorded(order_id=order_id, payment_id=payment_id, method="alipay",
                                   ledger_category="receivable", amount=paid, currency="CNY",
                                   paid_total=paid, settled=True)
        env = EventEnvelope(event_id=uuid.uuid4(), event_type=recorded.event_type,
                            schema_version=1, stream_id=order_id, stream_version=1, occurred_at=NOW,
                            correlation_id=order_id, actor=SYSTEM, payload=recorded.wire(),
                            causation_id=str(after.event_id))
        return Incoming.from_envelope(env, BILLING_EVENTS)

    await consumer.process_incoming([settled(total, captured, "P-OLD")])
    assert [e.event_type for e in await events_of(engine, order_id)][-1] == "order.amended"
    async with engine.connect() as conn:
        assert (await store.order_row(conn, order_id))["status"] == "confirmed"
    await consumer.process_incoming([settled(raised, amended, "P-NEW")])
    last = (await events_of(engine, order_id))[-1]
    assert last.event_type == "order.paid" and Decimal(last.payload["paid_amount"]) == raised
