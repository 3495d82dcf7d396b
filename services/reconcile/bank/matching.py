"""Matching one bank line to open invoices: the rules, their scores and the tolerance used.

Rules, tried in this order (the first that applies decides):

1. ``reference``: a token of the memo equals an order id, a channel order id or an invoice voucher
   number of an open invoice (the same currency). The line pays those invoices; an exact sum
   matches (score 1.00); a difference within the tolerance is matched with the difference and
   flagged (0.90); beyond it the line stays unmatched and flagged.
2. ``amount_in_window``: exactly one open invoice whose outstanding amount equals the line's amount,
   issued within ``window_days`` of the booking day (0.80). Two or more: ambiguous, unmatched.
3. ``several_invoices_same_customer``: open invoices of one customer in the window whose
   outstanding amounts add up exactly to the line's amount (0.70); more than one such set:
   ambiguous, unmatched.
4. ``amount_within_tolerance``: exactly one open invoice in the window whose outstanding amount
   differs from the line's by no more than the tolerance: matched with the difference, flagged
   (0.50). Two or more: ambiguous, unmatched.

A partial payment or an overpayment is never accepted silently: it is matched only within the
tolerance, always with its difference and flagged.

The rules are written once (``decide_with``); where they look for invoices is a ``Finder``.
``decide``/``apply`` here scan a list of invoices per line: simple, the reference the tests compare
against, but O(invoices) per line. A whole statement is matched through ``index.OpenItems``, which
answers the same questions from dictionaries and gives exactly the same decisions.
"""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Protocol

from services.reconcile.bank.statement import BankLine

ZERO = Decimal("0.00")
MAX_INVOICES_PER_CUSTOMER = 12  # sets of invoices of one customer searched (2^12 subsets at most)
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*[A-Za-z0-9]|[A-Za-z0-9]")

REFERENCE = "reference"
AMOUNT_IN_WINDOW = "amount_in_window"
SEVERAL_INVOICES = "several_invoices_same_customer"
WITHIN_TOLERANCE = "amount_within_tolerance"
NO_RULE = "none"
MANUAL = "manual"  # a person decided (decisions.py): the rules leave the line alone from then on


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    voucher_number: str
    order_id: str
    currency: str
    total: Decimal
    outstanding: Decimal
    issued_on: date
    channel_order_id: str | None = None
    customer_id: str | None = None

    @property
    def references(self) -> set[str]:
        found = {self.voucher_number, self.order_id, self.channel_order_id or ""}
        return {ref.upper() for ref in found if ref}


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    window_days: int = 7
    tolerance: Decimal = Decimal("5.00")  # absolute amount in the line's currency


@dataclass(frozen=True, slots=True)
class Allocation:
    voucher_number: str
    order_id: str
    applied: Decimal


@dataclass(frozen=True, slots=True)
class Decision:
    transaction_id: str
    matched: bool
    rule: str
    score: Decimal
    tolerance: Decimal
    window_days: int
    reason: str
    allocations: tuple[Allocation, ...] = ()
    difference: Decimal = ZERO  # bank amount - outstanding of the invoices (< 0 partial, > 0 over)
    flagged: bool = False
    candidates: tuple[str, ...] = field(default=())


class Finder(Protocol):
    """The invoices each rule looks at, for one line; lists keep the order the invoices were given in.

    "Open" means outstanding > 0, "in the window" issued at most ``window_days`` from the booking day;
    only invoices of the line's currency count.
    """

    def referenced(self, words: set[str]) -> list[OpenInvoice]:
        """Invoices (settled ones too) one of whose references is among ``words``."""
        ...

    def exact(self) -> list[OpenInvoice]:
        """Open invoices in the window owing exactly the line's amount."""
        ...

    def several(self) -> list[tuple[OpenInvoice, ...]]:
        """What ``exact_sets_per_customer`` finds among the open invoices in the window."""
        ...

    def near(self) -> list[OpenInvoice]:
        """Open invoices in the window owing the line's amount give or take the tolerance."""
        ...


def tokens(memo: str) -> set[str]:
    return {token.upper() for token in _TOKEN.findall(memo)}


def in_window(line: BankLine, invoice: OpenInvoice, policy: MatchPolicy) -> bool:
    return abs((line.booked_on - invoice.issued_on).days) <= policy.window_days


def decide(line: BankLine, invoices: Iterable[OpenInvoice], policy: MatchPolicy) -> Decision:
    """What to do with ``line``, given every known invoice (settled ones too, for references).

    Scans every invoice: fine for a few lines; a statement goes through ``index.OpenItems``.
    """
    return decide_with(line, policy, _Scan(line, invoices, policy))


def decide_with(line: BankLine, policy: MatchPolicy, finder: Finder) -> Decision:
    """The rules in their order, asking ``finder`` for the invoices each one looks at."""
    base = Decision(line.transaction_id, False, NO_RULE, ZERO, policy.tolerance, policy.window_days,
                    "")
    if line.amount <= 0:
        return replace(base, reason="money out: not a customer payment")
    referenced = finder.referenced(tokens(f"{line.memo} {line.counterparty}"))
    if referenced:
        return _by_reference(line, base, referenced, policy)
    exact = finder.exact()
    if len(exact) == 1:
        return _matched(base, line, AMOUNT_IN_WINDOW, Decimal("0.80"), exact,
                        f"the only open invoice of {line.amount} within {policy.window_days} days")
    if len(exact) > 1:
        return _ambiguous(base, AMOUNT_IN_WINDOW, exact)
    sets = finder.several()
    if len(sets) == 1:
        return _matched(base, line, SEVERAL_INVOICES, Decimal("0.70"), sets[0],
                        f"{len(sets[0])} open invoices of customer {sets[0][0].customer_id} add up "
                        f"to {line.amount}")
    if len(sets) > 1:
        return _ambiguous(base, SEVERAL_INVOICES, [i for found in sets for i in found])
    near = finder.near()
    if len(near) == 1:
        return _matched(base, line, WITHIN_TOLERANCE, Decimal("0.50"), near,
                        f"the only open invoice within the tolerance {policy.tolerance}")
    if len(near) > 1:
        return _ambiguous(base, WITHIN_TOLERANCE, near)
    return replace(base, reason=f"no open {line.currency} invoice of {line.amount} (nor within the "
                                f"tolerance {policy.tolerance}) within {policy.window_days} days, "
                                "and no reference in the memo")


class _Scan:
    """The reference ``Finder``: looks at every invoice, for one line."""

    def __init__(self, line: BankLine, invoices: Iterable[OpenInvoice], policy: MatchPolicy) -> None:
        self._line, self._invoices, self._policy = line, invoices, policy
        self._same: list[OpenInvoice] | None = None
        self._window: list[OpenInvoice] | None = None

    def _same_currency(self) -> list[OpenInvoice]:
        if self._same is None:
            self._same = [i for i in self._invoices if i.currency == self._line.currency]
        return self._same

    def _in_window(self) -> list[OpenInvoice]:
        if self._window is None:
            self._window = [i for i in self._same_currency()
                            if i.outstanding > 0 and in_window(self._line, i, self._policy)]
        return self._window

    def referenced(self, words: set[str]) -> list[OpenInvoice]:
        return [i for i in self._same_currency() if i.references & words]

    def exact(self) -> list[OpenInvoice]:
        return [i for i in self._in_window() if i.outstanding == self._line.amount]

    def several(self) -> list[tuple[OpenInvoice, ...]]:
        return exact_sets_per_customer(self._in_window(), self._line.amount)

    def near(self) -> list[OpenInvoice]:
        return [i for i in self._in_window()
                if abs(i.outstanding - self._line.amount) <= self._policy.tolerance]


def _by_reference(line: BankLine, base: Decision, referenced: list[OpenInvoice],
                  policy: MatchPolicy) -> Decision:
    vouchers = tuple(i.voucher_number for i in referenced)
    open_ones = [i for i in referenced if i.outstanding > 0]
    if not open_ones:
        return replace(base, rule=REFERENCE, flagged=True, candidates=vouchers,
                       reason=f"the memo refers to {', '.join(vouchers)}, already paid: a duplicate "
                              "payment?")
    owed = sum((i.outstanding for i in open_ones), ZERO)
    difference = line.amount - owed
    if difference == 0:
        return _matched(base, line, REFERENCE, Decimal("1.00"), open_ones,
                        "the memo refers to the invoice(s)")
    kind = "partial payment" if difference < 0 else "overpayment"
    if abs(difference) <= policy.tolerance:
        return _matched(base, line, REFERENCE, Decimal("0.90"), open_ones,
                        f"the memo refers to the invoice(s); {kind} of {abs(difference)} within the "
                        f"tolerance {policy.tolerance}")
    return replace(base, rule=REFERENCE, flagged=True, difference=difference,
                   candidates=tuple(i.voucher_number for i in open_ones),
                   reason=f"the memo refers to {', '.join(i.voucher_number for i in open_ones)} but "
                          f"{kind} of {abs(difference)} is beyond the tolerance {policy.tolerance}")


def _matched(base: Decision, line: BankLine, rule: str, score: Decimal,
             invoices: Sequence[OpenInvoice], reason: str) -> Decision:
    ordered = sorted(invoices, key=lambda i: (i.issued_on, i.voucher_number))
    owed = sum((i.outstanding for i in ordered), ZERO)
    difference = line.amount - owed
    remaining = line.amount
    allocations: list[Allocation] = []
    for invoice in ordered:
        applied = min(remaining, invoice.outstanding)
        remaining -= applied
        allocations.append(Allocation(invoice.voucher_number, invoice.order_id, applied))
    return replace(base, matched=True, rule=rule, score=score, reason=reason,
                   allocations=tuple(allocations), difference=difference,
                   flagged=difference != 0, candidates=tuple(i.voucher_number for i in ordered))


def _ambiguous(base: Decision, rule: str, candidates: Sequence[OpenInvoice]) -> Decision:
    vouchers = tuple(dict.fromkeys(i.voucher_number for i in candidates))
    return replace(base, rule=rule, flagged=True, candidates=vouchers,
                   reason=f"ambiguous: {len(vouchers)} candidates ({', '.join(vouchers)}); "
                          "no automatic match")


def first_of_customer(invoices: Iterable[OpenInvoice]) -> list[OpenInvoice]:
    """The invoices of one customer a set is searched among: the earliest ``MAX_INVOICES_PER_CUSTOMER``.

    ``sorted`` is stable: invoices with the same day and voucher number keep their given order.
    """
    ordered = sorted(invoices, key=lambda i: (i.issued_on, i.voucher_number))
    return ordered[:MAX_INVOICES_PER_CUSTOMER]


def exact_sets_per_customer(invoices: Sequence[OpenInvoice],
                            amount: Decimal) -> list[tuple[OpenInvoice, ...]]:
    """Sets of two or more open invoices of one customer adding up to ``amount`` (stops at two)."""
    by_customer: dict[str, list[OpenInvoice]] = defaultdict(list)
    for invoice in invoices:
        if invoice.customer_id:
            by_customer[invoice.customer_id].append(invoice)
    return sets_adding_up((first_of_customer(by_customer[c]) for c in sorted(by_customer)), amount)


def sets_adding_up(owns: Iterable[Sequence[OpenInvoice]],
                   amount: Decimal) -> list[tuple[OpenInvoice, ...]]:
    """Each customer's (in customer order) sets of two or more adding up to ``amount``; stops at two.

    The search order (customers, then set size, then ``itertools.combinations``) decides which sets
    are reported, so every caller must go through here.
    """
    found: list[tuple[OpenInvoice, ...]] = []
    for own in owns:
        for size in range(2, len(own) + 1):
            for combo in itertools.combinations(own, size):
                if sum((i.outstanding for i in combo), ZERO) == amount:
                    found.append(combo)
                    if len(found) > 1:
                        return found
    return found


def apply(invoices: list[OpenInvoice], decision: Decision) -> list[OpenInvoice]:
    """The invoices after a matched decision (outstanding reduced), for the next line of a file.

    Copies the list: per line that is O(invoices); ``index.OpenItems.apply`` updates in place.
    """
    applied: dict[str, Decimal] = {a.voucher_number: a.applied for a in decision.allocations}
    return [replace(i, outstanding=i.outstanding - applied[i.voucher_number])
            if i.voucher_number in applied else i for i in invoices]
