"""A review session without the interface: the index, the decisions file, this reviewer's queue
and a position in it. The Textual app is a view over this; tests drive it directly too.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np
import orjson

from cqia_cli import fields as F
from cqia_cli.io import compression_of
from cqia_cli.review.index import LineIndex, sha256_of
from cqia_cli.review.sample import Plan, queue_for
from cqia_cli.review.store import SNAPSHOT_FIELDS, Decision, Store
from cqia_cli.status import CqiaError, DataError, ExitStatus

#: The fields shown, in this order, as the body of a record; other string fields follow.
BODY_FIELDS = ("instruction", "input", "output")
#: What earlier stages left on a record, shown in the side line.
SIDE_FIELDS = ("_score", "_score_reason", "_reject", "_dup_of", "_source", "task_type", "domain")


def check_input(store: Store, path: str, *, force: bool, name: str | None = None,
                digest: str | None = None, size: int | None = None,
                mtime_ns: int | None = None) -> str | None:
    """Refuse decisions that were made on another file (unless `force`); returns a warning
    when forced. A file whose size and mtime are those recorded is not hashed again."""
    recorded = store.get_meta("sha256")
    if recorded is None:
        return None
    if (size is not None and mtime_ns is not None
            and store.get_meta("size") == str(size) and store.get_meta("mtime_ns") == str(mtime_ns)
            and store.get_meta("path") == os.path.abspath(path)):
        return None
    if digest is None:
        digest = sha256_of(path)
    if digest == recorded:
        if size is not None and mtime_ns is not None and not compression_of(path):
            store.set_meta("size", size)
            store.set_meta("mtime_ns", mtime_ns)
            store.set_meta("path", os.path.abspath(path))
        return None
    made_on = store.get_meta("input") or "another file"
    message = (f"{store.path}: these decisions were made on {made_on} (sha256 {recorded[:12]}...), "
               f"not on {name or path} (sha256 {digest[:12]}...)")
    if not force:
        raise CqiaError(message + "; give the file they were made on, or --force to use them "
                        "by line number anyway", ExitStatus.DATA)
    return message + "; used anyway (--force)"


@dataclass
class View:
    """What the screen shows for the current position."""

    position: int  # in the queue, 0-based
    index: int  # record index in the file
    line: int
    record: dict | None  # with the edits applied; None for a bad line
    problem: str | None  # why the line is not a record
    decision: Decision | None
    original: dict  # field -> text before the edits


class Session:
    def __init__(self, path: str, decisions: str, reviewer: str, plan: Plan | None, *,
                 force: bool = False, encoding: str = "utf-8", background_hash: bool = True):
        self.path = path
        self.reviewer = reviewer
        self.encoding = encoding
        self.index = LineIndex(path)
        self.store = Store(decisions)
        self.warning: str | None = None
        saved = self.store.plan
        if saved is None:
            plan = plan or Plan()
            self.store.set_plan(plan)
        elif plan is not None and plan != saved:
            if self.store.is_empty():
                self.store.set_plan(plan)
            else:
                raise CqiaError(
                    f"{decisions}: this review was started with {saved.describe()}; give the "
                    f"same options (or none), or another --decisions file", ExitStatus.USAGE)
        else:
            plan = saved
        self.plan = plan
        recorded_records = self.store.get_meta("records")
        if self.store.get_meta("sha256") is None:
            self._start(background_hash)
        else:
            self.warning = check_input(self.store, path, force=force, size=self.index.size,
                                       mtime_ns=self.index.mtime_ns)
            if recorded_records is not None and int(recorded_records) != len(self.index) \
                    and not force:
                raise CqiaError(f"{decisions}: made on {recorded_records} records, the file "
                                f"has {len(self.index)}", ExitStatus.DATA)
        try:
            self.queue = queue_for(len(self.index), plan, reviewer)
        except ValueError as e:
            raise CqiaError(str(e), ExitStatus.USAGE) from None
        self._lines = self.index.lines[self.queue] if len(self.queue) else np.zeros(0, np.int64)
        self._file_order = plan.sample is None and not plan.reviewers
        self._sorted_lines = np.sort(self._lines)
        self.decided = self.store.decided_lines(reviewer)
        self._refresh_counts()
        self.position = self.first_undecided()

    # -- setup ------------------------------------------------------------------------------

    def _start(self, background: bool) -> None:
        """A new decisions file: record the input; its sha256 is computed beside the UI."""
        st = self.store
        st.set_meta("input", os.path.basename(self.path))
        st.set_meta("path", os.path.abspath(self.path))
        st.set_meta("records", len(self.index))
        st.set_meta("size", self.index.size)
        st.set_meta("mtime_ns", self.index.mtime_ns)
        self._hash_thread = None

        def work():
            digest = sha256_of(self.path)
            other = Store(self.store.path)
            try:
                other.set_meta("sha256", digest)
            finally:
                other.close()

        if background:
            self._hash_thread = threading.Thread(target=work, name="sha256", daemon=True)
            self._hash_thread.start()
        else:
            work()

    def wait_hashed(self) -> None:
        t = getattr(self, "_hash_thread", None)
        if t is not None:
            t.join()

    def close(self) -> None:
        self.wait_hashed()
        self.store.close()
        self.index.close()

    # -- reading ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.queue)

    def first_undecided(self) -> int:
        if not len(self.queue):
            return 0
        if not self.decided:
            return 0
        done = np.isin(self._lines, np.fromiter(self.decided, np.int64, len(self.decided)))
        if done.all():
            return len(self.queue) - 1
        return int(np.argmin(done))

    def view(self, position: int | None = None) -> View | None:
        if not len(self.queue):
            return None
        pos = self.position if position is None else position
        i = int(self.queue[pos])
        line = self.index.line_of(i)
        decision = self.store.decision(line, self.reviewer)
        record = problem = None
        original: dict = {}
        try:
            record = self.index.record(i, self.encoding)
        except DataError as e:
            problem = e.message
        if record is not None and decision is not None and decision.edits:
            record = dict(record)
            for field, text in decision.edits.items():
                original[field] = F.get(record, field)
                F.set(record, field, text)
        return View(pos, i, line, record, problem, decision, original)

    # -- moving -----------------------------------------------------------------------------

    def move(self, delta: int) -> bool:
        new = min(max(0, self.position + delta), max(0, len(self.queue) - 1))
        moved = new != self.position
        self.position = new
        return moved

    def goto(self, position: int) -> None:
        if not 0 <= position < len(self.queue):
            raise IndexError(f"no record {position + 1} (1 to {len(self.queue):,})")
        self.position = position

    def goto_line(self, line: int) -> None:
        hits = np.flatnonzero(self._lines == line)
        if not len(hits):
            raise IndexError(f"line {line:,} is not in this review")
        self.position = int(hits[0])

    def next_undecided(self) -> int:
        """The next undecided position after the current one (wrapping), or the current one."""
        n = len(self.queue)
        lines = self._lines
        for step in range(1, n + 1):
            pos = (self.position + step) % n
            if int(lines[pos]) not in self.decided:
                return pos
        return self.position

    def search(self, text: str, *, backward: bool = False) -> int | None:
        """The next position (after the current, wrapping) whose line contains `text` (as typed
        or JSON-escaped); None when no record matches."""
        if not text or not len(self.queue):
            return None
        needles = {text.encode("utf-8"), orjson.dumps(text)[1:-1]}
        n = len(self.queue)
        if self._file_order and not backward:
            hit = self._search_map(needles)
            if hit is not None:
                return hit
            return None
        for step in range(1, n + 1):
            pos = (self.position - step) % n if backward else (self.position + step) % n
            raw = self.index.raw(int(self.queue[pos]))
            if any(nd in raw for nd in needles):
                return pos
        return None

    def _search_map(self, needles) -> int | None:
        """File order: find in the memory map itself, far faster than line by line."""
        data = self.index._map
        starts = self.index.starts
        n = len(self.queue)
        begin = int(starts[self.position + 1]) if self.position + 1 < n else 0
        for lo, hi in ((begin, self.index.size), (0, begin)):
            best = None
            for nd in needles:
                at = data.find(nd, lo, hi)
                if at >= 0 and (best is None or at < best):
                    best = at
            if best is not None:
                return int(np.searchsorted(starts, best, side="right")) - 1
        return None

    # -- deciding ---------------------------------------------------------------------------

    def _snapshot(self, view: View) -> dict:
        if view.record is None:
            return {}
        return {k: view.record[k] for k in SNAPSHOT_FIELDS if k in view.record}

    def decide(self, action: str, reason: str | None = None) -> Decision:
        """accept / reject / skip the record on screen; written at once."""
        view = self.view()
        d = self.store.record(view.line, self.reviewer, action, reason=reason,
                              snapshot=self._snapshot(view))
        self._track(d, view.decision.status if view.decision else None)
        return d

    def edit(self, field: str, text: str) -> Decision:
        """Replace one field's text of the record on screen (kept until accepted)."""
        view = self.view()
        d = self.store.record(view.line, self.reviewer, "edit", edits={field: text},
                              snapshot=self._snapshot(view))
        self._track(d, view.decision.status if view.decision else None)
        return d

    def undo(self) -> Decision | None:
        """Undo this reviewer's last action and go to its record."""
        d = self.store.undo(self.reviewer)
        if d is None:
            return None
        self._track(d, exact=True)
        try:
            self.goto_line(d.line)
        except IndexError:
            pass
        return d

    def _track(self, d: Decision, before: str | None = None, *, exact: bool = False) -> None:
        """Keep `decided`, the counts and `left` in step with a decision just written;
        `before` is the record's status before it."""
        was = d.line in self.decided
        if d.status in ("accept", "reject", "skip"):
            self.decided.add(d.line)
        else:
            self.decided.discard(d.line)
        if exact:
            self._refresh_counts()
            return
        if before:
            self._counts[before] -= 1
        if d.status:
            self._counts[d.status] = self._counts.get(d.status, 0) + 1
        now_decided = d.line in self.decided
        if was != now_decided and self._in_queue(d.line):
            self._left += -1 if now_decided else 1

    def _in_queue(self, line: int) -> bool:
        i = int(np.searchsorted(self._sorted_lines, line))
        return i < len(self._sorted_lines) and int(self._sorted_lines[i]) == line

    def _refresh_counts(self) -> None:
        """This reviewer's counts by status, and the records of the queue left, from the file
        (at the start and after an undo; kept up to date in memory otherwise, so that a key
        costs no scan of the decisions however many there are)."""
        c = {"accept": 0, "reject": 0, "skip": 0, "edit": 0}
        c.update(self.store.db.execute(
            "SELECT status, count(*) FROM decisions WHERE reviewer = ? GROUP BY status",
            (self.reviewer,)).fetchall())
        self._counts = c
        done = int(np.isin(self._lines, np.fromiter(self.decided, np.int64,
                                                    len(self.decided))).sum()) \
            if self.decided else 0
        self._left = len(self.queue) - done

    def counts(self) -> dict:
        """This reviewer's decisions by status."""
        return dict(self._counts)

    def left(self) -> int:
        """Records of the queue not decided yet."""
        return self._left

def editable_fields(record: dict) -> list[str]:
    """The top-level text fields a reviewer may edit: instruction, input, output first."""
    names = [f for f in BODY_FIELDS if f in record or f != "input"]
    for k, v in record.items():
        if k not in names and isinstance(v, str) and not k.startswith("_"):
            names.append(k)
    return names
