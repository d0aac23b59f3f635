"""The verifier names the first failing check; entries are validated; allocation and pass-down;
the standalone CLI."""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from smarttickets.lottery import draw

DRAW_PY = Path(draw.__file__)
GOLDEN = Path(__file__).parent / "golden"
SEED = hashlib.sha256(b"test seed").digest()
BEACON = {"source": "hk-mark-six", "draw": "25/001"}
BEACON_VALUE = b"1 2 3 4 5 6 + 7"


def make_objects(n: int = 40) -> list[dict]:
    return [{"entry_id": hashlib.sha256(b"e%d" % i).hexdigest()[:32], "weight": 1 + (i % 7 == 0),
             "seats": 1 + i % 3} for i in range(n)]


def make_draw(objects: list[dict], capacity: int = 15) -> dict:
    entries = draw.entries_from_objects(objects)
    commitment = draw.make_commitment(
        lottery_id="lot-verify", capacity=capacity, entries=entries,
        seed_commitment=draw.seed_commitment(SEED), beacon=BEACON,
        published_at="2025-05-01T10:00:00Z")
    return draw.build_result(commitment=commitment, entries=entries, seed_secret=SEED,
                             beacon_value=BEACON_VALUE)


@pytest.fixture
def published():
    objects = make_objects()
    return make_draw(objects), objects


def check_name(result, objects, **kwargs) -> str:
    with pytest.raises(draw.VerificationError) as info:
        draw.verify(result, objects, **kwargs)
    return info.value.check


def test_untouched_draw_verifies(published):
    result, objects = published

    summary = draw.verify(result, objects)

    assert summary == {"lottery_id": "lot-verify", "n_entries": 40, "capacity": 15,
                       "winners": len(result["winners"]), "waitlist": len(result["waitlist"]),
                       "seats_won": 15, "commitment_hash": result["commitment_hash"]}
    assert len(result["winners"]) + len(result["waitlist"]) == 40


def test_changed_entry_is_caught_by_entries_root(published):
    result, objects = published
    objects[3]["seats"] += 1
    assert check_name(result, objects) == "entries_root"


def test_dropped_entry_is_caught_by_entries_root(published):
    result, objects = published
    assert check_name(result, objects[:-1]) == "entries_root"


def test_added_entry_is_caught_by_entries_root(published):
    result, objects = published
    extra = {"entry_id": "f" * 32, "weight": 1, "seats": 1}
    assert check_name(result, [*objects, extra]) == "entries_root"


def test_altered_n_entries_is_caught(published):
    result, objects = published
    result["commitment"]["n_entries"] = 41
    assert check_name(result, objects) == "n_entries"


def test_altered_commitment_is_caught_by_commitment_hash(published):
    result, objects = published
    result["commitment"]["capacity"] = 16
    assert check_name(result, objects) == "commitment_hash"


def test_altered_commitment_hash_is_caught(published):
    result, objects = published
    result["commitment_hash"] = "0" * 64
    assert check_name(result, objects) == "commitment_hash"


def test_wrong_seed_is_caught(published):
    result, objects = published
    result["seed_secret"] = hashlib.sha256(b"another seed").hexdigest()
    assert check_name(result, objects) == "seed"


def test_wrong_beacon_value_is_caught_by_prk(published):
    result, objects = published
    result["beacon_value"] = b"1 2 3 4 5 6 + 8".hex()
    assert check_name(result, objects) == "prk"


def test_beacon_value_the_verifier_obtained_differently_is_caught(published):
    result, objects = published
    assert check_name(result, objects, expected_beacon_value=b"1 2 3 4 5 6 + 8") == "beacon"
    assert draw.verify(result, objects, expected_beacon_value=BEACON_VALUE)["winners"] > 0


def test_missing_beacon_value_is_caught(published):
    result, objects = published
    result["beacon_value"] = ""
    assert check_name(result, objects) == "beacon"


def test_altered_prk_is_caught(published):
    result, objects = published
    result["prk"] = hashlib.sha256(b"x").hexdigest()
    assert check_name(result, objects) == "prk"


def test_swapped_winners_are_caught(published):
    result, objects = published
    w = result["winners"]
    w[0], w[1] = w[1], w[0]
    with pytest.raises(draw.VerificationError) as info:
        draw.verify(result, objects)
    assert info.value.check == "winners"
    assert "winners[0]" in info.value.message


def test_winner_moved_to_waitlist_is_caught(published):
    result, objects = published
    result["waitlist"].insert(0, result["winners"].pop())
    assert check_name(result, objects) == "winners"


def test_reordered_waitlist_is_caught(published):
    result, objects = published
    result["waitlist"].reverse()
    assert check_name(result, objects) == "waitlist"


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: r.pop("prk"), "missing prk"),
    (lambda r: r["commitment"].update(algorithm="other-v2"), "algorithm"),
    (lambda r: r["commitment"].update(extra=1), "unexpected key 'extra'"),
    (lambda r: r["commitment"].update(capacity="15"), "capacity"),
    (lambda r: r.update(prk=r["prk"].upper()), "prk must be lowercase hex"),
    (lambda r: r.update(winners="abc"), "winners must be a list"),
])
def test_malformed_result_fails_the_format_check(published, mutate, message):
    result, objects = published
    mutate(result)
    with pytest.raises(draw.VerificationError) as info:
        draw.verify(result, objects)
    assert info.value.check == "format"
    assert message in info.value.message


def test_invalid_entries_fail_the_entries_check(published):
    result, objects = published
    objects[2]["entry_id"] = objects[2]["entry_id"].upper()
    with pytest.raises(draw.VerificationError) as info:
        draw.verify(result, objects)
    assert info.value.check == "entries"
    assert info.value.message.startswith("entries[2]: entry_id must be 32 lowercase hex")


def test_build_result_refuses_entries_or_seed_the_commitment_does_not_name(published):
    result, objects = published
    entries = draw.entries_from_objects(objects[:-1])
    with pytest.raises(draw.DrawError, match="not the ones the commitment names"):
        draw.build_result(commitment=result["commitment"], entries=entries, seed_secret=SEED,
                          beacon_value=BEACON_VALUE)
    with pytest.raises(draw.DrawError, match="does not match the commitment's seed_commitment"):
        draw.build_result(commitment=result["commitment"],
                          entries=draw.entries_from_objects(objects), seed_secret=bytes(32),
                          beacon_value=BEACON_VALUE)


# --- entries files ---------------------------------------------------------------------------

def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "entries.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


GOOD = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(("line", "message"), [
    ('{"entry_id":"0123456789ABCDEF0123456789abcdef","weight":1,"seats":1}',
     "entry_id must be 32 lowercase hex"),
    ('{"entry_id":"0123","weight":1,"seats":1}', "entry_id must be 32 lowercase hex"),
    ('{"entry_id":7,"weight":1,"seats":1}', "entry_id must be 32 lowercase hex"),
    (f'{{"entry_id":"{GOOD}","weight":0,"seats":1}}', "weight must be an integer from 1 to 65536"),
    (f'{{"entry_id":"{GOOD}","weight":65537,"seats":1}}', "weight must be an integer from 1"),
    (f'{{"entry_id":"{GOOD}","weight":"1","seats":1}}', "weight must be an integer"),
    (f'{{"entry_id":"{GOOD}","weight":1.0,"seats":1}}', "weight must be an integer"),
    (f'{{"entry_id":"{GOOD}","weight":1,"seats":0}}', "seats must be an integer of at least 1"),
    (f'{{"entry_id":"{GOOD}","weight":1,"seats":true}}', "seats must be an integer"),
    (f'{{"entry_id":"{GOOD}","weight":1}}', "missing seats"),
    (f'{{"entry_id":"{GOOD}","weight":1,"seats":1,"name":"x"}}', "unexpected key 'name'"),
    (f'{{"entry_id":"{GOOD}","weight":1,"seats":1,"seats":2}}', "key 'seats' appears twice"),
    ('["not an object"]', "an entry must be an object"),
    (f'{{"entry_id":"{GOOD}","weight":1,,"seats":1}}', "not valid JSON"),
])
def test_bad_entry_is_refused_naming_its_index_and_line(tmp_path, line, message):
    # given two good entries, then the bad one on line 4
    text = ('[\n{"entry_id":"00000000000000000000000000000001","seats":1,"weight":1},\n'
            '{"entry_id":"00000000000000000000000000000002","seats":1,"weight":1},\n'
            f"{line}\n]\n")

    with pytest.raises(draw.EntriesError) as info:
        draw.load_entries(write(tmp_path, text))

    assert info.value.index == 2
    assert info.value.line == 4
    assert str(info.value).startswith("entries[2] line 4: ")
    assert message in str(info.value)


def test_duplicate_entry_id_names_both_entries(tmp_path):
    text = (f'[\n{{"entry_id":"{GOOD}","seats":1,"weight":1}},\n'
            '{"entry_id":"00000000000000000000000000000001","seats":1,"weight":1},\n'
            f'{{"entry_id":"{GOOD}","seats":2,"weight":1}}\n]\n')

    with pytest.raises(draw.EntriesError) as info:
        draw.load_entries(write(tmp_path, text))

    assert str(info.value) == (f"entries[2] line 4: duplicate entry_id {GOOD} "
                               "(also at entries[0], line 2)")


@pytest.mark.parametrize(("data", "message"), [
    (b'{"entry_id": "x"}', "must be a JSON list"),
    (b"[] trailing", "unexpected data after the list"),
    (b"\xef\xbb\xbf[]", "byte order mark"),
    (b'["\xff"]', "not UTF-8"),
    (b"", "must be a JSON list"),
])
def test_entries_file_that_is_not_a_list_of_entries_is_refused(tmp_path, data, message):
    with pytest.raises(draw.EntriesError, match=message):
        draw.load_entries(write(tmp_path, data))


def test_unreadable_entries_file_is_refused(tmp_path):
    with pytest.raises(draw.EntriesError, match="cannot read the entries file"):
        draw.load_entries(tmp_path / "missing.json")


def test_canonical_pretty_and_reordered_files_give_the_same_entries(tmp_path):
    # given the same entries written three ways, in random order
    objects = make_objects(300)
    canonical = draw.dump_entries(draw.entries_from_objects(objects))
    pretty = json.dumps(list(reversed(objects)), indent=2).encode()
    spec_order = ("[" + ", ".join(
        f'{{"entry_id":"{o["entry_id"]}","weight":{o["weight"]},"seats":{o["seats"]}}}'
        for o in objects) + "]").encode()

    loaded = [draw.load_entries(write(tmp_path, data)) for data in (canonical, pretty, spec_order)]

    assert loaded[0] == loaded[1] == loaded[2] == draw.entries_from_objects(objects)
    assert loaded[0].entry_ids == sorted(o["entry_id"] for o in objects)


def test_fast_reader_handles_objects_split_across_read_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(draw, "_READ_BYTES", 1000)
    objects = make_objects(500)
    path = write(tmp_path, draw.dump_entries(draw.entries_from_objects(objects)))

    assert draw.load_entries(path) == draw.entries_from_objects(objects)


def test_empty_entries_file_is_allowed(tmp_path):
    assert len(draw.load_entries(write(tmp_path, " [ ]\n"))) == 0


# --- allocation and pass-down ----------------------------------------------------------------

def test_allocation_is_all_or_nothing_and_keeps_the_order():
    seats = {"a": 2, "b": 3, "c": 1, "d": 2, "e": 1}

    winners, waitlist = draw.allocate(["a", "b", "c", "d", "e"], seats, 4)

    # a takes 2 (2 left), b wants 3 and waits, c takes 1 (1 left), d wants 2 and waits, e takes 1
    assert winners == ["a", "c", "e"]
    assert waitlist == ["b", "d"]


def test_entries_after_the_seats_run_out_all_wait():
    winners, waitlist = draw.allocate([0, 1, 2, 3], [1, 1, 1, 1], 2)
    assert (winners, waitlist) == ([0, 1], [2, 3])


def test_pass_down_gives_freed_seats_down_the_waitlist_by_the_same_rule():
    # given winners a(2) c(1) e(1) of 4 seats and b(3), d(2), f(1) waiting, in that order
    seats = {"a": 2, "b": 3, "c": 1, "d": 2, "e": 1, "f": 1}

    winners, waitlist = draw.pass_down(winners=["a", "c", "e"], waitlist=["b", "d", "f"],
                                       seats=seats, capacity=4, lapsed={"a"})

    # a's 2 seats are free: b wants 3 (no), d wants 2 (yes); f keeps waiting
    assert winners == ["c", "e", "d"]
    assert waitlist == ["b", "f"]


def test_pass_down_never_takes_back_an_earlier_promotion():
    seats = {"w1": 1, "w2": 2, "x": 2, "y": 3}
    # first round: w1 lapses, 1 seat free, nobody fits (x wants 2, y wants 3)
    winners, waitlist = draw.pass_down(winners=["w1", "w2"], waitlist=["x", "y"], seats=seats,
                                       capacity=3, lapsed={"w1"})
    assert (winners, waitlist) == (["w2"], ["x", "y"])
    # second round: w2 lapses too, 3 free: x (2) comes first and fits; y (3) no longer fits
    winners, waitlist = draw.pass_down(winners=winners, waitlist=waitlist, seats=seats,
                                       capacity=3, lapsed={"w2"})
    assert (winners, waitlist) == (["x"], ["y"])


def test_pass_down_is_deterministic_and_refuses_non_winners():
    seats = {"a": 1, "b": 1, "c": 1}
    args = {"winners": ["a"], "waitlist": ["b", "c"], "seats": seats, "capacity": 1,
            "lapsed": {"a"}}
    assert draw.pass_down(**args) == draw.pass_down(**copy.deepcopy(args)) == (["b"], ["c"])
    with pytest.raises(draw.DrawError, match="only winners can lapse"):
        draw.pass_down(**{**args, "lapsed": {"b"}})


def test_pass_down_on_a_published_result_matches_the_draw_order(published):
    result, objects = published
    seats = {o["entry_id"]: o["seats"] for o in objects}
    lapsed = set(result["winners"][:2])

    winners, waitlist = draw.pass_down(winners=result["winners"], waitlist=result["waitlist"],
                                       seats=seats, capacity=15, lapsed=lapsed)

    assert winners[:len(result["winners"]) - 2] == result["winners"][2:]
    assert sum(seats[e] for e in winners) <= 15
    assert set(winners) | set(waitlist) == (set(result["winners"]) | set(result["waitlist"])) - lapsed
    promoted = winners[len(result["winners"]) - 2:]
    assert promoted == [e for e in result["waitlist"] if e in promoted]  # in waitlist order


# --- the standalone verifier -----------------------------------------------------------------

def test_draw_py_imports_only_the_standard_library():
    tree = ast.parse(DRAW_PY.read_text())
    modules = {alias.name.split(".")[0] for node in ast.walk(tree)
               if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0}
    # _sha2 is the standard library's SHA-2 module from Python 3.12 on (3.11 calls it _sha256)
    assert modules <= set(sys.stdlib_module_names) | {"__future__", "_sha2"}, modules


def run_verifier(*args: str | Path, cwd: Path | None = None, module: bool = False):
    cmd = [sys.executable, "-I"]
    cmd += ["-m", "smarttickets.lottery.draw"] if module else [str(cwd / "verify_draw.py")]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def test_cli_verifies_a_published_draw_as_a_lone_file(tmp_path):
    # given only the verifier file and the two published documents, outside the project
    shutil.copy(DRAW_PY, tmp_path / "verify_draw.py")

    done = run_verifier(GOLDEN / "g1000.result.json", GOLDEN / "g1000.entries.json", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "OK smarttickets-lottery-v1 lottery=golden-1000 entries=1000 winners=105 seats=250/250 "
        "waitlist=895 commitment=6158dc34943b418763d66f93687f56797a927a930603ebc025255828fdfdb6bc"]


def test_cli_names_the_failed_check_and_exits_1(tmp_path):
    shutil.copy(DRAW_PY, tmp_path / "verify_draw.py")
    result = json.loads((GOLDEN / "g1000.result.json").read_text())
    result["winners"][3], result["winners"][4] = result["winners"][4], result["winners"][3]
    (tmp_path / "tampered.json").write_text(json.dumps(result))

    done = run_verifier(tmp_path / "tampered.json", GOLDEN / "g1000.entries.json", cwd=tmp_path)

    assert done.returncode == 1
    assert done.stdout.startswith("FAILED check=winners: winners[3] is ")
    assert len(done.stdout.splitlines()) == 1


def test_cli_checks_an_independently_obtained_beacon_value(tmp_path):
    shutil.copy(DRAW_PY, tmp_path / "verify_draw.py")
    args = (GOLDEN / "g1000.result.json", GOLDEN / "g1000.entries.json", "--beacon-value")

    wrong = run_verifier(*args, "00" * 32, cwd=tmp_path)
    right = run_verifier(
        *args, "fe290beca10872ef2fb164d2aa4442de4566183ec51c56ff3cd603d930e54fdd", cwd=tmp_path)

    assert wrong.returncode == 1
    assert wrong.stdout.startswith("FAILED check=beacon:")
    assert right.returncode == 0


def test_cli_runs_as_a_module_and_reports_unreadable_files(tmp_path):
    ok = run_verifier(GOLDEN / "small.result.json", GOLDEN / "small.entries.json", module=True,
                      cwd=Path(draw.__file__).parents[2])
    missing = run_verifier(tmp_path / "nope.json", GOLDEN / "small.entries.json", module=True,
                           cwd=Path(draw.__file__).parents[2])

    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("OK smarttickets-lottery-v1 lottery=golden-small ")
    assert missing.returncode == 1
    assert missing.stdout.startswith("FAILED check=format: cannot read")


def test_dump_result_equals_canonical_json(published):
    result, _ = published
    assert draw.dump_result(result) == draw.canonical_bytes(result) + b"\n"
    odd = {**result, "winners": ['quote"d']}
    assert draw.dump_result(odd) == draw.canonical_bytes(odd) + b"\n"


def test_progress_reports_each_stage_up_to_its_total(tmp_path):
    calls = []

    draw.draw_file(entries_path=GOLDEN / "g1000.entries.json", lottery_id="p", capacity=10,
                   seed_secret=SEED, published_at="2025-01-01T00:00:00Z",
                   progress=lambda stage, done, total: calls.append((stage, done, total)))

    stages = list(dict.fromkeys(stage for stage, _, _ in calls))
    assert stages == ["parse", "merkle", "keys", "sort"]
    for stage in stages:
        mine = [(done, total) for s, done, total in calls if s == stage]
        assert [d for d, _ in mine] == sorted(d for d, _ in mine)
        assert mine[-1][0] == mine[-1][1]
    assert ("keys", 1000, 1000) in calls
