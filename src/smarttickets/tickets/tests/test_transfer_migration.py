"""Migration 0003 gives tickets issued before transfers existed their buyer as holder."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from smarttickets.tickets.tests.conftest import make_show

BEFORE = [("tickets", "0002_wallet_scanning")]
AFTER = [("tickets", "0004_transfers")]


@pytest.mark.django_db(transaction=True)
def test_existing_tickets_are_held_by_their_buyers():
    show = make_show(n_tickets=2)
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_ticket = executor.loader.project_state(BEFORE).apps.get_model("tickets", "Ticket")
    assert "holder_user" not in {f.name for f in old_ticket._meta.get_fields()}

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)

    ticket = executor.loader.project_state(AFTER).apps.get_model("tickets", "Ticket")
    assert sorted(ticket.objects.values_list("pk", "holder_user_id")) == sorted(
        (t.pk, show.fan.pk) for t in show.tickets)
