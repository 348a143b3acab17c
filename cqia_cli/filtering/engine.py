"""Apply a rule set to records: the first failing rule (or all of them), counted per rule.

    flt = Filter(rules)
    reasons = flt.check(record)          # None, or [(rule, field, detail), ...]

`filter_lines` is the batch function of `-j N`: a worker gets raw JSON lines, parses, checks
and serialises them, and returns bytes to write, the lines it found bad and its counts, so the
parent only reads lines and writes bytes.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import orjson

from cqia_cli.fields import compile_path, get
from cqia_cli.filtering.rules import Rule, Scan

Reason = tuple[str, str, str]
_ABSENT = object()


class Filter:
    def __init__(self, rules: Sequence[Rule], all_reasons: bool = False):
        self.rules = list(rules)
        self.all_reasons = all_reasons
        self._checks = [(r.name, r.check) for r in self.rules]
        scan = Scan(self.rules)
        self._scan = scan if scan.active else None
        #: (rule, field, path) of the fields users named (Rule.watched), and how many records
        #: checked since the last `take_missing` lacked each
        self._watch = [(r.name, f, compile_path(f)) for r in self.rules for f in r.watched()]
        self.missing: Counter = Counter()

    def take_missing(self) -> dict:
        """{(rule, field): records without it} since the last call; resets the counts."""
        out = dict(self.missing)
        self.missing.clear()
        return out

    def check(self, record: dict) -> list[Reason] | None:
        """None when the record passes every rule; else the failing rule(s), in rule order."""
        found: list[Reason] | None = None
        if self._watch:
            for name, field, parts in self._watch:
                if get(record, parts, _ABSENT) is _ABSENT:
                    self.missing[name, field] += 1
        scan = self._scan
        if scan is not None:
            scan.reset()
        for name, check in self._checks:
            hit = check(record, scan)
            if hit is not None:
                if not self.all_reasons:
                    return [(name, hit[0], hit[1])]
                if found is None:
                    found = []
                found.append((name, hit[0], hit[1]))
        return found

    def check_many(self, records: Sequence[dict]) -> list[list[Reason] | None]:
        check = self.check
        return [check(r) for r in records]


def annotation(reasons: list[Reason], all_reasons: bool) -> dict | list:
    """The `_reject` value: the first reason as {rule, field, detail}, or a list of them."""
    items = [{"rule": r, "field": f, "detail": d} for r, f, d in reasons]
    return items if all_reasons else items[0]


class Tally:
    """Per-rule counts: `first` (the rule that decided the rejection), `failed` (all failures)."""

    def __init__(self, rule_names: Sequence[str]):
        self.names = list(rule_names)
        self.records = 0
        self.kept = 0
        self.first: Counter = Counter()
        self.failed: Counter = Counter()
        #: (rule, field) -> records without that field (see Filter.take_missing)
        self.missing: Counter = Counter()

    def add(self, reasons: list[Reason] | None) -> None:
        self.records += 1
        if reasons is None:
            self.kept += 1
            return
        self.first[reasons[0][0]] += 1
        for name in dict.fromkeys(r[0] for r in reasons):
            self.failed[name] += 1

    def merge(self, records: int, kept: int, first: dict, failed: dict,
              missing: dict | None = None) -> None:
        """Add the counts of another tally (a worker's, for one batch)."""
        self.records += records
        self.kept += kept
        self.first.update(first)
        self.failed.update(failed)
        if missing:
            self.missing.update(missing)

    def counts(self) -> tuple[int, int, dict, dict, dict]:
        return (self.records, self.kept, dict(self.first), dict(self.failed),
                dict(self.missing))

    def missing_fields(self, flt: "Filter | None" = None) -> list[dict]:
        """The named fields missing from more than half of the records (taking what `flt`
        counted since the last call): [{rule, field, missing, records}], worst first."""
        if flt is not None:
            self.missing.update(flt.take_missing())
        n = self.records
        rows = [{"rule": r, "field": f, "missing": k, "records": n}
                for (r, f), k in self.missing.items() if n and k * 2 > n]
        return sorted(rows, key=lambda row: (-row["missing"], row["rule"], row["field"]))

    @staticmethod
    def missing_message(row: dict) -> str:
        n, k = row["records"], row["missing"]
        how = f"every one of the {n:,} records" if k == n else f"{k:,} of {n:,} records"
        return f"warning: {row['rule']}: field {row['field']!r} is missing from {how}"

    @property
    def rejected(self) -> int:
        return self.records - self.kept

    def as_dict(self, all_reasons: bool) -> dict:
        def share(n: int) -> float:
            return round(n / self.records, 6) if self.records else 0.0

        rules = []
        for name in self.names:
            row = {"rule": name, "rejected": self.first[name], "share": share(self.first[name])}
            if all_reasons:
                row["failed"] = self.failed[name]
                row["failed_share"] = share(self.failed[name])
            rules.append(row)
        return {"records": self.records, "kept": self.kept, "rejected": self.rejected,
                "kept_share": share(self.kept), "rules": rules}


# -- worker side of -j N ------------------------------------------------------------------------

_worker: dict = {}


def share_filter(flt: Filter, specs: list) -> None:
    """Hand the parent's Filter to workers started by fork (they inherit it, with its
    automata, instead of building their own); `init_worker` checks that the specs match."""
    _worker.update(specs=specs, filter=flt, names=[r.name for r in flt.rules],
                   all_reasons=flt.all_reasons)


def init_worker(specs: list, all_reasons: bool, encoding: str, invert: bool = False,
                rejects: bool = False) -> None:
    if _worker.get("specs") != specs or _worker.get("all_reasons") != all_reasons:
        from cqia_cli.filtering.config import build_rules

        rules = build_rules(specs)
        _worker.update(specs=specs, filter=Filter(rules, all_reasons),
                       names=[r.name for r in rules], all_reasons=all_reasons)
    _worker.update(encoding=encoding, invert=invert, rejects=rejects)


Segment = tuple[bytes, bytes, "tuple[int, bytes, str] | str | None"]


def filter_lines(batch: tuple[int, list[bytes]]) -> tuple[list[Segment], tuple]:
    """Parse, check and serialise one batch of raw lines (numbered from `batch[0]`).

    Returns the segments to write, in order: (output bytes, rejects bytes, then a bad line
    (lineno, line, problem) that the parent reports, or a message to raise, or None), and the
    batch's counts (`Tally.counts`). Output bytes are what `Output.write` would write."""
    from cqia_cli.io import parse_line

    first, lines = batch
    w = _worker
    check = w["filter"].check
    all_reasons = w["all_reasons"]
    invert = w["invert"]
    rejects = w["rejects"]
    encoding = w["encoding"]
    tally = Tally(w["names"])
    add = tally.add
    dumps = orjson.dumps
    nl = orjson.OPT_APPEND_NEWLINE
    loads = orjson.loads
    utf8 = encoding == "utf-8"
    segments: list[Segment] = []
    out: list[bytes] = []
    side: list[bytes] = []
    for lineno, line in enumerate(lines, first):
        try:
            rec = loads(line) if utf8 else loads(line.decode(encoding))
        except ValueError:  # JSONDecodeError, UnicodeDecodeError: why, as iteration says it
            problem = parse_line(line, encoding)
            if problem is not None:  # None: a blank line
                segments.append((b"".join(out), b"".join(side), (lineno, line, problem)))
                out, side = [], []
            continue
        if type(rec) is not dict:
            segments.append((b"".join(out), b"".join(side),
                             (lineno, line, parse_line(line, encoding))))
            out, side = [], []
            continue
        reasons = check(rec)
        add(reasons)
        try:
            if reasons is None:
                if not invert:
                    out.append(dumps(rec, option=nl))
                continue
            if invert or rejects:
                note = annotation(reasons, all_reasons)
                (out if invert else side).append(dumps({**rec, "_reject": note}, option=nl))
        except TypeError as e:
            segments.append((b"".join(out), b"".join(side),
                             f"cannot write a record as JSON: {e}"))
            tally.missing.update(w["filter"].take_missing())
            return segments, tally.counts()
    segments.append((b"".join(out), b"".join(side), None))
    tally.missing.update(w["filter"].take_missing())
    return segments, tally.counts()
