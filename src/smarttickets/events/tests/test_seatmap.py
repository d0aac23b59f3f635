"""Seat-map files: the parser names line and field of every problem; imports are all or nothing."""

import json

import pytest

from smarttickets.core import clock
from smarttickets.core.models import AuditEntry
from smarttickets.events import seatmap, services
from smarttickets.events.exceptions import InvalidSeatMap, SeatMapLocked
from smarttickets.events.models import GAArea, Seat, Section, Venue
from smarttickets.events.tests.factories import (
    EventFactory,
    OrganizerFactory,
    PriceZoneFactory,
    VenueFactory,
)

HEADER = "kind,section_code,section_name,row,number,x,y,accessible,capacity,width,height\n"
GOOD_CSV = HEADER + (
    "stage,,Main stage,,,100,10,,,200,40\n"
    "seat,A,Section A,1,1,50,100,,,,\n"
    "seat,A,Section A,1,2,62,100,yes,,,\n"
    "seat,B,Section B,1,1,250,100,no,,,\n"
    "ga,FLOOR,Standing floor,,,100,200,,500,150,60\n"
)


def problems_of(text: str, filename: str = "map.csv") -> list[tuple[int, str]]:
    with pytest.raises(seatmap.SeatMapError) as info:
        seatmap.parse_seatmap(text.encode(), filename=filename)
    return [(p.line, p.field) for p in info.value.problems]


def test_parse_csv_builds_sections_seats_areas_and_stage():
    parsed = seatmap.parse_seatmap(GOOD_CSV.encode(), filename="map.csv")

    assert [(s.code, s.name, len(s.seats)) for s in parsed.sections] == [
        ("A", "Section A", 2), ("B", "Section B", 1)]
    assert parsed.sections[0].seats[1].accessible is True
    assert parsed.ga_areas[0].capacity == 500
    assert parsed.stage == seatmap.StageSpec("Main stage", 100.0, 10.0, 200.0, 40.0)
    assert (parsed.width, parsed.height) == (340, 300)


def test_duplicate_seat_names_its_line_and_the_first_one():
    text = GOOD_CSV + "seat,A,Section A,1,2,80,100,,,,\n"

    with pytest.raises(seatmap.SeatMapError) as info:
        seatmap.parse_seatmap(text.encode(), filename="map.csv")

    (problem,) = info.value.problems
    assert (problem.line, problem.field) == (7, "number")
    assert "line 4" in problem.message


def test_invalid_values_each_name_line_and_field():
    text = HEADER + (
        "seat,A,,1,1,abc,100,,,,\n"           # x not a number
        "seat,A,,1,2,10,-5,,,,\n"             # y negative
        "seat,A,,,3,20,100,,,,\n"             # row missing
        "seat,A,,1,4,30,100,maybe,,,\n"       # accessible not a flag
        "seat,A B,,1,5,40,100,,,,\n"          # bad code
        "ga,G,Floor,,,0,200,,0,10,10\n"       # capacity 0
        "teleporter,X,,,,1,1,,,,\n"           # unknown kind
    )

    assert problems_of(text) == [(2, "x"), (3, "y"), (4, "row"), (5, "accessible"),
                                 (6, "section_code"), (7, "capacity"), (8, "kind")]


def test_code_used_by_a_section_and_a_standing_area_is_refused():
    text = HEADER + "seat,A,,1,1,10,10,,,,\nga,A,Floor,,,0,200,,10,10,10\n"

    assert problems_of(text) == [(3, "section_code")]


def test_missing_column_unknown_column_and_empty_files():
    assert problems_of("kind,section_code,x\nseat,A,1\n") == [(1, "y")]
    assert problems_of("kind,section_code,x,y,colour\n") == [(1, "colour")]
    assert problems_of(HEADER) == [(2, "")]
    assert problems_of("   \n") == [(1, "")]


def test_huge_files_are_refused_before_parsing():
    data = b"x" * (seatmap.MAX_BYTES + 1)

    with pytest.raises(seatmap.SeatMapError) as info:
        seatmap.parse_seatmap(data, filename="big.csv")

    assert "larger than 5 MB" in info.value.problems[0].message


def test_too_many_rows_names_the_first_line_over_the_cap(monkeypatch):
    monkeypatch.setattr(seatmap, "MAX_ITEMS", 3)
    text = HEADER + "".join(f"seat,A,,1,{n},{n * 12},10,,,,\n" for n in range(1, 5))

    assert problems_of(text) == [(5, "")]


def test_json_errors_name_the_line_of_the_item():
    doc = {"items": [
        {"kind": "seat", "section_code": "A", "row": "1", "number": "1", "x": 10, "y": 10},
        {"kind": "seat", "section_code": "A", "row": "1", "number": "2", "x": "far", "y": 10},
    ]}
    text = json.dumps(doc, indent=2)

    assert problems_of(text, "map.json") == [(16, "x")]  # the "x" key of item 2


def test_json_syntax_error_names_the_line():
    assert problems_of('{"items": [\n  {"kind": "seat",,}\n]}', "map.json") == [(2, "")]


def test_csv_round_trip_through_to_csv():
    parsed = seatmap.parse_seatmap(GOOD_CSV.encode(), filename="map.csv")

    again = seatmap.parse_seatmap(seatmap.to_csv(parsed).encode(), filename="map.csv")

    assert again.seat_count == 3
    assert again.ga_capacity == 500
    assert again.stage == parsed.stage


@pytest.mark.django_db
def test_create_venue_from_csv_writes_everything_and_an_audit_entry():
    organizer = OrganizerFactory()

    venue = services.create_venue(organizer=organizer, name="Star Hall", data=GOOD_CSV.encode(),
                                  filename="map.csv", actor=None, now=clock.now())

    assert venue.slug == "star-hall"
    assert list(venue.sections.values_list("code", "name")) == [("A", "Section A"),
                                                                ("B", "Section B")]
    assert Seat.objects.filter(section__venue=venue).count() == 3
    assert list(venue.ga_areas.values_list("code", "capacity")) == [("FLOOR", 500)]
    assert (venue.stage_label, venue.stage_width, venue.map_width) == ("Main stage", 200, 340)
    assert AuditEntry.objects.filter(action="events.venue.created",
                                     object_id=str(venue.pk)).count() == 1


@pytest.mark.django_db
def test_create_venue_from_json():
    doc = {"items": [
        {"kind": "seat", "section_code": "A", "section_name": "Stalls", "row": "1",
         "number": n, "x": 10 + 12 * n, "y": 50, "accessible": n == 1} for n in range(1, 4)
    ] + [{"kind": "ga", "section_code": "PIT", "section_name": "Pit", "capacity": 80, "x": 0,
          "y": 100, "width": 100, "height": 40}]}

    venue = services.create_venue(organizer=OrganizerFactory(), name="Json Hall",
                                  data=json.dumps(doc).encode(), filename="hall.json",
                                  actor=None, now=clock.now())

    assert Seat.objects.filter(section__venue=venue).count() == 3
    assert Seat.objects.filter(section__venue=venue, accessible=True).count() == 1
    assert venue.ga_areas.get().capacity == 80


@pytest.mark.django_db
def test_invalid_file_creates_nothing():
    organizer = OrganizerFactory()
    bad = GOOD_CSV + "seat,A,Section A,1,2,80,100,,,,\n"

    with pytest.raises(InvalidSeatMap) as info:
        services.create_venue(organizer=organizer, name="Broken", data=bad.encode(),
                              filename="map.csv", actor=None, now=clock.now())

    assert info.value.as_dict()["code"] == "invalid_seatmap"
    assert "Line 7" in info.value.as_dict()["fields"]["file"][0]
    assert Venue.objects.count() == 0
    assert Section.objects.count() == 0
    assert AuditEntry.objects.count() == 0


@pytest.mark.django_db
def test_replace_keeps_zone_choices_for_codes_that_remain():
    venue = VenueFactory()
    event = EventFactory(venue=venue, organizer=venue.organizer)
    zone = PriceZoneFactory(event=event, section_codes=["A", "B"])
    new_map = HEADER + "seat,A,Stalls A,1,1,10,10,,,,\nseat,C,Section C,1,1,50,10,,,,\n"

    services.replace_seatmap(venue=venue, data=new_map.encode(), filename="new.csv", actor=None,
                             now=clock.now())

    assert sorted(venue.sections.values_list("code", flat=True)) == ["A", "C"]
    assert list(zone.sections.values_list("code", flat=True)) == ["A"]
    assert Seat.objects.filter(section__venue=venue).count() == 2
    assert not GAArea.objects.filter(venue=venue).exists()


@pytest.mark.django_db
def test_replace_is_refused_once_the_venue_has_a_published_event():
    venue = VenueFactory()
    EventFactory(venue=venue, organizer=venue.organizer, state="published")
    seats_before = Seat.objects.filter(section__venue=venue).count()

    with pytest.raises(SeatMapLocked):
        services.replace_seatmap(venue=venue, data=GOOD_CSV.encode(), filename="m.csv",
                                 actor=None, now=clock.now())

    assert Seat.objects.filter(section__venue=venue).count() == seats_before == 20
    assert sorted(venue.sections.values_list("code", flat=True)) == ["A", "B"]
