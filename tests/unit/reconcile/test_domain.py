"""The fact sheet and ``assess``: every rule by its kind, the consistent lifecycles, any arrival order."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.reconcile.domain import (
    CONSISTENT,
    PENDING,
    OrderFacts,
    apply_event,
    assess,
)
from shared.contract.envelope import EventEnvelope
from shared.contract.fulfilment_events import StockAdjusted
from shared.contract.payloads import OrderBackordered, SkuQuantity, StockReceived
from tests.unit.reconcile.flows import (
    AMENDED_TOTAL,
    DEPOSIT,
    LIFECYCLES,
    amended,
    amended_after_paid_payloads,
    amended_payloads,
    cancelled,
    cancelled_paid_payloads,
    cancelled_unpaid_payloads,
    credit_note,
    deducted,
    deposit_paid,
    in_order,
    invoice_issued,
    lifecycle,
    notification_failed,
    paid_payloads,
    presale_placed,
    recognized,
    refund,
    released,
    returned_payloads,
    shipped,
    shipped_payloads,
    voided,
)
from tests.unit.reconcile.samples import (
    TOTAL,
    confirmation_sent,
    happy_flow,
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
        facts = apply_event(facts, str(event.event_id), event.event_type, event.payload,
                            event.stream_version)
    return facts


def facts_of(*payloads) -> OrderFacts:
    return fold(in_order(ORDER, list(payloads)))


def kinds_of(*payloads) -> tuple[str, ...]:
    return assess(facts_of(*payloads)).kinds


def reasons_of(*payloads) -> tuple[str, ...]:
    return assess(facts_of(*payloads)).reasons


def finding(kind: str, *payloads):
    found = {f.kind: f for f in assess(facts_of(*payloads)).findings}
    assert kind in found, f"{kind} not among {sorted(found)}"
    return found[kind]


def without(payloads: list, *event_types: str) -> list:
    return [p for p in payloads if p.event_type not in event_types]


def confirmed_and_notified():
    return [order_placed(ORDER), stock_reserved(ORDER), order_confirmed(ORDER),
            confirmation_sent(ORDER)]


# ---- the consistent paths ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LIFECYCLES))
def test_every_healthy_lifecycle_ends_consistent(name):
    assessment = assess(fold(lifecycle(name, ORDER)))
    assert (assessment.status, assessment.reasons) == (CONSISTENT, ())


def test_the_whole_happy_flow_is_consistent_with_every_fact():
    facts = fold(happy_flow(ORDER))
    assert assess(facts).status == CONSISTENT
    assert facts.ordered == facts.reserved == {"X-100": 2, "GIFT-MUG": 1}
    assert (facts.invoices_count, facts.invoiced_total, facts.paid_total) == (
        1, Decimal("395.00"), Decimal("395.00"))
    assert facts.notifications_count == 1 and facts.confirmation_notified


def test_an_invoiced_order_without_payments_yet_is_consistent():
    assert assess(facts_of(*confirmed_and_notified(), invoice_issued(ORDER))).status == CONSISTENT


def test_presale_with_two_invoices_adding_up_and_stock_after_the_deposit():
    facts = fold(lifecycle("presale", ORDER))
    assert facts.presale and facts.deposit_paid and len(facts.live_invoices) == 2
    assert facts.invoiced_total == TOTAL == facts.paid_total


def test_presale_needs_no_reservation_before_the_deposit():
    before = [presale_placed(ORDER), order_confirmed(ORDER), confirmation_sent(ORDER),
              invoice_issued(ORDER, total=DEPOSIT, invoice_id="I-DEP"),
              invoice_issued(ORDER, total=TOTAL - DEPOSIT, invoice_id="I-BAL")]
    assert reasons_of(*before) == ()
    assert reasons_of(*before, deposit_paid(ORDER)) == ("deposit paid but no stock reserved",)


def test_amended_after_invoicing_uses_the_amended_lines_and_total():
    facts = fold(lifecycle("amended", ORDER))
    assert facts.current_total == AMENDED_TOTAL
    assert facts.current_ordered == {"X-100": 3, "GIFT-MUG": 1}
    assert facts.invoiced_total == AMENDED_TOTAL and facts.invoices_count == 2


def test_shipped_with_revenue_and_deduction_holds_nothing_more():
    facts = fold(lifecycle("shipped", ORDER))
    assert facts.held == {"X-100": 0, "GIFT-MUG": 0}
    assert facts.deducted == facts.shipped == {"X-100": 2, "GIFT-MUG": 1}
    assert set(facts.revenue) == {"S-1"}


def test_returned_with_credit_note_and_refund_owes_what_it_kept():
    facts = fold(lifecycle("returned", ORDER))
    assert facts.net_invoiced == facts.net_paid == Decimal("196.00")


def test_cancelled_before_any_reservation_or_invoice_is_consistent():
    assert reasons_of(order_placed(ORDER), cancelled(ORDER)) == ()


# ---- each rule ----------------------------------------------------------------------------------


def test_placed_not_seen():
    assert kinds_of(invoice_issued(ORDER), order_confirmed(ORDER)) == ("placed_not_seen",)
    assert reasons_of(invoice_issued(ORDER)) == ("order.placed not seen",)


def test_awaiting_confirmation_is_a_wait_not_a_discrepancy():
    assessment = assess(facts_of(order_placed(ORDER)))
    assert (assessment.status, assessment.reasons) == (PENDING, ("placed but not confirmed",))
    assert assessment.discrepancies == ()
    backordered = OrderBackordered(order_id=ORDER, missing=[SkuQuantity(sku="X-100", quantity=1)])
    assert reasons_of(order_placed(ORDER), backordered) == ("placed but not confirmed (backordered)",)


def test_confirmed_but_no_reservation():
    found = finding("confirmed_not_reserved", order_placed(ORDER), order_confirmed(ORDER),
                    confirmation_sent(ORDER), invoice_issued(ORDER))
    assert (found.reason, found.expected, found.actual) == (
        "confirmed but no stock reserved", "stock.reserved", "none")


def test_confirmed_but_no_invoice():
    assert reasons_of(*confirmed_and_notified()) == ("confirmed but no invoice",)


def test_reserved_quantity_differs_from_ordered():
    found = finding("reserved_quantities", order_placed(ORDER), stock_reserved(ORDER, mug=3),
                    order_confirmed(ORDER), confirmation_sent(ORDER), invoice_issued(ORDER))
    assert (found.reason, found.expected, found.actual) == (
        "reserved GIFT-MUG x3 != ordered x1", "GIFT-MUG x1", "GIFT-MUG x3")


def test_reserved_twice_is_double():
    found = finding("reserved_quantities", order_placed(ORDER), stock_reserved(ORDER),
                    stock_reserved(ORDER))
    assert "reserved X-100 x4 != ordered x2" in found.reason


def test_amended_lines_without_the_extra_reservation():
    payloads = [*without(amended_payloads(ORDER), "stock.reserved"), stock_reserved(ORDER)]
    assert reasons_of(*payloads) == ("reserved X-100 x2 != ordered x3",)


def test_an_amendment_that_lowers_quantities_is_balanced_by_a_release():
    fewer = amended(ORDER, x100=1, total=Decimal("196.00"))
    payloads = [*confirmed_and_notified(), fewer, invoice_issued(ORDER, Decimal("196.00"))]
    assert reasons_of(*payloads) == ("reserved X-100 x2 != ordered x1",)
    assert reasons_of(*payloads, released(ORDER, (("X-100", 1),), reason="amended")) == ()


def test_the_latest_amendment_wins_whatever_the_arrival_order():
    first, second = amended(ORDER, x100=3, request_id="A-1"), amended(
        ORDER, x100=1, total=Decimal("196.00"), request_id="A-2")
    events = in_order(ORDER, [order_placed(ORDER), first, second])
    assert fold(events).current_total == fold(list(reversed(events))).current_total == Decimal("196.00")


def test_shipped_more_than_ordered():
    three = (("X-100", 3), ("GIFT-MUG", 1))
    found = finding("shipped_quantities", *paid_payloads(ORDER), shipped(ORDER, lines=three))
    assert found.reason == "shipped X-100 x3 > ordered x2"


def test_invoice_total_differs_from_order_total():
    reasons = reasons_of(*confirmed_and_notified(), invoice_issued(ORDER, total=Decimal("398.00")))
    assert reasons == ("invoice total 398.00 != order total 395.00",)


def test_two_live_invoices_for_a_standard_order():
    reasons = reasons_of(*confirmed_and_notified(), invoice_issued(ORDER, invoice_id="I-1"),
                         invoice_issued(ORDER, invoice_id="I-2"))
    assert reasons == ("invoiced total 790.00 != order total 395.00",)


def test_a_voided_invoice_does_not_count():
    assert reasons_of(*confirmed_and_notified(), invoice_issued(ORDER, invoice_id="I-1"),
                      invoice_issued(ORDER, invoice_id="I-2"), voided(ORDER, "I-1")) == ()


def test_amended_but_invoice_not_replaced():
    unreplaced = without(amended_payloads(ORDER), "invoice.voided", "invoice.issued",
                         "payment.recorded", "order.paid")
    payloads = [*unreplaced, invoice_issued(ORDER, invoice_id="I-1")]
    assert reasons_of(*payloads) == ("invoice total 395.00 != amended order total 594.00",)


def test_amended_down_and_credited_instead_of_voided():
    fewer = amended(ORDER, x100=1, total=Decimal("196.00"))
    payloads = [*confirmed_and_notified(), invoice_issued(ORDER), fewer,
                released(ORDER, (("X-100", 1),), reason="amended"),
                credit_note(ORDER, "amended", Decimal("199.00"))]
    assert reasons_of(*payloads) == ()


def test_invoice_in_another_currency():
    foreign = invoice_issued(ORDER).model_copy(update={"currency": "USD"})
    assert reasons_of(*confirmed_and_notified(), foreign) == ("invoice currency USD != order currency CNY",)


def test_paid_differs_from_invoiced_once_order_paid():
    partial = [*confirmed_and_notified(), invoice_issued(ORDER),
               payment_recorded(ORDER, amount=Decimal("100.00"))]
    assert reasons_of(*partial) == ()  # a partial payment is normal until the order says paid
    found = finding("paid_mismatch", *partial, order_paid(ORDER))
    assert (found.reason, found.expected, found.actual) == (
        "paid 100.00 != invoiced 395.00", "395.00", "100.00")


def test_order_paid_without_a_payment():
    reasons = reasons_of(*confirmed_and_notified(), invoice_issued(ORDER), order_paid(ORDER))
    assert reasons == ("order.paid seen but no payment recorded",)


def test_paid_in_full_but_no_order_paid():
    reasons = reasons_of(*confirmed_and_notified(), invoice_issued(ORDER), payment_recorded(ORDER))
    assert reasons == ("paid in full but no order.paid",)


def test_an_overpayment_set_aside_as_customer_credit_still_adds_up():
    over = [*paid_payloads(ORDER), payment_recorded(ORDER, amount=Decimal("5.00"), payment_id="P-2")]
    assert kinds_of(*over) == ("paid_mismatch",)
    assert reasons_of(*over, credit_note(ORDER, "overpaid", Decimal("5.00"), "CN-9")) == ()
    assert reasons_of(*over, credit_note(ORDER, "overpaid", Decimal("5.00"), "CN-9"),
                      refund(ORDER, Decimal("5.00"), "R-9", "CN-9")) == ()


def test_shipped_but_revenue_not_recognised():
    found = finding("shipped_revenue_not_recognised",
                    *without(shipped_payloads(ORDER), "revenue.recognized"))
    assert (found.reason, found.expected, found.actual) == (
        "shipped but revenue not recognised: S-1", "revenue.recognized for S-1",
        "revenue.recognized for none")


def test_revenue_must_cover_every_shipment():
    kettles, mug = (("X-100", 2),), (("GIFT-MUG", 1),)
    payloads = [*paid_payloads(ORDER), shipped(ORDER, "S-1", kettles), deducted(ORDER, "S-1", kettles),
                recognized(ORDER, "S-1"), shipped(ORDER, "S-2", mug), deducted(ORDER, "S-2", mug)]
    assert reasons_of(*payloads) == ("shipped but revenue not recognised: S-2",)
    assert reasons_of(*payloads, recognized(ORDER, "S-2", Decimal("0.00"))) == ()


def test_shipped_but_inventory_never_deducted():
    payloads = without(shipped_payloads(ORDER), "stock.deducted")
    assert reasons_of(*payloads) == (
        "order.shipped not answered by inventory (stock.deducted): S-1",)


def test_returned_but_no_credit_note():
    payloads = without(returned_payloads(ORDER), "credit_note.issued", "refund.issued")
    assert kinds_of(*payloads) == ("returned_no_credit_note",)
    assert reasons_of(*payloads) == ("returned (1) but no credit note (0 for returns)",)


def test_returned_and_credited_but_not_refunded():
    payloads = without(returned_payloads(ORDER), "refund.issued")
    assert reasons_of(*payloads) == ("paid 395.00 != invoiced 196.00",)


def test_cancelled_but_stock_not_released():
    found = finding("cancelled_stock_not_released",
                    *without(cancelled_unpaid_payloads(ORDER), "stock.released"))
    assert found.reason == "cancelled but stock not released: GIFT-MUG x1, X-100 x2"
    partly = [*without(cancelled_unpaid_payloads(ORDER), "stock.released"),
              released(ORDER, (("X-100", 2),))]
    assert reasons_of(*partly) == ("cancelled but stock not released: GIFT-MUG x1",)


def test_cancelled_but_invoice_neither_voided_nor_credited():
    assert reasons_of(*without(cancelled_unpaid_payloads(ORDER), "invoice.voided")) == (
        "cancelled but invoice not voided or credited (open 395.00)",)


def test_cancelled_after_payment_needs_credit_and_refund():
    no_credit = without(cancelled_paid_payloads(ORDER), "credit_note.issued", "refund.issued")
    assert kinds_of(*no_credit) == ("cancelled_invoice_open", "cancelled_not_refunded")
    no_refund = without(cancelled_paid_payloads(ORDER), "refund.issued")
    found = finding("cancelled_not_refunded", *no_refund)
    assert (found.reason, found.expected, found.actual) == (
        "cancelled but paid 395.00 not refunded", "refunded 395.00", "refunded 0.00")


def test_a_reservation_arriving_after_the_cancellation_must_be_released_too():
    late = [order_placed(ORDER), cancelled(ORDER), stock_reserved(ORDER)]
    assert kinds_of(*late) == ("cancelled_stock_not_released",)
    assert reasons_of(*late, released(ORDER)) == ()


def test_no_customer_notification_of_the_confirmation():
    found = finding("confirmation_not_notified", order_placed(ORDER), stock_reserved(ORDER),
                    order_confirmed(ORDER), invoice_issued(ORDER))
    assert (found.reason, found.actual) == ("no customer notification of the confirmation", "none")


def test_a_failed_confirmation_notification_says_why():
    found = finding("confirmation_not_notified", order_placed(ORDER), stock_reserved(ORDER),
                    order_confirmed(ORDER), invoice_issued(ORDER), notification_failed(ORDER))
    assert found.actual == "failed: smtp: connection refused"


def test_a_staff_notification_is_not_the_customer_notification():
    to_staff = confirmation_sent(ORDER).model_copy(update={"recipient": "role:support"})
    facts = facts_of(order_placed(ORDER), stock_reserved(ORDER), order_confirmed(ORDER), to_staff,
                     invoice_issued(ORDER))
    assert facts.notifications_count == 1
    assert assess(facts).reasons == ("no customer notification of the confirmation",)


def test_paying_before_the_invoice_is_only_waiting_for_the_invoice():
    assert reasons_of(*confirmed_and_notified(), payment_recorded(ORDER)) == ("confirmed but no invoice",)


def test_every_missing_step_is_named_once():
    assert kinds_of(order_placed(ORDER), order_confirmed(ORDER)) == (
        "confirmed_not_reserved", "confirmed_not_invoiced", "confirmation_not_notified")


def test_unrelated_events_add_nothing():
    received = StockReceived(sku="X-100", warehouse="HZ-1", quantity=5, on_hand=5)
    adjusted = StockAdjusted(sku="X-100", warehouse="HZ-1", quantity=-1, on_hand=4, reason="lost")
    assert facts_of(received, adjusted) == OrderFacts(ORDER)


def test_an_amendment_raising_the_total_reopens_the_payment_until_paid_again():
    reissued = amended_after_paid_payloads(ORDER)[:-2]  # no balance paid yet
    facts = facts_of(*reissued)
    assert facts.paid_flag and not facts.paid  # the first order.paid paid the old total
    # the balance is owed, not a mismatch: the order service no longer says paid
    assert "paid_mismatch" not in assess(facts).kinds
    balance = payment_recorded(ORDER, amount=AMENDED_TOTAL - TOTAL, payment_id="P-2")
    assert "paid_mismatch" not in kinds_of(*reissued, balance)
    assert kinds_of(*reissued, balance).count("paid_not_marked") == 1  # billing settled it
    again = facts_of(*reissued, balance, order_paid(ORDER, AMENDED_TOTAL))
    assert again.paid and assess(again).status == CONSISTENT


def test_an_amendment_lowering_the_total_keeps_the_order_paid():
    fewer = amended(ORDER, x100=1, total=Decimal("196.00"))
    facts = facts_of(*paid_payloads(ORDER), fewer)
    assert facts.paid and not facts.amendments["A-1"].raised


def test_an_order_paid_before_the_raise_arriving_last_does_not_pay_the_raised_total():
    events = lifecycle("amended_after_paid", ORDER)
    first_paid = next(e for e in events if e.event_type == "order.paid")
    rest = [e for e in events if e.event_id != first_paid.event_id
            and not (e.event_type == "order.paid" and e.stream_version > first_paid.stream_version)]
    facts = fold([*rest, first_paid])
    assert facts.paid_flag and not facts.paid
