"""Money as Decimal quantised to the currency's minor unit; never float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor units for the currencies the storefronts use.
MINOR_UNITS: dict[str, int] = {
    "CNY": 2,
    "HKD": 2,
    "TWD": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "SGD": 2,
    "AUD": 2,
    "CAD": 2,
    "JPY": 0,
    "KRW": 0,
}


class MoneyError(ValueError):
    """A value that cannot be money in the given currency."""


def known_currency(currency: str) -> bool:
    return currency in MINOR_UNITS


def quantum(currency: str) -> Decimal:
    try:
        places = MINOR_UNITS[currency]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}; accepted: {', '.join(MINOR_UNITS)}") from None
    return Decimal(1).scaleb(-places)


def to_decimal(value: object) -> Decimal:
    """Parse a decimal string or int (never a float: binary floats cannot hold cents)."""
    if isinstance(value, (bool, float)):
        raise MoneyError(f"money must be a decimal string, not {type(value).__name__} {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise MoneyError(f"{value!r} is not a decimal number") from None
    else:
        raise MoneyError(f"money must be a decimal string, not {type(value).__name__}")
    if not result.is_finite():
        raise MoneyError(f"{value!r} is not a finite number")
    return result


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        # to_decimal refuses float, bool and non-finite values and accepts an int amount.
        amount = to_decimal(self.amount)
        try:
            rounded = amount.quantize(quantum(self.currency), rounding=ROUND_HALF_UP)
        except InvalidOperation:  # more digits than the decimal context holds
            raise MoneyError(f"{amount} {self.currency} is too large to be money") from None
        object.__setattr__(self, "amount", rounded)

    @classmethod
    def of(cls, value: object, currency: str) -> Money:
        return cls(to_decimal(value), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int | Decimal) -> Money:
        if isinstance(factor, float):
            raise MoneyError("multiply money by int or Decimal, not float")
        return Money(self.amount * factor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def is_zero(self) -> bool:
        return self.amount == 0

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"

    def wire(self) -> str:
        """The decimal string that travels in JSON."""
        return str(self.amount)
