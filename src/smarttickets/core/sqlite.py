"""SQLite (the embedded default): WAL checkpoints in a background thread, not in requests.

In WAL mode SQLite copies the log back into the database file (a checkpoint, with an fsync)
inside whichever commit pushes the log past ``wal_autocheckpoint`` pages — by default one commit
in every hundred or so of a busy write path, which then takes milliseconds longer. The platform's
connections turn that off (``PRAGMA wal_autocheckpoint=0`` in settings) and each process that
opens the database runs one daemon thread that checkpoints every ``INTERVAL_S`` instead.
``PASSIVE`` never waits for readers or writers, and the sqlite3 module releases the GIL while it
runs, so requests do not wait for it. When the last connection closes, SQLite checkpoints on
its own; a process without the thread (there is none: every connection starts it) would only
let the log grow until then.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

INTERVAL_S = 1.0
_lock = threading.Lock()
_started: dict[str, int] = {}  # database path -> pid of the process whose thread runs


def is_file_database(settings_dict: dict[str, Any]) -> bool:
    name = str(settings_dict.get("NAME") or "")
    return bool(name) and name != ":memory:" and "mode=memory" not in name


def ensure_checkpointer(settings_dict: dict[str, Any]) -> None:
    """Start this process's checkpoint thread for the database, once (a forked worker starts
    its own)."""
    path = str(settings_dict["NAME"])
    pid = os.getpid()
    with _lock:
        if _started.get(path) == pid:
            return
        _started[path] = pid
    threading.Thread(target=_run, args=(path, pid), name="sqlite-checkpoint",
                     daemon=True).start()


def _run(path: str, pid: int) -> None:
    db = None
    while _started.get(path) == pid:
        time.sleep(INTERVAL_S)
        try:
            if db is None:
                db = sqlite3.connect(path, timeout=5, check_same_thread=False)
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:
            logger.warning("SQLite checkpoint of %s failed; retrying", path, exc_info=True)
            if db is not None:
                db.close()
            db = None


def on_connection_created(sender, connection, **kwargs) -> None:
    if connection.vendor == "sqlite" and is_file_database(connection.settings_dict):
        ensure_checkpointer(connection.settings_dict)
