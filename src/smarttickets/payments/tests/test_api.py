"""POST /api/payments/orders/{code}/checkout with a bearer token."""

import pytest

from smarttickets.accounts.api_auth import create_api_token
from smarttickets.core import clock
from smarttickets.payments.models import Payment, SandboxSession
from smarttickets.payments.tests.factories import buyer, pending_order

pytestmark = [pytest.mark.django_db]


def auth(user) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_api_token(user=user, name='app')[1]}"}


def test_checkout_returns_the_provider_page_and_reuses_it(client):
    order = pending_order()
    headers = auth(order.buyer)
    url = f"/api/payments/orders/{order.code}/checkout"

    first = client.post(url, headers=headers)
    second = client.post(url, headers=headers)

    session = SandboxSession.objects.get()
    assert first.status_code == 200
    assert first.json() == {
        "order": order.code, "provider": "sandbox",
        "redirect_url": f"http://testserver/pay/sandbox/checkout/{session.public_id}",
        "expires_at": order.expires_at.isoformat()}
    assert second.json() == first.json()
    assert Payment.objects.count() == 1


def test_checkout_with_an_idempotency_key_replays_the_first_answer(client):
    order = pending_order()
    headers = {**auth(order.buyer), "Idempotency-Key": "pay-1"}
    url = f"/api/payments/orders/{order.code}/checkout"

    first = client.post(url, headers=headers)
    again = client.post(url, headers=headers)

    assert again.status_code == 200 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert SandboxSession.objects.count() == 1


def test_checkout_errors_are_json_with_a_code(client):
    order = pending_order()
    url = f"/api/payments/orders/{order.code}/checkout"

    anonymous = client.post(url)
    not_yours = client.post(url, headers=auth(buyer()))
    with clock.frozen(order.expires_at):
        expired = client.post(url, headers=auth(order.buyer))

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthorized")
    assert (not_yours.status_code, not_yours.json()["code"]) == (404, "not_found")
    assert (expired.status_code, expired.json()["code"]) == (409, "order_expired")
    assert Payment.objects.count() == 0
