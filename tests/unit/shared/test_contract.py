"""Contract payloads: stock.adjusted and the bank-line payloads are registered, routed to their
producer's topic, travel as JSON without floats, and consumers that do not take them ignore them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

from services.notify.domain.events import EVENTS as NOTIFY_RULE_EVENTS
from services.order.handlers import OrderDeps, handle
from services.reconcile.domain import FACT_EVENT_TYPES, OrderFacts, apply_event
from shared.contract.bank_events import BankLineMatched, BankLineUnmatched
from shared.contract.envelope import Actor, EventEnvelope
from shared.contract.fulfilment_events import StockAdjusted
from shared.contract.payloads import REGISTRY, Payload, StockReceived, parse_payload
from shared.contract.topics import INVENTORY_EVENTS, RECONCILE_EVENTS, topic_for_event
from shared.inbox import Incoming

ADJUSTED = StockAdjusted(sku="X-100", warehouse="WH-A", quantity=-2, on_hand=3,
                         reason="broken in transit")


def envelope(payload: Payload, stream_id: str = "stock:X-100@WH-A") -> EventEnvelope:
    return EventEnvelope(
        event_id=uuid.uuid4(), event_type=payload.event_type,
        schema_version=payload.schema_version, stream_id=stream_id, stream_version=1,
        occurred_at=datetime(2026, 11, 21, 8, 0, tzinfo=UTC), correlation_id="c",
        actor=Actor(kind="user", id="wang.warehouse", role="warehouse"), payload=payload.wire())


def test_stock_adjusted_is_registered_and_routed_like_stock_received() -> None:
    assert REGISTRY["stock.adjusted"] is StockAdjusted and StockAdjusted.schema_version == 1
    for payload_type in (StockAdjusted, StockReceived):
        assert topic_for_event("inventory", payload_type.event_type) == INVENTORY_EVENTS
    assert ADJUSTED.wire() == {"sku": "X-100", "warehouse": "WH-A", "quantity": -2, "on_hand": 3,
                               "reason": "broken in transit"}
    assert parse_payload("stock.adjusted", ADJUSTED.wire() | {"added_later": 1}) == ADJUSTED


def test_bank_line_payloads_live_in_the_contract() -> None:
    matched = BankLineMatched(
        transaction_id="T-1", order_id="O-1", voucher_number="INV-2026-000001",
        applied=Decimal("100.00"), bank_amount=Decimal("100.00"), currency="CNY",
        booked_on=date(2026, 11, 21), rule="reference", score=Decimal("1.0"),
        tolerance=Decimal("0.01"), window_days=30)
    unmatched = BankLineUnmatched(
        transaction_id="T-2", bank_amount=Decimal("7.50"), currency="CNY",
        booked_on=date(2026, 11, 21), reason="no open invoice", tolerance=Decimal("0.01"),
        window_days=30)
    assert REGISTRY["bank_line.matched"] is BankLineMatched
    assert REGISTRY["bank_line.unmatched"] is BankLineUnmatched
    assert topic_for_event("reconcile", "bank_line.matched") == RECONCILE_EVENTS
    wire = matched.wire()
    assert (wire["applied"], wire["difference"], wire["booked_on"]) == ("100.00", "0.00", "2026-11-21")
    assert parse_payload("bank_line.matched", wire) == matched
    assert parse_payload("bank_line.unmatched", unmatched.wire()) == unmatched


def test_consumers_of_the_inventory_topic_ignore_stock_adjusted() -> None:
    # reconcile: not a fact of any order
    assert "stock.adjusted" not in FACT_EVENT_TYPES
    facts = OrderFacts("O-1")
    assert apply_event(facts, "e-1", "stock.adjusted", ADJUSTED.wire()) is facts
    # notify: only events rules may name (a rule naming stock.adjusted is refused)
    assert "stock.adjusted" not in NOTIFY_RULE_EVENTS
    # order: only stock.reserved and stock.shortage; anything else touches nothing
    message = Incoming.from_envelope(envelope(ADJUSTED), INVENTORY_EVENTS)
    asyncio.run(handle(cast(OrderDeps, None), cast(Any, None), message))
