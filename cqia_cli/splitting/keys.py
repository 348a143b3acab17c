"""The per-record keys a split looks at: the hash key of --stream, the group of --group-by and
the stratum of --stratify. All are plain functions of one record, the same on every machine.

Hashing is keyed BLAKE2b (8 bytes) with the seed as the key, so it does not depend on Python's
per-process string hashing, the platform, or the order of the records.
"""

from __future__ import annotations

from bisect import bisect_right
from fractions import Fraction
from hashlib import blake2b
from typing import Any, Callable, Sequence

import orjson

from cqia_cli.fields import MISSING, TextGetter, compile_path, get

_SPACE = 1 << 64
#: How a record with no value in the --stratify field is shown in the summary.
NO_STRATUM = "(none)"


def seed_key(seed: int) -> bytes:
    """The BLAKE2b key for a seed: its decimal digits (any int, negative ones too)."""
    return str(seed).encode("ascii")


def value_text(value: Any) -> str:
    """A field value as a key: strings as they are, anything else as compact JSON with sorted
    keys (so {"a":1,"b":2} and {"b":2,"a":1} are one key)."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def hash64(text: str, key: bytes) -> int:
    """A 64-bit keyed hash of a text, uniform over [0, 2**64)."""
    return int.from_bytes(blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8,
                                  key=key).digest(), "big")


class Field:
    """Read one dotted field of a record: `Field("task_type.major")(record)` -> value or MISSING."""

    __slots__ = ("path", "_parts", "_top")

    def __init__(self, path: str):
        self.path = path
        self._parts = compile_path(path)
        self._top = self._parts[0] if len(self._parts) == 1 and isinstance(self._parts[0], str) \
            else None

    def __call__(self, record: dict) -> Any:
        if self._top is not None:
            return record.get(self._top, MISSING)
        return get(record, self._parts, MISSING)


def group_key(field: Field) -> Callable[[dict], str | None]:
    """The group of a record: the text of its --group-by value; None when the record has no
    value there (empty string, empty list, null or absent), and is then a group of its own."""

    def key(record: dict) -> str | None:
        value = field(record)
        if value is MISSING or value is None or value == "" or value == [] or value == {}:
            return None
        return value_text(value)

    return key


def stratum_key(field: Field) -> Callable[[dict], str]:
    """The stratum of a record: the value of its --stratify field; a list counts by its first
    element (task_type.major ["问答", "生成"] is 问答); no value is the stratum "(none)"."""

    def key(record: dict) -> str:
        value = field(record)
        if isinstance(value, list):
            value = value[0] if value else MISSING
        if value is MISSING or value is None or value == "":
            return NO_STRATUM
        return value_text(value)

    return key


class StreamAssigner:
    """--stream: the part of a record is a pure function of (its key, the seed).

    The 64-bit hash of the key falls into one of the intervals [0, w1), [w1, w1 + w2), ... of
    [0, 2**64), one per part, so a record goes to the same part in every run, on every machine,
    and in any shard of the input; memory does not grow with the input.
    """

    def __init__(self, weights: Sequence[Fraction], seed: int, text: TextGetter,
                 group: Callable[[dict], str | None] | None = None):
        self.key = seed_key(seed)
        self.text = text
        self.group = group
        bounds = []
        acc = Fraction(0)
        for w in weights[:-1]:
            acc += Fraction(w)
            bounds.append(int(acc * _SPACE))
        self.bounds = bounds
        self.last = len(weights) - 1

    def __call__(self, record: dict) -> int:
        key = None
        if self.group is not None:
            key = self.group(record)
        if key is None:
            key = self.text(record)
        part = bisect_right(self.bounds, hash64(key, self.key))
        # a part with weight 0 is an empty interval; bisect never lands past the last part
        return min(part, self.last)
