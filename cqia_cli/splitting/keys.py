"""The per-record keys a split looks at: the hash key of --stream, the group of --group-by and
the stratum of --stratify. All are plain functions of one record, the same on every machine.

The --stream hash of a key is the CRC-32 of its UTF-8 bytes mixed with the seed by the
SplitMix64 finaliser: fast, and the same on every machine and Python (it does not use Python's
per-process string hashing). Groups are told apart by a 64-bit BLAKE2b digest.
"""

from __future__ import annotations

from bisect import bisect_right
from fractions import Fraction
from hashlib import blake2b
from typing import Any, Callable, Sequence
from zlib import crc32

import orjson

from cqia_cli.fields import MISSING, FieldPath, TextGetter

_SPACE = 1 << 64
_MASK = _SPACE - 1
#: How a record with no value in the --stratify field is shown in the summary.
NO_STRATUM = "(none)"


def mix64(x: int) -> int:
    """The SplitMix64 finaliser: a bijection of 64-bit integers that spreads every input bit
    over the whole output."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def seed_mix(seed: int) -> int:
    """A 64-bit value for a seed (any int, negative ones too)."""
    return mix64(seed & _MASK) ^ mix64((seed >> 64) & _MASK)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        return text.encode("utf-8", "surrogatepass")


def key_hash(text: str, seed: int) -> int:
    """The --stream hash of a key for a seed's `seed_mix`: uniform over [0, 2**64)."""
    return mix64(crc32(_utf8(text)) ^ seed)


def value_text(value: Any) -> str:
    """A field value as a key: strings as they are, anything else as compact JSON with sorted
    keys (so {"a":1,"b":2} and {"b":2,"a":1} are one key)."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def digest64(text: str, key: bytes) -> int:
    """A 64-bit keyed BLAKE2b digest of a text: tells groups apart without keeping their keys."""
    return int.from_bytes(blake2b(_utf8(text), digest_size=8, key=key).digest(), "big")


def key_text(paths: Sequence[str] | None) -> Callable[[dict], str]:
    """The text of the --key fields of a record (TextGetter's rule: the non-empty values joined
    by newlines), with a fast path for top-level string fields."""
    getter = TextGetter(paths or None)
    fields = getter.fields
    if not all("." not in f for f in fields):
        return getter

    def text(record: dict) -> str:
        values = [record.get(f) for f in fields]
        for v in values:
            if v is not None and type(v) is not str:  # numbers, lists, ...: the general rule
                return getter(record)
        return "\n".join([v for v in values if v])

    return text


class Field(FieldPath):
    """Read one dotted field of a record: `Field("task_type.major")(record)` -> value or MISSING."""

    __slots__ = ()

    def __call__(self, record: dict, default: Any = MISSING) -> Any:
        return FieldPath.__call__(self, record, default)

    def __reduce__(self):
        return (Field, (self.path,))


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

    def __init__(self, weights: Sequence[Fraction], seed: int, text: Callable[[dict], str],
                 group: Callable[[dict], str | None] | None = None):
        self.seed = seed_mix(seed)
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
        part = bisect_right(self.bounds, key_hash(key, self.seed))
        # a part with weight 0 is an empty interval; bisect never lands past the last part
        return min(part, self.last)
