"""Regenerates the shipped default model reproducibly: simulate (fixed seed), then train."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from smarttickets.risk import model as M
from smarttickets.risk import simulate

DEFAULT_ACCOUNTS = 20000
DEFAULT_SEED = 7


def regenerate(*, accounts: int = DEFAULT_ACCOUNTS, seed: int = DEFAULT_SEED,
               out: str | Path | None = None,
               log: Callable[[str], None] = lambda _m: None) -> Path:
    """Train on the standard scenario only: the hard one stays unseen, for evaluation."""
    with tempfile.TemporaryDirectory() as tmp:
        log(f"simulating {accounts} accounts (seed {seed})")
        world = simulate.simulate(accounts=accounts, seed=seed, scenario="standard",
                                  progress=True)
        log_path, labels_path = simulate.write(world, tmp)
        trained = M.train(log_path, labels_path, seed=seed, progress=True, log=log)
    return M.save(trained, out or M.DEFAULT_MODEL_PATH)
