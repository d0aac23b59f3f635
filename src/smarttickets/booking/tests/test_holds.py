"""Holds: taking units, choosing seats, expiry, release exactly once, limits, bad input."""

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.test import override_settings
from django.utils import timezone

from smarttickets.booking import services
from smarttickets.booking.exceptions import (
    BookingLimitReached,
    IdentityRequired,
    InvalidSelection,
    SaleNotOpen,
    SeatsUnavailable,
    SoldOut,
)
from smarttickets.booking.models import Hold, HoldItem, InventoryBucket, LimitHit, SeatClaim
from smarttickets.booking.seating import Spot, Stage, best_seats
from smarttickets.booking.tests.factories import (
    UserFactory,
    buyer,
    ga_performance,
    seated_performance,
)
from smarttickets.core.exceptions import NotFound
from smarttickets.core.models import AuditEntry
from smarttickets.events.models import Performance

pytestmark = pytest.mark.django_db


def taken(performance, zone) -> int:
    return InventoryBucket.objects.filter(performance=performance, zone=zone).aggregate(
        n=Sum("taken"))["n"]


def test_ga_hold_takes_units_and_writes_audit():
    performance, zone = ga_performance(capacity=10)
    user = buyer()
    now = timezone.now()

    hold = services.create_hold(user=user, performance=performance, now=now,
                                selection=services.Selection(zone_id=zone.pk, quantity=3))

    assert hold.state == Hold.State.LIVE
    assert hold.quantity == 3
    assert hold.expires_at == now + timedelta(minutes=10)
    assert taken(performance, zone) == 3
    assert HoldItem.objects.filter(hold=hold, seat__isnull=True).count() == 3
    assert AuditEntry.objects.filter(action="hold.created", object_id=str(hold.pk)).count() == 1


def test_capacity_is_split_over_shards_and_a_zone_is_sold_to_the_last_unit():
    performance, zone = ga_performance(capacity=10)
    now = timezone.now()
    users = [buyer() for _ in range(4)]

    for user in users[:3]:
        services.create_hold(user=user, performance=performance, now=now,
                             selection=services.Selection(zone_id=zone.pk, quantity=3))
    # 1 unit left, possibly in any shard.
    with pytest.raises(SoldOut):
        services.create_hold(user=users[3], performance=performance, now=now,
                             selection=services.Selection(zone_id=zone.pk, quantity=2))
    last = services.create_hold(user=users[3], performance=performance, now=now,
                                selection=services.Selection(zone_id=zone.pk, quantity=1))

    shards = list(InventoryBucket.objects.filter(performance=performance, zone=zone))
    assert sorted(s.capacity for s in shards) == [2, 2, 3, 3]
    assert sum(s.taken for s in shards) == 10
    assert all(s.taken <= s.capacity for s in shards)
    assert last.quantity == 1


def test_a_request_bigger_than_any_shard_is_spread_over_shards():
    performance, zone = ga_performance(capacity=8)  # shards of 2
    user = buyer()

    hold = services.create_hold(user=user, performance=performance, now=timezone.now(),
                                selection=services.Selection(zone_id=zone.pk, quantity=4))

    assert hold.quantity == 4
    assert taken(performance, zone) == 4


def test_picked_seats_are_claimed_and_refused_to_a_second_buyer():
    performance, zone, seats = seated_performance()
    first, second = buyer(), buyer()
    now = timezone.now()
    services.create_hold(user=first, performance=performance, now=now,
                         selection=services.Selection(seat_ids=(seats[0].pk, seats[1].pk)))

    with pytest.raises(SeatsUnavailable) as exc:
        services.create_hold(user=second, performance=performance, now=now,
                             selection=services.Selection(seat_ids=(seats[1].pk, seats[2].pk)))

    assert exc.value.seat_ids == [seats[1].pk]
    assert SeatClaim.objects.filter(performance=performance).count() == 2
    assert Hold.objects.filter(user=second).count() == 0
    assert taken(performance, zone) == 2


def test_best_available_picks_adjacent_seats_nearest_the_stage():
    performance, zone, seats = seated_performance(rows=2, per_row=5)
    now = timezone.now()
    # Row A: seats 2 and 4 taken → no 3 adjacent in row A; row B is free.
    services.create_hold(user=buyer(), performance=performance, now=now,
                         selection=services.Selection(seat_ids=(seats[1].pk, seats[3].pk)))

    hold = services.create_hold(user=buyer(), performance=performance, now=now,
                                selection=services.Selection(zone_id=zone.pk, quantity=3))

    picked = sorted(HoldItem.objects.filter(hold=hold).values_list("seat__row", "seat__number"))
    assert picked == [("B", "1"), ("B", "2"), ("B", "3")]


def test_best_seats_kernel_falls_back_to_closest_single_seats():
    stage = Stage(0, 0, 100, 10)
    rows = [[Spot(1, 10, 20, True), Spot(2, 20, 20, False), Spot(3, 30, 20, True)],
            [Spot(4, 10, 50, True), Spot(5, 20, 50, False), Spot(6, 30, 50, True)]]

    assert best_seats(rows, 2, stage) == [1, 3]
    assert best_seats(rows, 5, stage) == []
    assert best_seats(rows, 1, stage, exclude=frozenset({1, 3})) == [4]


def test_expired_hold_stops_counting_at_once_and_its_units_return_once():
    performance, zone = ga_performance(capacity=4)
    early, late = buyer(), buyer()
    start = timezone.now()
    old = services.create_hold(user=early, performance=performance, now=start,
                               selection=services.Selection(zone_id=zone.pk, quantity=4))

    # No housekeeping ran; the next buyer after expiry still gets the units.
    after = start + timedelta(minutes=10, seconds=1)
    new = services.create_hold(user=late, performance=performance, now=after,
                               selection=services.Selection(zone_id=zone.pk, quantity=4))

    old.refresh_from_db()
    assert old.state == Hold.State.EXPIRED
    assert new.state == Hold.State.LIVE
    assert taken(performance, zone) == 4
    # A second expiry pass and a late release change nothing.
    assert services.expire_holds(now=after) == 0
    services.release_hold(hold=old, actor=early, now=after)
    assert taken(performance, zone) == 4


def test_double_release_gives_units_back_once():
    performance, zone = ga_performance(capacity=5)
    user = buyer()
    now = timezone.now()
    hold = services.create_hold(user=user, performance=performance, now=now,
                                selection=services.Selection(zone_id=zone.pk, quantity=2))

    services.release_hold(hold=hold, actor=user, now=now)
    services.release_hold(hold=hold, actor=user, now=now)

    assert taken(performance, zone) == 0
    assert AuditEntry.objects.filter(action="hold.released", object_id=str(hold.pk)).count() == 1


def test_expire_holds_command_frees_seats():
    performance, zone, seats = seated_performance()
    now = timezone.now()
    services.create_hold(user=buyer(), performance=performance, now=now,
                         selection=services.Selection(seat_ids=(seats[0].pk,)))

    assert services.expire_holds(now=now + timedelta(minutes=11)) == 1

    assert SeatClaim.objects.count() == 0
    assert taken(performance, zone) == 0


def test_seat_of_an_expired_hold_can_be_picked_before_housekeeping():
    performance, zone, seats = seated_performance()
    now = timezone.now()
    services.create_hold(user=buyer(), performance=performance, now=now,
                         selection=services.Selection(seat_ids=(seats[0].pk,)))

    hold = services.create_hold(user=buyer(), performance=performance,
                                now=now + timedelta(minutes=11),
                                selection=services.Selection(seat_ids=(seats[0].pk,)))

    assert SeatClaim.objects.get(seat=seats[0]).hold_id == hold.pk
    assert taken(performance, zone) == 1


def test_unverified_buyer_is_refused():
    performance, zone = ga_performance()
    user = UserFactory()

    with pytest.raises(IdentityRequired):
        services.create_hold(user=user, performance=performance, now=timezone.now(),
                             selection=services.Selection(zone_id=zone.pk, quantity=1))
    assert Hold.objects.count() == 0


@pytest.mark.parametrize("shift, mode", [
    ({"onsale_starts_at": timezone.now() + timedelta(days=1)}, "first_come"),
    ({"onsale_ends_at": timezone.now() - timedelta(minutes=1)}, "first_come"),
    ({}, "lottery"),
])
def test_sale_not_open_is_refused(shift, mode):
    performance, zone = ga_performance()
    Performance.objects.filter(pk=performance.pk).update(sale_mode=mode, **shift)
    performance.refresh_from_db()

    with pytest.raises(SaleNotOpen):
        services.create_hold(user=buyer(), performance=performance, now=timezone.now(),
                             selection=services.Selection(zone_id=zone.pk, quantity=1))
    assert Hold.objects.count() == 0


def test_bad_selections_are_refused_and_nothing_changes():
    performance, zone, seats = seated_performance()
    _other, other_zone, other_seats = seated_performance()
    user = buyer()
    now = timezone.now()
    bad = [services.Selection(zone_id=zone.pk, quantity=0),
           services.Selection(zone_id=zone.pk, quantity=5),
           services.Selection(zone_id=other_zone.pk, quantity=1),
           services.Selection(seat_ids=(other_seats[0].pk,)),
           services.Selection(seat_ids=(999999,)),
           services.Selection(seat_ids=(seats[0].pk, seats[0].pk))]

    for selection in bad:
        with pytest.raises(InvalidSelection):
            services.create_hold(user=user, performance=performance, now=now,
                                 selection=selection)

    assert Hold.objects.count() == 0
    assert SeatClaim.objects.count() == 0
    assert not InventoryBucket.objects.filter(taken__gt=0).exists()


def test_per_person_limit_spans_holds_and_is_recorded():
    performance, zone = ga_performance(capacity=20)
    user = buyer()
    now = timezone.now()
    services.create_hold(user=user, performance=performance, now=now,
                         selection=services.Selection(zone_id=zone.pk, quantity=3))

    with pytest.raises(BookingLimitReached) as exc:
        services.create_hold(user=user, performance=performance, now=now,
                             selection=services.Selection(zone_id=zone.pk, quantity=2))

    assert exc.value.limit == "per_person"
    assert exc.value.as_dict()["code"] == "limit_reached"
    assert Hold.objects.filter(user=user).count() == 1
    assert taken(performance, zone) == 3
    hit = LimitHit.objects.get()
    assert (hit.limit, hit.user_id, hit.performance_id) == ("per_person", user.pk,
                                                             performance.pk)


@override_settings(BOOKING_DEVICE_HOLDS_PER_10MIN=2)
def test_device_velocity_limit():
    performance, zone = ga_performance(capacity=20)
    now = timezone.now()
    for _ in range(2):
        hold = services.create_hold(user=buyer(), performance=performance, now=now,
                                    device_id="dev-1",
                                    selection=services.Selection(zone_id=zone.pk, quantity=1))
        services.release_hold(hold=hold, actor=hold.user, now=now)

    with pytest.raises(BookingLimitReached) as exc:
        services.create_hold(user=buyer(), performance=performance, now=now, device_id="dev-1",
                             selection=services.Selection(zone_id=zone.pk, quantity=1))

    assert exc.value.limit == "device"
    assert exc.value.status == 429
    assert Hold.objects.count() == 2
    assert LimitHit.objects.get().subject == "dev-1"
    # Another device is not affected.
    services.create_hold(user=buyer(), performance=performance, now=now, device_id="dev-2",
                         selection=services.Selection(zone_id=zone.pk, quantity=1))


@override_settings(BOOKING_IP_HOLDS_PER_10MIN=1)
def test_ip_velocity_limit_resets_in_the_next_window():
    performance, zone = ga_performance(capacity=20)
    now = timezone.now()
    services.create_hold(user=buyer(), performance=performance, now=now, ip="10.0.0.1",
                         selection=services.Selection(zone_id=zone.pk, quantity=1))

    with pytest.raises(BookingLimitReached) as exc:
        services.create_hold(user=buyer(), performance=performance, now=now, ip="10.0.0.1",
                             selection=services.Selection(zone_id=zone.pk, quantity=1))
    assert exc.value.limit == "ip"

    later = now + timedelta(minutes=10)
    services.create_hold(user=buyer(), performance=performance, now=later, ip="10.0.0.1",
                         selection=services.Selection(zone_id=zone.pk, quantity=1))
    assert Hold.objects.count() == 2


def lottery_winner(*, hours: int):
    """A lottery performance (capacity 5) and a winner entitled to 3 places for ``hours``."""
    performance, zone = ga_performance(capacity=5)
    Performance.objects.filter(pk=performance.pk).update(sale_mode="lottery")
    performance.refresh_from_db()
    winner = buyer()
    now = timezone.now()
    ent = services.grant_entitlement(user=winner, performance=performance, zone=zone,
                                     quantity=3, expires_at=now + timedelta(hours=hours),
                                     source="lottery:1", now=now)
    return performance, zone, winner, ent, now


def test_entitlement_reserves_units_and_is_consumed_by_a_lottery_hold():
    performance, zone, _winner, ent, now = lottery_winner(hours=1)
    assert taken(performance, zone) == 3

    hold = services.consume_entitlement(entitlement=ent, now=now,
                                        selection=services.Selection(zone_id=zone.pk,
                                                                     quantity=2))

    ent.refresh_from_db()
    assert ent.state == "used"
    assert hold.quantity == 2
    assert taken(performance, zone) == 2  # the unused unit went back
    with pytest.raises(NotFound):
        services.consume_entitlement(entitlement=ent, now=now,
                                     selection=services.Selection(zone_id=zone.pk, quantity=1))


def test_entitlement_expiry_returns_units_once():
    performance, zone = ga_performance(capacity=5)
    now = timezone.now()
    services.grant_entitlement(user=buyer(), performance=performance, zone=zone, quantity=2,
                               expires_at=now + timedelta(minutes=5), source="queue:7", now=now)

    assert services.expire_holds(now=now + timedelta(minutes=6)) == 1
    assert services.expire_holds(now=now + timedelta(minutes=7)) == 0
    assert taken(performance, zone) == 0


def test_entitlement_cannot_exceed_capacity():
    performance, zone = ga_performance(capacity=2)
    now = timezone.now()

    with pytest.raises(SoldOut):
        services.grant_entitlement(user=buyer(), performance=performance, zone=zone,
                                   quantity=3, expires_at=now + timedelta(hours=1),
                                   source="lottery:1", now=now)
    assert taken(performance, zone) == 0


def test_a_winners_hold_that_ends_early_reopens_the_entitlement_with_its_units_reserved():
    # given a lottery winner who held 2 of their 3 places, then let the hold run out
    performance, zone, winner, ent, now = lottery_winner(hours=2)
    hold = services.consume_entitlement(entitlement=ent, now=now,
                                        selection=services.Selection(zone_id=zone.pk,
                                                                     quantity=2))
    later = hold.expires_at + timedelta(seconds=1)

    # when housekeeping expires the hold while the entitlement still runs
    assert services.expire_holds(now=later) == 1

    # then the winner's turn is back, for the 2 places held, still reserved for them
    ent.refresh_from_db()
    assert (ent.state, ent.quantity, ent.closed_at) == ("open", 2, None)
    assert taken(performance, zone) == 2
    assert AuditEntry.objects.filter(action="entitlement.reopened",
                                     object_id=str(ent.pk)).count() == 1
    # and they can hold again (the units move to the new hold, nothing is taken twice)
    again = services.consume_entitlement(entitlement=ent, now=later,
                                         selection=services.Selection(zone_id=zone.pk,
                                                                      quantity=2))
    assert again.quantity == 2 and taken(performance, zone) == 2
    # a release reopens it too; once the entitlement has ended, the units go back to sale
    services.release_hold(hold=again, actor=winner, now=later)
    ent.refresh_from_db()
    assert ent.state == "open"
    last = services.consume_entitlement(entitlement=ent, now=later,
                                        selection=services.Selection(zone_id=zone.pk,
                                                                     quantity=1))
    assert taken(performance, zone) == 1
    services.expire_holds(now=ent.expires_at + timedelta(minutes=30))
    ent.refresh_from_db()
    last.refresh_from_db()
    assert (ent.state, last.state) == ("used", "expired")
    assert taken(performance, zone) == 0
