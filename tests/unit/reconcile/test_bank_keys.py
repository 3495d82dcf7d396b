"""The open items' table entries (one value or a sorted list) and amount keys."""

from __future__ import annotations

import itertools
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from services.reconcile.bank.keys import add, bucket, discard, subset_sums, sum_key, values

amounts = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), places=3,
                      allow_nan=False, allow_infinity=False)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5), st.integers(0, 20)), max_size=60))
def test_a_table_holds_what_a_dict_of_sorted_lists_would(operations):
    table: dict[int, int | list[int]] = {}
    expected: dict[int, list[int]] = {}
    for adding, key, value in operations:
        if adding:
            add(table, key, value)
            expected.setdefault(key, []).append(value)
            expected[key].sort()
        else:
            discard(table, key, value)
            if value in expected.get(key, []):
                expected[key].remove(value)
                if not expected[key]:
                    del expected[key]
        assert {k: list(values(v)) for k, v in table.items()} == expected
    assert values(None) == ()


@given(amounts)
def test_bucket_and_sum_key_are_exact(amount):
    cents = amount.scaleb(2)
    assert bucket(amount, 7) == int(cents.to_integral_value(rounding="ROUND_FLOOR")) // 7
    key = sum_key(amount)
    assert key == (int(cents) if cents == cents.to_integral_value() else amount)
    assert isinstance(key, int) == (cents == cents.to_integral_value())


@given(st.lists(amounts, max_size=8))
def test_subset_sums_are_every_sum_of_two_or_more(given_amounts):
    expected = {sum_key(sum(combo, Decimal(0)))
                for size in range(2, len(given_amounts) + 1)
                for combo in itertools.combinations(given_amounts, size)}
    assert subset_sums(given_amounts) == expected
