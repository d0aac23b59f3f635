"""The draw is fair: uniform orderings, equal win rates whatever the entry id or entry time, and
weighted entries follow successive sampling exactly. Fixed seeds, so every run is the same;
each test fails when its p-value falls below 0.001."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter
from fractions import Fraction

import pytest
from scipy import stats

from smarttickets.lottery import draw

ALPHA = 1e-3


def prk_for(label: str, i: int) -> bytes:
    # prk is an HMAC output, so any fixed sequence of distinct 32-byte values stands in for it
    return hashlib.sha256(f"{label}/{i}".encode()).digest()


def entries_of(weights: list[int]) -> draw.Entries:
    return draw.entries_from_objects(
        {"entry_id": hashlib.sha256(b"%d" % i).hexdigest()[:32], "weight": w, "seats": 1}
        for i, w in enumerate(weights))


def ordering_counts(entries: draw.Entries, draws: int, label: str) -> Counter:
    ids = entries.entry_ids
    return Counter(tuple(ids[i] for i in draw.draw_order(prk_for(label, k), entries))
                   for k in range(draws))


def successive_sampling_probability(order: tuple[str, ...], weight: dict[str, int]) -> Fraction:
    """P(order) when each place goes to a remaining entry with probability ∝ its weight."""
    left = sum(weight.values())
    p = Fraction(1)
    for entry in order:
        p *= Fraction(weight[entry], left)
        left -= weight[entry]
    return p


@pytest.mark.parametrize("n", [4, 5])
def test_every_ordering_of_equal_entries_is_equally_likely(n):
    # given n entries of weight 1 and 100 draws per possible ordering on average
    entries = entries_of([1] * n)
    cells = list(itertools.permutations(entries.entry_ids))
    draws = 100 * len(cells)

    counts = ordering_counts(entries, draws, f"uniform-{n}")

    observed = [counts[c] for c in cells]
    assert sum(observed) == draws
    assert stats.chisquare(observed).pvalue > ALPHA


@pytest.mark.parametrize("weights", [[1, 2, 3], [1, 1, 2, 4]])
def test_weighted_orderings_follow_exact_successive_sampling(weights):
    entries = entries_of(weights)
    weight = dict(zip(entries.entry_ids, entries.weights, strict=True))
    cells = list(itertools.permutations(entries.entry_ids))
    exact = [successive_sampling_probability(c, weight) for c in cells]
    assert sum(exact) == 1
    draws = 250 * len(cells)

    counts = ordering_counts(entries, draws, f"weighted-{weights}")

    observed = [counts[c] for c in cells]
    expected = [float(p * draws) for p in exact]
    assert stats.chisquare(observed, expected).pvalue > ALPHA


def test_weight_two_wins_first_place_twice_as_often():
    # the exact probability for a weight-2 entry against two weight-1 entries is 2/4
    entries = entries_of([2, 1, 1])
    heavy = entries.entry_ids[entries.weights.index(2)]
    draws = 4000

    firsts = sum(entries.entry_ids[draw.draw_order(prk_for("first", k), entries)[0]] == heavy
                 for k in range(draws))

    assert stats.binomtest(firsts, draws, 0.5).pvalue > ALPHA


# 1,000 entries, 100 seats. Half the ids start 0000, half ffff, alternating in entry time, so a
# draw that favoured low ids, or early (or late) entrants, would show up in these counts.
N_ENTRIES, SEATS, DRAWS = 1000, 100, 300


@pytest.fixture(scope="module")
def win_counts():
    objects = []
    for i in range(N_ENTRIES):
        prefix = "0000" if i % 2 == 0 else "ffff"
        rest = hashlib.sha256(b"win-rate/%d" % i).hexdigest()[:28]
        objects.append({"entry_id": prefix + rest, "weight": 1, "seats": 1})
    entries = draw.entries_from_objects(objects)
    created = {o["entry_id"]: i for i, o in enumerate(objects)}
    wins = Counter()
    for k in range(DRAWS):
        order = draw.draw_order(prk_for("win-rate", k), entries)
        winners, _ = draw.allocate(order, entries.seats, SEATS)
        wins.update(entries.entry_ids[i] for i in winners)
    return wins, created


def test_each_entry_wins_equally_often(win_counts):
    wins, created = win_counts
    p = SEATS / N_ENTRIES
    counts = [wins[e] for e in created]
    assert sum(counts) == SEATS * DRAWS
    # every draw takes exactly 100 of 1000, so the counts are negatively correlated; this
    # scaling makes the statistic chi-square with n-1 degrees of freedom under fairness
    statistic = sum((c - DRAWS * p) ** 2 for c in counts) / (
        DRAWS * p * (1 - p) * N_ENTRIES / (N_ENTRIES - 1))
    assert stats.chi2.sf(statistic, N_ENTRIES - 1) > ALPHA
    assert stats.chi2.cdf(statistic, N_ENTRIES - 1) > ALPHA  # not suspiciously even either


def _two_groups_table(wins, created, in_first_group):
    table = [[0, 0], [0, 0]]
    for entry in created:
        row = 0 if in_first_group(entry) else 1
        table[row][0] += wins[entry]
        table[row][1] += DRAWS - wins[entry]
    return table


def test_win_rate_does_not_depend_on_the_entry_id_prefix(win_counts):
    wins, created = win_counts
    table = _two_groups_table(wins, created, lambda e: e.startswith("0000"))
    assert stats.chi2_contingency(table).pvalue > ALPHA


def test_win_rate_does_not_depend_on_entry_time(win_counts):
    wins, created = win_counts
    table = _two_groups_table(wins, created, lambda e: created[e] < N_ENTRIES // 2)
    assert stats.chi2_contingency(table).pvalue > ALPHA


def test_entry_key_is_the_minimum_of_one_hmac_per_unit_of_weight():
    import hmac

    prk = prk_for("key", 0)
    entry_id = "0123456789abcdef0123456789abcdef"
    keys = [hmac.digest(prk, bytes.fromhex(entry_id) + j.to_bytes(2, "big") + b"\x01", "sha256")
            for j in range(5)]

    assert draw.entry_key(prk, entry_id, 1) == keys[0]
    assert draw.entry_key(prk, entry_id, 5) == min(keys)
    entries = draw.entries_from_objects([{"entry_id": entry_id, "weight": 5, "seats": 1}])
    assert draw.entry_keys(prk, entries) == [min(keys)]
