"""Counts of category values (`Tally`) and their hashable keys: shared by the accumulator and
the optional NLP measures (stats/nlp.py), which both import it (and not each other)."""

from __future__ import annotations

from typing import Any

import orjson

_TRUE, _FALSE = ("json", "true"), ("json", "false")


def value_key(value: Any) -> Any:
    """A hashable key for a category value: strings as they are, anything else as JSON text."""
    if type(value) is str:
        return value
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    return ("json", orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode())


def key_value(key: Any) -> Any:
    return key if type(key) is str else orjson.loads(key[1])


def key_label(key: Any) -> str:
    return key if type(key) is str else key[1]



class Tally:
    """Counts per value, at most `cap` distinct values (first seen first); the rest as `other`.

    `records` is the number of records with the field present (not null)."""

    __slots__ = ("counts", "other", "records", "cap", "dropped")

    def __init__(self, cap: int):
        self.counts: dict = {}
        self.other = 0
        self.records = 0
        self.cap = cap
        self.dropped = False

    def add_key(self, key: Any, n: int = 1) -> None:
        counts = self.counts
        if key in counts:
            counts[key] += n
        elif len(counts) < self.cap:
            counts[key] = n
        else:
            self.other += n

    def add_value(self, value: Any) -> None:
        self.records += 1
        if type(value) is list:
            for v in value:
                self.add_key(v if type(v) is str else value_key(v))
        else:
            self.add_key(value if type(value) is str else value_key(value))

    def merge(self, other: "Tally") -> None:
        self.records += other.records
        self.other += other.other
        for k, n in other.counts.items():
            self.add_key(k, n)

    def total(self) -> int:
        return sum(self.counts.values()) + self.other

    def top(self, k: int | None = None) -> list[tuple[Any, int]]:
        """Values by count (ties by first seen)."""
        items = sorted(self.counts.items(), key=lambda kv: -kv[1])
        return items if k is None else items[:k]

    def to_json(self) -> dict:
        return {"records": self.records, "distinct": len(self.counts), "other": self.other,
                "values": [[key_value(k), n] for k, n in self.counts.items()]}

    @classmethod
    def from_json(cls, d: dict, cap: int) -> "Tally":
        t = cls(cap)
        t.records = int(d["records"])
        t.other = int(d["other"])
        for v, n in d["values"]:
            t.add_key(value_key(v), int(n))
        return t
