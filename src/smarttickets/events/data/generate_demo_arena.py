"""Generate demo_arena.csv, the seat map of the invented "Victoria Harbour Arena".

Run once (``python generate_demo_arena.py``); the output is committed and imported by
``smarttickets demo`` through the normal seat-map import service. Deterministic.
"""

from __future__ import annotations

import csv
import math
import string
from pathlib import Path

CENTRE_X, CENTRE_Y = 700.0, 200.0  # front edge of the stage; the bowls curve around it
SEAT_GAP, ROW_GAP = 12.5, 14.0
COLUMNS = ["kind", "section_code", "section_name", "row", "number", "x", "y", "accessible",
           "capacity", "width", "height"]


def ring(writer, *, first_code: int, sections: int, start_deg: float, end_deg: float,
         inner: float, rows: int, accessible_row: int | None) -> int:
    span = (end_deg - start_deg) / sections
    total = 0
    for i in range(sections):
        code = str(first_code + i)
        # Leave an aisle between sections.
        a0 = math.radians(start_deg + i * span + 1.2)
        a1 = math.radians(start_deg + (i + 1) * span - 1.2)
        for r_index in range(rows):
            radius = inner + r_index * ROW_GAP
            n = int(radius * (a1 - a0) // SEAT_GAP) + 1
            step = (a1 - a0) / max(1, n - 1)
            row = string.ascii_uppercase[r_index]
            for s in range(n):
                # Seat 1 is on the stage-left end of the row, as printed on the tickets.
                angle = a1 - s * step
                x = CENTRE_X + radius * math.cos(angle)
                y = CENTRE_Y + radius * math.sin(angle)
                accessible = r_index == accessible_row and (s < 2 or s >= n - 2)
                writer.writerow(["seat", code, f"Section {code}", row, s + 1, f"{x:.1f}",
                                 f"{y:.1f}", "yes" if accessible else "", "", "", ""])
                total += 1
    return total


def main() -> None:
    path = Path(__file__).with_name("demo_arena.csv")
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerow(["stage", "", "STAGE", "", "", "540", "110", "", "", "320", "80"])
        writer.writerow(["ga", "FLOOR", "Standing floor", "", "", "555", "225", "", "1200",
                         "290", "175"])
        seats = ring(writer, first_code=101, sections=8, start_deg=8, end_deg=172, inner=300,
                     rows=10, accessible_row=9)
        seats += ring(writer, first_code=201, sections=10, start_deg=4, end_deg=176, inner=480,
                      rows=12, accessible_row=None)
    print(f"wrote {path} with {seats} seats")


if __name__ == "__main__":
    main()
