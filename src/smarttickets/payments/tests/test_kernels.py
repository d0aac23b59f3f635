"""Pure kernels: card rules and webhook signatures, no database."""

from datetime import date

import pytest

from smarttickets.payments.providers import cards, signing


@pytest.mark.parametrize("number", ["4242424242424242", "4000000000000002",
                                    "4000000000009995", "4000000000003220",
                                    "5555555555554444", "378282246310005"])
def test_test_cards_pass_luhn(number):
    assert cards.luhn_valid(number)


@pytest.mark.parametrize("number", ["4242424242424241", "1234", "", "42424242424242424242",
                                    "abcd"])
def test_bad_numbers_fail_luhn(number):
    assert not cards.luhn_valid(number)


def test_digits_strips_spaces_and_dashes_but_refuses_other_characters():
    assert cards.digits(" 4242 4242-4242 4242 ") == "4242424242424242"
    assert cards.digits("4242 4242 4242 424x") == ""
    assert cards.digits("４２４２４２４２４２４２４２４２") == ""  # full-width digits


@pytest.mark.parametrize(("number", "brand"), [("4242424242424242", "visa"),
                                               ("5555555555554444", "mastercard"),
                                               ("2223003122003222", "mastercard"),
                                               ("378282246310005", "amex"),
                                               ("6200000000000005", "unionpay"),
                                               ("3566002020360505", "jcb"),
                                               ("9999999999999995", "unknown")])
def test_brand(number, brand):
    assert cards.brand(number) == brand


def test_behaviour_of_test_cards():
    assert cards.behaviour("4242424242424242") == cards.CardBehaviour(cards.Outcome.SUCCEED)
    assert cards.behaviour("4000000000000002").decline_code == "generic_decline"
    assert cards.behaviour("4000000000009995").decline_code == "insufficient_funds"
    assert cards.behaviour("4000000000003220").outcome == cards.Outcome.CHALLENGE
    assert cards.behaviour("5555555555554444").outcome == cards.Outcome.SUCCEED


@pytest.mark.parametrize(("raw", "parsed"), [("12/34", (12, 2034)), ("1 / 30", (1, 2030)),
                                             ("07/2031", (7, 2031))])
def test_parse_expiry(raw, parsed):
    assert cards.parse_expiry(raw) == parsed


@pytest.mark.parametrize("raw", ["13/30", "00/30", "1230", "", "ab/cd", "12/3"])
def test_parse_expiry_refuses_nonsense(raw):
    with pytest.raises(ValueError):
        cards.parse_expiry(raw)


def test_a_card_is_valid_through_its_expiry_month():
    today = date(2026, 3, 15)
    assert not cards.expiry_in_past(3, 2026, today)
    assert cards.expiry_in_past(2, 2026, today)
    assert cards.expiry_too_far(4, 2046, today)
    assert not cards.expiry_too_far(3, 2046, today)


def test_fingerprint_is_stable_per_card_and_keyed():
    a = cards.fingerprint("4242424242424242", "k1")
    assert a == cards.fingerprint("4242424242424242", "k1")
    assert a != cards.fingerprint("4000000000000002", "k1")
    assert a != cards.fingerprint("4242424242424242", "k2")
    assert len(a) == 32


def test_signature_round_trip():
    body = b'{"id":"evt_1"}'
    header = signing.sign(body, "secret", 1_700_000_000)

    assert header == f"t=1700000000,v1={signing.compute(body, 'secret', 1_700_000_000)}"
    assert signing.verify(body, header, "secret", now=1_700_000_100, tolerance=300) == \
        1_700_000_000


@pytest.mark.parametrize(("body", "header_secret", "now", "code"), [
    (b'{"id":"evt_2"}', "secret", 1_700_000_000, "invalid_signature"),   # body changed
    (b'{"id":"evt_1"}', "other", 1_700_000_000, "invalid_signature"),    # wrong secret
    (b'{"id":"evt_1"}', "secret", 1_700_000_301, "stale_timestamp"),     # too old
    (b'{"id":"evt_1"}', "secret", 1_699_999_699, "stale_timestamp"),     # from the future
])
def test_signature_failures(body, header_secret, now, code):
    header = signing.sign(b'{"id":"evt_1"}', header_secret, 1_700_000_000)

    with pytest.raises(signing.SignatureError) as exc:
        signing.verify(body, header, "secret", now=now, tolerance=300)

    assert exc.value.code == code


@pytest.mark.parametrize(("header", "code"), [(None, "missing_signature"),
                                              ("", "missing_signature"),
                                              ("garbage", "invalid_signature"),
                                              ("t=abc,v1=00", "invalid_signature"),
                                              ("t=1700000000", "invalid_signature")])
def test_malformed_signature_headers(header, code):
    with pytest.raises(signing.SignatureError) as exc:
        signing.verify(b"{}", header, "secret", now=1_700_000_000, tolerance=300)
    assert exc.value.code == code


def test_any_of_several_signatures_may_match_during_secret_rotation():
    body = b"{}"
    old = signing.sign(body, "old", 1_700_000_000)
    new = signing.compute(body, "new", 1_700_000_000)

    assert signing.verify(body, f"{old},v1={new}", "new", now=1_700_000_000, tolerance=300)
