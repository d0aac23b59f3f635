"""Best-available seat choice: a pure function over plain data (no Django).

Rows of seats come in as lists ordered along the row; the answer is a run of N adjacent free
seats closest to the stage, or, when no row has such a run, the N free seats closest to it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Spot:
    seat_id: int
    x: float
    y: float
    free: bool


@dataclass(frozen=True, slots=True)
class Stage:
    x: float
    y: float
    width: float
    height: float

    def distance(self, x: float, y: float) -> float:
        """Distance from a point to the stage rectangle (0 inside it)."""
        dx = max(self.x - x, 0.0, x - (self.x + self.width))
        dy = max(self.y - y, 0.0, y - (self.y + self.height))
        return math.hypot(dx, dy)


def best_seats(rows: Iterable[Sequence[Spot]], n: int, stage: Stage,
               exclude: frozenset[int] = frozenset()) -> list[int]:
    """Seat ids of the best ``n`` free seats; [] when fewer than ``n`` are free.

    ``rows`` holds every seat of each row in order along the row, free or not, so that a gap
    (a taken seat) breaks adjacency.
    """
    if n <= 0:
        return []
    best: tuple[float, list[int]] | None = None
    loose: list[tuple[float, int]] = []
    for row in rows:
        run: list[Spot] = []
        for spot in [*row, None]:
            if spot is not None and spot.free and spot.seat_id not in exclude:
                run.append(spot)
                loose.append((stage.distance(spot.x, spot.y), spot.seat_id))
                continue
            for start in range(len(run) - n + 1):
                window = run[start:start + n]
                score = sum(stage.distance(s.x, s.y) for s in window) / n
                if best is None or score < best[0]:
                    best = (score, [s.seat_id for s in window])
            run = []
    if best is not None:
        return best[1]
    if len(loose) < n:
        return []
    loose.sort()
    return [seat_id for _, seat_id in loose[:n]]
