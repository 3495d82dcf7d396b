"""The fact sheet and ``assess``: every reason, the consistent case, any arrival order."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.reconcile.domain import (
    CONSISTENT,
    PENDING,
    OrderFacts,
    apply_event,
    assess,
    status_since,
)
from shared.contract.envelope import EventEnvelope
from tests.unit.reconcile.samples import (
    AT,
    confirmation_sent,
    envelope,
    happy_flow,
    invoice_issued,
    order_confirmed,
    order_paid,
    order_placed,
    payment_recorded,
    stock_reserved,
)

ORDER = "O-00000000000000CD"


def fold(events: list[EventEnvelope], facts: OrderFacts | None = None) -> OrderFacts:
    facts = facts or OrderFacts(ORDER)
    for event in events:
        facts = apply_event(facts, str(event.event_id), event.event_type, event.payload)
    return facts


def facts_of(*payloads) -> OrderFacts:
    return fold([envelope(p) for p in payloads])


def reasons_of(*payloads) -> tuple[str, ...]:
    return assess(facts_of(*payloads)).reasons


def confirmed_and_notified():
    return [order_placed(ORDER), stock_reserved(ORDER), order_confirmed(ORDER),
            confirmation_sent(ORDER)]


def test_the_whole_happy_flow_is_consistent():
    facts = fold(happy_flow(ORDER))
    assert assess(facts).status == CONSISTENT
    assert assess(facts).reasons == ()
    assert facts.ordered == {"X-100": 2, "GIFT-MUG": 1}
    assert facts.reserved == {"X-100": 2, "GIFT-MUG": 1}
    assert (facts.invoices_count, facts.invoiced_total, facts.paid_total) == (1, Decimal("395.00"),
                                                                               Decimal("395.00"))
    assert facts.notifications_count == 1 and facts.confirmation_notified


def test_an_invoiced_order_without_payments_yet_is_consistent():
    assert assess(facts_of(*confirmed_and_notified(), invoice_issued(ORDER))).status == CONSISTENT


def test_nothing_without_the_placed_event():
    assert reasons_of(invoice_issued(ORDER), order_confirmed(ORDER)) == ("order.placed not seen",)


def test_placed_but_not_confirmed():
    assert reasons_of(order_placed(ORDER)) == ("placed but not confirmed",)


def test_backordered():
    from shared.contract.payloads import OrderBackordered, SkuQuantity

    backordered = OrderBackordered(order_id=ORDER, missing=[SkuQuantity(sku="X-100", quantity=1)])
    assert reasons_of(order_placed(ORDER), backordered) == ("placed but not confirmed (backordered)",)


def test_confirmed_but_no_invoice():
    assert reasons_of(*confirmed_and_notified()) == ("confirmed but no invoice",)


def test_confirmed_but_no_stock_reserved():
    assert reasons_of(order_placed(ORDER), order_confirmed(ORDER), confirmation_sent(ORDER),
                      invoice_issued(ORDER)) == ("confirmed but no stock reserved",)


def test_reserved_quantity_differs_from_ordered():
    reasons = reasons_of(order_placed(ORDER), stock_reserved(ORDER, mug=3), order_confirmed(ORDER),
                         confirmation_sent(ORDER), invoice_issued(ORDER))
    assert reasons == ("reserved GIFT-MUG x3 != ordered x1",)


def test_reserved_twice_is_double():
    facts = facts_of(order_placed(ORDER), stock_reserved(ORDER), stock_reserved(ORDER))
    assert "reserved X-100 x4 != ordered x2" in assess(facts).reasons


def test_invoice_total_differs_from_order_total():
    reasons = reasons_of(*confirmed_and_notified(), invoice_issued(ORDER, total=Decimal("398.00")))
    assert reasons == ("invoice total 398.00 != order total 395.00",)


def test_two_invoices():
    reasons = reasons_of(*confirmed_and_notified(), invoice_issued(ORDER, invoice_id="I-1"),
                         invoice_issued(ORDER, invoice_id="I-2"))
    assert reasons[0].startswith("2 invoices (INV-2026-000001, INV-2026-000001)")
    assert reasons[1] == "invoiced total 790.00 != order total 395.00"


def test_invoice_in_another_currency():
    foreign = invoice_issued(ORDER).model_copy(update={"currency": "USD"})
    assert reasons_of(*confirmed_and_notified(), foreign) == ("invoice currency USD != order currency CNY",)


def test_paid_differs_from_invoiced():
    reasons = reasons_of(*confirmed_and_notified(), invoice_issued(ORDER),
                         payment_recorded(ORDER, amount=Decimal("100.00")))
    assert reasons == ("paid 100.00 != invoiced 395.00",)


def test_paid_in_full_but_no_order_paid():
    reasons = reasons_of(*confirmed_and_notified(), invoice_issued(ORDER), payment_recorded(ORDER))
    assert reasons == ("paid in full but no order.paid",)


def test_order_paid_without_a_payment():
    reasons = reasons_of(*confirmed_and_notified(), invoice_issued(ORDER), order_paid(ORDER))
    assert reasons == ("order.paid seen but no payment recorded",)


def test_no_customer_notification_of_the_confirmation():
    reasons = reasons_of(order_placed(ORDER), stock_reserved(ORDER), order_confirmed(ORDER),
                         invoice_issued(ORDER))
    assert reasons == ("no customer notification of the confirmation",)


def test_a_staff_notification_is_not_the_customer_notification():
    to_staff = confirmation_sent(ORDER).model_copy(update={"recipient": "role:support"})
    facts = facts_of(order_placed(ORDER), stock_reserved(ORDER), order_confirmed(ORDER), to_staff,
                     invoice_issued(ORDER))
    assert facts.notifications_count == 1
    assert assess(facts).reasons == ("no customer notification of the confirmation",)


def test_paying_before_the_invoice_is_only_waiting_for_the_invoice():
    reasons = reasons_of(*confirmed_and_notified(), payment_recorded(ORDER))
    assert reasons == ("confirmed but no invoice",)


def test_every_missing_step_is_named():
    reasons = reasons_of(order_placed(ORDER), order_confirmed(ORDER))
    assert reasons == ("confirmed but no stock reserved", "confirmed but no invoice",
                       "no customer notification of the confirmation")


def test_cancelled_orders_are_not_expected_to_go_on():
    from shared.contract.payloads import Payload

    class OrderCancelled(Payload):  # no contract model yet; the raw event type is enough
        event_type = "order.cancelled"
        order_id: str

    facts = facts_of(order_placed(ORDER), OrderCancelled(order_id=ORDER))
    assert facts.cancelled
    assert assess(facts).status == CONSISTENT


def test_unrelated_events_add_nothing():
    from shared.contract.payloads import StockReceived

    received = StockReceived(sku="X-100", warehouse="HZ-1", quantity=5, on_hand=5)
    assert facts_of(received) == OrderFacts(ORDER)


@settings(max_examples=60, deadline=None)
@given(order=st.permutations(range(7)), repeats=st.lists(st.integers(0, 6), max_size=4))
def test_any_arrival_order_and_any_redelivery_ends_consistent(order, repeats):
    events = happy_flow(ORDER)
    shuffled = [events[i] for i in order] + [events[i] for i in repeats]
    facts = fold(shuffled)
    assert facts == fold(events)
    assert assess(facts).status == CONSISTENT


def test_pending_until_the_last_fact_arrives():
    events = happy_flow(ORDER)
    statuses = [assess(fold(events[:n])).status for n in range(1, len(events) + 1)]
    assert statuses == [PENDING] * (len(events) - 1) + [CONSISTENT]


def test_status_since_keeps_the_start_of_a_status():
    later = AT + timedelta(minutes=5)
    assert status_since(None, None, PENDING, AT) == AT
    assert status_since("pending", AT, PENDING, later) == AT
    assert status_since("pending", AT, CONSISTENT, later) == later
