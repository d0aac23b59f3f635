"""Ed25519 commitment signatures: platform key, fingerprint, kid and rotation."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ImproperlyConfigured

from smarttickets.lottery import draw, signing

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    signing._cache.clear()
    yield
    signing._cache.clear()


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.LOTTERY_SIGNING_KEY_PATH = None
    settings.LOTTERY_RETIRED_PUBLIC_KEYS = []
    return tmp_path


@pytest.fixture
def commitment():
    return json.loads((GOLDEN / "small.result.json").read_text())["commitment"]


def test_platform_key_is_generated_once_under_the_var_dir(var_dir):
    key = signing.platform_key()

    path = var_dir / "lottery" / "signing-key.pem"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    signing._cache.clear()
    assert signing.platform_key().kid == key.kid  # loaded again, not replaced


def test_fingerprint_and_kid_come_from_the_raw_public_key(var_dir):
    key = signing.platform_key()

    assert key.public.fingerprint == hashlib.sha256(key.public.raw).hexdigest()
    assert key.kid == key.public.fingerprint[:16]
    assert len(key.public.raw) == 32
    assert key.public.pem().startswith("-----BEGIN PUBLIC KEY-----")


def test_signature_over_the_commitment_verifies(var_dir, commitment):
    doc = signing.sign_commitment(commitment)

    public = signing.verify_commitment_signature(commitment, doc)

    assert doc["alg"] == "Ed25519"
    assert doc["kid"] == public.kid == signing.platform_key().kid
    # the signed message is exactly the canonical bytes the commitment hash is taken over
    public.key.verify(bytes.fromhex(doc["signature"]), draw.canonical_bytes(commitment))


def test_changed_commitment_fails_the_signature(var_dir, commitment):
    doc = signing.sign_commitment(commitment)
    commitment["capacity"] += 1

    with pytest.raises(signing.SignatureInvalid) as info:
        signing.verify_commitment_signature(commitment, doc)

    assert info.value.code == "lottery_signature_invalid"


@pytest.mark.parametrize("mutate", [
    lambda d: d.update(signature="00" * 64),
    lambda d: d.update(signature="not hex"),
    lambda d: d.update(alg="RS256"),
])
def test_forged_or_malformed_signature_is_refused(var_dir, commitment, mutate):
    doc = signing.sign_commitment(commitment)
    mutate(doc)
    with pytest.raises(signing.SignatureInvalid):
        signing.verify_commitment_signature(commitment, doc)


def test_rotated_key_keeps_old_signatures_valid_only_while_listed(settings, var_dir, commitment):
    # given a commitment signed with the old key
    old_path = var_dir / "old.pem"
    old = signing.generate_key_file(old_path)
    doc = signing.sign_commitment(commitment, key=old)
    # when the platform moves to a new key and keeps the old public key as retired
    settings.LOTTERY_SIGNING_KEY_PATH = str(var_dir / "new.pem")
    signing.generate_key_file(var_dir / "new.pem")
    (var_dir / "old.pub.pem").write_text(old.public.pem())
    settings.LOTTERY_RETIRED_PUBLIC_KEYS = [str(var_dir / "old.pub.pem")]

    # then the old signature still verifies, and new signatures use the new kid
    assert signing.verify_commitment_signature(commitment, doc).kid == old.kid
    assert signing.sign_commitment(commitment)["kid"] != old.kid

    settings.LOTTERY_RETIRED_PUBLIC_KEYS = []
    with pytest.raises(signing.UnknownSigningKey):
        signing.verify_commitment_signature(commitment, doc)


def test_configured_key_that_is_missing_is_an_error_not_a_new_key(settings, var_dir):
    settings.LOTTERY_SIGNING_KEY_PATH = str(var_dir / "missing.pem")

    with pytest.raises(ImproperlyConfigured, match="does not exist"):
        signing.platform_key()

    assert not (var_dir / "missing.pem").exists()


def test_production_never_generates_a_key(settings, var_dir):
    settings.PRODUCTION = True

    with pytest.raises(ImproperlyConfigured):
        signing.platform_key()

    assert not (var_dir / "lottery").exists()


def test_a_key_that_is_not_ed25519_is_refused(settings, var_dir):
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    (var_dir / "ec.pem").write_bytes(pem)
    settings.LOTTERY_SIGNING_KEY_PATH = str(var_dir / "ec.pem")

    with pytest.raises(ImproperlyConfigured, match="not an Ed25519 key"):
        signing.platform_key()


def test_generate_refuses_to_overwrite(var_dir):
    signing.generate_key_file(var_dir / "k.pem")
    before = (var_dir / "k.pem").read_bytes()

    with pytest.raises(FileExistsError):
        signing.generate_key_file(var_dir / "k.pem")

    assert (var_dir / "k.pem").read_bytes() == before
