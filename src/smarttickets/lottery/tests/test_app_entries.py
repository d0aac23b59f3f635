"""Entering a lottery: the window, the duplicate rule, the limit, companions, withdrawal, risk."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest

from smarttickets.accounts.tests.factories import UserFactory
from smarttickets.core import clock
from smarttickets.core.models import AuditEntry
from smarttickets.lottery import services
from smarttickets.lottery.models import Entry, Lottery
from smarttickets.lottery.tests import app_helpers
from smarttickets.lottery.tests.app_helpers import (
    fan,
    lottery_for,
    lottery_performance,
)

# Fixtures shared by the lottery app's tests.
risk = app_helpers.risk
signing_key_in_tmp = app_helpers.signing_key_in_tmp

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_key_in_tmp", "risk")]


def test_lotteries_are_made_lazily_one_per_zone_with_a_sealed_seed():
    performance, seated, standing = lottery_performance()

    lotteries = services.ensure_lotteries(performance=performance, now=clock.now())

    assert [lot.zone_id for lot in lotteries] == [seated.pk, standing.pk]
    assert [lot.capacity for lot in lotteries] == [10, 50]
    assert all(lot.state == Lottery.State.OPEN for lot in lotteries)  # the window is open
    seed = services.unseal_seed(lotteries[0].seed_ciphertext)
    assert len(seed) == 32
    assert hashlib.sha256(seed).hexdigest() == lotteries[0].seed_commitment
    assert lotteries[0].seed_ciphertext.find(seed.hex()) == -1
    # a second look makes nothing new
    assert services.ensure_lotteries(performance=performance, now=clock.now()) == lotteries
    assert Lottery.objects.count() == 2


def test_a_verified_fan_enters_and_gets_a_confirmation(mailoutbox,
                                                       django_capture_on_commit_callbacks, risk):
    performance, seated, _ = lottery_performance()
    lottery = lottery_for(performance, seated)
    user = fan(legal_name="Chan  Tai Man")

    with django_capture_on_commit_callbacks(execute=True):
        entry = services.enter(lottery=lottery, user=user, quantity=3, companions=[],
                               now=clock.now(), ip="203.0.113.9")

    assert re.fullmatch(r"[0-9a-f]{32}", entry.entry_id)
    assert (entry.quantity, entry.weight, entry.state) == (3, 1, Entry.State.ACTIVE)
    assert entry.phone == user.phone and entry.legal_name == "Chan Tai Man"
    assert entry.risk_decision == "allow" and not entry.flagged
    assert risk.calls == [(user.pk, "lottery_entry", entry.entry_id)]
    assert AuditEntry.objects.filter(action="lottery.entry_created",
                                     object_id=str(entry.pk)).count() == 1
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [user.email]
    assert entry.entry_id in mailoutbox[0].body
    assert "entered" in mailoutbox[0].subject.lower()


@pytest.mark.parametrize("opens, closes", [(timedelta(hours=1), timedelta(days=1)),
                                           (-timedelta(days=2), -timedelta(seconds=1))])
def test_entries_outside_the_window_are_refused_and_nothing_is_stored(opens, closes):
    now = clock.now()
    performance, seated, _ = lottery_performance(
        now=now, entry_opens_at=now + opens, entry_closes_at=now + closes,
        draw_at=now + timedelta(days=2), purchase_opens_at=now + timedelta(days=3))
    lottery = lottery_for(performance, seated)

    with pytest.raises(services.EntryWindowClosed):
        services.enter(lottery=lottery, user=fan(), quantity=1, companions=[], now=now)

    assert Entry.objects.count() == 0


def test_the_same_account_cannot_enter_twice_even_for_another_zone():
    performance, seated, standing = lottery_performance()
    user = fan()
    services.enter(lottery=lottery_for(performance, seated), user=user, quantity=1,
                   companions=[], now=clock.now())

    with pytest.raises(services.DuplicateEntry, match="already entered"):
        services.enter(lottery=lottery_for(performance, standing), user=user, quantity=2,
                       companions=[], now=clock.now())

    assert Entry.objects.filter(user=user).count() == 1
    assert Lottery.objects.get(zone=standing).duplicate_attempts == 1


def test_a_mobile_number_moved_to_another_account_cannot_enter_again():
    performance, seated, _ = lottery_performance()
    lottery = lottery_for(performance, seated)
    first = fan()
    number = first.phone
    services.enter(lottery=lottery, user=first, quantity=2, companions=[], now=clock.now())
    # the SIM moves on: the first account takes a new number, a second one verifies the old one
    first.phone = "+85251234567"
    first.save(update_fields=["phone"])
    second = UserFactory(verified=True, phone=number)

    with pytest.raises(services.DuplicateEntry, match="mobile number"):
        services.enter(lottery=lottery, user=second, quantity=2, companions=[], now=clock.now())

    assert Entry.objects.filter(user=second).count() == 0


def test_quantity_over_the_per_person_limit_is_refused():
    performance, seated, _ = lottery_performance(per_person_limit=2)

    with pytest.raises(services.InvalidInput) as exc:
        services.enter(lottery=lottery_for(performance, seated), user=fan(), quantity=3,
                       companions=[], now=clock.now())

    assert exc.value.code == "invalid_quantity"
    assert "1 to 2" in str(exc.value.message)
    assert Entry.objects.count() == 0


def test_unverified_accounts_cannot_enter():
    performance, seated, _ = lottery_performance()

    with pytest.raises(services.IdentityRequired):
        services.enter(lottery=lottery_for(performance, seated), user=UserFactory(),
                       quantity=1, companions=[], now=clock.now())

    assert Entry.objects.count() == 0


def test_real_name_events_need_each_companions_legal_name():
    performance, seated, _ = lottery_performance(personalised=True)
    lottery = lottery_for(performance, seated)
    user = fan()

    with pytest.raises(services.InvalidInput) as exc:
        services.enter(lottery=lottery, user=user, quantity=3, companions=["Wong Ka Ho", " "],
                       now=clock.now())
    assert set(exc.value.fields) == {"companion_2"}
    assert Entry.objects.count() == 0

    entry = services.enter(lottery=lottery, user=user, quantity=3,
                           companions=[" Wong  Ka Ho", "Lee Siu Ming", "ignored extra"],
                           now=clock.now())
    assert entry.companions == ["Wong Ka Ho", "Lee Siu Ming"]


def test_an_entrant_can_withdraw_and_enter_again_while_entries_are_open():
    performance, seated, standing = lottery_performance()
    user = fan()
    entry = services.enter(lottery=lottery_for(performance, seated), user=user, quantity=1,
                           companions=[], now=clock.now())

    services.withdraw(entry=entry, user=user, now=clock.now())
    again = services.enter(lottery=lottery_for(performance, standing), user=user, quantity=2,
                           companions=[], now=clock.now())

    entry.refresh_from_db()
    assert entry.state == Entry.State.WITHDRAWN
    assert again.state == Entry.State.ACTIVE and again.lottery.zone_id == standing.pk
    with pytest.raises(services.WrongState):
        services.withdraw(entry=entry, user=user, now=clock.now())


def test_no_withdrawal_after_entries_close():
    now = clock.now()
    performance, seated, _ = lottery_performance(now=now)
    user = fan()
    entry = services.enter(lottery=lottery_for(performance, seated), user=user, quantity=1,
                           companions=[], now=now)

    with pytest.raises(services.EntryWindowClosed):
        services.withdraw(entry=entry, user=user, now=performance.entry_closes_at)

    entry.refresh_from_db()
    assert entry.state == Entry.State.ACTIVE


def test_someone_else_cannot_withdraw_my_entry():
    performance, seated, _ = lottery_performance()
    entry = services.enter(lottery=lottery_for(performance, seated), user=fan(), quantity=1,
                           companions=[], now=clock.now())

    with pytest.raises(services.DomainError) as exc:
        services.withdraw(entry=entry, user=fan(), now=clock.now())

    assert exc.value.status == 404
    entry.refresh_from_db()
    assert entry.state == Entry.State.ACTIVE


def test_flagged_entries_wait_for_review_under_the_review_policy(risk):
    performance, seated, _ = lottery_performance()
    lottery = lottery_for(performance, seated)
    suspect = fan()
    risk.flag(suspect, "block")

    entry = services.enter(lottery=lottery, user=suspect, quantity=2, companions=[],
                           now=clock.now())

    assert entry.flagged and entry.risk_decision == "block"
    assert entry.review == Entry.Review.PENDING
    assert services.pending_reviews(lottery=lottery) == 1
