"""core.bulk.insert stores exactly what bulk_create stores, and sets the primary keys in order."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from smarttickets.booking.models import Hold, HoldItem, LimitHit
from smarttickets.booking.tests.factories import buyer, ga_performance
from smarttickets.core import bulk
from smarttickets.core.models import AuditEntry

pytestmark = pytest.mark.django_db


def _rows(model, objs):
    rows = {r["id"]: r for r in model.objects.filter(pk__in=[o.pk for o in objs]).values()}
    return [{k: v for k, v in rows[o.pk].items() if k != "id"} for o in objs]


def _holds(user, performance, n, now=None):
    now = now or timezone.now()
    return [Hold(user=user, performance=performance, quantity=1 + i % 3, created_at=now,
                 expires_at=now + timedelta(minutes=10),
                 ip=("203.0.113.7", None, "2001:db8::1")[i % 3],
                 device_id=f"dev-{i}" if i % 2 else "") for i in range(n)]


def test_insert_stores_what_bulk_create_stores_and_sets_keys_in_order():
    performance, zone = ga_performance()
    user = buyer()

    now = timezone.now()
    mine = bulk.insert(_holds(user, performance, 7, now))
    theirs = Hold.objects.bulk_create(_holds(user, performance, 7, now))

    assert all(h.pk and not h._state.adding for h in mine)
    assert [h.quantity for h in Hold.objects.filter(pk__in=[h.pk for h in mine]).order_by("pk")] \
        == [h.quantity for h in mine]  # each key belongs to its own object
    assert _rows(Hold, mine) == _rows(Hold, theirs)

    items = bulk.insert([HoldItem(hold=h, zone=zone, price=Decimal("12.50")) for h in mine])
    reference = HoldItem.objects.bulk_create(
        [HoldItem(hold=h, zone=zone, price=Decimal("12.50")) for h in theirs])
    assert [r | {"hold_id": None} for r in _rows(HoldItem, items)] == \
        [r | {"hold_id": None} for r in _rows(HoldItem, reference)]
    assert [i.hold_id for i in items] == [h.pk for h in mine]

    data = {"quantity": 2, "zones": {zone.pk: 2}, "seats": [], "name": "陳大文 \"x\" \\ '",
            "at": None, "ratio": 0.1}
    entries = [AuditEntry(created_at=timezone.now(), actor=user if i else None,
                          action="hold.created", object_type="booking.hold",
                          object_id=str(i), data=data) for i in range(3)]
    again = [AuditEntry(created_at=e.created_at, actor=e.actor, action=e.action,
                        object_type=e.object_type, object_id=e.object_id, data=data)
             for e in entries]
    assert _rows(AuditEntry, bulk.insert(entries)) == _rows(AuditEntry,
                                                            AuditEntry.objects.bulk_create(again))
    assert AuditEntry.objects.get(pk=entries[1].pk).data["zones"] == {str(zone.pk): 2}

    hits = bulk.insert([LimitHit(created_at=timezone.now(), limit=LimitHit.Limit.PER_PERSON,
                                 user=user, performance_id=performance.pk, subject=str(user.pk),
                                 data={"selection": {"zone_id": zone.pk}})])
    assert LimitHit.objects.get(pk=hits[0].pk).data == {"selection": {"zone_id": zone.pk}}


def test_insert_of_nothing_and_of_saved_objects():
    assert bulk.insert([]) == []
    performance, _zone = ga_performance()
    user = buyer()
    (hold,) = _holds(user, performance, 1)
    hold.pk = 10_000_000  # an explicit key: handed to bulk_create, which keeps it
    bulk.insert([hold])
    assert Hold.objects.filter(pk=10_000_000).exists()


@pytest.mark.postgres
def test_on_postgresql_one_statement_whatever_the_number_of_rows(django_assert_num_queries):
    performance, _zone = ga_performance()
    user = buyer()
    with django_assert_num_queries(1) as ctx:
        bulk.insert(_holds(user, performance, 40))
    assert "jsonb_to_recordset" in ctx.captured_queries[0]["sql"].lower()
    assert connection.vendor == "postgresql"


def test_values_json_cannot_carry_take_the_orms_way():
    performance, _zone = ga_performance()
    entry = AuditEntry(created_at=timezone.now(), action="x", object_type="t", object_id="1",
                       data=None)
    with pytest.raises(IntegrityError), transaction.atomic():  # NOT NULL, as bulk_create
        bulk.insert([entry])
    holds = bulk.insert(_holds(buyer(), performance, 2))
    assert all(h.pk for h in holds)
