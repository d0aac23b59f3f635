"""The SMS backends and how one is chosen."""

from __future__ import annotations

import io
import json

import pytest

from smarttickets.accounts import sms


def test_locmem_backend_keeps_messages_in_the_outbox(sms_outbox):
    sent = sms.send_sms(to="+85291234567", body="hello")

    assert sent == 1
    assert [(m.to, m.body) for m in sms_outbox] == [("+85291234567", "hello")]


def test_file_backend_appends_json_lines(tmp_path, settings):
    settings.SMS_BACKEND = "smarttickets.accounts.sms.FileSMSBackend"
    settings.SMS_FILE_PATH = str(tmp_path / "sms")

    sms.send_sms(to="+85291234567", body="一二三 123456")
    sms.send_sms(to="+447911123456", body="second")

    lines = (tmp_path / "sms" / "messages.jsonl").read_text(encoding="utf-8").splitlines()
    assert [(r["to"], r["body"]) for r in map(json.loads, lines)] == [
        ("+85291234567", "一二三 123456"), ("+447911123456", "second")]


def test_console_backend_prints(settings):
    stream = io.StringIO()

    sms.ConsoleSMSBackend(stream=stream).send(to="+85291234567", body="code 123456")

    assert stream.getvalue() == "SMS to +85291234567: code 123456\n"


def test_backend_path_must_name_an_sms_backend(settings):
    settings.SMS_BACKEND = "smarttickets.accounts.sms.SMSMessage"

    with pytest.raises(TypeError):
        sms.get_backend()


def test_a_provider_is_a_subclass_of_the_base(settings):
    class Provider(sms.BaseSMSBackend):
        def send_messages(self, messages):
            raise sms.SMSDeliveryError("quota exceeded")

    with pytest.raises(sms.SMSDeliveryError):
        Provider().send(to="+85291234567", body="x")
    with pytest.raises(NotImplementedError):
        sms.BaseSMSBackend().send(to="+85291234567", body="x")
