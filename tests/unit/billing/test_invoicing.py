"""Invoice lines, tax split and rounding, voucher numbers, ledger categories and settlement."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.billing.domain import (
    BillingRefusal,
    Invoiced,
    InvoiceMismatch,
    average_tax_rate,
    draft_invoice,
    issue_invoice,
    ledger_category,
    record_payment,
    settlement,
    split_tax,
    voucher_number,
)
from shared.contract.payloads import OrderLine, OrderPaymentCaptured, OrderPlaced

NOW = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)


def order(lines, discounts=(), shipping="0.00", currency="CNY", total=None) -> OrderPlaced:
    """An order.placed from (sku, quantity, unit_price, tax_rate) lines and discount amounts."""
    order_lines = [OrderLine(line_no=n, sku=sku, name=f"item {sku}", quantity=q,
                             unit_price=D(price), tax_rate=D(rate))
                   for n, (sku, q, price, rate) in enumerate(lines, start=1)]
    subtotal = sum((line.quantity * line.unit_price for line in order_lines), D(0))
    discount_total = sum((D(a) for a in discounts), D(0))
    return OrderPlaced(
        order_id="O-0000000000000001", channel="tmall", channel_order_id="TM-1",
        order_type="standard", submitted_at=NOW, customer={"id": "C-1"}, shipping_address={},
        lines=order_lines,
        discounts=[{"kind": "coupon", "code": f"C{n}", "amount": a}
                   for n, a in enumerate(discounts, start=1)],
        shipping_fee=D(shipping), currency=currency, subtotal=subtotal,
        discount_total=discount_total,
        total=D(total) if total is not None else subtotal - discount_total + D(shipping),
        payment={"method": "alipay", "terms": "prepaid"}, content_hash="h",
    )


def test_tax_is_split_out_of_a_tax_inclusive_price():
    assert split_tax(D("199.00"), D("0.13"), "CNY") == (D("176.11"), D("22.89"))
    assert split_tax(D("0.00"), D("0.13"), "CNY") == (D("0.00"), D("0.00"))
    assert split_tax(D("1000"), D("0"), "JPY") == (D("1000"), D("0"))


def test_net_rounds_half_up_and_away_from_zero_for_negative_amounts():
    assert split_tax(D("0.01"), D("1"), "CNY") == (D("0.01"), D("0.00"))
    assert split_tax(D("-0.01"), D("1"), "CNY") == (D("-0.01"), D("0.00"))
    assert split_tax(D("0.03"), D("1"), "CNY") == (D("0.02"), D("0.01"))  # 0.015 -> 0.02


def test_average_rate_is_weighted_by_goods_value_and_rounded_to_four_places():
    lines = order([("A", 2, "100.00", "0.13"), ("B", 1, "100.00", "0.06")]).lines
    assert average_tax_rate(lines, "CNY") == D("0.1067")  # (26 + 6) / 300
    assert average_tax_rate(order([("A", 1, "0.00", "0.13")]).lines, "CNY") == D("0")


def test_the_contract_sample_order_is_invoiced_line_by_line():
    placed = order([("X-100", 2, "199.00", "0.13"), ("GIFT-MUG", 1, "0.00", "0.13")],
                   discounts=["10.00", "5.00"], shipping="12.00")
    draft = draft_invoice(placed)
    assert [(ln.kind, ln.gross, ln.net, ln.tax_rate, ln.tax) for ln in draft.lines] == [
        ("goods", D("398.00"), D("352.21"), D("0.13"), D("45.79")),
        ("goods", D("0.00"), D("0.00"), D("0.13"), D("0.00")),
        ("discount", D("-10.00"), D("-8.85"), D("0.1300"), D("-1.15")),
        ("discount", D("-5.00"), D("-4.42"), D("0.1300"), D("-0.58")),
        ("shipping", D("12.00"), D("12.00"), D("0"), D("0.00")),
    ]
    assert draft.lines[0].sku == "X-100"
    assert draft.lines[2].description == "coupon C1"
    assert (draft.net_total, draft.tax_total, draft.total) == (D("350.94"), D("44.06"), D("395.00"))
    assert draft.total == placed.total


def test_a_discount_total_without_itemised_discounts_is_one_discount_line():
    placed = order([("A", 1, "50.00", "0.13")]).model_copy(
        update={"discount_total": D("5.00"), "total": D("45.00")})
    assert [ln.kind for ln in draft_invoice(placed).lines] == ["goods", "discount"]


def test_an_order_whose_amounts_do_not_add_up_is_refused():
    with pytest.raises(InvoiceMismatch, match=r"the order.s total is 100\.01"):
        draft_invoice(order([("A", 1, "100.00", "0.13")], total="100.01"))
    placed = order([("A", 1, "100.00", "0.13")], discounts=["3.00"])
    with pytest.raises(InvoiceMismatch, match="discounts add up to"):
        draft_invoice(placed.model_copy(update={"discount_total": D("4.00")}))


PRICES = st.decimals(min_value=D("0.00"), max_value=D("9999.99"), places=2)
RATES = st.sampled_from([D("0"), D("0.06"), D("0.09"), D("0.13"), D("0.17")])


@given(
    lines=st.lists(st.tuples(st.integers(1, 7), PRICES, RATES), min_size=1, max_size=6),
    discount_share=st.lists(st.decimals(min_value=D(0), max_value=D("0.3"), places=3), max_size=3),
    shipping=st.decimals(min_value=D(0), max_value=D("99.99"), places=2),
)
@settings(max_examples=400, deadline=None)
def test_invoice_total_equals_order_total_for_awkward_amounts(lines, discount_share, shipping):
    subtotal = sum((q * p for q, p, _ in lines), D(0))
    discounts = [str((subtotal * share / 3).quantize(D("0.01"))) for share in discount_share]
    placed = order([(f"S{n}", q, str(p), str(r)) for n, (q, p, r) in enumerate(lines)],
                   discounts=discounts, shipping=str(shipping))
    draft = draft_invoice(placed)
    assert draft.total == placed.total
    assert draft.net_total + draft.tax_total == draft.total
    for line in draft.lines:
        assert line.net + line.tax == line.gross
        assert line.net.as_tuple().exponent == -2 and line.tax.as_tuple().exponent == -2
        assert abs(line.tax) <= abs(line.gross)


def test_yen_invoices_have_no_minor_unit():
    draft = draft_invoice(order([("A", 3, "333", "0.1")], discounts=["100"], currency="JPY"))
    assert [(ln.gross, ln.net, ln.tax) for ln in draft.lines] == [
        (D("999"), D("908"), D("91")), (D("-100"), D("-91"), D("-9"))]
    assert draft.total == D("899")


def test_voucher_numbers_are_series_year_and_six_digits():
    assert voucher_number(2026, 1) == "INV-2026-000001"
    assert voucher_number(2027, 999_999) == "INV-2027-999999"
    for impossible in (0, 1_000_000):
        with pytest.raises(BillingRefusal, match="6 digits"):
            voucher_number(2026, impossible)


@pytest.mark.parametrize(("method", "category"), [
    ("alipay", "online_wallet"), ("wechat_pay", "online_wallet"), ("card", "card"),
    ("bank_transfer", "bank_transfer"), ("credit_terms", "credit_terms_receivable"),
    ("cash_on_delivery", "cash_on_delivery"), ("collection_agent", "collection_agent"),
])
def test_payment_methods_map_to_ledger_categories(method, category):
    assert ledger_category(method) == category


def test_an_unknown_payment_method_is_refused():
    with pytest.raises(BillingRefusal, match="'paypal' has no ledger category"):
        ledger_category("paypal")


def captured(amount, payment_id="P-1", currency="CNY", method="alipay"):
    return OrderPaymentCaptured(order_id="O-0000000000000001", payment_id=payment_id,
                                method=method, kind="full", amount=D(amount), currency=currency,
                                captured_at=NOW)


def test_settlement_shows_what_is_owed_and_any_surplus():
    partly = settlement(D("100.00"), D("40"), "CNY")
    assert (partly.outstanding, partly.settled, partly.customer_credit) == (
        D("60.00"), False, D("0.00"))
    over = settlement(D("100.00"), D("130.50"), "CNY")
    assert (over.outstanding, over.settled, over.customer_credit) == (D("0.00"), True, D("30.50"))


def test_a_payment_before_the_invoice_has_no_outstanding_and_is_not_settled():
    recorded = record_payment(captured("395.00"), paid_before=D(0), invoice=None,
                              order_currency="CNY")
    assert (recorded.paid_total, recorded.outstanding, recorded.settled) == (D("395.00"), None,
                                                                             False)
    assert recorded.voucher_number is None
    assert recorded.ledger_category == "online_wallet"


def test_payments_count_against_the_invoice():
    invoiced = Invoiced("INV-2026-000001", D("395.00"), "CNY")
    first = record_payment(captured("195.00"), paid_before=D(0), invoice=invoiced,
                           order_currency="CNY")
    assert (first.paid_total, first.outstanding, first.settled) == (D("195.00"), D("200.00"),
                                                                    False)
    second = record_payment(captured("200.00", "P-2"), paid_before=D("195.00"),
                            invoice=invoiced, order_currency="CNY")
    assert (second.paid_total, second.outstanding, second.settled) == (D("395.00"), D("0.00"),
                                                                       True)
    assert second.voucher_number == "INV-2026-000001"


def test_payments_that_cannot_be_booked_are_refused():
    with pytest.raises(BillingRefusal, match="not positive"):
        record_payment(captured("0.00"), paid_before=D(0), invoice=None, order_currency="CNY")
    with pytest.raises(BillingRefusal, match="in USD, the order in CNY"):
        record_payment(captured("1.00", currency="USD"), paid_before=D(0), invoice=None,
                       order_currency="CNY")


def test_an_invoice_issued_after_full_payment_is_settled():
    placed = order([("A", 1, "100.00", "0.13")])
    issued = issue_invoice(placed, draft_invoice(placed), invoice_id="i-1",
                           voucher="INV-2026-000007", paid_total=D("120.00"), issued_at=NOW)
    assert (issued.paid_total, issued.outstanding, issued.settled) == (D("120.00"), D("0.00"),
                                                                       True)
    unpaid = issue_invoice(placed, draft_invoice(placed), invoice_id="i-2",
                           voucher="INV-2026-000008", paid_total=D(0), issued_at=NOW)
    assert (unpaid.paid_total, unpaid.outstanding, unpaid.settled) == (D("0.00"), D("100.00"),
                                                                       False)
