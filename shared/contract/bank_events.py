"""Payloads of reconcile's bank-matching decisions: a bank line matched to invoices, or not."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from pydantic import Field

from shared.contract.payloads import Payload


class BankLineMatched(Payload):
    """Part (or all) of a bank line applied to one invoice; one event per invoice, key = order id."""

    event_type = "bank_line.matched"

    transaction_id: str
    order_id: str
    voucher_number: str
    applied: Decimal  # the part of the bank amount applied to this invoice
    bank_amount: Decimal
    currency: str
    booked_on: date
    # reference | amount_in_window | several_invoices_same_customer |
    # amount_within_tolerance | manual (finance matched it by hand: oms bank match)
    rule: str
    score: Decimal
    tolerance: Decimal
    window_days: int
    difference: Decimal = Decimal("0.00")  # bank amount - outstanding matched (< 0 partial, > 0 over)
    flagged: bool = False
    reason: str = ""


class BankLineUnmatched(Payload):
    """A bank line no invoice could be matched to automatically; key = bank transaction id."""

    event_type = "bank_line.unmatched"

    transaction_id: str
    bank_amount: Decimal
    currency: str
    booked_on: date
    reason: str
    candidates: list[str] = Field(default_factory=list)  # voucher numbers considered
    tolerance: Decimal
    window_days: int
    flagged: bool = False


# Billing books each bank_line.matched (not flagged) as a payment of its own: one payment id per
# bank line and invoice, so reconcile can tell its own matched money in billing's payments.
# Finance confirms a flagged match on reconcile (``oms bank confirm``), which announces it again
# unflagged; neither a storefront nor finance's own payment entry may use the prefix.
BANK_PAYMENT_PREFIX = "bank:"
RESERVED_PAYMENT_ID = (f"payment ids starting with {BANK_PAYMENT_PREFIX!r} name bank statement "
                       "lines: billing books them from reconcile's matches (a flagged match once "
                       "finance confirms it: oms bank confirm); accepted: any other id")


def bank_payment_id(transaction_id: str, voucher_number: str) -> str:
    return f"{BANK_PAYMENT_PREFIX}{transaction_id}:{voucher_number}"


def bank_received_at(booked_on: date) -> datetime:
    """When a bank payment counts as received: its statement's booking day, 00:00 UTC."""
    return datetime.combine(booked_on, time(0), UTC)


def bank_payment_voucher(payment_id: str) -> str | None:
    """The invoice a bank payment's line was matched to (voucher numbers hold no colon), or None
    for any other payment."""
    rest = payment_id.removeprefix(BANK_PAYMENT_PREFIX)
    if rest == payment_id or ":" not in rest:
        return None
    return payment_id.rsplit(":", 1)[1]
