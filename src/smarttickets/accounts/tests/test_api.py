"""GET /api/accounts/me and the API token page."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from smarttickets.accounts import services
from smarttickets.accounts.api_auth import create_api_token
from smarttickets.accounts.models import ApiToken
from smarttickets.accounts.tests.conftest import T0
from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.core.exceptions import Forbidden, NotFound
from smarttickets.core.models import AuditEntry
from smarttickets.events.models import Membership, Organizer

pytestmark = pytest.mark.django_db

ME = "/api/accounts/me"


def organizer_staff(**kwargs):
    user = UserFactory(**kwargs)
    organizer = Organizer.objects.create(name="Harbour Live", slug=f"harbour-{user.pk}")
    Membership.objects.create(organizer=organizer, user=user, can_manage_events=True)
    return user


def test_me_with_a_token(client):
    user = UserFactory(verified=True, email="fan@example.com", legal_name="Chan Tai Man",
                       phone="+85291234567")
    _token, key = create_api_token(user=user, name="script")

    response = client.get(ME, HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 200
    assert response.json() == {
        "id": user.pk, "email": "fan@example.com", "legal_name": "Chan Tai Man",
        "phone": "+852 •••• 4567", "preferred_language": "en", "pending_email": "",
        "verification": {"email": True, "phone": True, "legal_name": True, "identity": True},
        "organizer_staff": False, "gate_staff": False,
    }


def test_me_with_a_session_shows_unverified_state(client):
    user = UserFactory(email="new@example.com", legal_name="", is_gate_staff=True)
    client.force_login(user)

    response = client.get(ME)

    assert response.status_code == 200
    body = response.json()
    assert body["verification"] == {"email": False, "phone": False, "legal_name": False,
                                    "identity": False}
    assert body["phone"] == ""
    assert body["gate_staff"] is True


@pytest.mark.parametrize("header", [None, "Bearer st_not-a-real-key", "Basic Zm9vOmJhcg=="])
def test_me_without_valid_credentials_is_401_json(client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}

    response = client.get(ME, **extra)

    assert response.status_code == 401
    assert response.json() == {"code": "unauthorized",
                               "message": "A valid API token is required."}


def test_me_with_a_revoked_token_is_401(client):
    user = organizer_staff()
    token, key = create_api_token(user=user, name="old")
    services.revoke_api_token(user=user, token_id=token.pk, now=T0)

    response = client.get(ME, HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 401


# --- the API token page --------------------------------------------------------------------

def test_organizer_staff_create_a_token_shown_once_and_it_works(client):
    user = organizer_staff()
    client.force_login(user)

    response = client.post(reverse("accounts:api_tokens"), {"name": "Box office sync"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = re.search(r'value="(st_[^"]+)"', response.content.decode()).group(1)
    token = ApiToken.objects.get()
    assert (token.user, token.name, token.prefix) == (user, "Box office sync", key[:10])
    assert token.key_hash == ApiToken.hash_key(key)
    assert key not in str(list(AuditEntry.objects.values_list("data", flat=True)))
    assert client.get(ME, HTTP_AUTHORIZATION=f"Bearer {key}").json()["organizer_staff"] is True

    # the key is never shown again
    listing = client.get(reverse("accounts:api_tokens")).content.decode()
    assert key not in listing
    assert "Box office sync" in listing
    assert token.prefix in listing


def test_revoking_a_token_from_the_page(client):
    user = organizer_staff()
    token, key = create_api_token(user=user, name="laptop")
    client.force_login(user)

    response = client.post(reverse("accounts:api_token_revoke", args=[token.pk]))

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    client.logout()
    assert client.get(ME, HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401
    assert AuditEntry.objects.filter(action="accounts.api_token.revoked").count() == 1


def test_someone_elses_token_cannot_be_revoked(client):
    owner = organizer_staff()
    token, _key = create_api_token(user=owner, name="theirs")
    intruder = organizer_staff()
    client.force_login(intruder)

    response = client.post(reverse("accounts:api_token_revoke", args=[token.pk]), follow=True)

    assert [str(m) for m in response.context["messages"]] == ["No such API token."]
    token.refresh_from_db()
    assert token.revoked_at is None
    with pytest.raises(NotFound):
        services.revoke_api_token(user=intruder, token_id=token.pk, now=T0)
    with pytest.raises(NotFound):
        services.revoke_api_token(user=intruder, token_id=987654, now=T0)


def test_fans_cannot_use_the_token_page(client):
    fan = UserFactory()
    client.force_login(fan)

    assert client.get(reverse("accounts:api_tokens")).status_code == 403
    response = client.post(reverse("accounts:api_tokens"), {"name": "sneaky"})

    assert response.status_code == 403
    assert not ApiToken.objects.exists()
    with pytest.raises(Forbidden):
        services.issue_api_token(user=fan, name="sneaky", now=T0)


def test_blank_token_name_is_refused(client):
    user = organizer_staff()
    client.force_login(user)

    response = client.post(reverse("accounts:api_tokens"), {"name": "   "})

    assert response.status_code == 400
    assert response.context["form"].errors["name"]
    assert not ApiToken.objects.exists()
