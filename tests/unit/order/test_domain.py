"""The order lifecycle: every transition, refusal, order type, approval and amendment cutoff (pure)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from services.order.domain import fulfilment, lifecycle
from services.order.domain.lifecycle import IllegalTransition, InvalidCommand, Readiness, WrongRole
from services.order.domain.state import status
from shared.contract.storefront import PaymentCaptured
from tests.unit.order.factories import NOW, TWO_LEVELS, apply, lines, new_order

RESERVED = Readiness(reserved=True)


def types(events):
    return [e.event_type for e in events]


def paid(state):
    state = apply(state, lifecycle.capture_payment(state, PaymentCaptured(
        type="payment.captured", channel="tmall", channel_order_id="TM-1", payment_id="P1",
        method="alipay", amount=state.total, captured_at=NOW), "CNY"))
    return apply(state, lifecycle.on_settled(state, state.total, "INV-2026-000001"))


def confirmed(**kwargs):
    state = new_order(**kwargs)
    return apply(state, lifecycle.confirm_if_ready(state, RESERVED))


def test_order_id_is_deterministic_per_channel_order():
    assert lifecycle.order_id_for("jd", "A") == lifecycle.order_id_for("jd", "A")
    assert lifecycle.order_id_for("jd", "A") != lifecycle.order_id_for("tmall", "A")


def test_placed_then_reserved_confirms_once():
    state = new_order()
    assert status(state) == "placed"
    (event,) = lifecycle.confirm_if_ready(state, RESERVED)
    state = apply(state, [event])
    assert status(state) == "confirmed" and lifecycle.confirm_if_ready(state, RESERVED) == []


def test_reserved_at_placement_confirms_at_once():
    state = new_order(reserved=True)
    assert status(state) == "confirmed"


def test_placing_twice_is_illegal_and_says_state_and_allowed_actions():
    state = new_order()
    with pytest.raises(IllegalTransition) as refused:
        lifecycle.place(state, state.placed, None, NOW, RESERVED)
    assert refused.value.status == "placed" and "cancel" in refused.value.allowed


def test_shortage_backorders_then_reservation_confirms():
    state = apply(new_order(), lifecycle.on_stock_shortage(new_order(), []))
    assert status(state) == "backordered"
    assert types(lifecycle.confirm_if_ready(state, RESERVED)) == ["order.confirmed"]


def test_two_level_approval_in_order_then_confirmation():
    state = new_order(plan=TWO_LEVELS)
    assert status(state) == "pending_approval" and state.approval.role == "sales_director"
    assert lifecycle.confirm_if_ready(state, RESERVED) == []  # reserved but not approved
    with pytest.raises(WrongRole) as wrong:
        lifecycle.approve(state, approver="fei", role="finance_director", comment=None, now=NOW,
                          readiness=RESERVED)
    assert "sales_director" in wrong.value.needed
    events = lifecycle.approve(state, approver="dora", role="sales_director", comment="ok", now=NOW,
                               readiness=RESERVED)
    assert types(events) == ["order.approved", "order.approval_requested"]
    assert events[1].role == "finance_director" and events[1].rule_id == "big-orders"
    state = apply(state, events)
    events = lifecycle.approve(state, approver="fang", role="finance_director", comment=None, now=NOW,
                               readiness=RESERVED)
    assert types(events) == ["order.approved", "order.confirmed"] and events[0].final
    assert status(apply(state, events)) == "confirmed"


def test_rejected_approval_cancels_the_order():
    state = new_order(plan=TWO_LEVELS)
    events = lifecycle.reject(state, approver="dora", role="sales_director", reason="credit risk")
    assert types(events) == ["order.approval_rejected", "order.cancelled"]
    assert status(apply(state, events)) == "cancelled"


def test_overdue_approval_escalates_once_per_sla_and_the_escalation_role_may_decide():
    state = new_order(plan=TWO_LEVELS)
    assert lifecycle.escalate_if_overdue(state, NOW + timedelta(hours=3)) == []
    (escalated,) = lifecycle.escalate_if_overdue(state, NOW + timedelta(hours=4, minutes=1))
    assert escalated.escalate_to == "general_manager" and escalated.escalations == 1
    state = apply(state, [escalated], NOW + timedelta(hours=4, minutes=1))
    assert lifecycle.escalate_if_overdue(state, NOW + timedelta(hours=5)) == []
    assert lifecycle.escalate_if_overdue(state, NOW + timedelta(hours=8, minutes=2)) != []
    events = lifecycle.approve(state, approver="gao", role="general_manager", comment=None, now=NOW,
                               readiness=RESERVED)
    assert types(events)[0] == "order.approved"


def test_amendment_before_confirmation_applies_directly_with_before_and_after():
    state = new_order()
    new_lines = lines(("X-100", 3, "199.00"), ("GIFT-MUG", 1, "0.00", "B1"))
    (event,) = lifecycle.amend(state, request_id="A1", lines=new_lines, shipping_address=None,
                               plan=None, now=NOW)
    assert event.event_type == "order.amended"
    assert event.total_before == Decimal("410.00") and event.total_after == Decimal("609.00")
    assert [(d.sku, d.quantity) for d in event.lines_delta] == [("X-100", 1)]
    state = apply(state, [event])
    assert state.total == Decimal("609.00")
    assert lifecycle.amend(state, request_id="A1", lines=new_lines, shipping_address=None, plan=None,
                           now=NOW) == []  # the same request again


def test_amendment_after_confirmation_needs_approval_then_applies():
    state = confirmed()
    new_lines = lines(("X-100", 1, "199.00"), ("GIFT-MUG", 1, "0.00", "B1"))
    (request,) = lifecycle.amend(state, request_id="A2", lines=new_lines, shipping_address=None,
                                 plan=None, now=NOW)
    assert request.event_type == "order.approval_requested" and request.kind == "amendment"
    assert request.rule_id == "default-amendment"
    state = apply(state, [request])
    assert status(state) == "confirmed"  # the order stays confirmed while the change waits
    events = lifecycle.approve(state, approver="dora", role="sales_director", comment=None, now=NOW,
                               readiness=RESERVED)
    assert types(events) == ["order.approved", "order.amended"]
    assert events[1].approved_by == ["dora"]
    assert apply(state, events).total == Decimal("211.00")


def test_amendment_after_shipment_is_refused_as_an_event():
    state = paid(confirmed())
    state = apply(state, fulfilment.ship(state, shipment_id="S1", warehouse="WH", carrier="SF",
                                         tracking_number="T1", lines=None, now=NOW))
    (event,) = lifecycle.amend(state, request_id="A3", lines=None, shipping_address={"city": "x"},
                               plan=None, now=NOW)
    assert event.event_type == "order.amendment_refused" and "shipped" in event.reason


def test_prepaid_orders_ship_only_when_paid_and_partial_shipments_are_allowed():
    state = confirmed()
    with pytest.raises(IllegalTransition) as refused:
        fulfilment.ship(state, shipment_id="S1", warehouse="WH", carrier="SF", tracking_number="T",
                        lines=None, now=NOW)
    assert "payment outstanding" in str(refused.value)
    state = paid(state)
    (first,) = fulfilment.ship(state, shipment_id="S1", warehouse="WH", carrier="SF",
                               tracking_number="T1", lines=[("X-100", 1)], now=NOW)
    assert not first.complete
    state = apply(state, [first])
    assert status(state) == "partially_shipped"
    with pytest.raises(InvalidCommand) as too_many:
        fulfilment.ship(state, shipment_id="S2", warehouse="WH", carrier="SF", tracking_number="T2",
                        lines=[("X-100", 2)], now=NOW)
    assert too_many.value.code == "exceeds_remaining"


def test_gift_bundles_ship_whole_or_not_at_all():
    order_lines = lines(("X-100", 1, "199.00", "B1"), ("GIFT-MUG", 1, "0.00", "B1"), ("TEA-500", 1, "88.00"))
    state = paid(confirmed(order_lines=order_lines))
    with pytest.raises(InvalidCommand) as split:
        fulfilment.ship(state, shipment_id="S1", warehouse="WH", carrier="SF", tracking_number="T",
                        lines=[("X-100", 1)], now=NOW)
    assert split.value.code == "bundle_split"
    (ok,) = fulfilment.ship(state, shipment_id="S1", warehouse="WH", carrier="SF", tracking_number="T",
                            lines=[("X-100", 1), ("GIFT-MUG", 1)], now=NOW)
    assert len(ok.lines) == 2 and not ok.complete


def test_cod_orders_ship_before_payment():
    state = confirmed(terms="cod")
    assert "ship" in lifecycle.allowed_actions(state)


def test_shipped_delivered_completed_and_no_cancel_after_shipment():
    state = paid(confirmed())
    state = apply(state, fulfilment.ship(state, shipment_id="S1", warehouse="WH", carrier="SF",
                                         tracking_number="T1", lines=None, now=NOW))
    assert status(state) == "shipped"
    with pytest.raises(IllegalTransition):
        fulfilment.cancel(state, reason="changed mind", by="u", request_id=None)
    with pytest.raises(IllegalTransition):
        fulfilment.complete(state, NOW, "x")
    state = apply(state, fulfilment.deliver(state, NOW))
    assert status(state) == "delivered"
    state = apply(state, fulfilment.complete(state, NOW, "return window passed"))
    assert status(state) == "completed"


def test_cancel_before_shipment_from_every_earlier_state():
    for state in (new_order(), new_order(plan=TWO_LEVELS), confirmed(), paid(confirmed())):
        (event,) = fulfilment.cancel(state, reason="customer asked", by="u", request_id="C1")
        assert event.stage == status(state)
        assert status(apply(state, [event])) == "cancelled"


def test_return_requested_then_received():
    state = paid(confirmed())
    state = apply(state, fulfilment.ship(state, shipment_id="S1", warehouse="WH", carrier="SF",
                                         tracking_number="T1", lines=None, now=NOW))
    state = apply(state, fulfilment.deliver(state, NOW))
    with pytest.raises(InvalidCommand) as too_many:
        fulfilment.request_return(state, request_id="R1", lines=[("X-100", 3)], reason="broken")
    assert too_many.value.code == "exceeds_shipped"
    state = apply(state, fulfilment.request_return(state, request_id="R1", lines=[("X-100", 1)],
                                                   reason="broken"))
    assert status(state) == "return_requested"
    assert "complete" not in lifecycle.allowed_actions(state)
    state = apply(state, fulfilment.receive_return(state, request_id="R1", warehouse="WH", now=NOW))
    assert status(state) == "returned"


def test_presale_confirms_without_stock_deposit_then_balance_before_shipping():
    state = new_order(order_type="presale", terms="deposit", deposit_amount="100.00")
    assert status(state) == "confirmed"  # presale goods may not exist yet: no reservation needed
    deposit = PaymentCaptured(type="payment.captured", channel="tmall", channel_order_id="TM-1",
                              payment_id="D1", method="alipay", amount=Decimal("100.00"),
                              kind="deposit", captured_at=NOW)
    events = lifecycle.capture_payment(state, deposit, "CNY")
    assert types(events) == ["order.payment_captured", "order.deposit_paid"]
    state = apply(state, events)
    assert status(state) == "deposit_paid"
    with pytest.raises(IllegalTransition):
        fulfilment.ship(state, shipment_id="S", warehouse="W", carrier="C", tracking_number="T",
                        lines=None, now=NOW)
    state = apply(state, lifecycle.on_settled(state, state.total, None))
    assert "ship" in lifecycle.allowed_actions(state)


def test_group_buy_confirms_only_when_the_group_closes():
    state = new_order(order_type="group_buy")
    assert lifecycle.confirm_if_ready(state, Readiness(reserved=True, group_closed=False)) == []
    assert types(lifecycle.confirm_if_ready(state, Readiness(reserved=True, group_closed=True))) == [
        "order.confirmed"]


def test_payment_is_recorded_once_per_payment_id_even_after_cancellation():
    state = apply(new_order(), fulfilment.cancel(new_order(), reason="x", by="u", request_id=None))
    payment = PaymentCaptured(type="payment.captured", channel="tmall", channel_order_id="TM-1",
                              payment_id="P9", method="card", amount=Decimal("5.00"), captured_at=NOW)
    events = lifecycle.capture_payment(state, payment, "CNY")
    assert types(events) == ["order.payment_captured"]
    assert lifecycle.capture_payment(apply(state, events), payment, "CNY") == []
    assert lifecycle.on_settled(state, Decimal("5.00"), None) == []  # cancelled orders are not "paid"


def test_shipping_refuses_an_amendment_still_waiting_for_approval():
    """Found by the stateful test: an amendment approved after shipment changed shipped lines."""
    state = paid(confirmed())
    new_lines = lines(("X-100", 1, "199.00"), ("GIFT-MUG", 1, "0.00", "B1"))
    state = apply(state, lifecycle.amend(state, request_id="A9", lines=new_lines, shipping_address=None,
                                         plan=None, now=NOW))
    events = fulfilment.ship(state, shipment_id="S1", warehouse="WH", carrier="SF", tracking_number="T",
                             lines=None, now=NOW)
    assert types(events) == ["order.shipped", "order.amendment_refused"]
    state = apply(state, events)
    assert state.approval is None
    with pytest.raises(IllegalTransition):
        lifecycle.approve(state, approver="dora", role="sales_director", comment=None, now=NOW,
                          readiness=RESERVED)


def test_nothing_ships_while_inventory_is_short_for_the_order():
    state = paid(confirmed())
    with pytest.raises(IllegalTransition) as waiting:
        fulfilment.ship(state, shipment_id="S1", warehouse="WH", carrier="SF", tracking_number="T",
                        lines=None, now=NOW, stock_reserved=False)
    assert "waits for stock" in str(waiting.value)


def _amended_up(state):
    """An order amended from two kettles to three (approved): the total rises by 199.00."""
    more = lines(("X-100", 3, "199.00"), ("GIFT-MUG", 1, "0.00", "B1"))
    state = apply(state, lifecycle.amend(state, request_id="UP", lines=more, shipping_address=None,
                                         plan=None, now=NOW))
    events = lifecycle.approve(state, approver="dora", role="sales_director", comment=None, now=NOW,
                               readiness=RESERVED)
    assert types(events) == ["order.approved", "order.amended"]
    return apply(state, events)


def test_an_amendment_raising_a_paid_orders_total_owes_the_balance_before_it_ships():
    """Was: the order stayed paid and a prepaid order shipped with the raised total unpaid."""
    before = paid(confirmed())
    assert before.paid
    state = _amended_up(before)
    assert state.total == before.total + Decimal("199.00")
    assert not state.paid and status(state) == "confirmed" and "ship" not in lifecycle.allowed_actions(state)
    with pytest.raises(IllegalTransition) as refused:
        fulfilment.ship(state, shipment_id="S1", warehouse="WH", carrier="SF", tracking_number="T",
                        lines=None, now=NOW)
    assert "payment outstanding" in str(refused.value)
    # billing settles the new total (the balance was paid): paid again, and it ships
    (again,) = lifecycle.on_settled(state, state.total, "INV-2026-000002", decided_at=state.version + 1)
    state = apply(state, [again])
    assert state.paid and status(state) == "paid"
    assert types(fulfilment.ship(state, shipment_id="S1", warehouse="WH", carrier="SF",
                                 tracking_number="T", lines=None, now=NOW))[0] == "order.shipped"


def test_a_settlement_billing_decided_before_the_raise_does_not_pay_the_order():
    """The order was not yet paid when amended up; billing's settlement of the old total (caused
    by an order event before the amendment) arrives after it: stale, nothing is paid."""
    state = confirmed()
    decided_before = state.version
    state = _amended_up(state)
    assert lifecycle.on_settled(state, Decimal("410.00"), "INV-2026-000001",
                                decided_at=decided_before) == []
    assert lifecycle.on_settled(state, state.total, "INV-2026-000002",
                                decided_at=state.total_raised_at)[0].event_type == "order.paid"
    # a settlement entered at billing (no order event behind it) is billing's word as it stands
    assert lifecycle.on_settled(state, state.total, "INV-2026-000002")[0].event_type == "order.paid"


def test_an_amendment_lowering_a_paid_orders_total_keeps_it_paid():
    state = paid(confirmed())
    fewer = lines(("X-100", 1, "199.00"), ("GIFT-MUG", 1, "0.00", "B1"))
    state = apply(state, lifecycle.amend(state, request_id="DOWN", lines=fewer,
                                         shipping_address=None, plan=None, now=NOW))
    state = apply(state, lifecycle.approve(state, approver="dora", role="sales_director",
                                           comment=None, now=NOW, readiness=RESERVED))
    assert state.total < Decimal("410.00") and state.paid and state.total_raised_at == 0
