"""Each bank matching rule: reference, exact amount in the window, several invoices of one
customer, partial and overpayments within and beyond the tolerance, and ambiguity."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from services.reconcile.bank.matching import (
    AMOUNT_IN_WINDOW,
    REFERENCE,
    SEVERAL_INVOICES,
    WITHIN_TOLERANCE,
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
