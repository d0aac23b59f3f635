"""Seat-map files (CSV or JSON, see docs/seatmap-format.md) parsed into plain data, validated first.

Nothing here touches the database: ``parse_seatmap`` either returns a complete ``SeatMap`` or
raises ``SeatMapError`` listing every problem with the line and field it was found on, so the
import service can write all of it or nothing.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import json.decoder
import json.scanner
import math
import re
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

MAX_BYTES = 5 * 1024 * 1024
MAX_ITEMS = 50_000
MAX_COORDINATE = 10_000.0
MAX_GA_CAPACITY = 200_000
MAX_PROBLEMS = 50
MAP_MARGIN = 40.0
SEAT_RADIUS = 5.0

COLUMNS = ("kind", "section_code", "section_name", "row", "number", "x", "y", "accessible",
           "capacity", "width", "height")
REQUIRED_COLUMNS = ("kind", "section_code", "x", "y")
KINDS = ("seat", "ga", "stage")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,19}$")
TRUE_WORDS = {"1", "true", "yes", "y"}
FALSE_WORDS = {"", "0", "false", "no", "n"}


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        if self.field:
            return _("Line %(line)s, field “%(field)s”: %(message)s") % {
                "line": self.line, "field": self.field, "message": self.message}
        return _("Line %(line)s: %(message)s") % {"line": self.line, "message": self.message}


class SeatMapError(Exception):
    """The file is not a valid seat map; ``problems`` says where (line and field) and why."""

    def __init__(self, problems: list[Problem], *, truncated: bool = False) -> None:
        self.problems = problems
        self.truncated = truncated
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class SeatSpec:
    section_code: str
    row: str
    number: str
    x: float
    y: float
    accessible: bool
    line: int


@dataclass(slots=True)
class SectionSpec:
    code: str
    name: str
    line: int
    seats: list[SeatSpec] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GASpec:
    code: str
    name: str
    capacity: int
    x: float
    y: float
    width: float
    height: float
    line: int


@dataclass(frozen=True, slots=True)
class StageSpec:
    label: str
    x: float
    y: float
    width: float
    height: float


@dataclass(slots=True)
class SeatMap:
    sections: list[SectionSpec]
    ga_areas: list[GASpec]
    stage: StageSpec | None
    width: int
    height: int

    @property
    def seat_count(self) -> int:
        return sum(len(s.seats) for s in self.sections)

    @property
    def ga_capacity(self) -> int:
        return sum(a.capacity for a in self.ga_areas)


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        # JSON items span several lines: a field's problem is reported on the field's own line.
        self.field_lines: dict[str, int] = {}

    def add(self, line: int, field_name: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS + 1:
            line = self.field_lines.get(field_name, line)
            self.problems.append(Problem(line, field_name, message))

    def raise_if_any(self) -> None:
        if self.problems:
            truncated = len(self.problems) > MAX_PROBLEMS
            raise SeatMapError(self.problems[:MAX_PROBLEMS], truncated=truncated)


def parse_seatmap(data: bytes, *, filename: str = "") -> SeatMap:
    """Parse a CSV or JSON seat map (chosen by file name, else by the first character)."""
    if len(data) > MAX_BYTES:
        raise SeatMapError([Problem(1, "", _("The file is larger than %(mb)s MB.")
                                    % {"mb": MAX_BYTES // (1024 * 1024)})])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SeatMapError([Problem(line, "", _("The file is not UTF-8 text."))]) from exc
    if not text.strip():
        raise SeatMapError([Problem(1, "", _("The file is empty."))])
    name = filename.lower()
    is_json = name.endswith(".json") or (not name.endswith(".csv")
                                         and text.lstrip().startswith(("{", "[")))
    items = _json_items(text) if is_json else _csv_items(text)
    return _build(items)


Item = tuple[int, dict[str, str], dict[str, int]]


def _csv_items(text: str) -> list[Item]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise SeatMapError([Problem(1, "", _("The CSV header cannot be read: %(error)s")
                                    % {"error": exc})]) from exc
    header = [h.strip().lower() for h in header]
    errors = _Collector()
    for column in REQUIRED_COLUMNS:
        if column not in header:
            errors.add(1, column, _("This column is missing from the header."))
    for column in header:
        if column and column not in COLUMNS:
            errors.add(1, column, _("Unknown column. Allowed columns: %(columns)s.")
                       % {"columns": ", ".join(COLUMNS)})
    if len(set(header)) != len(header):
        errors.add(1, "", _("A column appears twice in the header."))
    errors.raise_if_any()
    items: list[tuple[int, dict[str, str]]] = []
    try:
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(items) >= MAX_ITEMS:
                raise SeatMapError([Problem(line, "", _("Too many rows: at most %(max)s.")
                                            % {"max": MAX_ITEMS})])
            if len(values) > len(header):
                errors.add(line, "", _("This line has %(got)s values but the header has "
                                       "%(want)s columns.")
                           % {"got": len(values), "want": len(header)})
                continue
            items.append((line, {h: v.strip() for h, v in zip(header, values, strict=False)},
                          {}))
    except csv.Error as exc:
        errors.add(reader.line_num, "", _("Malformed CSV: %(error)s") % {"error": exc})
    errors.raise_if_any()
    if not items:
        raise SeatMapError([Problem(2, "", _("The file has a header but no rows."))])
    return items


class _LineDict(dict):
    """A JSON object that remembers the line its opening brace was on."""

    line = 1
    key_lines: dict[str, int] = {}


def _json_items(text: str) -> list[Item]:
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line_of(pos: int) -> int:
        return bisect.bisect_right(line_starts, pos)

    decoder = json.JSONDecoder()
    plain_parse_object = json.decoder.JSONObject

    def parse_object(s_and_end, *args):
        obj, end = plain_parse_object(s_and_end, *args)
        start = s_and_end[1] - 1
        lined = _LineDict(obj)
        lined.line = line_of(start)
        lined.key_lines = {}
        for key in obj:
            at = s_and_end[0].find(json.dumps(key), start, end)
            lined.key_lines[key] = line_of(at) if at >= 0 else lined.line
        return lined, end

    decoder.parse_object = parse_object
    # The C scanner ignores parse_object; the Python one honours it, which is what gives lines.
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    try:
        doc = decoder.decode(text)
    except json.JSONDecodeError as exc:
        raise SeatMapError([Problem(exc.lineno, "", _("Invalid JSON: %(error)s")
                                    % {"error": exc.msg})]) from exc
    except RecursionError as exc:
        raise SeatMapError([Problem(1, "", _("The JSON is nested too deeply."))]) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise SeatMapError([Problem(getattr(doc, "line", 1), "items",
                                    _("The JSON must be an object with an “items” list."))])
    unknown = sorted(set(doc) - {"items", "format", "name"})
    if unknown:
        raise SeatMapError([Problem(doc.line, unknown[0], _("Unknown key."))])
    raw_items = doc["items"]
    if len(raw_items) > MAX_ITEMS:
        raise SeatMapError([Problem(doc.line, "items", _("Too many rows: at most %(max)s.")
                                    % {"max": MAX_ITEMS})])
    errors = _Collector()
    items: list[Item] = []
    for raw in raw_items:
        line = getattr(raw, "line", doc.line)
        errors.field_lines = getattr(raw, "key_lines", {})
        if not isinstance(raw, dict):
            errors.add(line, "items", _("Each item must be an object."))
            continue
        row: dict[str, str] = {}
        for key, value in raw.items():
            if key not in COLUMNS:
                errors.add(line, key, _("Unknown field. Allowed fields: %(columns)s.")
                           % {"columns": ", ".join(COLUMNS)})
            elif isinstance(value, dict | list):
                errors.add(line, key, _("Must be a text, number or boolean value."))
            elif value is None:
                row[key] = ""
            elif isinstance(value, bool):
                row[key] = "true" if value else "false"
            else:
                row[key] = str(value).strip()
        items.append((line, row, errors.field_lines))
    errors.raise_if_any()
    if not items:
        raise SeatMapError([Problem(doc.line, "items", _("The “items” list is empty."))])
    return items


def _number(errors: _Collector, line: int, row: dict[str, str], name: str, *,
            positive: bool = False) -> float | None:
    raw = row.get(name, "")
    if raw == "":
        errors.add(line, name, _("This field is required."))
        return None
    try:
        value = float(raw)
    except ValueError:
        errors.add(line, name, _("“%(value)s” is not a number.") % {"value": raw[:40]})
        return None
    if not math.isfinite(value) or value < 0 or value > MAX_COORDINATE:
        errors.add(line, name, _("Must be between 0 and %(max)s.") % {"max": int(MAX_COORDINATE)})
        return None
    if positive and value == 0:
        errors.add(line, name, _("Must be greater than 0."))
        return None
    return value


def _text(errors: _Collector, line: int, row: dict[str, str], name: str, *, max_length: int,
          required: bool = True) -> str:
    value = row.get(name, "")
    if required and not value:
        errors.add(line, name, _("This field is required."))
    elif len(value) > max_length:
        errors.add(line, name, _("At most %(max)s characters.") % {"max": max_length})
    return value[:max_length]


def _code(errors: _Collector, line: int, row: dict[str, str]) -> str:
    code = row.get("section_code", "")
    if not code:
        errors.add(line, "section_code", _("This field is required."))
    elif not CODE_RE.match(code):
        errors.add(line, "section_code", _("Use 1–20 letters, digits, “-” or “_”, "
                                           "starting with a letter or digit."))
    return code


def _build(items: list[Item]) -> SeatMap:
    errors = _Collector()
    sections: dict[str, SectionSpec] = {}
    ga_areas: dict[str, GASpec] = {}
    code_lines: dict[str, tuple[str, int]] = {}
    seat_lines: dict[tuple[str, str, str], int] = {}
    positions: dict[tuple[int, int], int] = {}
    stage: StageSpec | None = None
    stage_line = 0

    for line, row, field_lines in items:
        errors.field_lines = field_lines
        kind = row.get("kind", "").lower()
        if kind not in KINDS:
            if kind:
                errors.add(line, "kind", _("Unknown kind “%(kind)s”; use seat, ga or stage.")
                           % {"kind": kind[:20]})
            else:
                errors.add(line, "kind", _("This field is required."))
            continue

        if kind == "stage":
            x = _number(errors, line, row, "x")
            y = _number(errors, line, row, "y")
            w = _number(errors, line, row, "width", positive=True)
            h = _number(errors, line, row, "height", positive=True)
            label = _text(errors, line, row, "section_name", max_length=60, required=False)
            if stage_line:
                errors.add(line, "kind", _("Only one stage is allowed (the first is on line "
                                           "%(line)s).") % {"line": stage_line})
            elif None not in (x, y, w, h):
                stage, stage_line = StageSpec(label or "STAGE", x, y, w, h), line
            continue

        code = _code(errors, line, row)
        previous = code_lines.get(code)
        if code and previous and previous[0] != kind:
            errors.add(line, "section_code",
                       _("Code “%(code)s” is already used by a %(other)s on line %(line)s.")
                       % {"code": code, "other": _("section") if previous[0] == "seat"
                          else _("general-admission area"), "line": previous[1]})
            continue
        if code and not previous:
            code_lines[code] = (kind, line)

        if kind == "ga":
            name = _text(errors, line, row, "section_name", max_length=100)
            capacity = _capacity(errors, line, row)
            x = _number(errors, line, row, "x")
            y = _number(errors, line, row, "y")
            w = _number(errors, line, row, "width", positive=True)
            h = _number(errors, line, row, "height", positive=True)
            if previous:
                errors.add(line, "section_code", _("General-admission area “%(code)s” is "
                                                   "already defined on line %(line)s.")
                           % {"code": code, "line": previous[1]})
            elif code and name and None not in (capacity, x, y, w, h):
                ga_areas[code] = GASpec(code, name, capacity, x, y, w, h, line)
            continue

        # kind == "seat"
        seat_row = _text(errors, line, row, "row", max_length=10)
        number = _text(errors, line, row, "number", max_length=10)
        x = _number(errors, line, row, "x")
        y = _number(errors, line, row, "y")
        accessible = _flag(errors, line, row)
        name = _text(errors, line, row, "section_name", max_length=100, required=False)
        for extra in ("capacity", "width", "height"):
            if row.get(extra):
                errors.add(line, extra, _("Only general-admission areas and the stage have "
                                          "this field."))
        if not code:
            continue
        section = sections.get(code)
        if section is None:
            section = sections[code] = SectionSpec(code, name or code, line)
        elif name and name != section.name:
            errors.add(line, "section_name",
                       _("Section “%(code)s” is named “%(name)s” on line %(line)s.")
                       % {"code": code, "name": section.name, "line": section.line})
        key = (code, seat_row.upper(), number.upper())
        if seat_row and number:
            if key in seat_lines:
                errors.add(line, "number", _("Duplicate seat: section %(code)s, row %(row)s, "
                                             "seat %(number)s is already on line %(line)s.")
                           % {"code": code, "row": seat_row, "number": number,
                              "line": seat_lines[key]})
                continue
            seat_lines[key] = line
        if x is None or y is None or not seat_row or not number or accessible is None:
            continue
        spot = (round(x), round(y))
        if spot in positions:
            errors.add(line, "x", _("Another seat is at the same position (line %(line)s).")
                       % {"line": positions[spot]})
            continue
        positions[spot] = line
        section.seats.append(SeatSpec(code, seat_row, number, x, y, accessible, line))

    errors.field_lines = {}
    if not errors.problems and not sections and not ga_areas:
        errors.add(items[0][0], "kind", _("The map has no seats and no general-admission "
                                          "areas."))
    errors.raise_if_any()

    right = [s.x + SEAT_RADIUS for sec in sections.values() for s in sec.seats]
    right += [a.x + a.width for a in ga_areas.values()]
    bottom = [s.y + SEAT_RADIUS for sec in sections.values() for s in sec.seats]
    bottom += [a.y + a.height for a in ga_areas.values()]
    if stage:
        right.append(stage.x + stage.width)
        bottom.append(stage.y + stage.height)
    return SeatMap(
        sections=list(sections.values()),
        ga_areas=list(ga_areas.values()),
        stage=stage,
        width=math.ceil(max(right) + MAP_MARGIN),
        height=math.ceil(max(bottom) + MAP_MARGIN),
    )


def _capacity(errors: _Collector, line: int, row: dict[str, str]) -> int | None:
    raw = row.get("capacity", "")
    if raw == "":
        errors.add(line, "capacity", _("This field is required."))
        return None
    try:
        value = int(raw)
    except ValueError:
        errors.add(line, "capacity", _("“%(value)s” is not a whole number.") % {"value": raw[:40]})
        return None
    if not 1 <= value <= MAX_GA_CAPACITY:
        errors.add(line, "capacity", _("Must be between 1 and %(max)s.") % {"max": MAX_GA_CAPACITY})
        return None
    return value


def _flag(errors: _Collector, line: int, row: dict[str, str]) -> bool | None:
    raw = row.get("accessible", "").lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    errors.add(line, "accessible", _("Use yes/no, true/false or 1/0."))
    return None


def to_csv(seatmap: SeatMap) -> str:
    """Write a seat map back in the CSV format (used to export a venue's map)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    if seatmap.stage:
        st = seatmap.stage
        writer.writerow(["stage", "", st.label, "", "", _num(st.x), _num(st.y), "", "",
                         _num(st.width), _num(st.height)])
    for sec in seatmap.sections:
        for seat in sec.seats:
            writer.writerow(["seat", sec.code, sec.name, seat.row, seat.number, _num(seat.x),
                             _num(seat.y), "yes" if seat.accessible else "", "", "", ""])
    for ga in seatmap.ga_areas:
        writer.writerow(["ga", ga.code, ga.name, "", "", _num(ga.x), _num(ga.y), "",
                         ga.capacity, _num(ga.width), _num(ga.height)])
    return out.getvalue()


def _num(value: Any) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")
