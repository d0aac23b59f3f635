"""The verifiable lottery draw `smarttickets-lottery-v1`: kernel, public verifier and CLI.

Standard library only: this same file is published as ``verify_draw.py``. Anyone can run
``python verify_draw.py RESULT.json ENTRIES.json`` to recompute a published draw.

How it works (the exchange format is fixed; another implementation must match byte for byte):

* Entries ``{entry_id, weight, seats}`` are hashed into an RFC 6962 Merkle tree (leaves in
  ``entry_id`` order); its root goes into a commitment published before the randomness exists.
* ``prk = HMAC-SHA256(SHA-256(commitment canonical bytes), seed_secret || beacon_value)``.
* Each entry's key is the minimum over ``j < weight`` of
  ``HMAC-SHA256(prk, entry_id bytes || j as 2 bytes || 0x01)``; entries are ordered by
  ``(key, entry_id)``; seats are given all-or-nothing down that order, the rest wait in order.

The hot paths keep a million entries within seconds in pure Python: entries are three parallel
lists rather than an object each, files are read by a regular expression per block, and
hashing copies pre-keyed SHA-256 states (see docs/lottery.md for the figures).
"""

from __future__ import annotations

import argparse
import codecs
import hashlib
import hmac
import io
import json
import os
import re
import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import compress, islice, pairwise, repeat
from operator import lt, methodcaller, ne
from typing import Any, BinaryIO

try:  # CPython's built-in SHA-256 has a much cheaper constructor than OpenSSL's for short inputs
    from _sha256 import sha256 as _sha256  # Python ≤ 3.11
except ImportError:  # pragma: no cover - depends on the interpreter build
    try:
        from _sha2 import sha256 as _sha256  # Python ≥ 3.12
    except ImportError:
        _sha256 = hashlib.sha256

ALGORITHM = "smarttickets-lottery-v1"
MAX_WEIGHT = 65536  # j is encoded in 2 bytes
HEX_RE = re.compile(r"[0-9a-f]*")
ENTRY_ID_RE = re.compile(r"[0-9a-f]{32}")
COMMITMENT_KEYS = frozenset({"algorithm", "lottery_id", "capacity", "n_entries", "entries_root",
                             "seed_commitment", "beacon", "published_at"})
RESULT_KEYS = ("commitment", "commitment_hash", "seed_secret", "beacon_value", "prk", "winners",
               "waitlist")
# The order in which verify() runs its checks; the first failing one is named.
CHECKS = ("format", "entries", "entries_root", "n_entries", "commitment_hash", "seed", "beacon",
          "prk", "winners", "waitlist")
DRAND_QUICKNET = "drand-quicknet"

# Work is done in blocks: bounded temporary memory, progress reports, and (a power of two) whole
# Merkle subtrees per block.
BLOCK = 1 << 16
_READ_BYTES = 8 << 20
_JSON_WS = " \t\n\r"
_EMPTY_ROOT = hashlib.sha256(b"").digest()

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as long stages advance (stage names are stable)."""


class DrawError(ValueError):
    """Bad input to the draw (arguments, commitment or seed); the message names the problem."""


class EntriesError(DrawError):
    """An entries file or list that cannot be used; names the entry (index and line) at fault."""

    def __init__(self, message: str, *, index: int | None = None, line: int | None = None) -> None:
        where = []
        if index is not None:
            where.append(f"entries[{index}]")
        if line is not None:
            where.append(f"line {line}")
        super().__init__(f"{' '.join(where)}: {message}" if where else message)
        self.index = index
        self.line = line


class VerificationError(Exception):
    """A published draw that does not recompute; ``check`` is one of CHECKS."""

    def __init__(self, check: str, message: str) -> None:
        super().__init__(f"{check}: {message}")
        self.check = check
        self.message = message


def _noop(stage: str, done: int, total: int) -> None:
    return None


# --------------------------------------------------------------------------------------------
# Using every core (standard library only: fork and a pipe per helper process)

PARALLEL_MIN = 1 << 18
"""Below this many entries everything runs in the calling process."""


def workers_for(n: int) -> int:
    """How many processes share a stage over ``n`` entries: one per usable core, where the
    platform can fork (POSIX), once the work is big enough to repay a fork."""
    if n < PARALLEL_MIN or not hasattr(os, "fork"):
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8, n // (PARALLEL_MIN // 2)))


def _split(n: int, parts: int, align: int = 1) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges covering ``range(n)``; every cut a multiple of ``align``."""
    units = -(-n // align)
    cuts = [min(n, (units * k // parts) * align) for k in range(parts + 1)]
    return [(a, b) for a, b in pairwise(cuts) if a < b]


def _fork_map(fn: Callable[[int, int], bytes], ranges: Sequence[tuple[int, int]]) -> list[bytes]:
    """``[fn(a, b) for a, b in ranges]``, the first range in this process and each other one in
    a forked child that sends its bytes back through a pipe. A child that fails is redone here,
    so the result never depends on the parallelism (only the time does)."""
    if len(ranges) < 2 or not hasattr(os, "fork"):
        return [fn(a, b) for a, b in ranges]
    children = []
    for a, b in ranges[1:]:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which leaves through os._exit
            code = 1
            try:
                os.close(read_fd)
                data = fn(a, b)
                with os.fdopen(write_fd, "wb") as fh:
                    fh.write(len(data).to_bytes(8, "big"))
                    fh.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(write_fd)
        children.append((pid, read_fd, a, b))
    results = [fn(*ranges[0])]
    for pid, read_fd, a, b in children:
        with os.fdopen(read_fd, "rb") as fh:
            head = fh.read(8)
            data = fh.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or len(head) != 8 or int.from_bytes(head, "big") != len(data):
            data = fn(a, b)
        results.append(data)
    return results


# --------------------------------------------------------------------------------------------
# Entries


class Entries:
    """Validated entries, sorted by ``entry_id``, held column-wise (no object per entry)."""

    __slots__ = ("entry_ids", "seats", "weights")

    def __init__(self, entry_ids: list[str], weights: list[int], seats: list[int]) -> None:
        self.entry_ids = entry_ids
        self.weights = weights
        self.seats = seats

    def __len__(self) -> int:
        return len(self.entry_ids)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Entries) and (
            (self.entry_ids, self.weights, self.seats)
            == (other.entry_ids, other.weights, other.seats))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Entries n={len(self)}>"

    def index(self, entry_id: str) -> int:
        """Position of ``entry_id`` (entries are sorted, so this is a binary search)."""
        i = bisect_left(self.entry_ids, entry_id)
        if i == len(self.entry_ids) or self.entry_ids[i] != entry_id:
            raise KeyError(entry_id)
        return i

    def as_objects(self) -> list[dict[str, Any]]:
        return [{"entry_id": e, "weight": w, "seats": s}
                for e, w, s in zip(self.entry_ids, self.weights, self.seats, strict=True)]

    def seats_by_id(self) -> dict[str, int]:
        return dict(zip(self.entry_ids, self.seats, strict=True))


def check_entry(obj: Any) -> tuple[str, int, int]:
    """Validate one entry object; returns ``(entry_id, weight, seats)`` or raises DrawError."""
    if not isinstance(obj, Mapping):
        raise DrawError("an entry must be an object {entry_id, weight, seats}, "
                        f"got {type(obj).__name__}")
    missing = [k for k in ("entry_id", "weight", "seats") if k not in obj]
    if missing:
        raise DrawError(f"missing {', '.join(missing)}")
    extra = sorted(set(obj) - {"entry_id", "weight", "seats"})
    if extra:
        raise DrawError(f"unexpected key {extra[0]!r} (an entry has only entry_id, weight, seats)")
    entry_id, weight, seats = obj["entry_id"], obj["weight"], obj["seats"]
    if not isinstance(entry_id, str) or not ENTRY_ID_RE.fullmatch(entry_id):
        raise DrawError(f"entry_id must be 32 lowercase hex characters, got {_show(entry_id)}")
    if type(weight) is not int or not 1 <= weight <= MAX_WEIGHT:
        raise DrawError(f"weight must be an integer from 1 to {MAX_WEIGHT}, got {_show(weight)}")
    if type(seats) is not int or seats < 1:
        raise DrawError(f"seats must be an integer of at least 1, got {_show(seats)}")
    return entry_id, weight, seats


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False) if _jsonable(value) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def entries_from_objects(objects: Iterable[Mapping[str, Any]]) -> Entries:
    """Entries from Python objects (e.g. rows from the database); any order."""
    ids: list[str] = []
    weights: list[int] = []
    seats: list[int] = []
    for index, obj in enumerate(objects):
        try:
            e, w, s = check_entry(obj)
        except DrawError as exc:
            raise EntriesError(str(exc), index=index) from None
        ids.append(e)
        weights.append(w)
        seats.append(s)
    return _sorted_entries(ids, weights, seats, lambda i: (i, None))


def _sorted_entries(ids: list[str], weights: list[int], seats: list[int],
                    locate: Callable[[int], tuple[int, int | None]]) -> Entries:
    """Sort the columns by entry_id and refuse duplicates; ``locate`` maps a file position."""
    n = len(ids)
    # Strictly increasing means sorted and free of duplicates: the platform exports files
    # this way, so the common case costs one pass in C.
    if all(map(lt, ids, islice(ids, 1, None))):
        return Entries(ids, weights, seats)
    perm = sorted(range(n), key=ids.__getitem__)
    ids = list(map(ids.__getitem__, perm))
    if not all(map(lt, ids, islice(ids, 1, None))):
        k = next(k for k in range(n - 1) if ids[k] == ids[k + 1])
        first, second = sorted((perm[k], perm[k + 1]))
        index, line = locate(second)
        other = locate(first)
        also = f"entries[{other[0]}]" + (f", line {other[1]}" if other[1] is not None else "")
        raise EntriesError(f"duplicate entry_id {ids[k]} (also at {also})", index=index, line=line)
    return Entries(ids, list(map(weights.__getitem__, perm)), list(map(seats.__getitem__, perm)))


# Canonical files (one object per line, keys in either the spec's or sorted order) are read by a
# regular expression in C; anything else valid goes through the general JSON path, which is
# slower but gives the same entries and names the exact entry and line of any problem.
_FAST_PATTERNS = (
    (re.compile(r'\{"entry_id":"([0-9a-f]{32})","seats":([1-9][0-9]*),"weight":([1-9][0-9]{0,4})\}'),
     False),
    (re.compile(r'\{"entry_id":"([0-9a-f]{32})","weight":([1-9][0-9]{0,4}),"seats":([1-9][0-9]*)\}'),
     True),
)


def _open_source(source: str | os.PathLike[str] | bytes) -> BinaryIO:
    if isinstance(source, bytes | bytearray):
        return io.BytesIO(source)
    return open(source, "rb")


def load_entries(source: str | os.PathLike[str] | bytes, *,
                 progress: Progress | None = None) -> Entries:
    """Read and validate an entries file (a path, or the file's bytes)."""
    progress = progress or _noop
    try:
        with _open_source(source) as fh:
            fast = _parse_fast(fh, progress)
    except OSError as exc:
        raise EntriesError(f"cannot read the entries file: {exc.strerror or exc}") from None
    if fast is not None:
        ids, weights, seats = fast
        try:
            return _sorted_entries(ids, weights, seats, lambda i: (i, None))
        except EntriesError:
            pass  # reread below to name the line
    with _open_source(source) as fh:
        data = fh.read()
    return _parse_general(data, progress)


def _parse_fast(fh: BinaryIO, progress: Progress) -> tuple[list[str], list[int], list[int]] | None:
    ids: list[str] = []
    weights: list[int] = []
    seats: list[int] = []
    decoder = codecs.getincrementaldecoder("utf-8")()
    strip = methodcaller("strip", _JSON_WS)
    pattern = None
    weight_first = False
    pending = ""  # text between the last object matched and the next one
    tail = ""
    done_bytes = 0
    total_bytes = _size_of(fh)
    while True:
        block = fh.read(_READ_BYTES)
        try:
            text = tail + decoder.decode(block, final=not block)
        except UnicodeDecodeError:
            return None
        if block:
            # Cut after the last "}" so that no object straddles two pieces; an unusual file
            # cut elsewhere simply fails the separator check below and takes the general path.
            cut = text.rfind("}") + 1
            if cut == 0 and len(text) < 4 * _READ_BYTES:
                tail = text
                continue
            cut = cut or len(text)
            piece, tail = text[:cut], text[cut:]
        else:
            piece, tail = text, ""
        if pattern is None:
            start = piece.find("{")
            for candidate, wf in _FAST_PATTERNS:
                if start >= 0 and candidate.match(piece, start):
                    pattern, weight_first = candidate, wf
                    break
            else:
                if block:
                    return None
                if (pending + piece).strip(_JSON_WS) == "[]":
                    return ids, weights, seats
                return None
        parts = pattern.split(piece)
        seps = parts[0::4]
        seps[0] = pending + seps[0]
        pending = seps.pop()
        if seps:
            first = seps[0].strip(_JSON_WS)
            if first != ("[" if not ids else ","):
                return None
            # Separators repeat (",\n" nearly always): check each distinct one once.
            if len(seps) > 1 and set(map(strip, set(seps[1:]))) != {","}:
                return None
            ids.extend(parts[1::4])
            a, b = (parts[2::4], parts[3::4]) if weight_first else (parts[3::4], parts[2::4])
            weights.extend(map({v: int(v) for v in set(a)}.__getitem__, a))
            seats.extend(map({v: int(v) for v in set(b)}.__getitem__, b))
        done_bytes += len(block)
        progress("parse", done_bytes, total_bytes)
        if not block:
            break
    if not ids or pending.strip(_JSON_WS) != "]":
        return None
    if max(weights) > MAX_WEIGHT:
        return None
    return ids, weights, seats


def _size_of(fh: BinaryIO) -> int:
    try:
        return os.fstat(fh.fileno()).st_size
    except (OSError, AttributeError, ValueError):
        return len(fh.getbuffer()) if hasattr(fh, "getbuffer") else 0


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DrawError(f"key {key!r} appears twice in one entry")
            seen.add(key)
    return obj


def parse_entries(data: bytes | str, *, progress: Progress | None = None) -> Entries:
    """Parse and validate the text of an entries file."""
    return _parse_general(data, progress or _noop)


def _parse_general(data: bytes | str, progress: Progress) -> Entries:
    if isinstance(data, bytes | bytearray):
        if data.startswith(codecs.BOM_UTF8):
            raise EntriesError("the entries file starts with a byte order mark; "
                               "save it as UTF-8 without BOM")
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EntriesError(f"the entries file is not UTF-8 (byte {exc.start})") from None
    else:
        text = data
    decoder = json.JSONDecoder(object_pairs_hook=_reject_duplicate_keys)

    def line_at(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    ws = re.compile(r"[ \t\n\r]*")
    pos = ws.match(text, 0).end()
    if not text.startswith("[", pos):
        raise EntriesError("the entries file must be a JSON list of "
                           "{entry_id, weight, seats} objects", line=line_at(pos))
    pos = ws.match(text, pos + 1).end()
    ids: list[str] = []
    weights: list[int] = []
    seats: list[int] = []
    starts = array("Q")
    total = len(text)
    if text.startswith("]", pos):
        pos += 1
    else:
        while True:
            index = len(ids)
            try:
                obj, end = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as exc:
                raise EntriesError(f"not valid JSON: {exc.msg} (column {exc.colno})",
                                   index=index, line=exc.lineno) from None
            except (DrawError, ValueError) as exc:
                raise EntriesError(str(exc), index=index, line=line_at(pos)) from None
            try:
                e, w, s = check_entry(obj)
            except DrawError as exc:
                raise EntriesError(str(exc), index=index, line=line_at(pos)) from None
            ids.append(e)
            weights.append(w)
            seats.append(s)
            starts.append(pos)
            if index % BLOCK == 0:
                progress("parse", end, total)
            pos = ws.match(text, end).end()
            if text.startswith(",", pos):
                pos = ws.match(text, pos + 1).end()
                continue
            if text.startswith("]", pos):
                pos += 1
                break
            raise EntriesError("expected ',' or ']' after an entry", index=index,
                               line=line_at(pos))
    if ws.match(text, pos).end() != len(text):
        raise EntriesError("unexpected data after the list of entries", line=line_at(pos))
    progress("parse", total, total)
    return _sorted_entries(ids, weights, seats, lambda i: (i, line_at(starts[i])))


def dump_entries(entries: Entries) -> bytes:
    """The canonical entries file: one object per line, keys sorted, entry_id order."""
    if not len(entries):
        return b"[]\n"
    fmt = '{{"entry_id":"{}","seats":{},"weight":{}}}'.format
    body = ",\n".join(map(fmt, entries.entry_ids, entries.seats, entries.weights))
    return ("[\n" + body + "\n]\n").encode()


# --------------------------------------------------------------------------------------------
# RFC 6962 Merkle tree


def leaf_bytes(lottery_id: str, entry_id: str, weight: int, seats: int) -> bytes:
    return f"v1|{lottery_id}|{entry_id}|{weight}|{seats}".encode()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _next_level(level: list[bytes]) -> list[bytes]:
    # Pairing neighbours and carrying an odd last node up unchanged builds exactly RFC 6962's
    # tree (split at the largest power of two), without recursion. Copying a hasher that has
    # already taken the 0x01 prefix is the cheapest way to hash many nodes in CPython.
    nxt: list[bytes] = []
    append = nxt.append
    fresh = _sha256(b"\x01").copy
    for left, right in zip(level[0::2], level[1::2], strict=False):
        h = fresh()
        h.update(left)
        h.update(right)
        append(h.digest())
    if len(level) & 1:
        append(level[-1])
    return nxt


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (``leaf_hash`` of each), level by level."""
    level = list(leaf_hashes)
    if not level:
        return _EMPTY_ROOT
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


class MerkleTree:
    """All levels of the tree, to hand out inclusion proofs (receipts)."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        self.levels = [list(leaf_hashes)]
        while len(self.levels[-1]) > 1:
            self.levels.append(_next_level(self.levels[-1]))

    @property
    def size(self) -> int:
        return len(self.levels[0])

    @property
    def root(self) -> bytes:
        return self.levels[-1][0] if self.size else _EMPTY_ROOT

    def proof(self, index: int) -> list[bytes]:
        """RFC 6962 audit path for leaf ``index``, leaf to root."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is not in a tree of {self.size}")
        path = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index >>= 1
        return path


def verify_inclusion(*, leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes],
                     root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf ``index`` in the tree with ``root``?"""
    if not 0 <= index < tree_size:
        return False
    fn, sn, r = index, tree_size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and hmac.compare_digest(r, root)


def leaf_hashes(lottery_id: str, entries: Entries, start: int = 0,
                stop: int | None = None) -> list[bytes]:
    """Hashed leaves (0x00 prefix included) of ``entries[start:stop]``."""
    out: list[bytes] = []
    append = out.append
    sha = _sha256
    e = entries
    # A plain loop with an f-string beats map() chains here: the formatting is one opcode.
    for entry_id, weight, seats in zip(e.entry_ids[start:stop], e.weights[start:stop],
                                       e.seats[start:stop], strict=True):
        append(sha(f"\x00v1|{lottery_id}|{entry_id}|{weight}|{seats}".encode()).digest())
    return out


def entries_root(lottery_id: str, entries: Entries, *, progress: Progress | None = None) -> str:
    """Hex MTH of the entries' leaves. Works block by block to keep memory flat."""
    progress = progress or _noop
    n = len(entries)
    ranges = _split(n, workers_for(n), BLOCK)
    share = n / (ranges[0][1] or 1) if ranges else 1

    def block_roots(start: int, stop: int) -> bytes:
        roots = []
        for a in range(start, stop, BLOCK):
            roots.append(merkle_root(leaf_hashes(lottery_id, entries, a, min(a + BLOCK, stop))))
            if start == 0:  # only this process reports; helpers share its terminal
                progress("merkle", min(n, int(min(a + BLOCK, stop) * share)), n)
        return b"".join(roots)

    joined = b"".join(_fork_map(block_roots, ranges))
    # Every block but the last is a full power-of-two subtree, so combining block roots level
    # by level gives the same tree as hashing all leaves level by level; processes split the
    # work at block boundaries, so that holds whatever the number of processes.
    return merkle_root([joined[i:i + 32] for i in range(0, len(joined), 32)]).hex()


def make_tree(lottery_id: str, entries: Entries) -> MerkleTree:
    return MerkleTree(leaf_hashes(lottery_id, entries))


def receipt(lottery_id: str, entries: Entries, entry_id: str,
            tree: MerkleTree | None = None) -> dict[str, Any]:
    """An entrant's receipt: its leaf bytes and its inclusion proof against the entries root."""
    index = entries.index(entry_id)
    tree = tree or make_tree(lottery_id, entries)
    leaf = leaf_bytes(lottery_id, entry_id, entries.weights[index], entries.seats[index])
    return {"leaf": leaf.decode(), "leaf_index": index, "tree_size": tree.size,
            "proof": [p.hex() for p in tree.proof(index)], "entries_root": tree.root.hex()}


def verify_receipt(receipt: Mapping[str, Any], entries_root_hex: str | None = None) -> bool:
    """Check a receipt; against a published root when given, else its own."""
    try:
        root = bytes.fromhex(entries_root_hex or receipt["entries_root"])
        proof = [bytes.fromhex(p) for p in receipt["proof"]]
        return verify_inclusion(leaf_hash=leaf_hash(receipt["leaf"].encode()),
                                index=int(receipt["leaf_index"]),
                                tree_size=int(receipt["tree_size"]), proof=proof, root=root)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False


# --------------------------------------------------------------------------------------------
# Commitment


def canonical_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def commitment_hash(commitment: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(commitment)).hexdigest()


def seed_commitment(seed_secret: bytes) -> str:
    return hashlib.sha256(seed_secret).hexdigest()


def parse_timestamp(value: str) -> str:
    """Normalise an ISO 8601 UTC timestamp to ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise DrawError(f"published_at must be an ISO 8601 UTC timestamp such as "
                        f"2025-03-01T12:00:00Z, got {_show(value)}") from None
    offset = moment.utcoffset()
    if offset is None or offset.total_seconds() != 0:
        raise DrawError(f"published_at must be in UTC (end with Z or +00:00), got {_show(value)}")
    moment = moment.astimezone(UTC)
    fraction = f".{moment.microsecond:06d}" if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def check_beacon(beacon: Any) -> None:
    """A beacon is null or an object with a ``source``; drand quicknet names its round."""
    if beacon is None:
        return
    if not isinstance(beacon, dict) or not isinstance(beacon.get("source"), str) \
            or not beacon["source"]:
        raise DrawError(f"beacon must be null or an object with a source, got {_show(beacon)}")
    if beacon["source"] == DRAND_QUICKNET:
        rnd = beacon.get("round")
        if type(rnd) is not int or rnd < 1:
            raise DrawError(f"a drand-quicknet beacon needs a round number, got {_show(beacon)}")


def check_beacon_value(beacon: Any, beacon_value: bytes) -> None:
    if beacon is None:
        if beacon_value:
            raise DrawError("the commitment names no beacon, so beacon_value must be empty")
        return
    if not beacon_value:
        raise DrawError(f"the commitment names a beacon ({beacon.get('source')}); "
                        "its value is required")
    if beacon.get("source") == DRAND_QUICKNET and len(beacon_value) != 32:
        raise DrawError("a drand-quicknet beacon value is the round's 32-byte randomness, "
                        f"got {len(beacon_value)} bytes")


def make_commitment(*, lottery_id: str, capacity: int, entries: Entries, seed_commitment: str,
                    beacon: dict[str, Any] | None, published_at: str,
                    root: str | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """The commitment published when entries close (before the beacon value exists)."""
    if not isinstance(lottery_id, str) or not lottery_id:
        raise DrawError("lottery_id must be a non-empty string")
    if type(capacity) is not int or capacity < 1:
        raise DrawError(f"capacity must be an integer of at least 1, got {_show(capacity)}")
    if not isinstance(seed_commitment, str) or len(seed_commitment) != 64 \
            or not HEX_RE.fullmatch(seed_commitment):
        raise DrawError("seed_commitment must be 64 lowercase hex characters")
    check_beacon(beacon)
    return {
        "algorithm": ALGORITHM,
        "lottery_id": lottery_id,
        "capacity": capacity,
        "n_entries": len(entries),
        "entries_root": root or entries_root(lottery_id, entries, progress=progress),
        "seed_commitment": seed_commitment,
        "beacon": beacon,
        "published_at": parse_timestamp(published_at),
    }


# --------------------------------------------------------------------------------------------
# Draw


def compute_prk(commitment: Mapping[str, Any], seed_secret: bytes, beacon_value: bytes) -> bytes:
    key = hashlib.sha256(canonical_bytes(commitment)).digest()
    return hmac.digest(key, seed_secret + beacon_value, "sha256")


def entry_key(prk: bytes, entry_id: str, weight: int) -> bytes:
    """``min over j < weight`` of HMAC-SHA256(prk, id || j (2 bytes) || 0x01)."""
    idb = bytes.fromhex(entry_id)
    return min(hmac.digest(prk, idb + j.to_bytes(2, "big") + b"\x01", "sha256")
               for j in range(weight))


def _hmac_pads(prk: bytes) -> tuple[Any, Any]:
    """Hashers that have absorbed HMAC's inner and outer key blocks (RFC 2104); copying them
    makes each HMAC two SHA-256 compressions, about twice as fast as hmac.digest here."""
    key = prk if len(prk) <= 64 else hashlib.sha256(prk).digest()
    key = key.ljust(64, b"\x00")
    return _sha256(bytes(b ^ 0x36 for b in key)), _sha256(bytes(b ^ 0x5C for b in key))


def entry_keys(prk: bytes, entries: Entries, *, progress: Progress | None = None,
               start: int = 0, stop: int | None = None) -> list[bytes]:
    """The keys of ``entries[start:stop]`` (every entry by default), in entry_id order."""
    return _keys(prk, entries, progress, start, stop, positions=False)


def _keys(prk: bytes, entries: Entries, progress: Progress | None, start: int,
          stop: int | None, *, positions: bool) -> list[bytes]:
    """Keys of ``entries[start:stop]``; with ``positions``, each followed by the entry's
    position as _POS big-endian bytes (one object per entry instead of two)."""
    progress = progress or _noop
    inner, outer = _hmac_pads(prk)
    new_inner, new_outer, unhex = inner.copy, outer.copy, bytes.fromhex
    n = len(entries)
    stop = n if stop is None else min(stop, n)
    ids = entries.entry_ids
    share = n / ((stop - start) or 1)
    keys: list[bytes] = []
    append = keys.append
    j0 = b"\x00\x00\x01"  # j = 0, then HKDF-Expand's block counter
    for a in range(start, stop, BLOCK):
        b = min(a + BLOCK, stop)
        if positions:
            for entry_id, pos in zip(ids[a:b], range(a, b), strict=True):
                h = new_inner()
                h.update(unhex(entry_id) + j0)
                o = new_outer()
                o.update(h.digest())
                append(o.digest() + pos.to_bytes(_POS, "big"))
        else:
            for entry_id in ids[a:b]:
                h = new_inner()
                h.update(unhex(entry_id) + j0)
                o = new_outer()
                o.update(h.digest())
                append(o.digest())
        progress("keys", min(n, int((b - start) * share)), n)
    weights = entries.weights[start:stop]
    if weights.count(1) != len(weights):
        for i in compress(range(len(weights)), map(ne, weights, repeat(1))):
            idb = unhex(ids[start + i])
            best = keys[i][:32]
            for j in range(1, weights[i]):
                h = new_inner()
                h.update(idb + j.to_bytes(2, "big") + b"\x01")
                o = new_outer()
                o.update(h.digest())
                best = min(best, o.digest())
            keys[i] = best + keys[i][32:]
    return keys


_POS = 4  # bytes of position appended to a key when processes share the draw


def _positions(joined: bytes, width: int) -> list[int]:
    """The big-endian positions that end each ``width``-byte item of ``joined``, decoded by
    strided slices (C loops) into native 32-bit integers rather than one int.from_bytes call
    per item."""
    count = len(joined) // width
    native = bytearray(_POS * count)
    for k in range(_POS):  # byte k of each position, most significant first
        target = _POS - 1 - k if sys.byteorder == "little" else k
        native[target::_POS] = joined[width - _POS + k::width]
    positions = array("I")
    if positions.itemsize != _POS:  # pragma: no cover - no such CPython platform in use
        positions = array("L")
        if positions.itemsize != _POS:
            return [int.from_bytes(joined[i + width - _POS:i + width], "big")
                    for i in range(0, len(joined), width)]
    positions.frombytes(native)
    return positions.tolist()


def draw_order(prk: bytes, entries: Entries, *, progress: Progress | None = None) -> list[int]:
    """Entry positions sorted by ``(key, entry_id)``."""
    n = len(entries)
    ranges = _split(n, workers_for(n))
    if len(ranges) < 2:
        keys = entry_keys(prk, entries, progress=progress)
        if progress:
            progress("sort", 0, n)
        # Positions are in entry_id order and the sort is stable, so equal keys fall back to
        # entry_id order as the spec requires; big-endian comparison is bytes comparison.
        order = sorted(range(n), key=keys.__getitem__)
        if progress:
            progress("sort", n, n)
        return order

    def sorted_run(start: int, stop: int) -> bytes:
        # key || position (big-endian): sorting these bytes sorts by (key, entry_id), since
        # positions follow entry_id order.
        items = _keys(prk, entries, progress if start == 0 else None, start, stop,
                      positions=True)
        items.sort()
        return b"".join(items)

    runs = _fork_map(sorted_run, ranges)
    if progress:
        progress("sort", 0, n)
    width = 32 + _POS
    items: list[bytes] = []
    while runs:
        run = runs.pop(0)
        items.extend(run[i:i + width] for i in range(0, len(run), width))
        del run
    items.sort()  # already sorted runs: the sort only merges them
    joined = b"".join(items)
    del items  # the largest structure here: free it before the order list exists
    order = _positions(joined, width)
    if progress:
        progress("sort", n, n)
    return order


def allocate(order: Iterable[Any], seats: Sequence[int] | Mapping[Any, int],
             capacity: int) -> tuple[list[Any], list[Any]]:
    """All-or-nothing seats down the order; returns (winners, waitlist) as given in ``order``
    (positions, with ``seats`` a list; or entry ids, with ``seats`` a mapping)."""
    remaining = capacity
    winners: list[Any] = []
    waitlist: list[Any] = []
    it = iter(order)
    for i in it:
        s = seats[i]
        if s <= remaining:
            winners.append(i)
            remaining -= s
            if remaining == 0:
                break
        else:
            waitlist.append(i)
    waitlist.extend(it)
    return winners, waitlist


def pass_down(*, winners: Sequence[str], waitlist: Sequence[str], seats: Mapping[str, int],
              capacity: int, lapsed: Collection[str]) -> tuple[list[str], list[str]]:
    """Give lapsed winners' seats down the waiting list, in order, by the allocation rule.

    Winners who did not lapse keep their seats (they may already have paid), so this is not a
    second draw: the freed seats go to the first waiting entries that fit, all or nothing.
    Returns the new (winners, waitlist); lapsed entries leave both lists. Call it again with
    its own output when more winners lapse: a promotion is never taken back.
    """
    lapsed = set(lapsed)
    unknown = lapsed.difference(winners)
    if unknown:
        raise DrawError(f"only winners can lapse; not a winner: {sorted(unknown)[0]}")
    kept = [e for e in winners if e not in lapsed]
    remaining = capacity - sum(seats[e] for e in kept)
    if remaining < 0:
        raise DrawError("the winners hold more seats than the capacity")
    promoted, waiting = allocate(waitlist, seats, remaining) if remaining else ([], list(waitlist))
    return kept + list(promoted), list(waiting)


def _draw(commitment: Mapping[str, Any], entries: Entries, seed_secret: bytes,
          beacon_value: bytes, progress: Progress | None) -> dict[str, Any]:
    prk = compute_prk(commitment, seed_secret, beacon_value)
    winners, waitlist = allocate(draw_order(prk, entries, progress=progress), entries.seats,
                                 commitment["capacity"])
    ids = entries.entry_ids
    return {
        "commitment": dict(commitment),
        "commitment_hash": commitment_hash(commitment),
        "seed_secret": seed_secret.hex(),
        "beacon_value": beacon_value.hex(),
        "prk": prk.hex(),
        "winners": list(map(ids.__getitem__, winners)),
        "waitlist": list(map(ids.__getitem__, waitlist)),
    }


def _check_seed(seed_secret: bytes, commitment: Mapping[str, Any]) -> None:
    if not isinstance(seed_secret, bytes) or len(seed_secret) != 32:
        raise DrawError("seed_secret must be exactly 32 bytes")
    if not hmac.compare_digest(seed_commitment(seed_secret), commitment["seed_commitment"]):
        raise DrawError("seed_secret does not match the commitment's seed_commitment")


def build_result(*, commitment: Mapping[str, Any], entries: Entries, seed_secret: bytes,
                 beacon_value: bytes = b"", progress: Progress | None = None) -> dict[str, Any]:
    """Run the draw for a published commitment; refuses entries or a seed it does not commit to."""
    _check_commitment(commitment, DrawError)
    root = entries_root(commitment["lottery_id"], entries, progress=progress)
    if root != commitment["entries_root"] or len(entries) != commitment["n_entries"]:
        raise DrawError("these entries are not the ones the commitment names "
                        f"(root {root}, {len(entries)} entries)")
    _check_seed(seed_secret, commitment)
    check_beacon_value(commitment["beacon"], beacon_value)
    return _draw(commitment, entries, seed_secret, beacon_value, progress)


def draw_file(*, entries_path: str | os.PathLike[str], lottery_id: str, capacity: int,
              seed_secret: bytes, published_at: str, beacon: dict[str, Any] | None = None,
              beacon_value: bytes = b"", out_path: str | os.PathLike[str] | None = None,
              progress: Progress | None = None) -> dict[str, Any]:
    """Commit to an entries file and draw it in one go (for tools, demos and benchmarks).

    In production the commitment is published first and the draw runs once the beacon value
    exists; this shortcut is the same computation.
    """
    if not isinstance(seed_secret, bytes) or len(seed_secret) != 32:
        raise DrawError("seed_secret must be exactly 32 bytes (64 hex characters)")
    entries = load_entries(entries_path, progress=progress)
    commitment = make_commitment(lottery_id=lottery_id, capacity=capacity, entries=entries,
                                 seed_commitment=seed_commitment(seed_secret), beacon=beacon,
                                 published_at=published_at, progress=progress)
    check_beacon_value(beacon, beacon_value)
    result = _draw(commitment, entries, seed_secret, beacon_value, progress)
    if out_path is not None:
        write_result(result, out_path, _trusted=True)  # ids come from validated entries
    return result


def _result_pieces(result: Mapping[str, Any], trusted: bool) -> Iterable[bytes]:
    if not trusted:
        lists = (result["waitlist"], result["winners"])
        joined = "".join(lists[0]) + "".join(lists[1])
        if set(result) != set(RESULT_KEYS) or not HEX_RE.fullmatch(joined) \
                or len(joined) != 32 * (len(lists[0]) + len(lists[1])):
            yield canonical_bytes(dict(result)) + b"\n"
            return
    head = {k: v for k, v in result.items() if k not in ("winners", "waitlist")}
    yield canonical_bytes(head)[:-1]
    # Entry ids are validated hex, so the lists are quoted and joined directly: the same bytes
    # json.dumps would give, in a fraction of the time and memory on millions of ids.
    for key in ("waitlist", "winners"):  # sorted key order, after every key of head
        ids = result[key]
        yield b',"' + key.encode() + b'":['
        for start in range(0, len(ids), BLOCK):
            sep = b"," if start else b""
            yield sep + ('"' + '","'.join(ids[start:start + BLOCK]) + '"').encode()
        yield b"]"
    yield b"}\n"


def dump_result(result: Mapping[str, Any]) -> bytes:
    """The result document's bytes: canonical JSON (as for the commitment) and a newline."""
    return b"".join(_result_pieces(result, trusted=False))


def write_result(result: Mapping[str, Any], path: str | os.PathLike[str], *,
                 _trusted: bool = False) -> None:
    """Write the result document (atomically: a reader never sees half a file)."""
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "wb") as fh:
        fh.writelines(_result_pieces(result, trusted=_trusted))
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# Verification


def _is_hex(value: Any, n_chars: int | None = None) -> bool:
    return (isinstance(value, str) and len(value) % 2 == 0 and bool(HEX_RE.fullmatch(value))
            and (n_chars is None or len(value) == n_chars))


def _check_commitment(c: Any, error: Callable[[str], Exception]) -> None:
    if not isinstance(c, dict):
        raise error("commitment must be an object")
    missing = sorted(COMMITMENT_KEYS - set(c))
    if missing:
        raise error(f"commitment is missing {', '.join(missing)}")
    extra = sorted(set(c) - COMMITMENT_KEYS)
    if extra:
        raise error(f"commitment has unexpected key {extra[0]!r}")
    if c["algorithm"] != ALGORITHM:
        raise error(f"algorithm is {_show(c['algorithm'])}, this verifier knows {ALGORITHM}")
    if not isinstance(c["lottery_id"], str) or not c["lottery_id"]:
        raise error("commitment lottery_id must be a non-empty string")
    if type(c["capacity"]) is not int or c["capacity"] < 1:
        raise error("commitment capacity must be an integer of at least 1")
    if type(c["n_entries"]) is not int or c["n_entries"] < 0:
        raise error("commitment n_entries must be a non-negative integer")
    for key in ("entries_root", "seed_commitment"):
        if not _is_hex(c[key], 64):
            raise error(f"commitment {key} must be 64 lowercase hex characters")
    if not isinstance(c["published_at"], str):
        raise error("commitment published_at must be a string")
    try:
        check_beacon(c["beacon"])
    except DrawError as exc:
        raise error(str(exc)) from None


def _check_result_format(result: Any) -> None:
    def fail(message: str) -> VerificationError:
        return VerificationError("format", message)

    if not isinstance(result, dict):
        raise fail("the result must be a JSON object")
    missing = [k for k in RESULT_KEYS if k not in result]
    if missing:
        raise fail(f"the result is missing {', '.join(missing)}")
    _check_commitment(result["commitment"], fail)
    for key, size in (("commitment_hash", 64), ("prk", 64), ("seed_secret", None),
                      ("beacon_value", None)):
        if not _is_hex(result[key], size):
            raise fail(f"{key} must be lowercase hex")
    for key in ("winners", "waitlist"):
        ids = result[key]
        if not isinstance(ids, list) or not all(isinstance(e, str) for e in ids):
            raise fail(f"{key} must be a list of entry ids")


def verify(result: Mapping[str, Any], entries: Entries | Iterable[Mapping[str, Any]], *,
           expected_beacon_value: bytes | None = None,
           progress: Progress | None = None) -> dict[str, Any]:
    """Recompute a published draw; returns a summary or raises VerificationError naming the
    first check that fails, in the spec's order (see CHECKS).

    ``expected_beacon_value``: the beacon output as the verifier obtained it independently
    (e.g. from drand); without it the published value is taken as given.
    """
    _check_result_format(result)
    return _verify(result, entries, expected_beacon_value, progress)


def _verify(result: Mapping[str, Any], entries: Entries | Iterable[Mapping[str, Any]],
            expected_beacon_value: bytes | None, progress: Progress | None) -> dict[str, Any]:
    if not isinstance(entries, Entries):
        try:
            entries = entries_from_objects(entries)
        except EntriesError as exc:
            raise VerificationError("entries", str(exc)) from None
    c = result["commitment"]
    root = entries_root(c["lottery_id"], entries, progress=progress)
    if root != c["entries_root"]:
        raise VerificationError("entries_root", f"the entries file hashes to {root}, "
                                f"the commitment says {c['entries_root']}")
    if len(entries) != c["n_entries"]:
        raise VerificationError("n_entries", f"the entries file has {len(entries)} entries, "
                                f"the commitment says {c['n_entries']}")
    recomputed = commitment_hash(c)
    if recomputed != result["commitment_hash"]:
        raise VerificationError("commitment_hash", f"the commitment hashes to {recomputed}, "
                                f"the result says {result['commitment_hash']}")
    seed_secret = bytes.fromhex(result["seed_secret"])
    if len(seed_secret) != 32 or seed_commitment(seed_secret) != c["seed_commitment"]:
        raise VerificationError("seed", "the revealed seed does not match seed_commitment "
                                "(SHA-256 of the 32-byte seed)")
    beacon_value = bytes.fromhex(result["beacon_value"])
    try:
        check_beacon_value(c["beacon"], beacon_value)
    except DrawError as exc:
        raise VerificationError("beacon", str(exc)) from None
    if expected_beacon_value is not None and expected_beacon_value != beacon_value:
        raise VerificationError("beacon", f"the result used beacon value {beacon_value.hex()}, "
                                f"the beacon gave {expected_beacon_value.hex()}")
    prk = compute_prk(c, seed_secret, beacon_value)
    if prk.hex() != result["prk"]:
        raise VerificationError("prk", f"prk recomputes to {prk.hex()}, "
                                f"the result says {result['prk']}")
    order = draw_order(prk, entries, progress=progress)
    winners, waitlist = allocate(order, entries.seats, c["capacity"])
    ids = entries.entry_ids
    for check, positions in (("winners", winners), ("waitlist", waitlist)):
        expected = list(map(ids.__getitem__, positions))
        published = result[check]
        if published != expected:
            k = next((k for k, (a, b) in enumerate(zip(published, expected, strict=False))
                      if a != b),
                     min(len(published), len(expected)))
            got = published[k] if k < len(published) else "(end of list)"
            want = expected[k] if k < len(expected) else "(end of list)"
            raise VerificationError(check, f"{check}[{k}] is {got}, the draw gives {want} "
                                    f"({len(published)} published, {len(expected)} expected)")
    return {
        "lottery_id": c["lottery_id"],
        "n_entries": len(entries),
        "capacity": c["capacity"],
        "winners": len(winners),
        "seats_won": sum(map(entries.seats.__getitem__, winners)),
        "waitlist": len(waitlist),
        "commitment_hash": result["commitment_hash"],
    }


def load_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return json.loads(fh.read().decode("utf-8"))
    except OSError as exc:
        raise VerificationError("format", f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VerificationError("format", f"{path} is not a JSON document: {exc}") from None


def verify_files(result_path: str | os.PathLike[str], entries_path: str | os.PathLike[str], *,
                 expected_beacon_value: bytes | None = None,
                 progress: Progress | None = None) -> dict[str, Any]:
    result = load_result(result_path)
    _check_result_format(result)
    try:
        entries = load_entries(entries_path, progress=progress)
    except EntriesError as exc:
        raise VerificationError("entries", str(exc)) from None
    return _verify(result, entries, expected_beacon_value, progress)


def summary_line(summary: Mapping[str, Any]) -> str:
    return (f"OK {ALGORITHM} lottery={summary['lottery_id']} entries={summary['n_entries']} "
            f"winners={summary['winners']} seats={summary['seats_won']}/{summary['capacity']} "
            f"waitlist={summary['waitlist']} commitment={summary['commitment_hash']}")


# --------------------------------------------------------------------------------------------
# Command line: python verify_draw.py RESULT.json ENTRIES.json


def _stderr_progress() -> Progress:
    last = {"stage": None, "percent": -1}

    def report(stage: str, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if stage != last["stage"] or percent >= last["percent"] + 10 or done == total:
            last.update(stage=stage, percent=percent)
            print(f"  {stage}: {percent}%", file=sys.stderr, flush=True)

    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="verify_draw.py",
        description=f"Recompute a published {ALGORITHM} draw from its result and entries files.")
    parser.add_argument("result", help="the published result document (JSON)")
    parser.add_argument("entries", help="the published entries file (JSON list)")
    parser.add_argument("--beacon-value", metavar="HEX",
                        help="the beacon output as you obtained it yourself (hex); "
                             "checked against the one the result used")
    parser.add_argument("--progress", action="store_true", help="report progress on stderr")
    args = parser.parse_args(argv)
    expected = None
    if args.beacon_value is not None:
        try:
            expected = bytes.fromhex(args.beacon_value)
        except ValueError:
            parser.error("--beacon-value must be hex")
    try:
        summary = verify_files(args.result, args.entries, expected_beacon_value=expected,
                               progress=_stderr_progress() if args.progress else None)
    except VerificationError as exc:
        print(f"FAILED check={exc.check}: {exc.message}")
        return 1
    print(summary_line(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = [
    "ALGORITHM",
    "BLOCK",
    "CHECKS",
    "DrawError",
    "Entries",
    "EntriesError",
    "MerkleTree",
    "VerificationError",
    "allocate",
    "build_result",
    "canonical_bytes",
    "check_entry",
    "commitment_hash",
    "compute_prk",
    "draw_file",
    "draw_order",
    "dump_entries",
    "dump_result",
    "entries_from_objects",
    "entries_root",
    "entry_key",
    "entry_keys",
    "leaf_bytes",
    "leaf_hash",
    "leaf_hashes",
    "load_entries",
    "load_result",
    "main",
    "make_commitment",
    "make_tree",
    "merkle_root",
    "node_hash",
    "parse_entries",
    "parse_timestamp",
    "pass_down",
    "receipt",
    "seed_commitment",
    "verify",
    "verify_files",
    "verify_inclusion",
    "verify_receipt",
    "write_result",
]
