"""The embedded SQLite database checkpoints its WAL in a background thread, not in commits."""

from __future__ import annotations

import sqlite3
import threading
import time

from smarttickets.core import sqlite as S


def test_the_background_thread_copies_the_log_back_while_commits_never_do(tmp_path,
                                                                           monkeypatch):
    # given a database whose connections never checkpoint themselves, as the platform's
    monkeypatch.setattr(S, "INTERVAL_S", 0.05)
    path = tmp_path / "db.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;"
                     "CREATE TABLE t (x TEXT);")
    for _ in range(200):
        db.execute("INSERT INTO t VALUES (?)", ("x" * 2000,))
        db.commit()
    # the rows are only in the log so far: the database file itself is still tiny
    assert path.stat().st_size < 100_000
    assert (tmp_path / "db.sqlite3-wal").stat().st_size > 400_000

    # when the process's checkpoint thread starts (once, however often it is asked)
    def threads() -> int:
        return sum(t.name == "sqlite-checkpoint" for t in threading.enumerate())

    before = threads()
    S.ensure_checkpointer({"NAME": str(path)})
    S.ensure_checkpointer({"NAME": str(path)})
    try:
        assert threads() == before + 1
        # then it copies the log into the database file within a few intervals
        deadline = time.monotonic() + 5
        while path.stat().st_size < 400_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size >= 400_000
        assert db.execute("SELECT count(*) FROM t").fetchone() == (200,)
    finally:
        S._started.pop(str(path), None)  # ends the thread after its next interval
        db.close()


def test_memory_databases_get_no_thread():
    assert S.is_file_database({"NAME": "/var/lib/smarttickets/db.sqlite3"})
    assert not S.is_file_database({"NAME": ":memory:"})
    assert not S.is_file_database({"NAME": "file:memorydb_default?mode=memory&cache=shared"})
