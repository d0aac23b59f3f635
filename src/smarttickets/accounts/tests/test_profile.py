"""Profile: legal name and language, with the audit trail and the lock once on tickets."""

from __future__ import annotations

import pytest
from django.urls import reverse

from smarttickets.accounts import services
from smarttickets.accounts.exceptions import LegalNameLocked
from smarttickets.accounts.tests.conftest import T0
from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.core.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_changing_the_legal_name_is_audited_with_old_and_new(client, frozen_clock):
    user = UserFactory(verified=True, legal_name="Chan Tai Man")
    client.force_login(user)

    response = client.post(reverse("accounts:profile"),
                           {"legal_name": "Chan Siu Ming", "preferred_language": "zh-hant"})

    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.legal_name, user.preferred_language) == ("Chan Siu Ming", "zh-hant")
    entry = AuditEntry.objects.get(action="accounts.profile.updated")
    assert entry.actor == user
    assert entry.created_at == T0
    assert entry.data == {
        "changes": {"legal_name": {"old": "Chan Tai Man", "new": "Chan Siu Ming"},
                    "preferred_language": {"old": "en", "new": "zh-hant"}},
        "identity_verified": True, "legal_name_locked": False}


def test_saving_unchanged_details_writes_nothing():
    user = UserFactory(legal_name="Chan Tai Man")

    services.update_profile(user=user, legal_name="Chan Tai Man", preferred_language="en",
                            actor=user, now=T0)

    assert not AuditEntry.objects.exists()


def test_a_name_on_tickets_cannot_be_changed_by_the_user(client):
    user = UserFactory(verified=True, legal_name="Chan Tai Man")
    services.lock_legal_name(user=user, now=T0, reason="order ABC123 paid")
    client.force_login(user)

    response = client.post(reverse("accounts:profile"),
                           {"legal_name": "Someone Else", "preferred_language": "en"})

    assert response.status_code == 200
    assert response.context["form"].errors["legal_name"][0].startswith(
        "Your legal name is printed on tickets")
    user.refresh_from_db()
    assert user.legal_name == "Chan Tai Man"
    assert not AuditEntry.objects.filter(action="accounts.profile.updated").exists()


def test_a_locked_name_can_still_change_language_and_staff_can_correct_the_name():
    user = UserFactory(legal_name="Chan Tai Man")
    services.lock_legal_name(user=user, now=T0, reason="order paid")
    services.lock_legal_name(user=user, now=T0, reason="second order")  # idempotent
    staff = UserFactory(is_staff=True)

    services.update_profile(user=user, legal_name="Chan Tai Man",
                            preferred_language="zh-hant", actor=user, now=T0)
    with pytest.raises(LegalNameLocked):
        services.update_profile(user=user, legal_name="Other Name",
                                preferred_language="zh-hant", actor=user, now=T0)
    services.update_profile(user=user, legal_name="Chan Tai-man", preferred_language="zh-hant",
                            actor=staff, now=T0)

    user.refresh_from_db()
    assert user.legal_name == "Chan Tai-man"
    assert AuditEntry.objects.filter(action="accounts.legal_name.locked").count() == 1
    assert AuditEntry.objects.filter(action="accounts.profile.updated").last().actor == user
    assert AuditEntry.objects.filter(action="accounts.profile.updated").first().actor == staff


@pytest.mark.parametrize("name", ["", "   ", "12345", "Agent 007", "x" * 201])
def test_bad_legal_names_are_refused(client, name):
    user = UserFactory(legal_name="Chan Tai Man")
    client.force_login(user)

    response = client.post(reverse("accounts:profile"),
                           {"legal_name": name, "preferred_language": "en"})

    assert response.status_code == 200
    assert response.context["form"].errors["legal_name"]
    user.refresh_from_db()
    assert user.legal_name == "Chan Tai Man"


def test_chinese_names_are_accepted():
    user = UserFactory(legal_name="")

    services.update_profile(user=user, legal_name="陳大文", preferred_language="zh-hant",
                            actor=user, now=T0)

    user.refresh_from_db()
    assert user.legal_name == "陳大文"


def test_profile_page_shows_what_is_missing(client):
    user = UserFactory(legal_name="", email_verified_at=T0)
    client.force_login(user)

    page = client.get(reverse("accounts:profile")).content.decode()

    assert "Not verified yet." in page
    assert "Identity verified." not in page
    assert page.count('class="badge badge-warning"') == 2
