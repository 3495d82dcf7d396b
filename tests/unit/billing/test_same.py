"""Billing writes an order's facts only when they changed in a way a column keeps (``same``)."""

from __future__ import annotations

from decimal import Decimal as D

from services.billing.account_writes import same


def test_equal_values_of_another_type_or_scale_are_not_the_same() -> None:
    assert same({"a": [D("1.00"), "x", None, True]}, {"a": [D("1.00"), "x", None, True]})
    assert not same(D("0.00"), D("0"))  # equal, but the column would keep another scale
    assert not same({"t": D("10.0")}, {"t": D("10.00")})
    assert not same([1], [1.0]) and not same({"f": 1}, {"f": True})
    assert not same({"a": {"b": [D("2.50")]}}, {"a": {"b": [D("2.5")]}})


def test_a_changed_or_added_value_is_not_the_same() -> None:
    before = {"placed": {"lines": [{"sku": "X-100", "quantity": 2}]}, "confirmed": False}
    assert not same(before, {**before, "confirmed": True})
    assert not same(before, {**before, "requests": []})
    assert not same([1, 2], [1, 2, 3]) and not same({"a": 1}, {"b": 1})
    assert same(before, {"confirmed": False, "placed": {"lines": [{"quantity": 2, "sku": "X-100"}]}})
