"""Reading and writing the behaviour log: bad lines, unknown types and fields, order."""

import io
import json

from smarttickets.risk import features as F
from smarttickets.risk import logio


def _line(**fields):
    base = {"ts": 1_700_000_000.0, "type": "login", "account": "a1", "session": "s1",
            "ip": "203.0.113.5", "device": "d1", "ua": "Mozilla/5.0", "success": True}
    base.update(fields)
    return json.dumps(base)


def test_malformed_lines_are_reported_with_line_numbers_and_skipped():
    # given a log with a broken JSON line, a non-object, a bad ts and a null account
    text = "\n".join([
        _line(),
        '{"ts": 1, "type": "login", ',
        "[1, 2, 3]",
        _line(ts="yesterday"),
        _line(type="hold", account=None),
        _line(ts=1_700_000_001.0),
    ]) + "\n"
    stats = logio.ReadStats()

    # when it is read
    events = list(logio.iter_events(io.StringIO(text), stats))

    # then the two good events survive and each bad line is named by number
    assert [e["ts"] for e in events] == [1_700_000_000.0, 1_700_000_001.0]
    assert stats.malformed == 4
    assert [lineno for lineno, _msg in stats.errors] == [2, 3, 4, 5]
    assert stats.errors[1][1] == "not a JSON object"
    assert stats.errors[2][1] == "`ts` must be a number"
    assert stats.lines == 6


def test_unknown_types_are_counted_and_unknown_fields_ignored():
    text = "\n".join([_line(type="mouse_dance"), _line(type="mouse_dance"),
                      _line(type="telepathy"), _line(extra_field={"x": 1})])
    stats = logio.ReadStats()

    events = list(logio.iter_events(io.StringIO(text), stats))

    assert len(events) == 1
    assert stats.unknown_types == {"mouse_dance": 2, "telepathy": 1}
    assert stats.malformed == 0
    assert "3 of unknown type" in stats.summary()


def test_write_then_read_round_trips(tmp_path):
    events = [json.loads(_line(ts=1_700_000_000.0 + i)) for i in range(3)]

    count = logio.write_events(events, tmp_path / "log.jsonl")
    again, stats = logio.read_events(tmp_path / "log.jsonl")

    assert count == 3
    assert again == events
    assert stats.events == 3


def test_features_do_not_depend_on_line_order(tiny_log):
    log_path, _labels = tiny_log
    events, _stats = logio.read_events(log_path)

    forward = F.extract(events)
    backward = F.extract(list(reversed(events)))

    assert forward.accounts == backward.accounts
    assert ((forward.X == backward.X) | (forward.X != forward.X)).all()


def test_check_fields_names_every_problem():
    clean, errors = logio.check_fields("hold", {"event_id": 7, "performance_id": "p",
                                                "quantity": -1, "success": "yes", "bogus": 1})

    assert clean["event_id"] == "7"
    assert errors == {"quantity": "must be a non-negative integer", "success": "must be a bool",
                      "bogus": "not a field of this event type"}


def test_labels_reader_reports_bad_rows(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("account,label,kind\na,1,bot\nb,x,fan\nc,0,fan\n")

    labels, kinds, errors = logio.read_labels(path)

    assert labels == {"a": 1, "c": 0}
    assert kinds == {"a": "bot", "c": "fan"}
    assert errors == [(3, "needs an account and a label of 0 or 1")]
