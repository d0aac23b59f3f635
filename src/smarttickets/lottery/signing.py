"""Ed25519 signatures over lottery commitments: the platform key, its fingerprint and rotation.

The signed message is the commitment's canonical bytes (the same bytes ``commitment_hash`` is
taken over). Each key is named by a ``kid`` derived from its fingerprint, so a signature says
which key made it and old keys can stay trusted for verification after a rotation.

Settings (read when first needed): ``LOTTERY_SIGNING_KEY_PATH`` — PEM (PKCS#8) private key; when
unset, a key is generated once under ``VAR_DIR/lottery/`` (refused in production).
``LOTTERY_RETIRED_PUBLIC_KEYS`` — PEM public keys of earlier signing keys, still accepted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from smarttickets.core.exceptions import InvalidInput
from smarttickets.lottery.draw import canonical_bytes

ALGORITHM = "Ed25519"


class SignatureInvalid(InvalidInput):
    code = "lottery_signature_invalid"


class UnknownSigningKey(SignatureInvalid):
    code = "lottery_signature_unknown_key"


@dataclass(frozen=True)
class PublicKey:
    key: Ed25519PublicKey

    @property
    def raw(self) -> bytes:
        return self.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the raw 32-byte public key, hex: what we publish beside each lottery."""
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def kid(self) -> str:
        return self.fingerprint[:16]

    def pem(self) -> str:
        return self.key.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.private.public_key())

    @property
    def kid(self) -> str:
        return self.public.kid


def generate_key_file(path: str | os.PathLike[str], *, overwrite: bool = False) -> SigningKey:
    """Create a new private key file (mode 0600); refuses to replace one unless told to."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, path)
    return SigningKey(private)


def load_signing_key(path: str | os.PathLike[str]) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ImproperlyConfigured(f"cannot load the lottery signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"the lottery signing key {path} is not an Ed25519 key")
    return SigningKey(key)


def load_public_key(pem: str | bytes | os.PathLike[str]) -> PublicKey:
    """A public key from PEM text or a path to a PEM file."""
    if isinstance(pem, os.PathLike) or (isinstance(pem, str) and "-----BEGIN" not in pem):
        pem = Path(pem).read_bytes()
    data = pem.encode() if isinstance(pem, str) else pem
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ImproperlyConfigured("a lottery verification key must be an Ed25519 public key")
    return PublicKey(key)


_cache: dict[str, SigningKey] = {}


def platform_key() -> SigningKey:
    """The key that signs new commitments (loaded once per path)."""
    from django.conf import settings

    configured = getattr(settings, "LOTTERY_SIGNING_KEY_PATH", None)
    path = Path(configured) if configured else Path(settings.VAR_DIR) / "lottery" / "signing-key.pem"
    cached = _cache.get(str(path))
    if cached is not None:
        return cached
    if not path.exists():
        if configured or getattr(settings, "PRODUCTION", False):
            raise ImproperlyConfigured(
                f"the lottery signing key {path} does not exist; create it with "
                "`smarttickets lottery key --generate PATH`")
        try:
            key = generate_key_file(path)
        except FileExistsError:  # another process made it first
            key = load_signing_key(path)
    else:
        key = load_signing_key(path)
    _cache[str(path)] = key
    return key


def trusted_public_keys() -> dict[str, PublicKey]:
    """Keys whose signatures we accept, by kid: the current one and retired ones."""
    from django.conf import settings

    keys = [platform_key().public]
    retired: Iterable[Any] = getattr(settings, "LOTTERY_RETIRED_PUBLIC_KEYS", ()) or ()
    keys.extend(load_public_key(item) for item in retired)
    return {k.kid: k for k in keys}


def sign_commitment(commitment: Mapping[str, Any], *, key: SigningKey | None = None) -> dict[str, str]:
    """A detached signature document for a commitment."""
    key = key or platform_key()
    signature = key.private.sign(canonical_bytes(commitment))
    return {"alg": ALGORITHM, "kid": key.kid, "signature": signature.hex()}


def verify_commitment_signature(commitment: Mapping[str, Any], signature: Mapping[str, Any], *,
                                keys: Mapping[str, PublicKey] | None = None) -> PublicKey:
    """Check a signature document; returns the key that made it or raises SignatureInvalid."""
    keys = trusted_public_keys() if keys is None else keys
    if not isinstance(signature, Mapping) or signature.get("alg") != ALGORITHM:
        raise SignatureInvalid(_("The commitment signature is not an Ed25519 signature."))
    public = keys.get(signature.get("kid"))  # type: ignore[arg-type]
    if public is None:
        raise UnknownSigningKey(_("The commitment was signed with a key we do not know."))
    try:
        raw = bytes.fromhex(signature.get("signature", ""))
        public.key.verify(raw, canonical_bytes(commitment))
    except (InvalidSignature, ValueError, TypeError):
        raise SignatureInvalid(_("The commitment signature does not match.")) from None
    return public
