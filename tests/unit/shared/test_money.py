"""Money: quantised Decimal in a currency's minor unit, never float, never mixed currencies."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.money import Money, MoneyError, known_currency, quantum, to_decimal


def test_amounts_are_quantised_to_the_minor_unit() -> None:
    assert Money.of("12", "CNY").amount == Decimal("12.00")
    assert str(Money.of("12", "CNY").amount) == "12.00"
    assert Money.of("1500.4", "JPY").amount == Decimal("1500")
    assert Money.of("1500.4", "JPY").wire() == "1500"
    assert quantum("KRW") == Decimal("1")
    assert quantum("USD") == Decimal("0.01")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.005", "0.01"),  # half up, not banker's rounding
        ("0.015", "0.02"),
        ("0.025", "0.03"),
        ("0.0049", "0.00"),
        ("-0.005", "-0.01"),  # ties go away from zero
        ("2.675", "2.68"),  # the classic float trap: 2.675 as float is 2.67499...
    ],
)
def test_rounding_is_half_up(raw: str, expected: str) -> None:
    assert Money.of(raw, "CNY").wire() == expected


def test_arithmetic_keeps_quantisation() -> None:
    price = Money.of("199.00", "CNY")
    assert (price * 3).wire() == "597.00"
    assert (price * Decimal("0.13")).wire() == "25.87"  # 25.87
    assert (price + Money.of("0.10", "CNY") - Money.of("9.10", "CNY")).wire() == "190.00"
    assert (-price).wire() == "-199.00"
    assert Money.zero("CNY").is_zero()
    assert Money.of("1.00", "CNY") == Money.of("1", "CNY")
    assert Money.of("1", "CNY") < Money.of("1.01", "CNY") <= Money.of("1.01", "CNY")
    assert Money.of("2", "CNY") > Money.of("1", "CNY")
    assert str(Money.of("5", "EUR")) == "5.00 EUR"


def test_currency_mismatch_is_refused() -> None:
    cny, usd = Money.of("1", "CNY"), Money.of("1", "USD")
    with pytest.raises(MoneyError, match="CNY and USD"):
        _ = cny + usd
    with pytest.raises(MoneyError):
        _ = cny - usd
    with pytest.raises(MoneyError):
        _ = cny < usd


def test_unknown_currency_is_refused() -> None:
    assert known_currency("CNY")
    assert not known_currency("XXX")
    with pytest.raises(MoneyError, match="unknown currency 'XXX'"):
        Money.of("1", "XXX")


@pytest.mark.parametrize("value", [0.1, 1.0, True, None, [1]])
def test_floats_and_non_numbers_are_refused(value: object) -> None:
    with pytest.raises(MoneyError):
        to_decimal(value)
    with pytest.raises(MoneyError):
        Money.of(value, "CNY")


def test_float_amount_and_float_factor_are_refused() -> None:
    with pytest.raises(MoneyError):
        Money(0.1, "CNY")  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        _ = Money.of("1", "CNY") * 1.5  # type: ignore[operator]


@pytest.mark.parametrize("value", ["abc", "", "NaN", "Infinity", "-inf", "1,00"])
def test_strings_that_are_not_finite_decimals_are_refused(value: str) -> None:
    with pytest.raises(MoneyError):
        to_decimal(value)


def test_to_decimal_accepts_strings_ints_and_decimals() -> None:
    assert to_decimal(" 12.50 ") == Decimal("12.50")
    assert to_decimal(7) == Decimal(7)
    assert to_decimal(Decimal("3.3")) == Decimal("3.3")


def test_integer_amounts_are_accepted_and_non_finite_refused() -> None:
    assert Money(5, "CNY").wire() == "5.00"  # type: ignore[arg-type]
    with pytest.raises(MoneyError):
        Money(Decimal("NaN"), "CNY")
    with pytest.raises(MoneyError):
        Money(Decimal("1e40"), "CNY")  # too many digits to hold cents: refused, not a crash
