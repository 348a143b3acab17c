"""Apply the steps to records, field by field, and count what each step changed.

    cleaner = Cleaner(steps)
    changes = cleaner.clean(record)      # None, or [(field, {step: (removed, replaced)}, before,
                                         #            after), ...]; the record is rewritten

The steps of a field run in `STEPS` order; when one of them changed the text in a way that
may give an earlier step work (`Step.exposes`), they run again (at most `rounds` times) until a
round changes nothing, so that a later step cannot leave work for an earlier one:
clean(clean(x)) == clean(x). `sub` runs in the first round only (the
user's rewrites are applied once).

`CleanWork` is what `Job.map_lines` runs for every run of records (-j 1 in this process, -j N
in workers): it cleans and serialises them and returns the bytes to write, the changes to log
and its counts; the core reads, parses, reports bad lines and keeps the order.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Sequence

import orjson

from cqia_cli.cleaning.steps import Step, SubTimeout
from cqia_cli.fields import MISSING, compile_path, get, set as set_path

ROUNDS = 4

#: {step name: (removed, replaced)} for one field
Applied = dict[str, list]


class Cleaner:
    def __init__(self, steps: Sequence[Step], rounds: int = ROUNDS):
        self.steps = list(steps)
        self.rounds = rounds
        order: dict[str, list[Step]] = {}
        for step in self.steps:
            for f in step.fields:
                order.setdefault(f, []).append(step)
        # one scan of each text for the characters of every step that declares them, instead
        # of one scan per step: (step, its class or None, its `also`)
        classes = [s.chars for s in self.steps if s.chars]
        self._prescan = re.compile("[" + "".join(classes) + "]") if classes else None
        #: step -> (step, the match of its class or None, its `also`, its `once`)
        self._gates = {s: (s, re.compile(f"[{s.chars}]").match if s.chars else None,
                           s.also if type(s).also is not Step.also else None, s.once)
                       for s in self.steps}
        #: (field, top-level key or None, path, its steps in order)
        self.fields = []
        for f, steps_of in order.items():
            parts = compile_path(f)
            key = parts[0] if len(parts) == 1 and isinstance(parts[0], str) else None
            self.fields.append((f, key, parts, [self._gates[s] for s in steps_of]))

    def clean_text(self, field: str, text: str, steps: Sequence[Step] | None = None
                   ) -> tuple[str, Applied]:
        """The cleaned text, and what each step that changed it removed and replaced."""
        if steps is None:
            steps = [s for s in self.steps if field in s.fields]
        gated = steps if steps and type(steps[0]) is tuple else [self._gates[s] for s in steps]
        applied: Applied = {}
        search = self._prescan.search if self._prescan is not None else None
        findall = self._prescan.findall if self._prescan is not None else None
        for rnd in range(self.rounds):
            changed = False  # by a step that may give an earlier one work
            found = set(findall(text)) if search is not None and search(text) else None
            for step, has, also, once in gated:
                if has is not None and (found is None or not any(map(has, found))) \
                        and (also is None or not also(text)):
                    continue
                if once and rnd:
                    continue
                new, removed, replaced = step.fix(text, field)
                if new != text:
                    acc = applied.get(step.name)
                    if acc is None:
                        applied[step.name] = [removed, replaced]
                    else:
                        acc[0] += removed
                        acc[1] += replaced
                    text = new
                    if step.exposes and step.exposed:
                        changed = True
                    if not text:
                        return text, applied
            if not changed:
                break
        return text, applied

    def clean(self, record: dict) -> list[tuple[str, Applied, str, str]] | None:
        """Clean the record's fields in place; None when nothing changed, else per changed
        field (field, {step: [removed, replaced]}, before, after)."""
        changes = None
        clean_text = self.clean_text
        for field, key, parts, steps in self.fields:
            value = record.get(key) if key is not None else get(record, parts, MISSING)
            if type(value) is not str or not value:
                continue
            new, applied = clean_text(field, value, steps)
            if new != value:
                if key is not None:
                    record[key] = new
                else:
                    set_path(record, parts, new)
                if changes is None:
                    changes = []
                changes.append((field, applied, value, new))
        return changes

    def step_order(self) -> list[str]:
        return [s.name for s in self.steps]


class Tally:
    """Per step: records and fields it changed, characters it removed and replaced."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        self.records = 0
        self.changed = 0
        self.step_records: Counter = Counter()
        self.step_fields: Counter = Counter()
        self.removed: Counter = Counter()
        self.replaced: Counter = Counter()

    def add(self, changes) -> None:
        self.records += 1
        if not changes:
            return
        self.changed += 1
        seen = set()
        for _, applied, _, _ in changes:
            for name, (removed, replaced) in applied.items():
                self.step_fields[name] += 1
                self.removed[name] += removed
                self.replaced[name] += replaced
                seen.add(name)
        for name in seen:
            self.step_records[name] += 1

    def counts(self) -> tuple:
        return (self.records, self.changed, dict(self.step_records), dict(self.step_fields),
                dict(self.removed), dict(self.replaced))

    def merge(self, records, changed, step_records, step_fields, removed, replaced) -> None:
        self.records += records
        self.changed += changed
        self.step_records.update(step_records)
        self.step_fields.update(step_fields)
        self.removed.update(removed)
        self.replaced.update(replaced)

    def as_dict(self) -> dict:
        return {"records": self.records, "changed": self.changed,
                "steps": [{"step": n, "records": self.step_records[n],
                           "fields": self.step_fields[n], "removed": self.removed[n],
                           "replaced": self.replaced[n]} for n in self.names]}


def steps_of(changes, order: Sequence[str]) -> list[str]:
    """The names of the steps that changed any field of a record, in running order."""
    used = set()
    for _, applied, _, _ in changes:
        used.update(applied)
    return [n for n in order if n in used]


def compact(before: str, after: str, context: int = 24, limit: int = 240) -> tuple[str, str]:
    """The changed stretch of `before` and `after`, with `context` characters around it and `…`
    where text is left out; a changed stretch longer than `limit` is cut in its middle."""
    n = min(len(before), len(after))
    p = 0
    while p < n and before[p] == after[p]:
        p += 1
    s = 0
    while s < n - p and before[-1 - s] == after[-1 - s]:
        s += 1

    def cut(text: str) -> str:
        start = max(0, p - context)
        end = min(len(text), len(text) - s + context)
        middle_end = len(text) - s
        mid = text[p:middle_end]
        if len(mid) > limit:
            half = limit // 2
            mid = mid[:half] + "…" + mid[-half:]
        out = text[start:p] + mid + text[middle_end:end]
        return ("…" if start > 0 else "") + out + ("…" if end < len(text) else "")

    return cut(before), cut(after)


def change_lines(changes, path: str, lineno: int) -> bytes:
    """The --changes log lines of one record: one JSON object per changed field."""
    return b"".join(
        orjson.dumps({"file": path, "line": lineno, "field": field, "steps": steps,
                      "before": before, "after": after}, option=orjson.OPT_APPEND_NEWLINE)
        for field, steps, before, after in changes)


#: the Cleaner built for each step spec, in this process
_BUILT: dict[str, Cleaner] = {}


class CleanWork:
    """Clean a run of records and serialise them, for `Job.map_lines(numbered=True)` (in
    worker processes for -j N, in this one for -j 1): (records, their line numbers) ->
    (output bytes, changes, counts, error). Output bytes are what `Output.write` would write;
    changes are (line, [(field, steps, before, after), ...]) of the changed records, compact,
    when asked for; counts are `Tally.counts()`; error is None or (line, status, message) for
    the record the run stopped at (a --sub timeout), after the
    bytes of the records before it. Workers started by fork inherit the parent's steps;
    pickled (spawn), it carries the step specs and builds them once per process."""

    def __init__(self, specs: list, mark: bool = False, changes: bool = False,
                 cleaner: Cleaner | None = None):
        self.specs = specs
        self.mark = mark
        self.changes = changes
        self._cleaner = cleaner
        if cleaner is not None:
            _BUILT[repr(specs)] = cleaner

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cleaner": None}

    @property
    def cleaner(self) -> Cleaner:
        if self._cleaner is None:
            key = repr(self.specs)
            cleaner = _BUILT.get(key)
            if cleaner is None:
                from cqia_cli.cleaning.config import build_steps

                cleaner = _BUILT[key] = Cleaner(build_steps(self.specs))
            self._cleaner = cleaner
        return self._cleaner

    def __call__(self, records: list[dict], linenos: list[int]) -> tuple:
        cleaner = self.cleaner
        clean = cleaner.clean
        order = cleaner.step_order()
        tally = Tally(order)
        add = tally.add
        mark = self.mark
        log = self.changes
        dumps = orjson.dumps
        nl = orjson.OPT_APPEND_NEWLINE
        out: list[bytes] = []
        changed: list = []
        error = None
        for rec, lineno in zip(records, linenos):
            try:
                changes = clean(rec)
            except SubTimeout as e:
                error = (lineno, 2, str(e))
                break
            add(changes)
            if changes is not None:
                if mark:
                    rec["_clean"] = steps_of(changes, order)
                if log:
                    entries = []
                    for field, applied, before, after in changes:
                        b, a = compact(before, after)
                        entries.append((field, list(applied), b, a))
                    changed.append((lineno, entries))
            # a record nested too deep raises orjson.JSONEncodeError: Job.map_lines names its
            # line (--on-error) and cleans the run again, parsed anew, without it
            out.append(dumps(rec, option=nl))
        return b"".join(out), changed, tally.counts(), error


def record_changes(cleaner: Cleaner, records: Sequence[dict[str, Any]]) -> list:
    """Clean records in place (library use); the changes of each."""
    return [cleaner.clean(r) for r in records]
