"""``smarttickets lottery``: draw an entries file, verify a published draw, manage the signing key."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from smarttickets.core.exceptions import DomainError
from smarttickets.lottery import beacon as beacons
from smarttickets.lottery import draw, signing

STAGES = {"parse": "Reading entries", "merkle": "Hashing entries", "keys": "Drawing keys",
          "sort": "Ordering"}


class TqdmProgress:
    """draw.py's progress callback shown as one tqdm bar per stage (on stderr)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.stage: str | None = None
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage:
            self.close()
            from tqdm import tqdm

            unit = "B" if stage == "parse" else "entries"
            self.bar = tqdm(total=total, desc=STAGES.get(stage, stage), unit=unit,
                            unit_scale=True, leave=False)
            self.stage = stage
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            self.stage = None


def _hex(value: str, name: str, size: int | None = None) -> bytes:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise CommandError(f"{name} must be hex") from None
    if value != value.lower():
        raise CommandError(f"{name} must be lowercase hex")
    if size is not None and len(raw) != size:
        raise CommandError(f"{name} must be {size} bytes ({2 * size} hex characters), "
                           f"got {len(raw)} bytes")
    return raw


def _json_arg(value: str, name: str) -> Any:
    """A JSON argument given inline or as a path to a file."""
    text = value
    if not value.lstrip().startswith(("{", "[", "null")):
        try:
            text = Path(value).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"{name}: cannot read {value}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{name} is not valid JSON: {exc}") from None


def resolve_beacon_value(description: Any, *, value_hex: str | None, text: str | None,
                         drand_round: str | None, published_at: str | None) -> bytes:
    """The beacon value for a commitment's beacon, checked as far as the evidence allows."""
    try:
        beacon = beacons.beacon_for(description)
        if published_at is not None:
            beacon.check_named_in_advance(datetime.fromisoformat(published_at))
        if drand_round is not None and not isinstance(beacon, beacons.DrandBeacon):
            raise CommandError("--drand-round was given but the beacon is not drand-quicknet")
        if isinstance(beacon, beacons.DrandBeacon):
            if drand_round is None:
                raise CommandError("a drand-quicknet beacon needs --drand-round (the round's "
                                   "JSON as drand serves it) so its signature can be checked")
            value = beacon.value(_json_arg(drand_round, "--drand-round"))
        elif isinstance(beacon, beacons.PublicValueBeacon):
            if text is not None:
                value = beacon.value(text)
            elif value_hex is not None:
                value = _hex(value_hex, "--beacon-value")
                if not value:
                    raise CommandError("--beacon-value is empty")
            else:
                raise CommandError(f"the beacon {beacon.source} needs --beacon-text (the "
                                   "published outcome) or --beacon-value")
        else:
            value = beacon.value(value_hex or text or None)
    except DomainError as exc:
        raise CommandError(f"beacon: {exc.message}") from None
    if value_hex is not None and _hex(value_hex, "--beacon-value") != value:
        raise CommandError("--beacon-value does not match the value the beacon evidence gives "
                           f"({value.hex()})")
    return value


class Command(BaseCommand):
    help = "Verifiable lottery draws: draw-file, verify, key, tick."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)

        d = sub.add_parser("draw-file", help="commit to an entries file and draw it")
        d.add_argument("--entries", required=True, help="entries JSON file")
        d.add_argument("--lottery-id", required=True)
        d.add_argument("--capacity", required=True, type=int, help="seats to give away")
        d.add_argument("--seed-secret", required=True, metavar="HEX",
                       help="the organizer's 32-byte secret seed (64 hex characters)")
        d.add_argument("--published-at", required=True, metavar="ISO",
                       help="when the commitment is published, UTC (2025-03-01T12:00:00Z)")
        d.add_argument("--beacon-json", metavar="JSON", help="the beacon object (or a file)")
        d.add_argument("--beacon-value", metavar="HEX", help="the beacon value bytes, hex")
        d.add_argument("--beacon-text", metavar="TEXT",
                       help="a public-value beacon's published outcome, as typed")
        d.add_argument("--drand-round", metavar="JSON",
                       help="a drand round document {round, signature, randomness} (or a file)")
        d.add_argument("--out", required=True, help="where to write the result JSON")
        d.add_argument("--signature-out", help="also sign the commitment; write it here")
        d.add_argument("--no-progress", action="store_true")

        v = sub.add_parser("verify", help="recompute a published draw")
        v.add_argument("--result", required=True)
        v.add_argument("--entries", required=True)
        v.add_argument("--beacon-value", metavar="HEX",
                       help="the beacon value as you obtained it yourself")
        v.add_argument("--drand-round", metavar="JSON",
                       help="check the result's beacon value against this signed drand round")
        v.add_argument("--signature", metavar="JSON",
                       help="check this commitment signature against our trusted keys")
        v.add_argument("--no-progress", action="store_true")

        k = sub.add_parser("key", help="show the commitment signing key, or make one")
        k.add_argument("--generate", metavar="PATH", help="write a new private key here")

        sub.add_parser("tick", help="advance every lottery that is due (run every minute)")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "draw-file":
                self.draw_file(options)
            elif action == "verify":
                self.verify(options)
            elif action == "tick":
                self.tick()
            else:
                self.key(options)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None

    def tick(self) -> None:
        from smarttickets.core import clock
        from smarttickets.lottery import services

        done = services.tick(now=clock.now())
        summary = ", ".join(f"{step}: {n}" for step, n in sorted(done.items())) or "nothing due"
        self.stdout.write(f"lottery tick: {summary}")

    def draw_file(self, o: dict[str, Any]) -> None:
        seed = _hex(o["seed_secret"], "--seed-secret", 32)
        try:
            published_at = draw.parse_timestamp(o["published_at"])
        except draw.DrawError as exc:
            raise CommandError(str(exc)) from None
        description = _json_arg(o["beacon_json"], "--beacon-json") if o["beacon_json"] else None
        if description is None and any(o[k] for k in ("beacon_value", "beacon_text",
                                                       "drand_round")):
            raise CommandError("a beacon value was given but no --beacon-json names the beacon")
        beacon_value = resolve_beacon_value(
            description, value_hex=o["beacon_value"], text=o["beacon_text"],
            drand_round=o["drand_round"], published_at=published_at)
        # Load the signing key first: a missing key must stop us before anything is written.
        key = signing.platform_key() if o["signature_out"] else None
        progress = TqdmProgress(not o["no_progress"])
        try:
            result = draw.draw_file(
                entries_path=o["entries"], lottery_id=o["lottery_id"], capacity=o["capacity"],
                seed_secret=seed, published_at=published_at, beacon=description,
                beacon_value=beacon_value, out_path=o["out"], progress=progress)
        except draw.EntriesError as exc:
            raise CommandError(f"{o['entries']}: {exc}") from None
        except draw.DrawError as exc:
            raise CommandError(str(exc)) from None
        except OSError as exc:
            raise CommandError(f"cannot write {o['out']}: {exc.strerror}") from None
        finally:
            progress.close()
        if key is not None:
            doc = signing.sign_commitment(result["commitment"], key=key)
            Path(o["signature_out"]).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        self.stdout.write(
            f"Drew {result['commitment']['n_entries']} entries for "
            f"{result['commitment']['lottery_id']}: {len(result['winners'])} winners, "
            f"{len(result['waitlist'])} waiting. commitment_hash={result['commitment_hash']} "
            f"-> {o['out']}")

    def verify(self, o: dict[str, Any]) -> None:
        expected = _hex(o["beacon_value"], "--beacon-value") if o["beacon_value"] else None
        result = None
        if o["drand_round"] or o["signature"]:
            try:
                result = draw.load_result(o["result"])
                draw._check_result_format(result)
            except draw.VerificationError as exc:
                raise CommandError(f"FAILED check={exc.check}: {exc.message}") from None
        if o["drand_round"]:
            value = resolve_beacon_value(result["commitment"]["beacon"], value_hex=None,
                                         text=None, drand_round=o["drand_round"],
                                         published_at=None)
            if expected is not None and expected != value:
                raise CommandError("--beacon-value and --drand-round disagree")
            expected = value
        progress = TqdmProgress(not o["no_progress"])
        try:
            summary = draw.verify_files(o["result"], o["entries"],
                                        expected_beacon_value=expected, progress=progress)
        except draw.VerificationError as exc:
            raise CommandError(f"FAILED check={exc.check}: {exc.message}") from None
        finally:
            progress.close()
        if o["signature"]:
            try:
                key = signing.verify_commitment_signature(
                    result["commitment"], _json_arg(o["signature"], "--signature"))
            except DomainError as exc:
                raise CommandError(f"FAILED check=signature: {exc.message}") from None
            self.stdout.write(f"signature OK (kid {key.kid}, fingerprint {key.fingerprint})")
        self.stdout.write(draw.summary_line(summary))

    def key(self, o: dict[str, Any]) -> None:
        if o["generate"]:
            try:
                key = signing.generate_key_file(o["generate"])
            except FileExistsError:
                raise CommandError(f"{o['generate']} already exists; not replacing a key") from None
            self.stdout.write(f"Wrote a new Ed25519 key to {o['generate']}. Point "
                              "LOTTERY_SIGNING_KEY_PATH at it, and keep the old public key in "
                              "LOTTERY_RETIRED_PUBLIC_KEYS so earlier signatures still verify.")
        else:
            key = signing.platform_key()
        self.stdout.write(f"kid {key.kid}\nfingerprint {key.public.fingerprint}\n"
                          f"{key.public.pem()}")
