"""The admin pages for users, tokens and phone codes render, and staff edits are audited."""

from __future__ import annotations

import pytest

from smarttickets.accounts.api_auth import create_api_token
from smarttickets.accounts.axes import lockout_username
from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.core.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_admin_pages_render_without_showing_token_secrets(admin_client):
    fan = UserFactory(verified=True)
    token, key = create_api_token(user=fan, name="script")

    for url in ("/admin/accounts/user/", "/admin/accounts/user/add/",
                f"/admin/accounts/user/{fan.pk}/change/", "/admin/accounts/apitoken/",
                f"/admin/accounts/apitoken/{token.pk}/change/",
                "/admin/accounts/phoneverification/"):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert token.key_hash not in response.content.decode()
        assert key not in response.content.decode()


def test_admin_creates_users_by_email_and_audits_it(admin_client):
    response = admin_client.post("/admin/accounts/user/add/", {
        "email": "Staff.Made@Example.com", "usable_password": "true",
        "password1": "a-long-and-unusual-passphrase",
        "password2": "a-long-and-unusual-passphrase"})

    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="accounts.user.admin_created")
    assert entry.data["fields"]["email"] == "staff.made@example.com"
    assert "password1" not in entry.data["fields"]


def test_admin_revoke_action_uses_the_service(admin_client):
    fan = UserFactory()
    token, _key = create_api_token(user=fan, name="script")

    admin_client.post("/admin/accounts/apitoken/", {
        "action": "revoke", "_selected_action": [token.pk]})

    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEntry.objects.filter(action="accounts.api_token.revoked").count() == 1


def test_axes_username_is_case_insensitive(rf):
    request = rf.post("/accounts/login/", {"username": " Fan@Example.COM "})

    assert lockout_username(request, None) == "fan@example.com"
    assert lockout_username(request, {"username": "Other@Example.com"}) == "other@example.com"
