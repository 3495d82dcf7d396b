"""Each bank matching rule: reference, exact amount in the window, several invoices of one
customer, partial and overpayments within and beyond the tolerance, and ambiguity; and the index
used for whole statements deciding exactly as the scan does."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from services.reconcile.bank.index import OpenItems
from services.reconcile.bank.matching import (
    AMOUNT_IN_WINDOW,
    REFERENCE,
    SEVERAL_INVOICES,
    WITHIN_TOLERANCE,
    Decision,
    MatchPolicy,
    OpenInvoice,
    apply,
    decide,
    tokens,
)
from services.reconcile.bank.statement import BankLine

DAY = date(2026, 11, 21)
POLICY = MatchPolicy(window_days=7, tolerance=Decimal("5.00"))


def invoice(number: int, outstanding: str, *, customer: str = "C-1", issued: date = DAY,
            total: str | None = None, currency: str = "CNY") -> OpenInvoice:
    return OpenInvoice(voucher_number=f"INV-2026-{number:06d}", order_id=f"O-{number:016X}",
                       currency=currency, total=Decimal(total or outstanding),
                       outstanding=Decimal(outstanding), issued_on=issued,
                       channel_order_id=f"TM-{number}", customer_id=customer)


def line(amount: str, memo: str = "", *, booked: date = DAY, currency: str = "CNY") -> BankLine:
    return BankLine("T-1", booked, Decimal(amount), currency, "王芳", memo, 2)


def test_tokens_are_cut_out_of_chinese_memos():
    found = tokens("货款INV-2026-000001，订单o-00000000000000ab。")
    assert {"INV-2026-000001", "O-00000000000000AB"} <= found


def test_reference_to_voucher_order_or_channel_order_id_matches_whatever_the_date():
    invoices = [invoice(1, "395.00"), invoice(2, "395.00")]
    for memo in ("INV-2026-000002", "order O-0000000000000002 thanks", "tm-2"):
        decision = decide(line("395.00", memo, booked=DAY + timedelta(days=60)), invoices, POLICY)
        assert decision.matched and decision.rule == REFERENCE, memo
        assert decision.score == Decimal("1.00") and not decision.flagged
        assert [(a.voucher_number, a.applied) for a in decision.allocations] == [
            ("INV-2026-000002", Decimal("395.00"))]
        assert (decision.tolerance, decision.window_days) == (Decimal("5.00"), 7)


def test_a_reference_to_a_settled_invoice_is_not_matched_but_flagged():
    decision = decide(line("395.00", "INV-2026-000001"), [invoice(1, "0.00", total="395.00")], POLICY)
    assert not decision.matched and decision.flagged and "already paid" in decision.reason


def test_exact_amount_with_one_candidate_in_the_window():
    invoices = [invoice(1, "120.00"), invoice(2, "395.00", issued=DAY - timedelta(days=3)),
                invoice(3, "395.00", issued=DAY - timedelta(days=30))]
    decision = decide(line("395.00", "no reference here"), invoices, POLICY)
    assert decision.matched and decision.rule == AMOUNT_IN_WINDOW and decision.score == Decimal("0.80")
    assert [a.voucher_number for a in decision.allocations] == ["INV-2026-000002"]


def test_the_window_is_configurable():
    invoices = [invoice(1, "395.00", issued=DAY - timedelta(days=10))]
    assert not decide(line("395.00"), invoices, POLICY).matched
    wide = decide(line("395.00"), invoices, MatchPolicy(window_days=14))
    assert wide.matched and wide.window_days == 14


def test_two_candidates_are_ambiguous_and_not_matched():
    invoices = [invoice(1, "395.00", customer="C-1"), invoice(2, "395.00", customer="C-2")]
    decision = decide(line("395.00"), invoices, POLICY)
    assert not decision.matched and decision.allocations == ()
    assert decision.rule == AMOUNT_IN_WINDOW and decision.flagged
    assert "ambiguous" in decision.reason
    assert decision.candidates == ("INV-2026-000001", "INV-2026-000002")


def test_another_currency_is_no_candidate():
    decision = decide(line("395.00", currency="USD"), [invoice(1, "395.00")], POLICY)
    assert not decision.matched and "no open USD invoice" in decision.reason


def test_one_line_pays_several_invoices_of_one_customer():
    invoices = [invoice(1, "100.00", customer="C-1"), invoice(2, "250.00", customer="C-1"),
                invoice(3, "45.00", customer="C-1"), invoice(4, "300.00", customer="C-2")]
    decision = decide(line("395.00"), invoices, POLICY)
    assert decision.matched and decision.rule == SEVERAL_INVOICES and decision.score == Decimal("0.70")
    assert sorted(a.voucher_number for a in decision.allocations) == [
        "INV-2026-000001", "INV-2026-000002", "INV-2026-000003"]
    assert sum(a.applied for a in decision.allocations) == Decimal("395.00")
    assert decision.difference == 0 and not decision.flagged


def test_several_invoices_of_different_customers_do_not_add_up():
    invoices = [invoice(1, "100.00", customer="C-1"), invoice(2, "295.00", customer="C-2")]
    assert not decide(line("395.00"), invoices, POLICY).matched


def test_two_sets_of_invoices_adding_up_are_ambiguous():
    invoices = [invoice(1, "100.00", customer="C-1"), invoice(2, "295.00", customer="C-1"),
                invoice(3, "200.00", customer="C-2"), invoice(4, "195.00", customer="C-2")]
    decision = decide(line("395.00"), invoices, POLICY)
    assert not decision.matched and decision.rule == SEVERAL_INVOICES and "ambiguous" in decision.reason


def test_one_reference_line_paying_several_invoices():
    invoices = [invoice(1, "100.00"), invoice(2, "295.00", customer="C-9")]
    decision = decide(line("395.00", "INV-2026-000001 INV-2026-000002"), invoices, POLICY)
    assert decision.matched and decision.rule == REFERENCE and len(decision.allocations) == 2


def test_partial_payment_within_the_tolerance_is_matched_and_flagged():
    decision = decide(line("392.00", "INV-2026-000001"), [invoice(1, "395.00")], POLICY)
    assert decision.matched and decision.flagged and decision.score == Decimal("0.90")
    assert decision.difference == Decimal("-3.00") and "partial payment" in decision.reason
    assert decision.allocations[0].applied == Decimal("392.00")


def test_overpayment_within_the_tolerance_is_matched_and_flagged():
    decision = decide(line("400.00", "O-0000000000000001"), [invoice(1, "395.00")], POLICY)
    assert decision.matched and decision.flagged and decision.difference == Decimal("5.00")
    assert decision.allocations[0].applied == Decimal("395.00") and "overpayment" in decision.reason


def test_partial_or_overpayment_beyond_the_tolerance_is_not_matched():
    for amount, kind in (("300.00", "partial payment"), ("500.00", "overpayment")):
        decision = decide(line(amount, "INV-2026-000001"), [invoice(1, "395.00")], POLICY)
        assert not decision.matched and decision.flagged and kind in decision.reason
        assert decision.candidates == ("INV-2026-000001",)


def test_without_reference_one_invoice_within_the_tolerance_is_matched_and_flagged():
    decision = decide(line("393.50"), [invoice(1, "395.00"), invoice(2, "500.00")], POLICY)
    assert decision.matched and decision.rule == WITHIN_TOLERANCE and decision.flagged
    assert decision.score == Decimal("0.50") and decision.difference == Decimal("-1.50")
    strict = decide(line("393.50"), [invoice(1, "395.00")], MatchPolicy(tolerance=Decimal("1.00")))
    assert not strict.matched and strict.tolerance == Decimal("1.00")


def test_two_invoices_within_the_tolerance_are_ambiguous():
    decision = decide(line("393.50"), [invoice(1, "395.00"), invoice(2, "392.00")], POLICY)
    assert not decision.matched and decision.rule == WITHIN_TOLERANCE and "ambiguous" in decision.reason


def test_money_out_is_never_matched():
    decision = decide(line("-395.00", "INV-2026-000001"), [invoice(1, "395.00")], POLICY)
    assert not decision.matched and not decision.flagged and "money out" in decision.reason


def test_apply_reduces_what_is_owed_for_the_next_line():
    invoices = [invoice(1, "395.00")]
    first = decide(line("200.00", "INV-2026-000001"), invoices, MatchPolicy(tolerance=Decimal("200")))
    after = apply(invoices, first)
    assert after[0].outstanding == Decimal("195.00")
    second = decide(line("195.00"), after, POLICY)
    assert second.matched and second.rule == AMOUNT_IN_WINDOW


# ---- the index (OpenItems) against the scan (decide + apply) ---------------------------------------


def scan_then_index(invoices: list[OpenInvoice], lines: list[BankLine],
                    policy: MatchPolicy) -> list[Decision]:
    """Both ways, line after line, each decision applied; they must agree at every step."""
    items = OpenItems(invoices, policy)
    decisions = []
    for bank_line in lines:
        expected = decide(bank_line, invoices, policy)
        invoices = apply(invoices, expected)
        got = items.decide(bank_line)
        items.apply(got)
        assert got == expected, bank_line
        assert items.invoices == invoices
        decisions.append(got)
    return decisions


AMOUNTS = st.integers(0, 8).map(lambda n: Decimal(n) * Decimal("2.50"))  # shared, adding up
PAYMENTS = st.integers(1, 8).map(lambda n: Decimal(n) * Decimal("2.50"))
NEAR_MISSES = st.integers(-1, 40).map(lambda n: Decimal(n) * Decimal("1.25"))
CUSTOMERS = st.sampled_from([None, "", "C-1", "C-2", "C-3", "C-1", "C-2"])
CURRENCIES = st.sampled_from(["CNY", "CNY", "CNY", "USD"])


@st.composite
def statements(draw: st.DrawFn, sizes: st.SearchStrategy[int] = st.integers(2, 16),
               customers: st.SearchStrategy[str | None] = CUSTOMERS,
               currencies: st.SearchStrategy[str] = CURRENCIES,
               ) -> tuple[list[OpenInvoice], list[BankLine], MatchPolicy]:
    """A few invoices and lines made to collide: shared amounts, sums, near misses, shared
    references, several customers, days in and out of the window, two currencies."""
    count = draw(sizes, label="invoices")
    invoices = [OpenInvoice(voucher_number=f"INV-{n}", order_id=f"O-{n}", currency=draw(currencies),
                            total=Decimal("40.00"), outstanding=draw(AMOUNTS),
                            issued_on=DAY + timedelta(days=draw(st.integers(-6, 6))),
                            channel_order_id=draw(st.sampled_from([None, f"TM-{n}", "TM-SHARED",
                                                                   f"o-{n + 1}"])),
                            customer_id=draw(customers))
                for n in range(count)]
    invoices = draw(st.permutations(invoices), label="order given")
    words = [f"{prefix}-{n}" for prefix in ("INV", "O", "TM", "inv", "o", "tm") for n in range(count)]
    memos = st.one_of(st.just(""), st.just("thanks 货款 1"),
                      st.lists(st.sampled_from([*words, "TM-SHARED", "thanks"]), max_size=2).map(" ".join))
    sums = st.lists(PAYMENTS, min_size=2, max_size=3).map(lambda a: sum(a, Decimal("0.00")))
    lines = [BankLine(f"T-{n}", DAY + timedelta(days=draw(st.integers(-8, 8))),
                      draw(st.one_of(PAYMENTS, sums, NEAR_MISSES)), draw(CURRENCIES),
                      draw(st.sampled_from(["王芳", "O-1", ""])), draw(memos), n + 2)
             for n in range(draw(st.integers(1, 8), label="lines"))]
    policy = MatchPolicy(window_days=draw(st.sampled_from([7, 2, 0, 30])),
                         tolerance=draw(st.sampled_from([Decimal("0.00"), Decimal("1.25"),
                                                         Decimal("2.50"), Decimal("5.00"),
                                                         Decimal("0.01")])))
    return invoices, lines, policy


@settings(max_examples=400, deadline=None)
@given(statement=statements())
def test_the_index_decides_exactly_as_the_scan(statement):
    invoices, lines, policy = statement
    scan_then_index(invoices, lines, policy)


@settings(max_examples=60, deadline=None)
@given(statement=statements(st.integers(16, 30), st.sampled_from(["C-1"] * 5 + ["C-2", None]),
                            st.sampled_from(["CNY"] * 9 + ["USD"])))
def test_the_index_decides_as_the_scan_for_customers_with_more_than_twelve_open_invoices(statement):
    invoices, lines, policy = statement
    scan_then_index(invoices, lines, policy)


def test_the_index_searches_only_the_first_twelve_invoices_of_a_customer_as_the_scan():
    invoices = [invoice(n, "10.00", issued=DAY - timedelta(days=3)) for n in range(1, 13)]
    invoices += [invoice(n, "7.00", issued=DAY - timedelta(days=1)) for n in (13, 14)]
    lines = [line("17.00"), line("14.00"), line("10.00", "INV-2026-000001"), line("17.00")]
    decisions = scan_then_index(invoices, lines, POLICY)
    # 7 + 10 and 7 + 7 exist, but only among the 13th and 14th invoices until one is paid
    assert [(d.rule, d.matched) for d in decisions] == [
        ("none", False), (WITHIN_TOLERANCE, False), (REFERENCE, True), (SEVERAL_INVOICES, False)]


def test_the_index_moves_the_window_of_customers_with_many_invoices_with_the_booking_day():
    """Invoices leaving the window let a 13th one into the 12 searched, for every such customer."""
    invoices = []
    for customer, base, amount, odd in (("C-1", 100, "10.00", "7.00"), ("C-2", 200, "20.00", "9.00")):
        invoices += [invoice(base + n, amount, customer=customer) for n in range(6)]
        invoices += [invoice(base + 10 + n, amount, customer=customer, issued=DAY + timedelta(days=2))
                     for n in range(6)]
        invoices.append(invoice(base + 99, odd, customer=customer, issued=DAY + timedelta(days=2)))
    later = DAY + timedelta(days=8)
    lines = [line("17.00", booked=DAY + timedelta(days=3)), line("17.00", booked=later),
             line("29.00", booked=later)]
    decisions = scan_then_index(invoices, lines, MatchPolicy(window_days=7, tolerance=Decimal("0")))
    assert [(d.rule, "ambiguous" in d.reason) for d in decisions] == [
        ("none", False), (SEVERAL_INVOICES, True), (SEVERAL_INVOICES, True)]


def test_the_index_follows_the_window_back_and_forth_and_the_payments():
    invoices = [invoice(1, "100.00", customer="C-1", issued=DAY),
                invoice(2, "50.00", customer="C-1", issued=DAY + timedelta(days=10)),
                invoice(3, "50.00", customer="C-1", issued=DAY + timedelta(days=20)),
                invoice(4, "25.00", customer="C-2", issued=DAY + timedelta(days=10)),
                invoice(5, "125.00", customer="C-2", issued=DAY + timedelta(days=15))]
    days = [5, 15, 40, 0, 15, 12, 5, 15]
    lines = [line(amount, booked=DAY + timedelta(days=d))
             for d, amount in zip(days, ["150.00", "100.00", "150.00", "150.00", "150.00",
                                         "150.00", "150.00", "75.00"], strict=True)]
    decisions = scan_then_index(invoices, lines, POLICY)
    assert any(d.matched and d.rule == SEVERAL_INVOICES for d in decisions)


def test_a_paid_invoice_stays_findable_by_reference_in_the_index():
    items = OpenItems([invoice(1, "395.00")], POLICY)
    items.apply(items.decide(line("395.00", "INV-2026-000001")))
    again = items.decide(line("395.00", "INV-2026-000001"))
    assert not again.matched and "already paid" in again.reason
    assert not items.decide(line("395.00")).matched
