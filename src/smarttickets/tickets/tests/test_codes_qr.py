"""QR round trip: segno draws the code, zxing-cpp (an independent decoder) reads the PNG back,
and the decoded text passes verify_scan; a typical code fits QR version 10 at level M."""

from __future__ import annotations

import io

import pytest
import segno
from PIL import Image, ImageFilter

from smarttickets.tickets.codes import make_printed_code
from smarttickets.tickets.credential import holder_hint
from smarttickets.tickets.offline import AdmissionLog
from smarttickets.tickets.tests.test_codes_support import (
    EVENT_ID,
    NOW,
    credential,
    keyring,
    scan,
    wallet,
)

zxingcpp = pytest.importorskip("zxingcpp")


def _qr_png(text: str, *, scale: int = 6) -> bytes:
    qr = segno.make(text, error="m", boost_error=False)
    out = io.BytesIO()
    qr.save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def _decode(png: bytes) -> list[str]:
    image = Image.open(io.BytesIO(png)).convert("L")
    return [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]


def test_a_rotating_code_survives_a_qr_round_trip_and_admits():
    # given a fan's live code drawn as a QR image
    fan = wallet(ticket_id=123456, holder_hint=holder_hint("Chan Tai Man"), gate_group="NORTH")
    code = fan.code(NOW)
    png = _qr_png(code)

    # when an independent decoder reads the image
    decoded = _decode(png)

    # then it reads the same text and the scanner admits it once
    assert decoded == [code]
    log = AdmissionLog(scanner_id="north-1", event_id=EVENT_ID)
    result = scan(decoded[0], clock=NOW + 3, log=log)
    assert (result.ok, result.ticket_id, result.holder_hint) == (True, 123456, "CTM/AN")


def test_a_code_still_reads_when_small_tilted_and_blurred_like_a_phone_camera_sees_it():
    # given the QR drawn at 3 pixels per module, then rotated 8° and softened
    code = wallet().code(NOW)
    image = Image.open(io.BytesIO(_qr_png(code, scale=3))).convert("L")
    image = image.rotate(8, expand=True, fillcolor=255).filter(ImageFilter.GaussianBlur(0.8))
    out = io.BytesIO()
    image.save(out, format="PNG")

    # then the independent decoder still reads it exactly
    assert _decode(out.getvalue()) == [code]


def test_a_printed_code_survives_a_qr_round_trip():
    ring = keyring()
    signed = ring.issue(credential(device_public_key=None))
    code = make_printed_code(signed.data, signed.signature)

    decoded = _decode(_qr_png(code, scale=4))

    assert decoded == [code]
    assert scan(decoded[0], ring).reason_code == "ok_check_id"


@pytest.mark.parametrize(("gate", "name"), [
    ("NORTH", "Chan Tai Man"),
    ("VIP", "陳大文"),
    ("", "Christopher Wong"),
])
def test_typical_codes_fit_qr_version_10_at_level_m_in_alphanumeric_mode(gate, name):
    fan = wallet(ticket_id=4_000_000_000, event_id=65_000, performance_id=999_999,
                 gate_group=gate, holder_hint=holder_hint(name))
    code = fan.code(NOW)

    qr = segno.make(code, error="m", boost_error=False)

    assert qr.mode == "alphanumeric"
    assert qr.version == 10
    assert qr.symbol_size(border=0) == (57, 57)
