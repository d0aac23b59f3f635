"""Training, model files and their versions, thresholds, scoring and reasons."""

import joblib
import numpy as np
import pytest

from smarttickets.risk import model as M
from smarttickets.risk import simulate


def test_tiny_training_run_separates_the_populations(tiny_model_path, tiny_log):
    # given a model trained on a tiny simulated log
    trained = M.load(tiny_model_path)

    # when it scores a log from another seed
    other = simulate.write(simulate.simulate(accounts=400, seed=99), tiny_log[0].parent / "other")
    data = M.load_dataset(*other)
    result = trained.assess(data.table)
    scores = result.scores[data.rows]
    decisions = [result.decisions[i] for i in data.rows]
    metrics = M.evaluate(scores, data.y, decisions)

    # then it ranks scalpers above fans and blocks no fan
    assert metrics["roc_auc"] > 0.95
    assert metrics["fans_block"] == 0
    assert ((scores >= 0) & (scores <= 1)).all()
    assert trained.features == M.F.FEATURES
    assert trained.training_hash == M.file_sha256(*tiny_log)
    assert trained.model_version.startswith("hgb-" + trained.training_hash[:12])
    th = trained.thresholds
    assert 0 <= th.challenge <= th.review <= th.block <= 1
    assert set(trained.metrics["validation"]) >= {"roc_auc", "recall_at_1pct_fpr", "fans_block"}


def test_fast_tree_walk_equals_sklearn(tiny_model_path, tiny_log):
    trained = M.load(tiny_model_path)
    X = M.load_dataset(tiny_log[0], None).table.X[:50]

    one_by_one = np.array([trained.raw(X[i:i + 1])[0] for i in range(len(X))])

    # raw() stands in the fans' medians for missing values before the trees, as training did
    expected = trained.estimator.decision_function(trained.fill_missing(X))
    assert np.allclose(one_by_one, expected, rtol=0, atol=1e-9)


def test_compiled_trees_route_missing_values_as_sklearn_does():
    # The shipped model (full size), on real rows with every fourth value knocked out.
    shipped = M.load(M.DEFAULT_MODEL_PATH)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, len(shipped.features))) * 3
    X[rng.random(X.shape) < 0.25] = np.nan
    fast = shipped._fast()
    assert fast is not None

    compiled = np.array([fast(row) for row in X.tolist()])

    assert np.allclose(compiled, shipped.estimator.decision_function(X), rtol=0, atol=1e-9)


def test_model_of_another_format_version_is_refused(tiny_model_path, tmp_path):
    # given a model file written by a future version
    envelope = joblib.load(tiny_model_path)
    envelope["format_version"] = M.FORMAT_VERSION + 1
    joblib.dump(envelope, tmp_path / "future.joblib")

    # when it is loaded, then it is refused with a message naming both versions
    with pytest.raises(M.ModelError, match=r"format version 2; .* reads format version 1"):
        M.load(tmp_path / "future.joblib")


def test_foreign_or_missing_model_files_are_refused(tmp_path):
    joblib.dump({"weights": [1, 2, 3]}, tmp_path / "other.joblib")
    (tmp_path / "junk.joblib").write_bytes(b"not a pickle")

    with pytest.raises(M.ModelError, match="not a SmartTickets risk model"):
        M.load(tmp_path / "other.joblib")
    with pytest.raises(M.ModelError, match="cannot be read"):
        M.load(tmp_path / "junk.joblib")
    with pytest.raises(M.ModelError, match="does not exist"):
        M.load(tmp_path / "absent.joblib")


def test_training_without_labels_is_refused(tiny_log, tmp_path):
    log_path, labels_path = tiny_log
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header.csv"
    header_only.write_text("account,label,kind\n")
    fans_only = tmp_path / "fans.csv"
    fans_only.write_text("account,label,kind\n" + "".join(
        line.replace(",1,", ",0,") + "\n"
        for line in labels_path.read_text().splitlines()[1:]))

    with pytest.raises(M.ModelError, match="missing or empty"):
        M.train(log_path, tmp_path / "absent.csv")
    with pytest.raises(M.ModelError, match="missing or empty"):
        M.train(log_path, empty)
    with pytest.raises(M.ModelError, match="no account in the labels file"):
        M.train(log_path, header_only)
    with pytest.raises(M.ModelError, match=r"no scalper/bot \(label 1\) accounts"):
        M.train(log_path, fans_only)


def test_thresholds_put_block_above_every_validation_fan():
    scores = np.array([0.01, 0.02, 0.2, 0.6, 0.95, 0.99])
    y = np.array([0, 0, 0, 0, 1, 1])

    th = M.choose_thresholds(scores, y)

    assert th.block == 0.9  # halfway from the top fan (0.6) would be 0.8; the floor is 0.9
    assert th.challenge <= th.review <= th.block
    assert th.decide(0.95) == "block"
    assert th.decide(0.0) == "allow"


def test_block_needs_activity_and_two_kinds_of_evidence(tiny_model_path):
    # given four accounts scored above the block threshold
    trained = M.load(tiny_model_path)
    X = np.zeros((4, len(trained.features)))
    X[1:, trained.features.index("entries")] = 3
    X[:, trained.features.index("card_share")] = 60
    X[:, trained.features.index("addr_share")] = 60
    X[:, trained.features.index("automation_ua")] = 1
    high = np.array([0.999] * 4)
    card = M.Reason("card_share", "%(n)d accounts share one payment card", {"n": 5})
    addr = M.Reason("addr_share", "%(n)d accounts share one address", {"n": 4})
    ua = M.Reason("automation_ua", "browser identifies as an automation tool", {})
    reasons = [[card, ua], [card, addr], [M.MODEL_UNAVAILABLE, M.MODEL_UNAVAILABLE], [card, ua]]

    # when decisions are made
    decisions = trained.decide(X, high, reasons,
                               M.Thresholds(challenge=0.1, review=0.5, block=0.9))

    # then only the active account with shared identifiers AND automation is blocked: no
    # activity, one kind of evidence (a household shares a card and an address) or reasons
    # that are not evidence give a review
    assert decisions == ["review", "review", "review", "block"]


def test_a_block_needs_values_clearly_outside_the_fans_range(tiny_model_path):
    # given an active account above the block threshold with two kinds of reasons
    trained = M.load(tiny_model_path)
    j_card = trained.features.index("card_share")
    j_sub = trained.features.index("iat_sub1s_frac")
    _p1, p50, p99 = trained.fan_quantiles
    trained.directions[j_card] = trained.directions[j_sub] = 1
    X = np.zeros((2, len(trained.features)))
    X[:, trained.features.index("entries")] = 3
    X[:, j_card] = 60
    spread = max(p99[j_sub] - p50[j_sub], 1e-6)
    X[0, j_sub] = p99[j_sub] + 0.2 * spread     # just past the fans' 99th percentile
    X[1, j_sub] = p99[j_sub] + 1.0 * spread     # clearly outside it
    card = M.Reason("card_share", "%(n)d accounts share one payment card", {"n": 61})
    fast = M.Reason("iat_sub1s_frac", "most requests come less than a second apart", {})

    # when decisions are made
    decisions = trained.decide(X, np.array([0.999, 0.999]), [[card, fast], [card, fast]],
                               M.Thresholds(challenge=0.1, review=0.5, block=0.9))

    # then only the clear case is blocked; the marginal one goes to a reviewer
    assert decisions == ["review", "block"]


def test_reasons_are_short_sentences_with_numbers(tiny_model_path):
    trained = M.load(tiny_model_path)
    X = np.array([trained.fan_quantiles[1]])
    X[0, trained.features.index("card_share")] = 6
    trained.directions[trained.features.index("card_share")] = 1

    reasons = trained.reasons(X)[0]

    assert "7 accounts share one payment card" in [r.text for r in reasons]


@pytest.mark.slow
def test_adversaries_that_did_nothing_are_left_out_of_training(tiny_log):
    # given a log in which some labelled adversaries never tried to get or move a ticket
    data = M.load_dataset(*tiny_log)
    idle_bad = int(((data.y == 1) & ~M._active(data.table.X[data.rows], M.F.FEATURES)).sum())
    assert idle_bad > 0

    # when a model is trained on it
    said = []
    M.train(*tiny_log, seed=3, max_iter=20, log=said.append)

    # then every labelled account is used except those: they look like any fan who browsed
    line = next(m for m in said if m.startswith("training on "))
    used = int(line.split()[2]) + int(line.split()[-1])
    assert used == len(data.y) - idle_bad


def test_ensemble_scores_the_mean_of_members_trained_on_different_draws(tiny_model_path,
                                                                         tiny_log):
    trained = M.load(tiny_model_path)
    X = trained.fill_missing(M.load_dataset(tiny_log[0], None).table.X)

    assert isinstance(trained.estimator, M.Bagged) and len(trained.estimator.members) == 2
    each = [m.decision_function(X) for m in trained.estimator.members]
    assert not np.allclose(each[0], each[1])
    assert np.allclose(trained.estimator.decision_function(X), (each[0] + each[1]) / 2)


def test_member_draws_keep_linked_groups_whole():
    groups = np.repeat(np.arange(50), 3)
    y = (groups % 4 == 0).astype(int)

    draws = M._member_draws(groups, y, 4, seed=0)

    assert len(draws) == 4
    for rows in draws:
        chosen = set(groups[rows])
        assert len(chosen) == 40
        assert sorted(rows) == [i for i, g in enumerate(groups) if g in chosen]
    assert len({tuple(r) for r in draws}) == 4
    assert [list(r) for r in M._member_draws(groups, y, 1, seed=0)] == [list(range(150))]


def test_a_review_names_its_evidence_or_becomes_a_challenge(tiny_model_path):
    # given two accounts scored for review (and one for block), one of each with no reason
    trained = M.load(tiny_model_path)
    X = np.zeros((3, len(trained.features)))
    fast = M.Reason("iat_sub1s_frac", "most requests come less than a second apart", {})

    # when decisions are made
    decisions = trained.decide(X, np.array([0.7, 0.7, 0.99]), [[fast], [], []],
                               M.Thresholds(challenge=0.1, review=0.5, block=0.9))

    # then staff only get cases they can read; the others are asked to step up
    assert decisions == ["review", "challenge", "challenge"]


def test_without_the_compiled_walk_scikit_learn_scores_the_same(tiny_model_path, tiny_log,
                                                                 monkeypatch, caplog):
    from smarttickets.risk import treewalk

    trained = M.load(tiny_model_path)
    X = M.load_dataset(tiny_log[0], None).table.X[:3]
    expected = trained.raw(X)

    def broken(_members):
        raise RuntimeError("no cache locator")

    monkeypatch.setattr(treewalk, "forest_of", broken)
    fresh = M.load(tiny_model_path)

    assert np.allclose(fresh.raw(X), expected, rtol=0, atol=1e-9)
    assert "compiled tree walk unavailable" in caplog.text
