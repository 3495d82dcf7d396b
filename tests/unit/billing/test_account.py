"""Billing decisions on one order's account: invoices, presale, payments, amendments, cancellation."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from services.billing import domain
from services.billing.domain import Account, BillingRefusal, statement
from tests.unit.billing.builders import (
    ORDER_ID,
    VoucherBook,
    amended,
    cause,
    order,
    payment,
    presale,
    sample_order,
)


def confirmed(placed, book=None):
    book = book or VoucherBook()
    account = domain.keep_order(Account(ORDER_ID), placed, cause(), book).account
    return domain.confirm(account, cause(), book), book


def pay(account, payment_id, amount, **kwargs):
    return domain.record_payment(account, payment(payment_id, amount, **kwargs), cause())


def test_a_confirmed_order_gets_one_invoice_once():
    decision, book = confirmed(sample_order())
    [issued] = decision.events
    assert issued.event_type == "invoice.issued"
    assert (issued.voucher_number, issued.total, issued.net_total, issued.tax_total) == (
        "INV-2026-000001", D("395.00"), D("350.94"), D("44.06"))
    assert (issued.paid_total, issued.outstanding, issued.settled) == (D("0.00"), D("395.00"),
                                                                       False)
    assert domain.confirm(decision.account, cause(), book).events == ()
    again = domain.keep_order(decision.account, sample_order(), cause(), book)
    assert again.events == () and again.account == decision.account


def test_a_confirmation_before_the_order_facts_waits_for_them():
    book = VoucherBook()
    waiting = domain.confirm(Account(ORDER_ID), cause(), book)
    assert waiting.events == () and waiting.account.confirmed
    [issued] = domain.keep_order(waiting.account, sample_order(), cause(), book).events
    assert issued.voucher_number == "INV-2026-000001"


def test_partial_payments_settle_only_when_the_invoice_is_paid_and_surplus_is_credit():
    decision, _ = confirmed(sample_order())
    first = pay(decision.account, "P-1", "195.00")
    [recorded] = first.events
    assert (recorded.paid_total, recorded.outstanding, recorded.settled) == (
        D("195.00"), D("200.00"), False)
    assert recorded.voucher_number == "INV-2026-000001"
    second = pay(first.account, "P-2", "205.50", method="card")
    [recorded] = second.events
    assert (recorded.paid_total, recorded.outstanding, recorded.settled,
            recorded.ledger_category) == (D("400.50"), D("0.00"), True, "card")
    assert statement(second.account).customer_credit == D("5.50")
    assert pay(second.account, "P-2", "205.50").events == ()  # the same payment id again


def test_payments_before_the_invoice_make_it_settled_on_issue():
    book = VoucherBook()
    account = domain.keep_order(Account(ORDER_ID), sample_order(), cause(), book).account
    early = pay(account, "P-1", "395.00")
    [recorded] = early.events
    assert (recorded.voucher_number, recorded.outstanding, recorded.settled) == (None, None, False)
    [issued] = domain.confirm(early.account, cause(), book).events
    assert (issued.paid_total, issued.outstanding, issued.settled) == (D("395.00"), D("0.00"),
                                                                       True)


def test_payments_that_cannot_be_booked_are_refused():
    decision, _ = confirmed(sample_order())
    with pytest.raises(BillingRefusal, match="not positive"):
        pay(decision.account, "P-1", "0.00")
    with pytest.raises(BillingRefusal, match="in USD, the order in CNY"):
        pay(decision.account, "P-1", "1.00", currency="USD")
    with pytest.raises(BillingRefusal, match="no ledger category"):
        pay(decision.account, "P-1", "1.00", method="paypal")


def test_presale_bills_a_deposit_and_a_balance_invoice_paid_oldest_first():
    decision, _ = confirmed(presale(deposit="100.00"))
    deposit_invoice, balance_invoice = decision.events
    assert (deposit_invoice.voucher_number, deposit_invoice.total) == ("INV-2026-000001",
                                                                       D("100.00"))
    assert (balance_invoice.voucher_number, balance_invoice.total) == ("INV-2026-000002",
                                                                       D("498.00"))
    assert not deposit_invoice.settled and deposit_invoice.outstanding == D("598.00")
    deposit_paid = pay(decision.account, "P-DEP", "100.00", kind="deposit")
    [recorded] = deposit_paid.events
    assert (recorded.voucher_number, recorded.settled, recorded.outstanding) == (
        "INV-2026-000001", False, D("498.00"))
    standings = statement(deposit_paid.account).invoices
    assert [(s.status, s.paid) for s in standings] == [("paid", D("100.00")), ("open", D("0"))]
    balance_paid = pay(deposit_paid.account, "P-BAL", "498.00", kind="balance")
    [recorded] = balance_paid.events
    assert (recorded.voucher_number, recorded.settled, recorded.paid_total) == (
        "INV-2026-000002", True, D("598.00"))


def test_an_amendment_before_invoicing_only_changes_the_facts():
    book = VoucherBook()
    placed = sample_order()
    smaller = order([("X-100", 1, "199.00", "0.13"), ("GIFT-MUG", 1, "0.00", "0.13")],
                    discounts=["10.00", "5.00"], shipping="12.00")
    account = domain.keep_order(Account(ORDER_ID), placed, cause(), book).account
    change = domain.amend(account, amended("A-1", placed, smaller), cause(), book)
    assert change.events == ()
    [issued] = domain.confirm(change.account, cause(), book).events
    assert issued.total == D("196.00")


def test_an_amendment_after_invoicing_voids_and_reissues_and_payments_carry_over():
    decision, book = confirmed(sample_order())
    paid = pay(decision.account, "P-1", "395.00")
    smaller = order([("X-100", 1, "199.00", "0.13"), ("GIFT-MUG", 1, "0.00", "0.13")],
                    discounts=["10.00", "5.00"], shipping="12.00")
    change = domain.amend(paid.account, amended("A-1", sample_order(), smaller), cause(), book)
    voided, issued = change.events
    assert (voided.event_type, voided.voucher_number, voided.reason) == (
        "invoice.voided", "INV-2026-000001", "amended")
    assert (issued.voucher_number, issued.total, issued.paid_total, issued.outstanding,
            issued.settled) == ("INV-2026-000002", D("196.00"), D("395.00"), D("0.00"), True)
    now = statement(change.account)
    assert (now.invoiced, now.customer_credit) == (D("196.00"), D("199.00"))
    again = domain.amend(change.account, amended("A-1", sample_order(), smaller), cause(), book)
    assert again.events == ()
    same = domain.amend(change.account, amended("A-2", smaller, smaller), cause(), book)
    assert same.events == ()  # nothing on the invoice changes: it stays


def test_cancelling_an_unpaid_order_voids_its_invoice():
    decision, book = confirmed(sample_order())
    cancelled = domain.cancel(decision.account, cause(), book)
    [voided] = cancelled.events
    assert (voided.event_type, voided.reason, voided.total) == ("invoice.voided", "cancelled",
                                                                D("395.00"))
    assert statement(cancelled.account).invoiced == D("0.00")
    assert domain.cancel(cancelled.account, cause(), book).events == ()


def test_cancelling_a_partly_paid_order_credits_the_invoice_and_refunds_each_payment():
    decision, book = confirmed(sample_order())
    account = pay(pay(decision.account, "P-1", "100.00").account, "P-2", "50.00",
                  method="card").account
    note, card_refund, wallet_refund = domain.cancel(account, cause(), book).events
    assert (note.event_type, note.reason, note.voucher_number, note.total, note.net, note.tax,
            note.invoice_voucher_number) == (
        "credit_note.issued", "cancelled", "CN-2026-000001", D("395.00"), D("350.94"),
        D("44.06"), "INV-2026-000001")
    assert note.revenue_reversed == 0
    assert [(r.method, r.amount, r.credit_note_voucher_number)
            for r in (card_refund, wallet_refund)] == [
        ("card", D("50.00"), "CN-2026-000001"), ("alipay", D("100.00"), "CN-2026-000001")]


def test_cancelling_before_invoicing_refunds_payments_without_a_credit_note():
    book = VoucherBook()
    account = domain.keep_order(Account(ORDER_ID), sample_order(), cause(), book).account
    account = pay(account, "P-1", "395.00").account
    [refund] = domain.cancel(account, cause(), book).events
    assert (refund.event_type, refund.amount, refund.credit_note_voucher_number) == (
        "refund.issued", D("395.00"), None)
    assert book.last == {}


def test_cancelling_a_presale_after_the_deposit_credits_it_and_voids_the_balance():
    decision, book = confirmed(presale(deposit="100.00"))
    account = pay(decision.account, "P-DEP", "100.00", kind="deposit").account
    note, voided, refund = domain.cancel(account, cause(), book).events
    assert (note.invoice_voucher_number, note.total) == ("INV-2026-000001", D("100.00"))
    assert (voided.voucher_number, voided.total) == ("INV-2026-000002", D("498.00"))
    assert refund.amount == D("100.00")


def test_a_payment_after_cancellation_is_booked_and_refunded():
    decision, book = confirmed(sample_order())
    cancelled = domain.cancel(decision.account, cause(), book).account
    late = pay(cancelled, "P-LATE", "395.00")
    recorded, refund = late.events
    assert (recorded.settled, refund.amount, refund.method) == (False, D("395.00"), "alipay")
    assert statement(late.account).paid == D("0.00")
