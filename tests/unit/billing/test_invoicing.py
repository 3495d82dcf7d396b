"""Invoice lines, tax split and rounding, presale split, due dates, vouchers, ledger categories."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.billing.domain import (
    BillingRefusal,
    InvoiceMismatch,
    apportion,
    average_tax_rate,
    draft_invoice,
    due_date,
    ledger_category,
    plan_invoices,
    split_tax,
    voucher_number,
)
from tests.unit.billing.builders import NOW, order, presale, sample_order


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


def test_apportioned_shares_add_up_exactly_and_the_largest_weight_takes_the_difference():
    assert apportion(D("10.00"), [D(1), D(1), D(1)], "CNY") == [D("3.34"), D("3.33"), D("3.33")]
    assert apportion(D("-0.05"), [D("100"), D("0"), D("50")], "CNY") == [
        D("-0.03"), D("0.00"), D("-0.02")]
    assert apportion(D("7"), [D(0), D(0)], "JPY") == [D("7"), D("0")]
    assert apportion(D("1.00"), [], "CNY") == []


@given(amount=st.decimals(min_value=D("-999.99"), max_value=D("9999.99"), places=2),
       weights=st.lists(st.decimals(min_value=D("-50"), max_value=D("500"), places=2),
                        min_size=1, max_size=6))
@settings(max_examples=200, deadline=None)
def test_apportion_never_loses_a_cent(amount, weights):
    assert sum(apportion(amount, weights, "CNY"), D(0)) == amount


def test_a_presale_order_gets_a_deposit_and_a_balance_invoice_that_add_up_line_by_line():
    placed = presale(deposit="100.00", discounts=["20.00"], shipping="8.00")
    deposit, balance = plan_invoices(placed)
    full = draft_invoice(placed)
    assert (deposit.kind, balance.kind) == ("deposit", "balance")
    assert (deposit.total, balance.total) == (D("100.00"), placed.total - D("100.00"))
    for a, b, whole in zip(deposit.lines, balance.lines, full.lines, strict=True):
        assert (a.gross + b.gross, a.net + b.net, a.tax + b.tax) == (whole.gross, whole.net,
                                                                     whole.tax)
        assert a.net + a.tax == a.gross and b.net + b.tax == b.gross
    assert [x.kind for x in deposit.lines] == ["goods", "discount", "shipping"]
    assert deposit.net_total + deposit.tax_total == deposit.total


def test_no_deposit_invoice_without_a_usable_deposit():
    assert [d.kind for d in plan_invoices(presale(deposit="598.00"))] == ["full"]  # all of it
    assert [d.kind for d in plan_invoices(presale(deposit="0"))] == ["full"]
    assert [d.kind for d in plan_invoices(sample_order())] == ["full"]


def test_invoices_on_credit_fall_due_after_thirty_days():
    on_terms = order([("A", 1, "10.00", "0.13")],
                     payment={"method": "bank_transfer", "terms": "net_30"})
    on_credit = order([("A", 1, "10.00", "0.13")],
                      payment={"method": "credit_terms", "terms": "prepaid"})
    assert due_date(on_terms, NOW) == due_date(on_credit, NOW) == date(2026, 12, 21)
    assert due_date(sample_order(), NOW) == date(2026, 11, 21)


def test_voucher_numbers_of_other_series():
    assert voucher_number(2026, 12, "CN") == "CN-2026-000012"
