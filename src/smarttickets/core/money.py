"""Money is a Decimal amount plus an ISO 4217 currency, never a float.

Amounts are rounded with one helper that knows each currency's exponent; provider boundaries
use integer minor units.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor-unit exponents for the currencies we sell in; unknown ones default to 2.
CURRENCY_EXPONENTS = {"HKD": 2, "USD": 2, "EUR": 2, "GBP": 2, "TWD": 2, "SGD": 2, "CNY": 2,
                      "MOP": 2, "JPY": 0, "KRW": 0}


def exponent(currency: str) -> int:
    return CURRENCY_EXPONENTS.get(currency.upper(), 2)


def quantize(amount: Decimal | int | str, currency: str) -> Decimal:
    """Round ``amount`` to the currency's minor unit, half up."""
    try:
        value = Decimal(amount) if not isinstance(amount, Decimal) else amount
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {amount!r}") from exc
    if isinstance(amount, float):  # pragma: no cover - guarded for callers that slip
        raise TypeError("money must not be a float")
    return value.quantize(Decimal(1).scaleb(-exponent(currency)), rounding=ROUND_HALF_UP)


def to_minor(amount: Decimal, currency: str) -> int:
    return int(quantize(amount, currency).scaleb(exponent(currency)))


def from_minor(minor: int, currency: str) -> Decimal:
    return quantize(Decimal(minor).scaleb(-exponent(currency)), currency)


@dataclass(frozen=True, slots=True)
class Money:
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, float):
            raise TypeError("money must not be a float")
        object.__setattr__(self, "amount", quantize(self.amount, self.currency))
        object.__setattr__(self, "currency", self.currency.upper())

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, n: int) -> Money:
        if not isinstance(n, int):
            raise TypeError("money can only be multiplied by an integer")
        return Money(self.amount * n, self.currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"currency mismatch: {self.currency} vs {other.currency}")

    @property
    def minor(self) -> int:
        return to_minor(self.amount, self.currency)

    def __str__(self) -> str:
        return format_money(self.amount, self.currency)


def format_money(amount: Decimal, currency: str) -> str:
    """``HK$1,280.00``-style display used by templates."""
    symbol = {"HKD": "HK$", "USD": "US$", "EUR": "€", "GBP": "£", "JPY": "¥"}.get(currency, "")
    q = quantize(amount, currency)
    text = f"{q:,.{exponent(currency)}f}"
    return f"{symbol}{text}" if symbol else f"{text} {currency}"
