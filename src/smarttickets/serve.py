"""Production web server: ``smarttickets-serve`` (granian, WSGI, Rust HTTP front).

Why granian rather than gunicorn: at an on-sale nearly every request is a small hold, and
gunicorn's gthread worker parses HTTP and hands connections to threads in Python, under the
same interpreter lock as the application; granian does that in Rust threads. On the hold
storm benchmark it cost 2.95 against 3.13 ms of server CPU per hold and sold 15 % more holds per
second with everything else equal (docs/onsale-performance.md). ``gunicorn -c gunicorn.conf.py
smarttickets.wsgi`` still works and serves the same application.

Settings come from the environment, as gunicorn.conf.py reads them:

| variable | default | meaning |
|---|---|---|
| ``BIND`` | ``0.0.0.0:$PORT`` | address and port |
| ``PORT`` | ``8000`` | port, when ``BIND`` is not set |
| ``WEB_CONCURRENCY`` | CPU cores | worker processes (one per core: the GIL) |
| ``WEB_THREADS`` | ``32`` | request threads per worker (a hold waits for its group commit) |
| ``WEB_BACKLOG`` | ``2048`` | connections waiting to be accepted |
| ``WEB_WORKERS_LIFETIME`` | ``0`` (never) | seconds before a worker is replaced |
| ``WEB_ACCESS_LOG`` | ``false`` | one log line per request |
| ``LOG_LEVEL`` | ``warning`` | granian's own log level |

Workers are respawned when they die, and each loads the risk model and freezes its long-lived
objects before its first request (``smarttickets.wsgi.warm_up``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

WARM_UP_ENV = "SMARTTICKETS_WARM_UP"
_LEVELS = ("critical", "error", "warning", "warn", "info", "debug", "notset")


class ConfigError(ValueError):
    """A server setting in the environment that cannot be used; names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, *, low: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number") from None
    if value < low:
        raise ConfigError(f"{name}={raw!r}: must be at least {low}")
    return value


def options(env: Mapping[str, str]) -> dict[str, Any]:
    """Granian's keyword arguments from environment variables (see the module docstring)."""
    bind = env.get("BIND", "").strip() or f"0.0.0.0:{env.get('PORT', '').strip() or '8000'}"
    host, sep, port_text = bind.rpartition(":")
    if not sep or not host:
        raise ConfigError(f"BIND={bind!r}: expected HOST:PORT")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"BIND={bind!r}: the port must be a number") from None
    if not 0 < port < 65536:
        raise ConfigError(f"BIND={bind!r}: the port must be between 1 and 65535")
    level = (env.get("LOG_LEVEL", "").strip() or "warning").lower()
    if level not in _LEVELS:
        raise ConfigError(f"LOG_LEVEL={level!r}: expected one of {', '.join(_LEVELS)}")
    lifetime = _int(env, "WEB_WORKERS_LIFETIME", 0, low=0)
    if 0 < lifetime < 60:
        raise ConfigError(f"WEB_WORKERS_LIFETIME={lifetime}: at least 60 seconds, or 0")
    access = (env.get("WEB_ACCESS_LOG", "").strip() or "false").lower()
    if access not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"WEB_ACCESS_LOG={access!r}: expected true or false")
    return {
        "target": "smarttickets.wsgi:application",
        "interface": "wsgi",
        "address": host.strip("[]"),
        "port": port,
        "workers": _int(env, "WEB_CONCURRENCY", os.cpu_count() or 1, low=1),
        "blocking_threads": _int(env, "WEB_THREADS", 32, low=1),
        "backlog": _int(env, "WEB_BACKLOG", 2048, low=128),
        "websockets": False,
        "respawn_failed_workers": True,
        "workers_lifetime": lifetime or None,
        "log_level": level,
        "log_access": access in ("true", "1", "yes"),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv:
        print(f"smarttickets-serve takes no arguments (got {' '.join(argv)}); "
              "it is configured by environment variables, see --help", file=sys.stderr)
        return 2
    try:
        kwargs = options(os.environ)
    except ConfigError as exc:
        print(f"smarttickets-serve: {exc}", file=sys.stderr)
        return 2
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    kwargs["interface"] = Interfaces(kwargs["interface"])
    kwargs["log_level"] = LogLevels(kwargs["log_level"])
    os.environ[WARM_UP_ENV] = "1"  # inherited by the workers: warm up before serving
    Granian(**kwargs).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
