"""Revenue at shipment (discounts shared into goods, shipping with the first), returns reversing it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from services.billing import domain
from services.billing.domain import Account, BillingRefusal, statement
from tests.unit.billing.builders import (
    ORDER_ID,
    VoucherBook,
    cause,
    order,
    payment,
    returned,
    sample_order,
    shipped,
)


def invoiced(placed):
    book = VoucherBook()
    account = domain.keep_order(Account(ORDER_ID), placed, cause(), book).account
    return domain.confirm(account, cause(), book).account, book


def ship(account, shipment):
    return domain.recognize_shipment(account, shipment, cause())


def test_one_complete_shipment_recognises_the_invoice_net_and_tax():
    account, _ = invoiced(sample_order())
    [revenue] = ship(account, shipped("S-1", (1, "X-100", 2), (2, "GIFT-MUG", 1))).events
    assert (revenue.event_type, revenue.voucher_number, revenue.net, revenue.tax,
            revenue.gross) == ("revenue.recognized", "INV-2026-000001", D("350.94"),
                               D("44.06"), D("395.00"))
    # The coupons (gross 15.00, net 13.27) are shared into the goods lines by gross: all to X-100.
    assert [(x.sku, x.quantity, x.net, x.tax) for x in revenue.lines] == [
        ("X-100", 2, D("338.94"), D("44.06")), ("GIFT-MUG", 1, D("0.00"), D("0.00")),
        ("shipping", 1, D("12.00"), D("0.00"))]


def test_partial_shipments_add_up_exactly_the_last_taking_the_remainder():
    account, _ = invoiced(sample_order())
    first = ship(account, shipped("S-1", (1, "X-100", 1)))
    [one] = first.events
    assert (one.net, one.gross) == (D("181.47"), D("203.50"))  # half of X-100 + shipping
    second = ship(first.account, shipped("S-2", (1, "X-100", 1), (2, "GIFT-MUG", 1)))
    [two] = second.events
    assert (two.net, two.gross) == (D("169.47"), D("191.50"))
    assert one.net + two.net == D("350.94") and one.tax + two.tax == D("44.06")
    assert ship(second.account, shipped("S-2", (1, "X-100", 1))).events == ()  # same shipment


def test_cumulative_rounding_spreads_cents_over_shipments():
    account, _ = invoiced(order([("A", 3, "10.00", "0")], discounts=["1.00"]))
    nets = []
    for n in range(3):
        decision = ship(account, shipped(f"S-{n}", (1, "A", 1)))
        account = decision.account
        nets.append(decision.events[0].net)
    assert nets == [D("9.67"), D("9.66"), D("9.67")]


def test_shipping_more_than_ordered_or_an_unknown_line_is_refused():
    account, _ = invoiced(sample_order())
    with pytest.raises(BillingRefusal, match="exceed"):
        ship(account, shipped("S-1", (1, "X-100", 3)))
    with pytest.raises(BillingRefusal, match="not on order"):
        ship(account, shipped("S-1", (9, "NOPE", 1)))


def test_a_return_credits_the_units_value_reverses_their_revenue_and_refunds_if_paid():
    account, book = invoiced(sample_order())
    account = domain.record_payment(account, payment("P-1", "395.00"), cause()).account
    account = ship(account, shipped("S-1", (1, "X-100", 2), (2, "GIFT-MUG", 1))).account
    back = domain.take_return(account, returned("R-1", ("X-100", 1)), cause(), book)
    note, refund = back.events
    assert (note.event_type, note.voucher_number, note.reason, note.total, note.net,
            note.revenue_reversed, note.invoice_voucher_number) == (
        "credit_note.issued", "CN-2026-000001", "returned", D("191.50"), D("169.47"),
        D("169.47"), "INV-2026-000001")
    assert (refund.amount, refund.method, refund.credit_note_voucher_number) == (
        D("191.50"), "alipay", "CN-2026-000001")
    now = statement(back.account)
    assert (now.owed, now.paid, now.outstanding, now.customer_credit) == (
        D("203.50"), D("203.50"), D("0.00"), D("0.00"))
    assert domain.take_return(back.account, returned("R-1", ("X-100", 1)), cause(),
                              book).events == ()


def test_a_return_on_an_unpaid_credit_invoice_reduces_what_is_owed_without_a_refund():
    placed = sample_order(payment={"method": "credit_terms", "terms": "net_30"})
    account, book = invoiced(placed)
    account = ship(account, shipped("S-1", (1, "X-100", 2), (2, "GIFT-MUG", 1))).account
    [note] = domain.take_return(account, returned("R-1", ("X-100", 2)), cause(), book).events
    assert note.total == D("383.00")
    back = domain.take_return(account, returned("R-1", ("X-100", 2)), cause(), book).account
    assert statement(back).outstanding == D("12.00")  # the shipping fee stays owed


def test_returning_more_than_was_shipped_is_refused():
    account, book = invoiced(sample_order())
    account = ship(account, shipped("S-1", (1, "X-100", 1))).account
    with pytest.raises(BillingRefusal, match="1 shipped and not yet returned"):
        domain.take_return(account, returned("R-1", ("X-100", 2)), cause(), book)


def test_a_shipped_order_is_not_cancelled():
    account, book = invoiced(sample_order())
    account = ship(account, shipped("S-1", (1, "X-100", 1))).account
    with pytest.raises(BillingRefusal, match="returned, not cancelled"):
        domain.cancel(account, cause(), book)
