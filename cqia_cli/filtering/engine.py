"""Apply a rule set to records: the first failing rule (or all of them), counted per rule.

    flt = Filter(rules)
    reasons = flt.check(record)          # None, or [(rule, field, detail), ...]

`FilterWork` is what `Job.map_lines` runs in each `-j` worker (and in process for -j 1): it
checks and serialises a run of records and returns the bytes to write and its counts, so the
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


# -- the work of `Job.map_lines` -----------------------------------------------------------------


class FilterWork:
    """Check a run of records and serialise them: (output bytes, rejects bytes, counts) where
    the bytes are what `Output.write` would write and counts are `Tally.counts()`. The function
    `Job.map_lines` runs in each worker (or in process for -j 1). Workers started by fork
    inherit the parent's Filter, automata and all; pickled (spawn), it carries only the rule
    specs and builds its Filter on first use."""

    def __init__(self, flt: Filter, specs: list, invert: bool = False, rejects: bool = False):
        self.filter = flt
        self.specs = specs
        self.all_reasons = flt.all_reasons
        self.names = [r.name for r in flt.rules]
        self.invert = invert
        self.rejects = rejects

    def __getstate__(self) -> dict:
        return {**self.__dict__, "filter": None}

    def __call__(self, records: list[dict]) -> tuple[bytes, bytes, tuple]:
        if self.filter is None:
            from cqia_cli.filtering.config import build_rules

            self.filter = Filter(build_rules(self.specs), self.all_reasons)
        check = self.filter.check
        all_reasons = self.all_reasons
        invert = self.invert
        keep_rejects = invert or self.rejects
        tally = Tally(self.names)
        add = tally.add
        dumps = orjson.dumps
        nl = orjson.OPT_APPEND_NEWLINE
        out: list[bytes] = []
        side: list[bytes] = []
        kept, dropped = (side, out) if invert else (out, side)
        try:
            for rec in records:
                reasons = check(rec)
                add(reasons)
                if reasons is None:
                    if not invert:
                        kept.append(dumps(rec, option=nl))
                elif keep_rejects:
                    dropped.append(dumps({**rec, "_reject": annotation(reasons, all_reasons)},
                                         option=nl))
        except orjson.JSONEncodeError:
            # a record nested too deep: Job.map_lines names its line and calls again without
            # it; the fields counted missing so far are forgotten, not counted twice
            self.filter.take_missing()
            raise
        # the named fields the records lacked (Rule.watched), counted by the Filter
        tally.missing.update(self.filter.take_missing())
        return b"".join(out), b"".join(side), tally.counts()
