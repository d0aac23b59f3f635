"""Log in, lockout after repeated failures (django-axes), password reset and change."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.core.models import AuditEntry

pytestmark = pytest.mark.django_db


def login(client, email, password, ip="203.0.113.9"):
    return client.post(reverse("accounts:login"), {"username": email, "password": password},
                       REMOTE_ADDR=ip)


def test_wrong_password_shows_a_form_error(client):
    UserFactory(email="fan@example.com")

    response = login(client, "fan@example.com", "not-it")

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "That email address and password do not match an account."]
    assert "_auth_user_id" not in client.session


def test_lockout_after_five_failures_even_with_the_right_password(client):
    # given five failed attempts for one address from one network
    UserFactory(email="fan@example.com")
    for _ in range(4):
        assert login(client, "fan@example.com", "guess").status_code == 200
    response = login(client, "fan@example.com", "guess")

    # then the fifth is answered with the lockout page
    assert response.status_code == 429
    assert "accounts/lockout.html" in [t.name for t in response.templates]
    assert "Too many attempts" in response.content.decode()
    assert "30 minutes" in response.content.decode()

    # and even the right password is refused from there
    response = login(client, "fan@example.com", "correct-horse-battery")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session

    # while the same account from another network can still log in
    response = login(client, "fan@example.com", "correct-horse-battery", ip="198.51.100.7")
    assert response.status_code == 302


def test_successful_login_resets_the_failure_count(client):
    UserFactory(email="fan@example.com")
    for _ in range(4):
        login(client, "fan@example.com", "guess")
    assert login(client, "fan@example.com", "correct-horse-battery").status_code == 302
    client.post(reverse("accounts:logout"))

    for _ in range(4):
        response = login(client, "fan@example.com", "guess")
    assert response.status_code == 200


def test_password_reset_by_email(client, django_capture_on_commit_callbacks, settings):
    settings.SITE_URL = "https://tickets.example.com"
    user = UserFactory(email="fan@example.com", email_verified_at=None)

    # when the user asks for a reset
    response = client.post(reverse("accounts:password_reset"), {"email": "FAN@example.com"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["fan@example.com"]
    assert message.subject == "Reset your SmartTickets password"
    link = re.search(r"https://tickets\.example\.com(/accounts/password/reset/\S+/)",
                     message.body).group(1)

    # and follows the link and sets a new password
    response = client.get(link, follow=True)
    form_url = response.redirect_chain[-1][0]
    response = client.post(form_url, {"new_password1": "brand-new-passphrase-42",
                                       "new_password2": "brand-new-passphrase-42"})

    # then the new password works, the old one does not, and the mailbox counts as verified
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_complete")
    user.refresh_from_db()
    assert user.check_password("brand-new-passphrase-42")
    assert not user.check_password("correct-horse-battery")
    assert user.email_verified_at is not None
    assert AuditEntry.objects.filter(action="accounts.password.reset").count() == 1

    # and the link cannot be used twice
    response = client.get(link, follow=True)
    assert response.context["validlink"] is False


def test_password_reset_for_an_unknown_address_sends_nothing_but_looks_the_same(client):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert mail.outbox == []


def test_password_change_keeps_the_session_and_is_audited(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(reverse("accounts:password_change"), {
        "old_password": "correct-horse-battery",
        "new_password1": "another-long-passphrase", "new_password2": "another-long-passphrase"})

    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("another-long-passphrase")
    assert client.get(reverse("accounts:profile")).status_code == 200
    assert AuditEntry.objects.filter(action="accounts.password.change",
                                     object_id=str(user.pk)).count() == 1


def test_password_change_refuses_a_weak_password(client):
    user = UserFactory()
    client.force_login(user)

    response = client.post(reverse("accounts:password_change"), {
        "old_password": "correct-horse-battery",
        "new_password1": "12345678901", "new_password2": "12345678901"})

    assert response.status_code == 200
    assert response.context["form"].errors["new_password2"]
    user.refresh_from_db()
    assert user.check_password("correct-horse-battery")
    assert not AuditEntry.objects.filter(action="accounts.password.change").exists()
