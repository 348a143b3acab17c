"""Opening an SQLite file that several cqia processes may open at once (score's and generate's
answer cache, review's decisions): in WAL mode, with the one wait SQLite does not do itself."""

from __future__ import annotations

import sqlite3
import time
from typing import Callable


def connect(path: str, timeout: float,
            setup: Callable[[sqlite3.Connection], None] | None = None) -> sqlite3.Connection:
    """sqlite3.connect(path) in autocommit and WAL mode, then `setup(db)` (pragmas, the schema).

    SQLite waits up to `timeout` for another connection's locks, except in one case: switching
    a new file to WAL while another process writes to it (two runs that start together on a
    cache that does not exist yet) fails at once with "database is locked". That is tried
    again here, with growing pauses, until `timeout`; any other error is raised as it is."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        db = None
        try:
            db = sqlite3.connect(path, timeout=timeout, isolation_level=None,
                                 check_same_thread=False)
            if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            if setup is not None:
                setup(db)
            return db
        except sqlite3.OperationalError as e:
            if db is not None:
                db.close()
            left = deadline - time.monotonic()
            if "locked" not in str(e) or left <= 0:
                raise
            time.sleep(min(pause, left))
            pause = min(2 * pause, 0.5)
        except BaseException:
            if db is not None:
                db.close()
            raise
