"""Headless Chromium: the wallet makes its own non-extractable device key, draws a code that
changes every 15 seconds (also offline), matches Python's make_code byte for byte, and the gate
scanner page refuses a 45-second-old screenshot and a second scan of the same code."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from conftest import save_screenshot, skip_or_fail
from smarttickets.core import clock
from smarttickets.tickets import codes
from smarttickets.tickets.models import CheckIn, Device
from smarttickets.tickets.tests.conftest import gate_staff_of, make_show

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
VECTORS = Path(__file__).resolve().parents[1] / "src/smarttickets/tickets/tests/vectors" \
    / "ticket-codes-v1.json"
VENDOR = Path(__file__).resolve().parents[1] / "src/smarttickets/tickets/static/tickets/vendor"


@pytest.fixture(autouse=True)
def _vendor_built():
    if not (VENDOR / "qrcode.js").exists():
        skip_or_fail("the wallet's npm libraries are not built: run python frontend/build.py")


@pytest.fixture(autouse=True)
def _own_keyring(settings, tmp_path):
    from smarttickets.tickets import keys

    settings.VAR_DIR = tmp_path
    keys._cache.clear()
    yield
    keys._cache.clear()
    clock.reset()


def login(context, live_server, user):
    client = Client()
    client.force_login(user)
    context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME,
                          "value": client.cookies[django_settings.SESSION_COOKIE_NAME].value,
                          "url": live_server.url}])


def current_code(page, after: str | None = None) -> str:
    page.wait_for_function(
        "prev => { const b = document.querySelector('.wallet-qr'); "
        "return b && b.dataset.code && b.dataset.code !== prev; }", arg=after or "")
    return page.eval_on_selector(".wallet-qr", "b => b.dataset.code")


def set_server_time(unix: float) -> None:
    clock.reset()
    clock.shift(timedelta(seconds=unix - time.time()))


def step_of(code: str) -> int:
    return codes.parse_code(code).step


def scan_on_scanner_page(scanner, code: str) -> str:
    scanner.fill("#manual-code", code)
    before = scanner.eval_on_selector("#scan-result", "e => e.textContent")
    scanner.click("text=Check code")
    scanner.wait_for_function("prev => document.querySelector('#scan-result').textContent "
                              "!== prev && document.querySelector('#scan-result h2')",
                              arg=before)
    return scanner.inner_text("#scan-result")


def test_wallet_rotates_offline_and_the_gate_refuses_replays(page, browser, live_server):
    show = make_show(n_tickets=1)
    staff = gate_staff_of(show.event.organizer)
    context = page.context
    login(context, live_server, show.fan)
    page.clock.install(time=time.time())

    page.goto(f"{live_server.url}/tickets/")
    first = current_code(page)

    # The device key was made here, is not extractable, and is the one the server bound.
    key_info = page.evaluate("""() => new Promise(ok => {
        const r = indexedDB.open('smarttickets-wallet');
        r.onsuccess = () => { const g = r.result.transaction('keys').objectStore('keys').getAll();
          g.onsuccess = () => ok({n: g.result.length, extractable: g.result[0].privateKey.extractable,
                                  type: g.result[0].privateKey.type, hex: g.result[0].publicKeyHex}); };
    })""")
    assert key_info == {"n": 1, "extractable": False, "type": "private",
                        "hex": Device.objects.get(user=show.fan).public_key}

    # The JavaScript encoder is byte-identical to Python's make_code (conformance vector).
    vector = json.loads(VECTORS.read_text())["rotating"]
    b64 = lambda h: base64.b64encode(bytes.fromhex(h)).decode()  # noqa: E731
    assert page.evaluate("v => window.SmartTicketsWallet.encodeCode(v[0], v[1], v[2], v[3])",
                         [b64(vector["credential_hex"]), b64(vector["issuer_signature_hex"]),
                          int(vector["step"]), b64(vector["device_signature_hex"])]) \
        == vector["code"]

    page.clock.run_for(15_000)
    second = current_code(page, after=first)
    assert second != first

    page.evaluate("navigator.serviceWorker.ready")
    context.set_offline(True)
    page.clock.run_for(15_000)
    third = current_code(page, after=second)
    assert third not in (first, second)
    save_screenshot(page, "wallet-offline")
    context.set_offline(False)

    scanner_context = browser.new_context(viewport={"width": 1280, "height": 900},
                                          locale="en-US")
    scanner = scanner_context.new_page()
    login(scanner_context, live_server, staff)
    scanner.goto(f"{live_server.url}/tickets/scan/?performance={show.performance.pk}"
                 "&gate=MAIN&direction=entry")

    # A screenshot of the first code, shown 45 seconds after its step began.
    set_server_time(step_of(first) * 15 + 45)
    old = scan_on_scanner_page(scanner, first)
    assert "Refused" in old and "too old" in old
    assert CheckIn.objects.count() == 0

    set_server_time(step_of(third) * 15 + 7)
    admitted = scan_on_scanner_page(scanner, third)
    save_screenshot(scanner, "scanner-admit")
    again = scan_on_scanner_page(scanner, third)
    save_screenshot(scanner, "scanner-refused")

    assert "Admit" in admitted and "Chan Tai Man" in admitted
    assert "Refused" in again and "Already admitted" in again
    assert CheckIn.objects.filter(duplicate=False).count() == 1
    scanner_context.close()
