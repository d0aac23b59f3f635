"""Phone verification: codes, attempts, expiry, throttling and re-verification on change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from smarttickets.accounts import services
from smarttickets.accounts.exceptions import (
    AlreadyVerified,
    CodeExpired,
    CodeInvalid,
    NoActiveCode,
    PhoneTaken,
    Throttled,
    TooManyAttempts,
)
from smarttickets.accounts.models import PhoneVerification
from smarttickets.accounts.tests.conftest import T0, code_from
from smarttickets.accounts.tests.factories import PhoneVerificationFactory, UserFactory
from smarttickets.core.exceptions import InvalidInput

pytestmark = pytest.mark.django_db


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def send(user, phone, now, on_commit):
    with on_commit():
        return services.start_phone_verification(user=user, phone=phone, now=now)


def test_wrong_codes_exhaust_the_challenge_and_each_attempt_is_kept(client, on_commit,
                                                                     sms_outbox, frozen_clock):
    # given a user waiting for a code
    user = UserFactory(phone="")
    client.force_login(user)
    with on_commit():
        client.post(reverse("accounts:phone_verify"), {"action": "send", "phone": "91234567"})
    code = code_from(sms_outbox[0])

    # when they type a wrong code five times
    for attempt in range(1, 6):
        response = client.post(reverse("accounts:phone_verify"),
                               {"action": "verify", "code": wrong(code)})
        assert response.status_code == 400
        assert PhoneVerification.objects.get().attempts == attempt
    assert "Too many wrong codes" in response.content.decode()

    # then even the right code no longer works, and nothing was verified
    response = client.post(reverse("accounts:phone_verify"), {"action": "verify", "code": code})
    assert response.status_code == 400
    assert PhoneVerification.objects.get().attempts == 5
    user.refresh_from_db()
    assert user.phone_verified_at is None


def test_wrong_code_says_how_many_tries_are_left(client, on_commit, sms_outbox, frozen_clock):
    user = UserFactory(phone="")
    client.force_login(user)
    with on_commit():
        client.post(reverse("accounts:phone_verify"), {"action": "send", "phone": "91234567"})

    response = client.post(reverse("accounts:phone_verify"),
                           {"action": "verify", "code": wrong(code_from(sms_outbox[0]))})

    assert response.context["code_form"].errors["code"] == [
        "That code is not right. You have 4 more tries."]


def test_code_expires_after_ten_minutes(on_commit, sms_outbox):
    user = UserFactory(phone="")
    send(user, "91234567", T0, on_commit)

    with pytest.raises(CodeExpired):
        services.verify_phone(user=user, code=code_from(sms_outbox[0]),
                              now=T0 + timedelta(minutes=10))

    user.refresh_from_db()
    assert user.phone_verified_at is None
    assert PhoneVerification.objects.get().attempts == 0


def test_a_new_code_replaces_the_previous_one(on_commit, sms_outbox):
    user = UserFactory(phone="")
    send(user, "91234567", T0, on_commit)
    send(user, "91234567", T0 + timedelta(seconds=61), on_commit)
    first, second = (code_from(m) for m in sms_outbox)
    if first == second:  # one in a million: the old code would still match the new challenge
        pytest.skip("the two random codes collided")

    with pytest.raises(CodeInvalid):
        services.verify_phone(user=user, code=first, now=T0 + timedelta(minutes=2))
    services.verify_phone(user=user, code=second, now=T0 + timedelta(minutes=2))

    user.refresh_from_db()
    assert user.phone_verified_at == T0 + timedelta(minutes=2)


def test_resend_is_throttled_per_minute_and_per_hour_for_the_user(on_commit, sms_outbox):
    user = UserFactory(phone="")
    send(user, "91234567", T0, on_commit)

    with pytest.raises(Throttled) as excinfo:
        send(user, "91234567", T0 + timedelta(seconds=30), on_commit)
    assert excinfo.value.retry_after == 31

    for minute in (1, 2, 3, 4):
        send(user, "91234567", T0 + timedelta(minutes=minute, seconds=1), on_commit)
    with pytest.raises(Throttled) as excinfo:
        send(user, "91234567", T0 + timedelta(minutes=10), on_commit)
    assert excinfo.value.retry_after == 50 * 60 + 1
    assert len(sms_outbox) == 5
    assert PhoneVerification.objects.count() == 5

    send(user, "91234567", T0 + timedelta(hours=1, seconds=1), on_commit)
    assert len(sms_outbox) == 6


def test_throttle_applies_to_a_number_across_accounts(on_commit, sms_outbox):
    # given a number that already got five codes this hour, through other accounts
    for minute in range(5):
        PhoneVerificationFactory(phone="+85291234567", created_at=T0 + timedelta(minutes=minute))
    user = UserFactory(phone="")

    # when a fresh account asks for a code to that number
    with pytest.raises(Throttled):
        send(user, "+852 9123 4567", T0 + timedelta(minutes=30), on_commit)

    # then no code is sent and the account is unchanged
    assert sms_outbox == []
    user.refresh_from_db()
    assert user.phone == ""


def test_throttled_resend_over_http_shows_a_message_and_sends_nothing(client, on_commit,
                                                                       sms_outbox, frozen_clock):
    user = UserFactory(phone="")
    client.force_login(user)
    with on_commit():
        client.post(reverse("accounts:phone_verify"), {"action": "send", "phone": "91234567"})

    frozen_clock.at(T0 + timedelta(seconds=20))
    with on_commit():
        response = client.post(reverse("accounts:phone_verify"), {"action": "resend"},
                               follow=True)

    assert [str(m) for m in response.context["messages"]][-1] == (
        "Please wait 41 seconds before asking again.")
    assert len(sms_outbox) == 1


def test_changing_a_verified_number_unverifies_it(on_commit, sms_outbox):
    user = UserFactory(verified=True)
    assert user.phone_verified

    send(user, "+44 7911 123456", T0, on_commit)

    user.refresh_from_db()
    assert user.phone == "+447911123456"
    assert user.phone_verified_at is None
    assert not user.identity_verified
    assert [m.to for m in sms_outbox] == ["+447911123456"]


def test_asking_again_for_the_verified_number_changes_nothing(on_commit, sms_outbox):
    user = UserFactory(verified=True)

    with pytest.raises(AlreadyVerified):
        send(user, user.phone, T0, on_commit)

    user.refresh_from_db()
    assert user.phone_verified_at is not None
    assert sms_outbox == []


def test_a_number_verified_on_another_account_is_refused(on_commit, sms_outbox):
    other = UserFactory(verified=True)
    user = UserFactory(phone="")

    with pytest.raises(PhoneTaken):
        send(user, other.phone, T0, on_commit)

    user.refresh_from_db()
    assert user.phone == ""
    assert sms_outbox == []


@pytest.mark.parametrize(("raw", "message"), [
    ("2123 4567", "This looks like a landline."),
    ("12345", "Enter a valid mobile number"),
    ("call me", "Enter a valid mobile number"),
])
def test_bad_numbers_are_refused_with_a_reason(client, on_commit, sms_outbox, raw, message):
    user = UserFactory(phone="")
    client.force_login(user)

    with on_commit():
        response = client.post(reverse("accounts:phone_verify"), {"action": "send", "phone": raw})

    assert response.status_code == 400
    assert response.context["phone_form"].errors["phone"][0].startswith(message)
    user.refresh_from_db()
    assert user.phone == ""
    assert sms_outbox == []


def test_verifying_without_a_code_sent_is_refused():
    user = UserFactory(phone="+85291234567")

    with pytest.raises(NoActiveCode):
        services.verify_phone(user=user, code="123456", now=T0)


def test_too_many_attempts_error_is_kept_after_the_fifth(on_commit, sms_outbox):
    user = UserFactory(phone="")
    send(user, "91234567", T0, on_commit)
    bad = wrong(code_from(sms_outbox[0]))
    for _ in range(4):
        with pytest.raises(CodeInvalid):
            services.verify_phone(user=user, code=bad, now=T0)

    with pytest.raises(TooManyAttempts):
        services.verify_phone(user=user, code=bad, now=T0)
    with pytest.raises(TooManyAttempts):
        services.verify_phone(user=user, code=code_from(sms_outbox[0]), now=T0)


def test_invalid_phone_input_is_an_invalid_input_error():
    user = UserFactory(phone="")
    with pytest.raises(InvalidInput) as excinfo:
        services.start_phone_verification(user=user, phone="+852 2123 4567", now=T0)
    assert excinfo.value.code == "invalid"
    assert list(excinfo.value.fields) == ["phone"]


def test_the_database_refuses_one_verified_number_on_two_accounts():
    first = UserFactory(verified=True)
    second = UserFactory(phone=first.phone)  # unverified: allowed

    second.phone_verified_at = T0
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save(update_fields=["phone_verified_at"])
