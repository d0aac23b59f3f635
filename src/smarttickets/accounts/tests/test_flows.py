"""The whole journey over HTTP: sign up, verify email, log in, add and verify a phone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from smarttickets.accounts.models import PhoneVerification, User
from smarttickets.accounts.tests.conftest import T0, code_from, link_from
from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.core.models import AuditEntry

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-and-unusual-passphrase"


def register(client, on_commit, **overrides):
    data = {"email": "Mei.Chan@Example.com", "password": PASSWORD, "legal_name": "",
            "accept_terms": "on", **overrides}
    with on_commit():
        return client.post(reverse("accounts:register"), data)


def test_register_verify_login_add_and_verify_phone(client, on_commit, sms_outbox, frozen_clock):
    # given a visitor who signs up with a mixed-case address
    response = register(client, on_commit)
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:register_done")
    user = User.objects.get()
    assert user.email == "mei.chan@example.com"
    assert user.email_verified_at is None
    assert user.preferred_language == "en"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["mei.chan@example.com"]
    assert mail.outbox[0].alternatives[0][1] == "text/html"

    # when they open the link from the email and confirm
    link = link_from(mail.outbox[0], "/accounts/verify-email/")
    assert client.get(link).status_code == 200
    response = client.post(link)

    # then the address is verified and they are sent to log in
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login")
    user.refresh_from_db()
    assert user.email_verified_at == T0

    # when they log in with the address typed differently
    response = client.post(reverse("accounts:login"),
                           {"username": "MEI.CHAN@example.com", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("accounts:profile")).status_code == 200

    # and add a Hong Kong mobile number written the local way
    with on_commit():
        response = client.post(reverse("accounts:phone_verify"),
                               {"action": "send", "phone": "9123 4567"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.phone == "+85291234567"
    assert user.phone_verified_at is None
    assert [m.to for m in sms_outbox] == ["+85291234567"]

    # and type in the code from the text message
    frozen_clock.at(T0 + timedelta(minutes=3))
    response = client.post(reverse("accounts:phone_verify"),
                           {"action": "verify", "code": code_from(sms_outbox[0])})

    # then the phone is verified and, with a legal name added, so is the identity
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.phone_verified_at == T0 + timedelta(minutes=3)
    assert not user.identity_verified
    response = client.post(reverse("accounts:profile"),
                           {"legal_name": "  Chan   Tai Man ", "preferred_language": "en"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.legal_name == "Chan Tai Man"
    assert user.identity_verified
    page = client.get(reverse("accounts:profile")).content.decode()
    assert "Identity verified." in page
    actions = list(AuditEntry.objects.filter(object_id=str(user.pk))
                   .order_by("created_at", "id").values_list("action", flat=True))
    assert actions == ["accounts.user.registered", "accounts.email.verified",
                       "accounts.phone.changed", "accounts.phone.code_sent",
                       "accounts.phone.verified", "accounts.profile.updated"]


def test_register_in_traditional_chinese_sets_language_and_mails_in_chinese(client, on_commit):
    # given the visitor browses in Traditional Chinese
    client.cookies["django_language"] = "zh-hant"

    # when they sign up
    response = register(client, on_commit)

    # then the account remembers the language and the email is in Chinese
    assert response.status_code == 302
    assert User.objects.get().preferred_language == "zh-hant"
    assert "驗證" in mail.outbox[0].subject
    assert "驗證" in mail.outbox[0].alternatives[0][0]


def test_register_with_a_taken_address_looks_the_same_and_mails_the_owner(client, on_commit):
    # given an existing account
    owner = UserFactory(email="mei.chan@example.com")

    # when someone signs up with the same address
    response = register(client, on_commit)

    # then they see the same "check your inbox" step, no account is made, and the owner is told
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:register_done")
    assert list(User.objects.values_list("pk", flat=True)) == [owner.pk]
    assert owner.check_password("correct-horse-battery")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == "You already have a SmartTickets account"
    assert "/accounts/verify-email/" not in mail.outbox[0].body


@pytest.mark.parametrize(("overrides", "field"), [
    ({"password": "password123"}, "password"),
    ({"password": "mei.chan@example.com"}, "password"),
    ({"accept_terms": ""}, "accept_terms"),
    ({"email": "not-an-address"}, "email"),
    ({"legal_name": "R2D2"}, "legal_name"),
])
def test_register_rejects_bad_input_without_creating_anything(client, on_commit, overrides,
                                                              field):
    response = register(client, on_commit, **overrides)

    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert not User.objects.exists()
    assert mail.outbox == []


def test_logout_needs_post_and_ends_the_session(client):
    user = UserFactory()
    client.force_login(user)

    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))

    assert response.status_code == 302
    assert client.get(reverse("accounts:profile")).status_code == 302


def test_account_pages_send_anonymous_visitors_to_log_in(client):
    for name in ("profile", "phone_verify", "email_change", "password_change", "api_tokens"):
        response = client.get(reverse(f"accounts:{name}"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login") + "?next=")


def test_verification_codes_are_not_stored_in_plain(client, on_commit, sms_outbox):
    user = UserFactory(phone="")
    client.force_login(user)
    with on_commit():
        client.post(reverse("accounts:phone_verify"), {"action": "send", "phone": "61234567"})

    challenge = PhoneVerification.objects.get()
    code = code_from(sms_outbox[0])
    assert code not in challenge.code_hash
    assert len(challenge.code_hash) == 64
    entry = AuditEntry.objects.get(action="accounts.phone.code_sent")
    assert code not in str(entry.data)
