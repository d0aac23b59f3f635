"""Phone numbers to E.164 with ``phonenumbers`` (no Django here: a plain kernel)."""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

DEFAULT_REGION = "HK"
# Numbers that can take an SMS. Some regions (e.g. the US) do not tell mobiles from landlines.
SMS_CAPABLE = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


class PhoneNumberError(ValueError):
    """``reason`` is ``unparsable``, ``invalid`` or ``not_mobile``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """Return ``raw`` in E.164 (``+85291234567``); local numbers are read in ``region``."""
    text = (raw or "").strip()
    if not text or len(text) > 32:
        raise PhoneNumberError("unparsable")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneNumberError("unparsable") from exc
    if not phonenumbers.is_valid_number(number):
        raise PhoneNumberError("invalid")
    if phonenumbers.number_type(number) not in SMS_CAPABLE:
        raise PhoneNumberError("not_mobile")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(e164: str) -> str:
    """``+852 9123 4567``: the international format people read."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def mask_phone(e164: str) -> str:
    """``+852 •••• 4567``: enough to recognise one's own number, not to read someone else's."""
    shown = display_phone(e164)
    if len(e164) < 8:
        return shown
    head, _sep, _rest = shown.partition(" ")
    return f"{head} •••• {e164[-4:]}"
