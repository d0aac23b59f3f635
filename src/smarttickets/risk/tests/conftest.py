"""Risk test fixtures: one tiny simulated log and a model trained on it, shared by the session."""

from __future__ import annotations

import pytest

from smarttickets.risk import model as M
from smarttickets.risk import simulate


@pytest.fixture(scope="session")
def tiny_log(tmp_path_factory):
    out = tmp_path_factory.mktemp("risk-sim")
    world = simulate.simulate(accounts=700, seed=5)
    return simulate.write(world, out)


@pytest.fixture(scope="session")
def tiny_model_path(tiny_log, tmp_path_factory):
    log_path, labels_path = tiny_log
    # Two members: every test that scores with the tiny model scores an ensemble (``Bagged``).
    trained = M.train(log_path, labels_path, seed=1, max_iter=60, members=2)
    return M.save(trained, tmp_path_factory.mktemp("risk-model") / "tiny.joblib")


@pytest.fixture
def use_tiny_model(settings, tiny_model_path):
    from django.core.cache import cache

    from smarttickets.risk import decisions

    # Graph rows are cached by account id, and ids are reused after a test's rollback.
    cache.clear()
    settings.RISK_MODEL_PATH = str(tiny_model_path)
    decisions.reset_model_cache()
    yield tiny_model_path
    decisions.reset_model_cache()
