"""The platform's Ed25519 issuer keys, by kid: one current key signs, previous keys still verify
until retired, and the valid public keys are exported as a JWK Set for scanners.

Storage: ``TICKET_SIGNING_KEYS`` (setting or environment, ``kid:seed,kid:seed``, first is current,
seed = 32 bytes base64url) for production; otherwise a keyring file under the var dir, created on
first use. Rotation rewrites that file; configured keys rotate by changing the configuration.
Django settings are read lazily, only by ``get_keyring``.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import functools
import json
import os
import re
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from smarttickets.tickets.credential import Credential, SignedCredential, sign_credential
from smarttickets.tickets.offline import KeySet

FILE_FORMAT = "smarttickets.issuer-keys/1"
KEYRING_FILENAME = "ticket-issuer-keys.json"
ENV_NAME = "TICKET_SIGNING_KEYS"
CURRENT = "current"
PREVIOUS = "previous"


class KeyringError(ValueError):
    pass


@dataclass(frozen=True)
class IssuerKey:
    kid: int  # 0-65535, carried in every credential
    private_key: Ed25519PrivateKey
    status: str = CURRENT
    created_at: int = 0

    @property
    def seed(self) -> bytes:
        return self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


class Keyring:
    """An immutable set of issuer keys; ``rotate`` and ``retire`` return the new keyring and,
    for a file-backed one, replace the file atomically under a lock."""

    def __init__(self, keys: list[IssuerKey], *, path: Path | None = None,
                 configured: bool = False) -> None:
        currents = [k for k in keys if k.status == CURRENT]
        if len(currents) != 1:
            raise KeyringError("a keyring needs exactly one current key")
        kids = [k.kid for k in keys]
        if len(set(kids)) != len(kids):
            raise KeyringError("kids must be unique")
        for key in keys:
            if not isinstance(key.kid, int) or not 0 <= key.kid <= 0xFFFF:
                raise KeyringError(f"kid {key.kid!r} must be a number from 0 to 65535")
        self.keys = tuple(keys)
        self.path = path  # None: in memory only (tests, tools)
        self.configured = configured  # from TICKET_SIGNING_KEYS: rotated by reconfiguring

    @property
    def current(self) -> IssuerKey:
        return next(k for k in self.keys if k.status == CURRENT)

    def get(self, kid: int) -> IssuerKey | None:
        return next((k for k in self.keys if k.kid == kid), None)

    def issue(self, credential: Credential) -> SignedCredential:
        """Sign ``credential`` with the current key (its kid is set to that key's)."""
        current = self.current
        return sign_credential(dataclasses.replace(credential, kid=current.kid),
                               current.private_key)

    @functools.cached_property
    def _keyset(self) -> KeySet:
        return KeySet({k.kid: k.private_key.public_key() for k in self.keys},
                      {k.kid: k.status for k in self.keys})

    def keyset(self) -> KeySet:
        """The public keys, for verifying on the server exactly as a scanner would."""
        return self._keyset

    def jwks(self) -> dict[str, Any]:
        """The public key set scanners download (never contains private material)."""
        return self.keyset().to_jwks()

    @classmethod
    def generate(cls, *, now_unix: int | None = None, path: Path | None = None) -> Keyring:
        key = IssuerKey(_new_kid(set()), Ed25519PrivateKey.generate(), CURRENT,
                        _now(now_unix))
        keyring = cls([key], path=path)
        keyring._save()
        return keyring

    def rotate(self, *, now_unix: int | None = None) -> Keyring:
        """A new current key; the old current stays valid as previous until retired."""
        with self._locked() as latest:
            kept = [dataclasses.replace(k, status=PREVIOUS) for k in latest.keys]
            new = IssuerKey(_new_kid({k.kid for k in kept}), Ed25519PrivateKey.generate(),
                            CURRENT, _now(now_unix))
            keyring = Keyring([*kept, new], path=self.path)
            keyring._save()
        return keyring

    def retire(self, kid: int) -> Keyring:
        """Drop a previous key: codes signed with it stop verifying once scanners refresh."""
        with self._locked() as latest:
            key = latest.get(kid)
            if key is None:
                raise KeyringError(f"no key with kid {kid!r}")
            if key.status == CURRENT:
                raise KeyringError("the current key cannot be retired; rotate first")
            keyring = Keyring([k for k in latest.keys if k.kid != kid], path=self.path)
            keyring._save()
        return keyring

    def to_json(self) -> dict[str, Any]:
        return {"format": FILE_FORMAT, "keys": [
            {"kid": k.kid, "status": k.status, "created_at": k.created_at,
             "seed": _b64(k.seed)} for k in self.keys]}

    @classmethod
    def from_json(cls, data: Any, *, path: Path | None = None) -> Keyring:
        if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
            raise KeyringError(f"not a {FILE_FORMAT} document")
        keys = []
        for index, item in enumerate(data.get("keys") or []):
            try:
                if item["status"] not in (CURRENT, PREVIOUS):
                    raise ValueError(f"status must be {CURRENT} or {PREVIOUS}")
                keys.append(IssuerKey(
                    kid=_kid(item["kid"]), private_key=_key_from_seed(item["seed"]),
                    status=item["status"], created_at=int(item.get("created_at", 0))))
            except (KeyError, TypeError, ValueError) as exc:
                raise KeyringError(f"keys[{index}]: {exc}") from None
        return cls(keys, path=path)

    @classmethod
    def load(cls, path: Path) -> Keyring:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise KeyringError(f"cannot read keyring {path}: {exc}") from None
        return cls.from_json(data, path=path)

    @classmethod
    def from_config(cls, value: str) -> Keyring:
        """Parse ``kid:seed,kid:seed`` (first is current)."""
        keys = []
        for index, part in enumerate(p.strip() for p in value.split(",") if p.strip()):
            kid_text, sep, seed = part.partition(":")
            if not sep:
                raise KeyringError(f"{ENV_NAME} item {index + 1}: expected kid:seed")
            try:
                kid = _kid(kid_text)
                private_key = _key_from_seed(seed)
            except ValueError as exc:
                raise KeyringError(f"{ENV_NAME} item {index + 1} ({kid_text}): {exc}") from None
            keys.append(IssuerKey(kid, private_key, CURRENT if index == 0 else PREVIOUS))
        if not keys:
            raise KeyringError(f"{ENV_NAME} is empty")
        return cls(keys, configured=True)

    def to_config(self) -> str:
        ordered = [self.current, *(k for k in self.keys if k.status != CURRENT)]
        return ",".join(f"{k.kid}:{_b64(k.seed)}" for k in ordered)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Keyring]:
        """Yield the keyring as it is on disk now, holding an exclusive lock on it, so two
        processes rotating at once cannot lose a key."""
        if self.configured:
            raise KeyringError(
                f"this keyring comes from {ENV_NAME}; rotate by changing that setting")
        if self.path is None:
            yield self
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield Keyring.load(self.path) if self.path.exists() else self
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(self.to_json(), f, indent=2)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _key_from_seed(seed: Any) -> Ed25519PrivateKey:
    if not isinstance(seed, str) or not re.fullmatch(r"[A-Za-z0-9_-]{43}", seed):
        raise ValueError("seed must be 32 bytes in unpadded base64url (43 characters)")
    return Ed25519PrivateKey.from_private_bytes(base64.urlsafe_b64decode(seed + "="))


def _new_kid(taken: set[int]) -> int:
    # Random rather than counting up, so two deployments (staging, production) rarely share one.
    while True:
        kid = secrets.randbelow(0x10000)
        if kid not in taken:
            return kid


def _kid(value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
        raise ValueError("kid must be a number from 0 to 65535")
    return value


def _now(now_unix: int | None) -> int:
    return int(time.time()) if now_unix is None else int(now_unix)


_cache: dict[str, tuple[Any, Keyring]] = {}


def keyring_path() -> Path:
    from django.conf import settings

    return Path(settings.VAR_DIR) / "keys" / KEYRING_FILENAME


def get_keyring() -> Keyring:
    """The keyring this server signs with, from settings/environment or the var dir.

    Cached per process and reloaded when the file changes, so a rotation by one process is
    seen by the others on their next call.
    """
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    configured = getattr(settings, ENV_NAME, None) or os.environ.get(ENV_NAME)
    if configured:
        cached = _cache.get("config")
        if cached is None or cached[0] != configured:
            try:
                cached = (configured, Keyring.from_config(configured))
            except KeyringError as exc:
                raise ImproperlyConfigured(str(exc)) from None
            _cache["config"] = cached
        return cached[1]
    if getattr(settings, "PRODUCTION", False):
        raise ImproperlyConfigured(f"{ENV_NAME} must be set in production")
    path = keyring_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.exists():
                Keyring.generate(path=path)
    info = path.stat()
    # Rotation replaces the file, so the inode changes even where mtime is coarse.
    stamp = (str(path), info.st_ino, info.st_mtime_ns)
    cached = _cache.get("file")
    if cached is None or cached[0] != stamp:
        cached = (stamp, Keyring.load(path))
        _cache["file"] = cached
    return cached[1]


def main(argv: list[str] | None = None) -> int:
    """``python -m smarttickets.tickets.keys new`` prints a fresh ``kid:seed`` for the
    production setting; prepend it to the current value to rotate."""
    args = sys.argv[1:] if argv is None else argv
    if args != ["new"]:
        print("usage: python -m smarttickets.tickets.keys new", file=sys.stderr)
        return 2
    print(Keyring.generate().to_config())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
