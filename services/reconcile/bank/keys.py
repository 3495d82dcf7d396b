"""How ``index.OpenItems`` keys its tables: amounts as cents, packed (day, position) keys, and
tables whose entries are one value or a sorted list of several.

Most references and amounts belong to one invoice: a table entry is then the value itself, not
a one-element list (a million fewer lists to allocate and sort when a million invoices are
indexed); ``values`` reads either kind.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import TypeVar

SHIFT = 32
POSITION = (1 << SHIFT) - 1
SumKey = int | Decimal  # an amount as a dict key: whole cents as int (smaller, faster), else itself
OneOrMore = int | list[int]  # one value, or several in ascending order
K = TypeVar("K")


def bucket(amount: Decimal, width: int) -> int:
    """Whole cents (rounded down) divided by ``width``: monotone in ``amount``, exact in Decimal."""
    numerator, denominator = amount.as_integer_ratio()
    return numerator * 100 // denominator // width


def sum_key(amount: Decimal) -> SumKey:
    numerator, denominator = amount.as_integer_ratio()
    return numerator * (100 // denominator) if 100 % denominator == 0 else amount


@cache
def _two_or_more(count: int) -> list[int]:
    """The masks of ``count`` bits with two or more bits set, ascending."""
    return [mask for mask in range(1 << count) if mask & (mask - 1)]


def subset_sums(amounts: list[Decimal]) -> set[SumKey]:
    """Every sum of two or more of ``amounts`` (2^12 subsets at most), as ``sum_key`` keys."""
    keys = [sum_key(a) for a in amounts]
    whole = all(isinstance(k, int) for k in keys)
    sums: list[SumKey] = [0]  # sums[mask]: the sum of the amounts whose bits are set in mask
    for value in keys if whole else amounts:
        sums += [total + value for total in sums]
    picked = [sums[mask] for mask in _two_or_more(len(amounts))]
    return set(picked) if whole else {sum_key(Decimal(total)) for total in picked}


def packed(day: int, position: int) -> int:
    return day << SHIFT | position


def in_days(keys: Sequence[int], first: int, last: int) -> list[int]:
    """Positions of the packed ``keys`` (sorted) issued from day ``first`` to day ``last``."""
    found = keys[bisect_left(keys, first << SHIFT):bisect_left(keys, (last + 1) << SHIFT)]
    return [key & POSITION for key in found]


def remove(keys: list[int], key: int) -> None:
    at = bisect_left(keys, key)
    if at < len(keys) and keys[at] == key:
        del keys[at]


def values(found: OneOrMore | None) -> Sequence[int]:
    """What a table entry holds, as a sorted sequence (empty for no entry)."""
    if found is None:
        return ()
    return (found,) if isinstance(found, int) else found


def add(table: dict[K, OneOrMore], key: K, value: int) -> None:
    """``value`` into ``key``'s entry, kept sorted."""
    found = table.get(key)
    if found is None:
        table[key] = value
    elif isinstance(found, int):
        table[key] = [found, value] if found < value else [value, found]
    else:
        insort(found, value)


def discard(table: dict[K, OneOrMore], key: K, value: int) -> None:
    """``value`` out of ``key``'s entry; the entry goes when nothing is left."""
    found = table.get(key)
    if isinstance(found, int):
        if found == value:
            del table[key]
    elif found is not None:
        remove(found, value)
        if not found:
            del table[key]
