"""cqia_cli.wal: the SQLite files several processes open at once (score's answer cache,
review's decisions) wait out the lock that SQLite itself does not wait for."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from cqia_cli import wal
from cqia_cli.llm.cache import SQLiteCache
from cqia_cli.review.store import Store


def _writer_holds(path, seconds: float) -> threading.Thread:
    """Another connection, in the journal mode a new file starts in, holding a write lock
    (what a process that has just created the file holds while it sets it up)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("CREATE TABLE IF NOT EXISTS other (x)")
    db.execute("BEGIN IMMEDIATE")
    db.execute("INSERT INTO other VALUES (1)")

    def release() -> None:
        time.sleep(seconds)
        db.execute("COMMIT")
        db.close()

    t = threading.Thread(target=release)
    t.start()
    return t


def test_sqlite_itself_fails_at_once_here(tmp_path):
    """What the retry is for (if SQLite ever waits here itself, the retry is idle)."""
    path = tmp_path / "x.sqlite"
    t = _writer_holds(path, 0.5)
    code = ("import sqlite3, sys; db = sqlite3.connect(sys.argv[1], timeout=5, "
            "isolation_level=None)\ntry:\n db.execute('PRAGMA journal_mode=WAL')\n"
            "except sqlite3.OperationalError as e:\n print(e)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, timeout=30).stdout
    t.join()
    assert out.strip() in ("database is locked", "")


@pytest.mark.parametrize("opener", ["wal", "cache", "review"])
def test_a_new_file_locked_by_another_writer_is_opened_once_it_is_free(tmp_path, opener):
    path = tmp_path / "x.sqlite"
    t = _writer_holds(path, 0.4)
    start = time.monotonic()
    if opener == "wal":
        db = wal.connect(str(path), 10, lambda d: d.execute("CREATE TABLE IF NOT EXISTS t (x)"))
    elif opener == "cache":
        db = SQLiteCache(str(path)).db
    else:
        db = Store(str(path)).db
    t.join()
    assert time.monotonic() - start >= 0.3  # it waited for the writer
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT x FROM other").fetchall() == [(1,)]  # the writer's work is there
    db.close()


def test_still_locked_at_the_timeout_is_an_error_and_other_errors_come_at_once(tmp_path):
    path = tmp_path / "x.sqlite"
    t = _writer_holds(path, 1.5)
    start = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        wal.connect(str(path), 0.3)
    assert 0.2 <= time.monotonic() - start < 1.4
    t.join()
    bad = tmp_path / "not.sqlite"
    bad.write_bytes(b"this is not a database, not even close" * 100)
    start = time.monotonic()
    with pytest.raises(sqlite3.DatabaseError):
        wal.connect(str(bad), 10)
    assert time.monotonic() - start < 1
