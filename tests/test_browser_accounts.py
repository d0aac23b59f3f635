"""Real browser: sign up through the form, open the emailed link, log in."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from conftest import save_screenshot
from smarttickets.accounts.models import User

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_register_verify_and_log_in(page, live_server, settings):
    settings.SITE_URL = live_server.url
    password = "a-long-and-unusual-passphrase"

    # given a visitor on the sign-up page
    page.goto(f"{live_server.url}/accounts/register/")
    page.get_by_label("Email address").fill("browser.fan@example.com")
    page.get_by_label("Password").fill(password)
    page.get_by_label("Legal name (optional)").fill("Chan Tai Man")
    page.get_by_label("I accept the terms").check()

    # when they create the account
    page.get_by_role("button", name="Create account").click()

    # then they are asked to check their inbox and a verification email is sent
    page.get_by_role("heading", name="Check your inbox").wait_for()
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/accounts/verify-email/\S+/", mail.outbox[0].body).group(0)

    # when they open the link and confirm
    page.goto(link)
    page.get_by_role("button", name="Verify my email address").click()

    # then they land on the login page with a confirmation
    page.get_by_text("your email address is verified").wait_for()
    assert User.objects.get(email="browser.fan@example.com").email_verified_at is not None

    # and can log in and see their verification state
    page.get_by_label("Email address").fill("browser.fan@example.com")
    page.get_by_label("Password").fill(password)
    page.locator("main").get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/accounts/")
    page.get_by_role("heading", name="Verification").wait_for()
    assert page.locator(".checklist li.done").count() == 2
    assert page.locator(".checklist li.todo").count() == 1
    save_screenshot(page, "register")
