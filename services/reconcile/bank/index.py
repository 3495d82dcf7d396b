"""Open items indexed for matching a whole statement: the rules of ``matching`` without a scan per line.

``matching.decide`` looks at every invoice for every line and ``matching.apply`` copies the list:
100,000 lines against 1,000,000 open items would take hours. ``OpenItems`` is built once per
statement (O(items)); each line then costs about the number of invoices the rules actually look at,
and a decision is applied in place. The decisions are exactly those of ``matching.decide`` followed
by ``matching.apply`` line after line (a property test compares them):

* ``reference``: per currency, upper-cased reference -> invoices (settled ones stay, so a payment
  naming a paid invoice is still flagged as a duplicate).
* ``amount_in_window``: per currency, outstanding amount -> open invoices sorted by issue day, so
  the window is two bisections.
* ``amount_within_tolerance``: per currency, amount bucket (``tolerance`` wide, in whole cents) ->
  open invoices sorted by issue day; a line looks at three buckets at most, the amounts are then
  compared exactly in Decimal. Bucketing is monotone, so no invoice within the tolerance is missed.
* ``several_invoices_same_customer``: the scan looks at every customer with two or more open
  invoices in the window, whatever the line. Here only *candidate* customers are searched, with
  the scan's own enumeration (``matching.sets_adding_up``), so the same sets come out in the same
  order; a customer left out has no set adding up. Candidates come from sums of two or more open
  invoices, exact (integer cents, Decimal otherwise), built on the first line that needs them:

  - a customer with at most 12 open invoices: every sum of its open invoices, whatever the window
    (the 12 searched in the window are among them, so nobody is missed; a candidate whose set
    lies partly outside the window is searched and yields nothing);
  - a customer with more: the sums of its first 12 open invoices in the window, kept for one
    booking day (``_Window``) and moved day by day (statements are matched in booking-day order),
    recomputing only those customers with invoices on the days entering or leaving the window.

  Applying a decision recomputes the customers it touched. Outstanding amounts only go down
  (``decide`` never allocates a negative amount; ``apply`` refuses one), so a customer never
  grows past 12 open invoices.

Every list the rules see is in the order the invoices were given (their position), as in the scan.
Positions and issue days are packed in one int (``day << 32 | position``) so that sorted lists of
plain ints can be bisected by day. A reference or an amount owned by one invoice is kept as the
value itself, not a one-element list (``keys``; the build inlines ``keys.add`` for speed).
Building allocates millions of objects and no reference cycles,
so the cyclic garbage collector is paused meanwhile (it would re-scan the growing heap again and
again: half the build time at 1,000,000 items).
"""

from __future__ import annotations

import gc
from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from itertools import islice, pairwise

from services.reconcile.bank.keys import (
    OneOrMore,
    SumKey,
    add,
    bucket,
    discard,
    in_days,
    packed,
    remove,
    subset_sums,
    sum_key,
    values,
)
from services.reconcile.bank.matching import (
    MAX_INVOICES_PER_CUSTOMER,
    Decision,
    MatchPolicy,
    OpenInvoice,
    decide_with,
    sets_adding_up,
)
from services.reconcile.bank.statement import BankLine


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _upper(text: str) -> str:
    return text if text.isupper() else text.upper()  # the same string, not a copy, when it can


@dataclass
class _Window:
    """Sums of the first 12 open invoices in the window of booking ``day``, per customer."""

    day: int
    sums: dict[str, set[SumKey]] = field(default_factory=dict)
    customers_by_sum: dict[SumKey, set[str]] = field(default_factory=lambda: defaultdict(set))


@dataclass
class _Customers:
    """Where the customers with a set of invoices adding up to an amount are found."""

    small_by_sum: dict[SumKey, str | set[str]] = field(default_factory=dict)
    big: set[str] = field(default_factory=set)
    big_by_day: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    big_days: list[int] = field(default_factory=list)  # sorted days of big_by_day
    window: _Window | None = None


@dataclass
class _Currency:
    """Everything about one currency's invoices; values are positions or packed keys."""

    by_reference: dict[str, OneOrMore] = field(default_factory=dict)
    by_amount: dict[Decimal, OneOrMore] = field(default_factory=dict)
    by_bucket: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    # invoices with a customer (open or not), sorted as matching.first_of_customer sorts them
    by_customer: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    customers: _Customers | None = None  # built on the first line that needs it


class OpenItems:
    """The invoices known when a statement is matched, indexed for ``policy``; see the module doc."""

    def __init__(self, invoices: Iterable[OpenInvoice], policy: MatchPolicy) -> None:
        self.policy = policy
        self._items: list[OpenInvoice] = list(invoices)
        self._days: list[int] = [i.issued_on.toordinal() for i in self._items]
        self._width = max(1, bucket(policy.tolerance, 1))
        self._currencies: dict[str, _Currency] = defaultdict(_Currency)
        with _collector_paused():
            self._build()

    def _build(self) -> None:
        days, width = self._days, self._width
        shared: list[list[int]] = []  # the amounts owed by several invoices: sorted at the end
        for position, invoice in enumerate(self._items):
            index = self._currencies[invoice.currency]
            voucher, order = _upper(invoice.voucher_number), _upper(invoice.order_id)
            channel = _upper(invoice.channel_order_id or "")
            references = ((voucher, order, channel) if voucher != order != channel != voucher
                          else {voucher, order, channel})
            for reference in references:
                if reference:
                    found = index.by_reference.get(reference)
                    if found is None:
                        index.by_reference[reference] = position
                    elif isinstance(found, int):
                        index.by_reference[reference] = [found, position]
                    else:
                        found.append(position)
            if invoice.customer_id:
                index.by_customer[invoice.customer_id].append(position)
            owed = invoice.outstanding
            if owed > 0:
                key = packed(days[position], position)
                found = index.by_amount.get(owed)
                if found is None:
                    index.by_amount[owed] = key
                elif isinstance(found, int):
                    index.by_amount[owed] = keys = [found, key]
                    shared.append(keys)
                else:
                    found.append(key)
                index.by_bucket[bucket(owed, width)].append(key)
        for keys in shared:
            keys.sort()
        for index in self._currencies.values():
            for keys in index.by_bucket.values():
                keys.sort()
            for positions in index.by_customer.values():
                if len(positions) > 1 and not all(
                        days[a] < days[b] for a, b in pairwise(positions)):
                    positions.sort(key=self._set_order)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def invoices(self) -> list[OpenInvoice]:
        """The invoices as ``matching.apply`` would have left them, in the order given."""
        return list(self._items)

    def decide(self, line: BankLine) -> Decision:
        return decide_with(line, self.policy, _Lookup(self, line))

    def apply(self, decision: Decision) -> None:
        """Reduce what the allocated invoices owe (as ``matching.apply``: by voucher number)."""
        applied = {a.voucher_number: a.applied for a in decision.allocations}
        if any(amount < 0 for amount in applied.values()):
            raise ValueError("an allocation never increases what an invoice owes")
        changes = [(p, amount) for voucher, amount in applied.items() if amount
                   for p in self._with_voucher(voucher)]
        # what a paid invoice owes no longer counts anywhere but in its own record
        touched = {(self._items[p].currency, self._items[p].customer_id) for p, _ in changes
                   if self._items[p].outstanding > 0}
        for currency, customer in touched:
            if customer:
                self._forget(currency, customer)
        for position, amount in changes:
            invoice = self._items[position]
            self._items[position] = replace(invoice, outstanding=invoice.outstanding - amount)
            if invoice.outstanding > 0:
                self._move(invoice.currency, position, invoice.outstanding, invoice.outstanding - amount)
        for currency, customer in touched:
            if customer:
                self._learn(currency, customer)

    # ---- what the rules ask -------------------------------------------------------------------

    def referenced(self, line: BankLine, words: set[str]) -> list[OpenInvoice]:
        index = self._currencies.get(line.currency)
        if index is None:
            return []
        found = {p for word in words for p in values(index.by_reference.get(word))}
        return [self._items[p] for p in sorted(found)]

    def exact(self, line: BankLine) -> list[OpenInvoice]:
        index = self._currencies.get(line.currency)
        keys = values(None if index is None else index.by_amount.get(line.amount))
        if not keys:
            return []
        first, last = self._window(line.booked_on.toordinal())
        return [self._items[p] for p in sorted(in_days(keys, first, last))]

    def near(self, line: BankLine) -> list[OpenInvoice]:
        index = self._currencies.get(line.currency)
        if index is None:
            return []
        first, last = self._window(line.booked_on.toordinal())
        tolerance = self.policy.tolerance
        found: list[int] = []
        for near in range(bucket(line.amount - tolerance, self._width),
                          bucket(line.amount + tolerance, self._width) + 1):
            keys = index.by_bucket.get(near)
            if keys:
                found += [p for p in in_days(keys, first, last)
                          if abs(self._items[p].outstanding - line.amount) <= tolerance]
        return [self._items[p] for p in sorted(found)]

    def several(self, line: BankLine) -> list[tuple[OpenInvoice, ...]]:
        index = self._currencies.get(line.currency)
        if index is None:
            return []
        day, key = line.booked_on.toordinal(), sum_key(line.amount)
        customers = self._customers(index)
        small = customers.small_by_sum.get(key, ())
        candidates = {small} if isinstance(small, str) else set(small)
        if customers.big:
            candidates |= self._window_of(index, customers, day).customers_by_sum.get(key, set())
        owns = ([self._items[p] for p in self._own(index, customer, day)]
                for customer in sorted(candidates))
        return sets_adding_up(owns, line.amount)

    # ---- keeping the index up to date ---------------------------------------------------------

    def _with_voucher(self, voucher: str) -> list[int]:
        """Positions of the invoices numbered ``voucher``, whatever their currency (as the scan)."""
        if not voucher:  # never a reference; no invoice is numbered so in practice
            return [p for p, invoice in enumerate(self._items) if invoice.voucher_number == voucher]
        return sorted(p for index in self._currencies.values()
                      for p in values(index.by_reference.get(voucher.upper()))
                      if self._items[p].voucher_number == voucher)

    def _window(self, day: int) -> tuple[int, int]:
        return day - self.policy.window_days, day + self.policy.window_days

    def _set_order(self, position: int) -> tuple[int, str, int]:
        """How matching.first_of_customer orders a customer's invoices (stable: position last)."""
        return self._days[position], self._items[position].voucher_number, position

    def _move(self, currency: str, position: int, before: Decimal, after: Decimal) -> None:
        """Move an open invoice from what it owed to what it owes now; it leaves once paid."""
        index = self._currencies[currency]
        key = packed(self._days[position], position)
        discard(index.by_amount, before, key)
        old_bucket = bucket(before, self._width)
        new_bucket = bucket(after, self._width) if after > 0 else None
        if new_bucket != old_bucket:
            remove(index.by_bucket[old_bucket], key)
        if after > 0:
            add(index.by_amount, after, key)
            if new_bucket is not None and new_bucket != old_bucket:
                insort(index.by_bucket[new_bucket], key)

    def _open(self, index: _Currency, customer: str) -> list[Decimal]:
        return [self._items[p].outstanding for p in index.by_customer[customer]
                if self._items[p].outstanding > 0]

    def _own(self, index: _Currency, customer: str, day: int) -> list[int]:
        """The invoices matching.exact_sets_per_customer searches: first 12 open in the window."""
        positions = index.by_customer[customer]
        first, last = self._window(day)
        low = bisect_left(positions, first, key=self._days.__getitem__)
        high = bisect_right(positions, last, key=self._days.__getitem__)
        return list(islice((p for p in positions[low:high] if self._items[p].outstanding > 0),
                           MAX_INVOICES_PER_CUSTOMER))

    def _customers(self, index: _Currency) -> _Customers:
        if index.customers is None:
            index.customers = customers = _Customers()
            with _collector_paused():
                for customer, positions in index.by_customer.items():
                    owed = self._open(index, customer)
                    if len(owed) > MAX_INVOICES_PER_CUSTOMER:
                        customers.big.add(customer)
                        for position in positions:
                            customers.big_by_day[self._days[position]].append(position)
                    elif len(owed) > 1:
                        self._learn_small(customers, customer, owed)
            customers.big_days = sorted(customers.big_by_day)
        return index.customers

    def _forget(self, currency: str, customer: str) -> None:
        """Before a customer's invoices change: drop its sums (computed from what it still owes)."""
        customers = self._currencies[currency].customers
        if customers is None or customer in customers.big:
            return
        for total in subset_sums(self._open(self._currencies[currency], customer)):
            holders = customers.small_by_sum[total]
            if isinstance(holders, str) or len(holders) == 1:
                del customers.small_by_sum[total]
            else:
                holders.discard(customer)

    def _learn(self, currency: str, customer: str) -> None:
        """After a customer's invoices changed: its sums again."""
        index = self._currencies[currency]
        customers = index.customers
        if customers is None:
            return
        if customer not in customers.big:
            self._learn_small(customers, customer, self._open(index, customer))
        elif customers.window is not None:
            self._recompute(index, customers.window, customer)

    @staticmethod
    def _learn_small(customers: _Customers, customer: str, owed: list[Decimal]) -> None:
        """The sums of what a customer with at most 12 open invoices owes on them (``owed``)."""
        for total in subset_sums(owed):
            holders = customers.small_by_sum.setdefault(total, customer)
            if isinstance(holders, set):
                holders.add(customer)
            elif holders != customer:
                customers.small_by_sum[total] = {holders, customer}

    def _window_of(self, index: _Currency, customers: _Customers, day: int) -> _Window:
        """The big customers' sums for booking ``day``, moved from the day asked for before."""
        window, reach = customers.window, self.policy.window_days
        if window is not None and window.day == day:
            return window
        if window is None or abs(window.day - day) > 2 * reach:
            changed = self._big_days(customers, day)
            window = customers.window = _Window(day)
        else:
            changed = self._big_days(customers, window.day) ^ self._big_days(customers, day)
            window.day = day
        touched = {self._items[p].customer_id for d in changed for p in customers.big_by_day[d]}
        for customer in touched:
            if customer:
                self._recompute(index, window, customer)
        return window

    def _big_days(self, customers: _Customers, day: int) -> set[int]:
        first, last = self._window(day)
        days = customers.big_days
        return set(days[bisect_left(days, first):bisect_right(days, last)])

    def _recompute(self, index: _Currency, window: _Window, customer: str) -> None:
        """One big customer's sums of its first 12 open invoices in ``window``, afresh."""
        for total in window.sums.pop(customer, ()):
            holders = window.customers_by_sum[total]
            holders.discard(customer)
            if not holders:
                del window.customers_by_sum[total]
        own = self._own(index, customer, window.day)
        if len(own) > 1:
            sums = window.sums[customer] = subset_sums([self._items[p].outstanding for p in own])
            for total in sums:
                window.customers_by_sum[total].add(customer)


class _Lookup:
    """``matching.Finder`` for one line, answered by an ``OpenItems``."""

    def __init__(self, items: OpenItems, line: BankLine) -> None:
        self._items, self._line = items, line

    def referenced(self, words: set[str]) -> list[OpenInvoice]:
        return self._items.referenced(self._line, words)

    def exact(self) -> list[OpenInvoice]:
        return self._items.exact(self._line)

    def several(self) -> list[tuple[OpenInvoice, ...]]:
        return self._items.several(self._line)

    def near(self) -> list[OpenInvoice]:
        return self._items.near(self._line)
