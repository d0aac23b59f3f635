"""smarttickets-serve: its settings from the environment, refusals naming the variable, and a
real server process answering a request."""

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from smarttickets import serve


def test_defaults_are_one_worker_per_core_32_threads_on_port_8000():
    opts = serve.options({})
    assert opts["target"] == "smarttickets.wsgi:application"
    assert opts["interface"] == "wsgi"
    assert (opts["address"], opts["port"]) == ("0.0.0.0", 8000)
    assert opts["workers"] == (os.cpu_count() or 1)
    assert opts["blocking_threads"] == 32
    assert opts["respawn_failed_workers"] is True
    assert opts["workers_lifetime"] is None
    assert opts["log_access"] is False


def test_settings_from_the_environment():
    opts = serve.options({"PORT": "9001", "WEB_CONCURRENCY": "3", "WEB_THREADS": "8",
                          "WEB_WORKERS_LIFETIME": "3600", "WEB_ACCESS_LOG": "true",
                          "LOG_LEVEL": "INFO"})
    assert (opts["port"], opts["workers"], opts["blocking_threads"]) == (9001, 3, 8)
    assert opts["workers_lifetime"] == 3600 and opts["log_access"] is True
    assert opts["log_level"] == "info"
    assert serve.options({"BIND": "127.0.0.1:8123", "PORT": "1"})["port"] == 8123
    assert serve.options({"BIND": "[::1]:8123"})["address"] == "::1"


@pytest.mark.parametrize("env, names", [
    ({"WEB_CONCURRENCY": "two"}, "WEB_CONCURRENCY"),
    ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),
    ({"WEB_THREADS": "-4"}, "WEB_THREADS"),
    ({"BIND": "localhost"}, "BIND"),
    ({"BIND": "127.0.0.1:http"}, "BIND"),
    ({"PORT": "70000"}, "BIND"),
    ({"WEB_WORKERS_LIFETIME": "5"}, "WEB_WORKERS_LIFETIME"),
    ({"WEB_ACCESS_LOG": "maybe"}, "WEB_ACCESS_LOG"),
    ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
])
def test_a_bad_setting_is_refused_naming_the_variable(env, names, monkeypatch, capsys):
    with pytest.raises(serve.ConfigError, match=names):
        serve.options(env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert serve.main([]) == 2
    assert names in capsys.readouterr().err


def test_arguments_are_refused_and_help_is_printed(capsys):
    assert serve.main(["--workers", "2"]) == 2
    assert "environment variables" in capsys.readouterr().err
    assert serve.main(["--help"]) == 0
    assert "WEB_THREADS" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_server_process_serves_the_platform(tmp_path: Path):
    port = _free_port()
    database = tmp_path / "serve.sqlite3"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SMARTTICKETS_"))}
    env.update({"DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": secrets.token_urlsafe(50),
                "ALLOWED_HOSTS": "127.0.0.1", "BIND": f"127.0.0.1:{port}",
                "WEB_CONCURRENCY": "1", "WEB_THREADS": "4", "SMARTTICKETS_VAR_DIR": str(tmp_path),
                "DEBUG": "false", "REDIS_URL": ""})
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "smarttickets"), "migrate", "--noinput"], env=env,
                   check=True, capture_output=True, timeout=300)
    proc = subprocess.Popen([str(bin_dir / "smarttickets-serve")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline and body is None:
            assert proc.poll() is None, proc.stdout.read().decode()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz",
                                            timeout=2) as response:
                    body = response.read()
            except OSError:
                time.sleep(0.3)
        assert body == b'{"status": "ok"}'
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200
            assert b"SmartTickets" in response.read()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
