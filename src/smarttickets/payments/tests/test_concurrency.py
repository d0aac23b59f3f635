"""Races on PostgreSQL: the same webhook twice at once, two checkout starts at once."""

import threading

import pytest
from django.db import close_old_connections, connection

from smarttickets.core import clock
from smarttickets.core.models import AuditEntry
from smarttickets.payments import services
from smarttickets.payments.models import Payment, SandboxEvent, SandboxSession, WebhookEvent
from smarttickets.payments.providers import sandbox
from smarttickets.payments.tests.factories import pending_order
from smarttickets.tickets.models import Ticket

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def race(n: int, work) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        close_old_connections()
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # recorded for the assertion, not swallowed
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_starts_open_one_session(settings):
    order = pending_order()

    urls = race(4, lambda i: services.start_checkout(order=order, return_url="http://t/r",
                                                     now=clock.now()))

    assert len(set(urls)) == 1 and not any(isinstance(u, Exception) for u in urls)
    assert Payment.objects.filter(order=order).count() == 1
    assert SandboxSession.objects.count() == 1


def test_the_same_webhook_delivered_twice_at_once_issues_tickets_once(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    order = pending_order(quantity=2)
    services.start_checkout(order=order, return_url="http://t/r", now=clock.now())
    session = SandboxSession.objects.get()
    sandbox.pay(public_id=session.public_id, now=clock.now(), card=sandbox.CardInput(
        number="4242424242424242", exp_month=12, exp_year=2034, cvc="123", name="A B"))
    body, headers = sandbox.signed_delivery(SandboxEvent.objects.get(), clock.now())

    responses = race(2, lambda i: services.receive_webhook(provider_name="sandbox", body=body,
                                                           headers=headers))

    assert sorted(r.status for r in responses) == [200, 200]
    assert Ticket.objects.filter(order=order).count() == 2
    assert AuditEntry.objects.filter(action="order.paid").count() == 1
    assert WebhookEvent.objects.get().outcome == "paid"
