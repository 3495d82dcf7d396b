"""The order aggregate's decisions (pure)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.order import domain
from services.order.domain.catalog import DEMO_CATALOG, parse_catalog
from services.order.domain.validation import validate_submission
from shared.contract.storefront import PaymentCaptured
from shared.demo.traffic import payment, submission

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def placed_state():
    message = submission("jd", 7, rng=random.Random(3), submitted_at=NOW)
    accepted = validate_submission(message, catalog=parse_catalog(DEMO_CATALOG), now=NOW)
    order_id = domain.order_id_for("jd", message["channel_order_id"])
    placed = domain.placed_from(order_id, accepted.message, accepted.lines, accepted.subtotal,
                                accepted.discount_total, accepted.total,
                                domain.content_hash(message), NOW)
    state = domain.OrderState(order_id)
    (event,) = domain.place(state, placed)
    return domain.evolve(state, event.event_type, event.wire(), 1), message


def test_order_id_is_deterministic_per_channel_order():
    assert domain.order_id_for("jd", "A") == domain.order_id_for("jd", "A")
    assert domain.order_id_for("jd", "A") != domain.order_id_for("tmall", "A")
    assert domain.order_id_for("jd", "A").startswith("O-")


def test_place_twice_is_illegal():
    state, _ = placed_state()
    with pytest.raises(domain.IllegalTransition) as refused:
        domain.place(state, state.placed)
    assert refused.value.status == "placed" and "confirm" in refused.value.allowed


def test_reservation_confirms_once():
    state, _ = placed_state()
    (confirmed,) = domain.on_stock_reserved(state, "e1")
    assert confirmed.event_type == "order.confirmed" and confirmed.total == state.total
    state = domain.evolve(state, confirmed.event_type, confirmed.wire(), 2)
    assert state.status == "confirmed"
    assert domain.on_stock_reserved(state, "e2") == []


def test_shortage_backorders_then_reservation_confirms():
    state, _ = placed_state()
    (backordered,) = domain.on_stock_shortage(state, [])
    state = domain.evolve(state, backordered.event_type, backordered.wire(), 2)
    assert state.status == "backordered"
    assert domain.on_stock_reserved(state, "e")[0].event_type == "order.confirmed"


def test_payment_captured_once_per_payment_id_and_paid_once_when_settled():
    state, message = placed_state()
    captured = PaymentCaptured.model_validate(payment(message, captured_at=NOW))
    (event,) = domain.capture_payment(state, captured, "CNY")
    state = domain.evolve(state, event.event_type, event.wire(), 2)
    assert state.captured_total == state.total
    assert domain.capture_payment(state, captured, "CNY") == []
    assert domain.on_settled(state, state.total, "INV-2026-000001") == []  # not confirmed yet
    (confirmed,) = domain.on_stock_reserved(state, "e")
    state = domain.evolve(state, confirmed.event_type, confirmed.wire(), 3)
    (paid,) = domain.on_settled(state, state.total, "INV-2026-000001")
    assert paid.paid_amount == state.total and isinstance(paid.paid_amount, Decimal)
    state = domain.evolve(state, paid.event_type, paid.wire(), 4)
    assert state.status == "paid" and domain.on_settled(state, state.total, None) == []
