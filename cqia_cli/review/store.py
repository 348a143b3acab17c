"""The decisions file: SQLite in WAL mode, one transaction per decision, shared by reviewers.

Tables
  meta       key -> value: the input's name, sha256 (of its uncompressed bytes), size, mtime,
             number of records, the sampling plan, the schema version
  log        every action as it happened (accept, reject, skip, edit, undo), never rewritten
             but for the `undone` flag: the audit trail
  decisions  (line, reviewer) -> the current state: status (accept, reject, skip, or edit
             while an edit waits for a decision), reason, edits {field: new text}, time, and
             `_score`/`_reject` as the record carried them (for the report's agreement figures)

Records are keyed by their 1-based line number in the input, the number `FILE:LINE` messages
use, so a decision survives any sampling plan and reads back in --apply's streaming pass.
"""

from __future__ import annotations

import datetime as _dt
import getpass
import os
import sqlite3
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import orjson

from cqia_cli import wal
from cqia_cli.review.sample import Plan
from cqia_cli.status import CqiaError, ExitStatus, InputError, OutputError

SCHEMA_VERSION = 1
DECIDED = ("accept", "reject", "skip")
ACTIONS = DECIDED + ("edit",)
#: what earlier stages left on a record and the report compares with the people's decisions
SNAPSHOT_FIELDS = ("_score", "_reject")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    line INTEGER NOT NULL, reviewer TEXT NOT NULL, time TEXT NOT NULL, action TEXT NOT NULL,
    reason TEXT, edits TEXT, snapshot TEXT, undone INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS decisions (
    line INTEGER NOT NULL, reviewer TEXT NOT NULL, status TEXT NOT NULL, reason TEXT,
    edits TEXT, time TEXT NOT NULL, snapshot TEXT, PRIMARY KEY (line, reviewer));
CREATE INDEX IF NOT EXISTS log_reviewer ON log (reviewer, undone, id);
"""


def default_reviewer() -> str:
    try:
        return getpass.getuser() or "reviewer"
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "reviewer"


def default_path(input_path: str) -> str:
    return input_path + ".review.sqlite"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(_SCHEMA)


@dataclass
class Decision:
    line: int
    reviewer: str
    status: str
    reason: str | None = None
    edits: dict = field(default_factory=dict)
    time: str = ""
    snapshot: dict = field(default_factory=dict)


def _json(value) -> str | None:
    return orjson.dumps(value).decode() if value else None


def _unjson(text: str | None) -> dict:
    return orjson.loads(text) if text else {}


class Store:
    """One open decisions file."""

    def __init__(self, path: str, *, create: bool = True):
        self.path = path
        if not create and not os.path.exists(path):
            raise InputError(f"{path}: no such decisions file")
        directory = os.path.dirname(os.path.abspath(path))
        if create and not os.path.isdir(directory):
            raise OutputError(f"{path}: cannot write: directory {directory} does not exist")
        try:
            # autocommit: every statement (or explicit BEGIN ... COMMIT) is durable at once
            self.db = wal.connect(path, 30, _setup)
        except sqlite3.OperationalError as e:
            raise OutputError(f"{path}: cannot open the decisions file ({e}); give another "
                              "place with --decisions") from None
        except sqlite3.DatabaseError as e:
            raise CqiaError(f"{path}: not a cqia decisions file ({e})",
                            ExitStatus.DATA) from None
        version = self.get_meta("version")
        if version is None:
            self.set_meta("version", str(SCHEMA_VERSION))
        elif int(version) > SCHEMA_VERSION:
            raise CqiaError(f"{path}: written by a newer cqia (schema {version}); upgrade cqia",
                            ExitStatus.DATA)

    def close(self) -> None:
        self.db.close()

    # -- meta -------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                        (key, None if value is None else str(value)))

    @property
    def plan(self) -> Plan | None:
        text = self.get_meta("plan")
        return Plan.from_dict(orjson.loads(text)) if text else None

    def set_plan(self, plan: Plan) -> None:
        self.set_meta("plan", orjson.dumps(plan.as_dict()).decode())

    def is_empty(self) -> bool:
        return self.db.execute("SELECT 1 FROM log LIMIT 1").fetchone() is None

    # -- decisions --------------------------------------------------------------------------

    def record(self, line: int, reviewer: str, action: str, *, reason: str | None = None,
               edits: dict | None = None, snapshot: dict | None = None) -> Decision:
        """Write one action and the state it leads to, in one committed transaction."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        t = now()
        with self._transaction():
            self.db.execute(
                "INSERT INTO log (line, reviewer, time, action, reason, edits, snapshot) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (line, reviewer, t, action, reason, _json(edits), _json(snapshot)))
            return self._rebuild(line, reviewer)

    def undo(self, reviewer: str) -> Decision | None:
        """Undo `reviewer`'s last action still in force; returns the record's state after it
        (a Decision with status "" when nothing is left), or None when there is nothing to
        undo."""
        with self._transaction():
            row = self.db.execute(
                "SELECT id, line FROM log WHERE reviewer = ? AND undone = 0 "
                "ORDER BY id DESC LIMIT 1", (reviewer,)).fetchone()
            if row is None:
                return None
            self.db.execute("UPDATE log SET undone = 1 WHERE id = ?", (row[0],))
            state = self._rebuild(row[1], reviewer)
            return state or Decision(row[1], reviewer, "")

    def _transaction(self):
        db = self.db

        class _T:
            def __enter__(self):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, exc, tb):
                db.execute("COMMIT" if exc_type is None else "ROLLBACK")
                return False

        return _T()

    def _rebuild(self, line: int, reviewer: str) -> Decision | None:
        """The current state of (line, reviewer) replayed from its log, written to decisions."""
        status = reason = None
        edits: dict = {}
        snapshot: dict = {}
        t = ""
        for action, r, e, s, tm in self.db.execute(
                "SELECT action, reason, edits, snapshot, time FROM log WHERE line = ? AND "
                "reviewer = ? AND undone = 0 ORDER BY id", (line, reviewer)):
            if action == "edit":
                edits.update(_unjson(e))
                status = status or "edit"
            else:
                status, reason = action, r
            snapshot = _unjson(s) or snapshot
            t = tm
        if status is None:
            self.db.execute("DELETE FROM decisions WHERE line = ? AND reviewer = ?",
                            (line, reviewer))
            return None
        self.db.execute(
            "INSERT OR REPLACE INTO decisions (line, reviewer, status, reason, edits, time, "
            "snapshot) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (line, reviewer, status, reason, _json(edits), t, _json(snapshot)))
        return Decision(line, reviewer, status, reason, edits, t, snapshot)

    def decision(self, line: int, reviewer: str) -> Decision | None:
        row = self.db.execute(
            "SELECT line, reviewer, status, reason, edits, time, snapshot FROM decisions "
            "WHERE line = ? AND reviewer = ?", (line, reviewer)).fetchone()
        return _decision(row) if row else None

    def decisions(self, reviewer: str | None = None) -> Iterator[Decision]:
        """Current decisions, by line then time (of one reviewer, or all)."""
        sql = ("SELECT line, reviewer, status, reason, edits, time, snapshot FROM decisions")
        args: tuple = ()
        if reviewer is not None:
            sql += " WHERE reviewer = ?"
            args = (reviewer,)
        for row in self.db.execute(sql + " ORDER BY line, time, reviewer", args):
            yield _decision(row)

    def decided_lines(self, reviewer: str) -> set[int]:
        return {r[0] for r in self.db.execute(
            "SELECT line FROM decisions WHERE reviewer = ? AND status IN (?, ?, ?)",
            (reviewer,) + DECIDED)}

    def reviewers(self) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT reviewer FROM decisions ORDER BY reviewer")]


def _decision(row) -> Decision:
    return Decision(row[0], row[1], row[2], row[3], _unjson(row[4]), row[5], _unjson(row[6]))


def resolve(decisions: Iterable[Decision]) -> dict[int, Decision]:
    """One decision per line for --apply: accept or reject, the latest one when reviewers
    differ (skips and pending edits are no decision)."""
    out: dict[int, Decision] = {}
    for d in decisions:
        if d.status not in ("accept", "reject"):
            continue
        prev = out.get(d.line)
        if prev is None or d.time >= prev.time:
            out[d.line] = d
    return out
