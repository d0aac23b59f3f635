"""Card-number rules for the sandbox: Luhn, brand, expiry and the test-card outcomes.

Pure functions over strings and integers (no Django), so they are testable on their own.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date


class Outcome(enum.StrEnum):
    SUCCEED = "succeed"
    DECLINE = "decline"
    CHALLENGE = "challenge"


@dataclass(frozen=True, slots=True)
class CardBehaviour:
    outcome: Outcome
    decline_code: str = ""


# The documented test cards; any other number that passes Luhn is accepted like 4242….
TEST_CARDS: dict[str, CardBehaviour] = {
    "4242424242424242": CardBehaviour(Outcome.SUCCEED),
    "4000000000000002": CardBehaviour(Outcome.DECLINE, "generic_decline"),
    "4000000000009995": CardBehaviour(Outcome.DECLINE, "insufficient_funds"),
    "4000000000003220": CardBehaviour(Outcome.CHALLENGE),
}

_SEPARATORS = re.compile(r"[\s-]+")


def digits(raw: str) -> str:
    """The number without spaces or dashes; '' when anything else is in it."""
    cleaned = _SEPARATORS.sub("", raw or "")
    return cleaned if cleaned.isdigit() and cleaned.isascii() else ""


def luhn_valid(number: str) -> bool:
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4] or 0) <= 2720:
        return "mastercard"
    if number.startswith("62"):
        return "unionpay"
    if 3528 <= int(number[:4] or 0) <= 3589:
        return "jcb"
    return "unknown"


def cvc_length(card_brand: str) -> int:
    return 4 if card_brand == "amex" else 3


def behaviour(number: str) -> CardBehaviour:
    return TEST_CARDS.get(number, CardBehaviour(Outcome.SUCCEED))


_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{2}|\d{4})\s*$")


def parse_expiry(raw: str) -> tuple[int, int]:
    """``MM/YY`` or ``MM/YYYY`` → (month, four-digit year); ValueError when unreadable."""
    match = _EXPIRY.match(raw or "")
    if not match:
        raise ValueError("expiry must look like MM/YY")
    month, year = int(match.group(1)), int(match.group(2))
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise ValueError("month must be 01 to 12")
    return month, year


def expiry_in_past(month: int, year: int, today: date) -> bool:
    # A card is valid through the last day of its expiry month.
    return (year, month) < (today.year, today.month)


def expiry_too_far(month: int, year: int, today: date, years: int = 20) -> bool:
    return (year, month) > (today.year + years, today.month)


def fingerprint(number: str, secret: str) -> str:
    """Keyed hash of the number: equal for the same card in any account, useless without the key."""
    return hmac.new(secret.encode(), number.encode(), hashlib.sha256).hexdigest()[:32]
