"""Apply a rule set to records: the first failing rule (or all of them), counted per rule.

    flt = Filter(rules)
    reasons = flt.check(record)          # None, or [(rule, field, detail), ...]

`check_lines` is the batch function of `-j N`: a worker gets raw JSON lines, parses and checks
them, and returns only the reasons, so the parent writes the records it already holds.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import orjson

from cqia_cli.filtering.rules import Rule, Scan

Reason = tuple[str, str, str]


class Filter:
    def __init__(self, rules: Sequence[Rule], all_reasons: bool = False):
        self.rules = list(rules)
        self.all_reasons = all_reasons
        self._checks = [(r.name, r.check) for r in self.rules]
        scan = Scan(self.rules)
        self._scan = scan if scan.active else None

    def check(self, record: dict) -> list[Reason] | None:
        """None when the record passes every rule; else the failing rule(s), in rule order."""
        found: list[Reason] | None = None
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

    def add(self, reasons: list[Reason] | None) -> None:
        self.records += 1
        if reasons is None:
            self.kept += 1
            return
        self.first[reasons[0][0]] += 1
        for name in dict.fromkeys(r[0] for r in reasons):
            self.failed[name] += 1

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


def init_worker(specs: list, all_reasons: bool, encoding: str) -> None:
    from cqia_cli.filtering.config import build_rules

    _worker["filter"] = Filter(build_rules(specs), all_reasons)
    _worker["encoding"] = encoding


def check_lines(lines: list[bytes]) -> list[list[Reason] | None]:
    flt: Filter = _worker["filter"]
    encoding = _worker["encoding"]
    loads = orjson.loads
    if encoding == "utf-8":
        return [flt.check(loads(line)) for line in lines]
    return [flt.check(loads(line.decode(encoding))) for line in lines]
