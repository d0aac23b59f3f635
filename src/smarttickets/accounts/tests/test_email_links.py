"""Email verification and email change links: tampered, expired, used, stale."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse

from smarttickets.accounts import services, tokens
from smarttickets.accounts.models import User
from smarttickets.accounts.tests.conftest import T0, link_from
from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.core.models import AuditEntry

pytestmark = pytest.mark.django_db


def verification_link(user, now=T0) -> str:
    token = tokens.make_token(salt=tokens.EMAIL_VERIFICATION_SALT, user_id=user.pk,
                              data={"e": user.email}, now=now)
    return reverse("accounts:verify_email", kwargs={"token": token})


def test_tampered_verification_link_is_refused(client, frozen_clock):
    user = UserFactory(email_verified_at=None)
    link = verification_link(user)
    tampered = link[:-3] + ("aaa" if not link.endswith("aaa/") else "bbb") + "/"

    response = client.post(tampered)

    assert response.status_code == 400
    assert "not valid" in response.content.decode()
    user.refresh_from_db()
    assert user.email_verified_at is None


def test_link_signed_for_another_purpose_is_refused(client, frozen_clock):
    user = UserFactory(email_verified_at=None)
    token = tokens.make_token(salt=tokens.EMAIL_CHANGE_SALT, user_id=user.pk,
                              data={"e": user.email}, now=T0)

    response = client.post(reverse("accounts:verify_email", kwargs={"token": token}))

    assert response.status_code == 400
    user.refresh_from_db()
    assert user.email_verified_at is None


def test_verification_link_expires_after_three_days(client, frozen_clock):
    user = UserFactory(email_verified_at=None)
    link = verification_link(user)

    frozen_clock.at(T0 + timedelta(days=3, seconds=1))
    response = client.post(link)

    assert response.status_code == 400
    assert "expired" in response.content.decode()
    user.refresh_from_db()
    assert user.email_verified_at is None


def test_verification_link_works_until_its_last_day(client, frozen_clock):
    user = UserFactory(email_verified_at=None)
    link = verification_link(user)

    frozen_clock.at(T0 + timedelta(days=3))
    response = client.post(link)

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.email_verified_at == T0 + timedelta(days=3)


def test_used_verification_link_cannot_verify_again(client, frozen_clock):
    user = UserFactory(email_verified_at=None)
    link = verification_link(user)
    client.post(link)

    frozen_clock.at(T0 + timedelta(hours=1))
    response = client.post(link, follow=True)

    assert "already been used" in response.content.decode()
    user.refresh_from_db()
    assert user.email_verified_at == T0
    assert AuditEntry.objects.filter(action="accounts.email.verified").count() == 1


def test_verification_link_for_a_previous_address_is_refused(client, frozen_clock):
    user = UserFactory(email="old@example.com", email_verified_at=None)
    link = verification_link(user)
    User.objects.filter(pk=user.pk).update(email="new@example.com")

    response = client.post(link)

    assert response.status_code == 400
    user.refresh_from_db()
    assert user.email_verified_at is None


def test_opening_a_link_changes_nothing_until_confirmed(client, frozen_clock):
    # Mail scanners fetch links: GET must not verify.
    user = UserFactory(email_verified_at=None)

    response = client.get(verification_link(user))

    assert response.status_code == 200
    assert user.email in response.content.decode()
    user.refresh_from_db()
    assert user.email_verified_at is None


def test_resend_is_throttled_to_once_a_minute(client, on_commit, frozen_clock):
    user = UserFactory(email_verified_at=None, email_verification_sent_at=T0)
    client.force_login(user)

    with on_commit():
        client.post(reverse("accounts:resend_verification"))
    assert mail.outbox == []

    frozen_clock.at(T0 + timedelta(seconds=61))
    with on_commit():
        client.post(reverse("accounts:resend_verification"))
    assert len(mail.outbox) == 1
    user.refresh_from_db()
    assert user.email_verification_sent_at == T0 + timedelta(seconds=61)


def test_logged_out_resend_does_not_reveal_accounts(client, on_commit, frozen_clock):
    UserFactory(email="waiting@example.com", email_verified_at=None)
    UserFactory(email="done@example.com", email_verified_at=T0)

    pages = []
    for address in ("waiting@example.com", "done@example.com", "nobody@example.com"):
        with on_commit():
            response = client.post(reverse("accounts:resend_verification"),
                                   {"email": address}, follow=True)
        notes = [str(m).replace(address, "ADDRESS") for m in response.context["messages"]]
        pages.append((response.status_code, response.redirect_chain, notes))

    assert pages[0] == pages[1] == pages[2]
    assert [m.to for m in mail.outbox] == [["waiting@example.com"]]


# --- change of email address ---------------------------------------------------------------

def test_email_change_takes_effect_only_after_the_new_address_confirms(client, on_commit,
                                                                        frozen_clock):
    # given a verified user
    user = UserFactory(email="old@example.com", email_verified_at=T0 - timedelta(days=9),
                       preferred_language="zh-hant")
    client.force_login(user)

    # when they ask to move to a new address
    with on_commit():
        response = client.post(reverse("accounts:email_change"),
                               {"email": "New@Example.com", "password": "correct-horse-battery"})

    # then nothing changes yet; a link goes to the new address only
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.email, user.pending_email) == ("old@example.com", "new@example.com")
    assert [m.to for m in mail.outbox] == [["new@example.com"]]
    link = link_from(mail.outbox[0], "/accounts/email/confirm/")

    # when the link is followed
    frozen_clock.at(T0 + timedelta(hours=2))
    with on_commit():
        response = client.post(link)

    # then the address changes, counts as verified, and the old address is notified
    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.email, user.pending_email) == ("new@example.com", "")
    assert user.email_verified_at == T0 + timedelta(hours=2)
    assert [m.to for m in mail.outbox] == [["new@example.com"], ["old@example.com"]]
    assert "new@example.com" in mail.outbox[1].body
    entry = AuditEntry.objects.get(action="accounts.email.changed")
    assert entry.data == {"old": "old@example.com", "new": "new@example.com"}

    # and the same link cannot be used twice
    response = client.post(link)
    assert response.status_code == 400


def test_email_change_needs_the_current_password(client, on_commit):
    user = UserFactory(email="old@example.com")
    client.force_login(user)

    with on_commit():
        response = client.post(reverse("accounts:email_change"),
                               {"email": "new@example.com", "password": "wrong-password"})

    assert response.status_code == 200
    assert response.context["form"].errors["password"]
    user.refresh_from_db()
    assert user.pending_email == ""
    assert mail.outbox == []


def test_email_change_to_an_address_in_use_is_refused(client, on_commit):
    UserFactory(email="taken@example.com")
    user = UserFactory(email="old@example.com")
    client.force_login(user)

    with on_commit():
        response = client.post(reverse("accounts:email_change"),
                               {"email": "taken@example.com",
                                "password": "correct-horse-battery"})

    assert response.context["form"].errors["email"] == [
        "Another account uses that email address."]
    user.refresh_from_db()
    assert user.pending_email == ""
    assert mail.outbox == []


def test_cancelled_or_replaced_email_change_link_is_dead(client, on_commit, frozen_clock):
    user = UserFactory(email="old@example.com")
    client.force_login(user)
    with on_commit():
        services.request_email_change(user=user, new_email="first@example.com", now=T0)
    first_link = link_from(mail.outbox[0], "/accounts/email/confirm/")
    with on_commit():
        services.request_email_change(user=user, new_email="second@example.com",
                                      now=T0 + timedelta(minutes=5))

    response = client.post(first_link)

    assert response.status_code == 400
    user.refresh_from_db()
    assert (user.email, user.pending_email) == ("old@example.com", "second@example.com")

    client.post(reverse("accounts:email_change_cancel"))
    second_link = link_from(mail.outbox[1], "/accounts/email/confirm/")
    response = client.post(second_link)
    assert response.status_code == 400
    user.refresh_from_db()
    assert (user.email, user.pending_email) == ("old@example.com", "")


def test_email_change_link_is_refused_if_the_address_was_taken_meanwhile(client, on_commit,
                                                                          frozen_clock):
    user = UserFactory(email="old@example.com")
    with on_commit():
        services.request_email_change(user=user, new_email="new@example.com", now=T0)
    link = link_from(mail.outbox[0], "/accounts/email/confirm/")
    UserFactory(email="new@example.com")

    response = client.post(link)

    assert response.status_code == 400
    user.refresh_from_db()
    assert user.email == "old@example.com"
