"""Issuer keyring storage and rotation, the scanner's JWK Set and revocation list formats."""

from __future__ import annotations

import json
import stat

import pytest
from django.core.exceptions import ImproperlyConfigured

from smarttickets.tickets import keys
from smarttickets.tickets.keys import Keyring, KeyringError, get_keyring
from smarttickets.tickets.offline import (
    KeySet,
    KeySetFormatError,
    RevocationFormatError,
    RevocationList,
)
from smarttickets.tickets.tests.test_codes_support import scan, wallet


@pytest.fixture(autouse=True)
def _fresh_keyring_cache(monkeypatch):
    monkeypatch.setattr(keys, "_cache", {})
    monkeypatch.delenv(keys.ENV_NAME, raising=False)


def test_file_keyring_is_private_and_survives_a_reload(tmp_path):
    path = tmp_path / "keys" / "ring.json"

    ring = Keyring.generate(path=path, now_unix=1_700_000_000)
    loaded = Keyring.load(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert loaded.current.kid == ring.current.kid
    assert loaded.current.seed == ring.current.seed
    assert loaded.current.created_at == 1_700_000_000
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".keys-")] == []


def test_rotate_keeps_every_previous_key_until_it_is_retired(tmp_path):
    ring = Keyring.generate(path=tmp_path / "ring.json")
    first = ring.current.kid

    twice = ring.rotate().rotate()

    assert [k.status for k in twice.keys] == ["previous", "previous", "current"]
    assert twice.keys[0].kid == first
    assert [k.kid for k in Keyring.load(tmp_path / "ring.json").keys] == [
        k.kid for k in twice.keys]
    with pytest.raises(KeyringError, match="current key cannot be retired"):
        twice.retire(twice.current.kid)
    with pytest.raises(KeyringError, match="no key with kid"):
        twice.retire(70000)
    assert len(Keyring.load(tmp_path / "ring.json").keys) == 3


def test_rotate_from_a_stale_object_does_not_lose_a_key(tmp_path):
    # given two processes holding the same keyring; one rotates, then the other
    ring = Keyring.generate(path=tmp_path / "ring.json")
    ring.rotate()

    latest = ring.rotate()  # works from the file on disk, not the stale object

    assert len(latest.keys) == 3
    assert len({k.kid for k in latest.keys}) == 3


def test_config_keyring_round_trips_and_cannot_rotate():
    ring = Keyring.generate()
    value = ring.to_config()

    parsed = Keyring.from_config(value + ", ")

    assert parsed.current.kid == ring.current.kid
    assert parsed.current.seed == ring.current.seed
    with pytest.raises(KeyringError, match="rotate by changing that setting"):
        parsed.rotate()


@pytest.mark.parametrize(("value", "message"), [
    ("", "is empty"),
    ("12", "expected kid:seed"),
    ("x:" + "A" * 43, "kid must be a number"),
    ("70000:" + "A" * 43, "kid must be a number"),
    ("1:short", "seed must be 32 bytes"),
    ("1:" + "A" * 43 + ",1:" + "B" * 43, "kids must be unique"),
])
def test_bad_config_is_refused_with_a_reason(value, message):
    with pytest.raises(KeyringError, match=message):
        Keyring.from_config(value)


def test_get_keyring_creates_one_under_the_var_dir_and_sees_rotations(settings, tmp_path):
    settings.VAR_DIR = tmp_path

    ring = get_keyring()
    again = get_keyring()
    Keyring.load(tmp_path / "keys" / keys.KEYRING_FILENAME).rotate()
    after = get_keyring()

    assert again is ring
    assert (tmp_path / "keys" / keys.KEYRING_FILENAME).exists()
    assert len(after.keys) == 2
    assert after.get(ring.current.kid).status == "previous"


def test_get_keyring_prefers_the_setting_and_production_requires_it(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    configured = Keyring.generate()
    settings.TICKET_SIGNING_KEYS = configured.to_config()

    assert get_keyring().current.seed == configured.current.seed
    assert not (tmp_path / "keys").exists()

    settings.TICKET_SIGNING_KEYS = "1:nope"
    with pytest.raises(ImproperlyConfigured, match="seed must be 32 bytes"):
        get_keyring()

    settings.TICKET_SIGNING_KEYS = ""
    settings.PRODUCTION = True
    with pytest.raises(ImproperlyConfigured, match="must be set in production"):
        get_keyring()


def test_keys_cli_prints_a_usable_config_value(capsys):
    assert keys.main(["new"]) == 0
    value = capsys.readouterr().out.strip()

    assert Keyring.from_config(value).current.kid == int(value.split(":")[0])
    assert keys.main([]) == 2


def test_jwks_export_has_public_keys_only_and_round_trips():
    ring = Keyring.generate()
    fan = wallet(ring)

    jwks = json.loads(json.dumps(ring.jwks()))
    keyset = KeySet.from_jwks(jwks)

    assert set(jwks["keys"][0]) == {"kty", "crv", "alg", "use", "kid", "x", "status"}
    assert jwks["keys"][0]["kid"] == str(ring.current.kid)
    assert "d" not in jwks["keys"][0]
    assert keyset.kids == (ring.current.kid,)
    assert scan(fan.code(), ring).reason_code == "ok"


@pytest.mark.parametrize(("jwks", "message"), [
    ([], "object with a 'keys' list"),
    ({"keys": ["x"]}, r"keys\[0\]: not an object"),
    ({"keys": [{"kty": "EC", "crv": "P-256"}]}, "only kty OKP"),
    ({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "01", "x": "A" * 43}]}, "decimal"),
    ({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "1", "x": "A*"}]}, "base64url"),
    ({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "1", "x": "AAAA"}]}, "base64url"),
])
def test_bad_jwks_is_refused(jwks, message):
    with pytest.raises(KeySetFormatError, match=message):
        KeySet.from_jwks(jwks)


def test_revocation_list_round_trips_through_json():
    revocations = RevocationList(min_serial={1001: 3, 7: 2}, revoked=frozenset({5, 2}))

    document = json.loads(json.dumps(revocations.to_json(event_id=42, generated_at=100)))

    assert document == {"format": "smarttickets.revocations/1", "event_id": 42,
                        "generated_at": 100, "revoked": [2, 5],
                        "superseded": [[7, 2], [1001, 3]]}
    parsed = RevocationList.from_json(document)
    assert parsed == revocations
    assert [parsed.check(t, s) for t, s in ((5, 9), (1001, 2), (1001, 3), (8, 1))] == [
        "revoked", "superseded", None, None]


@pytest.mark.parametrize("document", [
    {"format": "other"},
    {"format": "smarttickets.revocations/1", "revoked": ["1"]},
    {"format": "smarttickets.revocations/1", "revoked": [True]},
    {"format": "smarttickets.revocations/1", "superseded": [[1]]},
    {"format": "smarttickets.revocations/1", "superseded": [[1, -2]]},
    {"format": "smarttickets.revocations/1", "superseded": 3},
])
def test_bad_revocation_list_is_refused(document):
    with pytest.raises(RevocationFormatError):
        RevocationList.from_json(document)
