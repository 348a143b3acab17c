"""The streaming statistics of `cqia stats`: an Accumulator that adds records one at a time,
merges with another exactly, and round-trips through JSON.

    acc = Accumulator(config)
    for record in records:
        acc.add(record, size)           # size: bytes of the record's line
    acc.merge(other)                    # as if other's records had followed
    data = acc.to_json()                # the documented schema (SCHEMA), see docs/stats.md
    acc = Accumulator.from_json(data)

Memory stays bounded; what is kept per run (documented in docs/stats.md):
- lengths: fixed bins (cqia_cli.stats.bins), at most a few thousand counters per text field;
- fields: counts per field path (top level and one level inside objects), at most MAX_FIELDS
  names, the rest counted together;
- categories: counts per value, at most `max_distinct` distinct values per field, kept in the
  order first seen; later new values are counted together as "other";
- auto-detected categories: a field is tracked while it has at most AUTO_DISTINCT distinct
  scalar values of at most AUTO_VALUE_CHARS characters, and dropped for good once it has more;
- numbers: count, min, max and sum of every auto-detected field whose values are all numbers
  (four numbers a field); bookkeeping fields (`_`-prefixed: `_source.line`) and numeric fields
  with more than NUMERIC_DISTINCT values are reported that way, never as categories;
- duplicates: one 8-byte hash per distinct instruction and per distinct (instruction, input,
  output) triple: the only state that grows with the input (about 180 bytes per distinct
  record, measured);
- groups (--group): one Accumulator per value, at most MAX_GROUPS, the rest in "(other)".

Merging follows the same rules, so merge(a, b) gives what one run over a's records then b's
records gives, counts and bins alike, as long as no breakdown goes beyond its cap of distinct
values (max_distinct, MAX_GROUPS, MAX_FIELDS): one run keeps the first values it meets, a merge
the first values of each part, so past a cap the split between kept values and "other" can
differ (the totals do not).
"""

from __future__ import annotations

from fractions import Fraction

import base64
import re
from dataclasses import asdict, dataclass
from hashlib import blake2b as _blake2b
from typing import Any

from cqia_cli.fields import as_text, compile_path, get
from cqia_cli.stats.bins import BINS_VERSION, RAW_LIMIT, LengthDist
from cqia_cli.stats.tally import Tally, key_label, key_value, value_key  # noqa: F401 - re-exported

SCHEMA = "cqia.stats/1"

#: CQIA's categorical fields, always reported when present
CQIA_CATEGORIES = ("task_type.major", "task_type.minor", "domain", "answer_from",
                   "human_verified")
DEFAULT_TEXT_FIELDS = ("instruction", "input", "output")
MAX_FIELDS = 1000
AUTO_DISTINCT = 50
AUTO_VALUE_CHARS = 50
#: a numeric field with more distinct values than this is summarised, not tabulated
NUMERIC_DISTINCT = 12
MAX_GROUPS = 100
#: distinct record shapes (keys and value types) counted before they are expanded
MAX_SHAPES = 10_000
#: characters of text whose Han characters are counted in one go
HAN_BATCH_CHARS = 1 << 16
DEFAULT_MAX_DISTINCT = 10_000
OTHER_GROUP = "(other)"
#: the --group value that groups by input file instead of by a field
FILE_GROUP = "@file"
MISSING_GROUP = "(missing)"

#: Han characters: CJK Unified Ideographs, extension A, compatibility ideographs, extensions B+
HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"
_NOT_HAN = re.compile(f"[^{HAN_RANGES}]+")

TYPE_NAMES = {str: "string", int: "number", float: "number", bool: "boolean",
              type(None): "null", list: "array", dict: "object"}
_EMPTY_TYPES = (str, list, dict, type(None))


# The high byte of each UTF-16 code unit tells most Han characters apart in one C-speed pass:
# 0x34-0x4c and 0x4e-0x9f are all Han, as are 0xf9-0xfa; 0x4d (Ext A and the Yijing hexagrams)
# and surrogates (0xd8-0xdb, extensions B+) take the exact regular-expression path.
_HAN_HI = set(range(0x34, 0x4D)) | set(range(0x4E, 0xA0)) | {0xF9, 0xFA}
_NOT_HAN_HI = bytes(b for b in range(256) if b not in _HAN_HI)


def han_count(text: str) -> int:
    """The number of Han characters (HAN_RANGES) in `text`."""
    if text.isascii():
        return 0
    hi = text.encode("utf-16-be", "surrogatepass")[0::2]
    if 0x4D in hi or 0xD8 in hi or 0xD9 in hi or 0xDA in hi or 0xDB in hi:
        return len(_NOT_HAN.sub("", text))
    return len(hi.translate(None, _NOT_HAN_HI))


@dataclass(frozen=True)
class Config:
    """What a run measures; two stats merge only when their configs agree."""

    text_fields: tuple = DEFAULT_TEXT_FIELDS
    by: tuple = ()
    tokens: bool = False
    diversity: bool = False
    group: str | None = None
    max_distinct: int = DEFAULT_MAX_DISTINCT
    duplicates: bool = True
    bins: str = BINS_VERSION

    def to_json(self) -> dict:
        d = asdict(self)
        d["text_fields"] = list(self.text_fields)
        d["by"] = list(self.by)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Config":
        return cls(text_fields=tuple(d["text_fields"]), by=tuple(d["by"]),
                   tokens=bool(d["tokens"]), diversity=bool(d["diversity"]),
                   group=d.get("group"), max_distinct=int(d["max_distinct"]),
                   duplicates=bool(d.get("duplicates", True)), bins=d["bins"])

    def category_fields(self) -> tuple:
        return tuple(dict.fromkeys(CQIA_CATEGORIES + tuple(self.by)))


class Numbers:
    """count, min, max and sum of a field whose values are all numbers (booleans are not);
    `dropped` once another value is seen.

    The sum is kept exactly (an int, or a Fraction once a float is seen), so that merged
    partial statistics equal one run over everything whatever the order: float addition is
    not associative, and a sum of large floats overflows. JSON gets `sum` as a number and,
    where that number is not the exact value, `exact_sum` as "numerator/denominator"."""

    __slots__ = ("count", "min", "max", "total", "dropped")

    def __init__(self) -> None:
        self.count = 0
        self.min = self.max = None
        self.total: int | Fraction = 0
        self.dropped = False

    def add(self, value: Any) -> None:
        t = type(value)
        if t is not int and t is not float or value != value:
            self.dropped = True
            return
        if t is float and value in (_INF, -_INF):
            self.dropped = True
            return
        self.count += 1
        self.total += value if t is int else Fraction(value)
        if self.min is None or value < self.min:
            self.min = value
        if self.max is None or value > self.max:
            self.max = value

    def merge(self, other: "Numbers") -> None:
        if other.dropped:
            self.dropped = True
        if self.dropped or not other.count:
            return
        self.count += other.count
        self.total += other.total
        self.min = other.min if self.min is None else min(self.min, other.min)
        self.max = other.max if self.max is None else max(self.max, other.max)

    @property
    def mean(self) -> float | None:
        return _to_float(self.total / self.count) if self.count else None

    def to_json(self) -> dict | None:
        if self.dropped:
            return None
        total = self.total
        if type(total) is Fraction and total.denominator == 1:
            total = total.numerator  # one form for one value, however it was summed
        if type(total) is int and -(1 << 63) <= total < (1 << 63):
            return {"count": self.count, "min": self.min, "max": self.max, "sum": total}
        return {"count": self.count, "min": self.min, "max": self.max,
                "sum": _to_float(total), "exact_sum": f"{total.numerator}/{total.denominator}"}

    @classmethod
    def from_json(cls, d: dict | None) -> "Numbers":
        n = cls()
        if d is None:
            n.dropped = True
        else:
            n.count, n.min, n.max = d["count"], d["min"], d["max"]
            exact = d.get("exact_sum")
            if exact is not None:
                total = Fraction(exact)
                n.total = total.numerator if total.denominator == 1 else total
            elif type(d["sum"]) is float:
                n.total = Fraction(d["sum"])
            else:
                n.total = d["sum"]
        return n


_INF = float("inf")


def _to_float(value) -> float:
    """A float near an exact int or Fraction; the sign's infinity where it is out of range."""
    try:
        return float(value)
    except OverflowError:
        return _INF if value > 0 else -_INF


def is_bookkeeping(path: str) -> bool:
    """A field cqia (or another tool) adds for its own accounting: `_`-prefixed."""
    return path.startswith("_")


class FieldCounts:
    """Per field path: records where present, empty (null, "", [], {}), and the types seen."""

    __slots__ = ("present", "empty", "types", "overflow")

    def __init__(self) -> None:
        self.present: dict[str, int] = {}
        self.empty: dict[str, int] = {}
        self.types: dict[str, dict[str, int]] = {}
        self.overflow = 0  # field occurrences beyond MAX_FIELDS names

    def add(self, path: str, typename: str, empty: bool, n: int) -> None:
        present = self.present
        if path not in present:
            if len(present) >= MAX_FIELDS:
                self.overflow += n
                return
            present[path] = 0
            self.empty[path] = 0
            self.types[path] = {}
        present[path] += n
        if empty:
            self.empty[path] += n
        types = self.types[path]
        types[typename] = types.get(typename, 0) + n

    def merge(self, other: "FieldCounts") -> None:
        for path, n in other.present.items():
            for typename, c in other.types[path].items():
                self.add(path, typename, False, c)
            if path in self.empty:
                self.empty[path] += other.empty[path]
        self.overflow += other.overflow

    def to_json(self) -> dict:
        return {path: {"present": n, "empty": self.empty[path], "types": self.types[path]}
                for path, n in self.present.items()}

    @classmethod
    def from_json(cls, d: dict, overflow: int) -> "FieldCounts":
        f = cls()
        for path, v in d.items():
            for typename, c in v["types"].items():
                f.add(path, typename, False, int(c))
            if path in f.empty:
                f.empty[path] += int(v["empty"])
        f.overflow = overflow
        return f


class TextStats:
    """One text field: records with it, lengths in characters, Han characters, word counts."""

    __slots__ = ("missing", "chars", "_han", "tokens", "raw", "pending", "pending_chars")

    def __init__(self, tokens: bool) -> None:
        self.missing = 0
        self.chars = LengthDist()
        self.raw = self.chars.raw  # the hot path counts exact lengths here
        self._han = 0
        #: non-ASCII values whose Han characters are still to be counted, in one pass over
        #: their concatenation (a count adds up over concatenated texts); flushed at
        #: HAN_BATCH_CHARS characters, so they hold at most that much in memory
        self.pending: list[str] = []
        self.pending_chars = 0
        self.tokens = LengthDist() if tokens else None

    @property
    def han(self) -> int:
        """Han characters in all values so far."""
        if self.pending:
            self.count_pending()
        return self._han

    def count_pending(self) -> None:
        hi = "".join(self.pending).encode("utf-16-be", "surrogatepass")[0::2]
        if 0x4D in hi or 0xD8 in hi or 0xD9 in hi or 0xDA in hi or 0xDB in hi:
            self._han += sum(map(han_count, self.pending))  # the rare exact path, per value
        else:
            self._han += len(hi.translate(None, _NOT_HAN_HI))
        self.pending.clear()
        self.pending_chars = 0

    def merge(self, other: "TextStats") -> None:
        self.missing += other.missing
        self.chars.merge(other.chars)
        self._han = self.han + other.han
        if self.tokens is not None:
            self.tokens.merge(other.tokens)

    def to_json(self) -> dict:
        chars = self.chars
        chars.fold()
        d = {"present": chars.n, "missing": self.missing, "empty": chars.bins.get(0, 0),
             "han": self.han,
             "han_share": round(self.han / chars.total, 4) if chars.total else None,
             "length": chars.summary(), "length_dist": chars.to_json()}
        if self.tokens is not None:
            d["words"] = self.tokens.summary()
            d["words_dist"] = self.tokens.to_json()
        return d

    @classmethod
    def from_json(cls, d: dict, tokens: bool) -> "TextStats":
        t = cls(tokens)
        t.missing = int(d["missing"])
        t._han = int(d["han"])
        t.chars = LengthDist.from_json(d["length_dist"])
        t.raw = t.chars.raw
        if tokens:
            t.tokens = LengthDist.from_json(d["words_dist"])
        return t


class DupSet:
    """Exact duplicates by 8-byte BLAKE2b hashes of the text."""

    __slots__ = ("records", "hashes")

    def __init__(self) -> None:
        self.records = 0
        self.hashes: set[bytes] = set()

    def merge(self, other: "DupSet") -> None:
        self.records += other.records
        self.hashes |= other.hashes

    def to_json(self) -> dict:
        distinct = len(self.hashes)
        return {"records": self.records, "distinct": distinct,
                "duplicates": self.records - distinct,
                "hashes": base64.b64encode(b"".join(sorted(self.hashes))).decode("ascii")}

    @classmethod
    def from_json(cls, d: dict) -> "DupSet":
        s = cls()
        s.records = int(d["records"])
        raw = base64.b64decode(d["hashes"])
        if len(raw) % 8:
            raise ValueError("duplicate hashes are not a multiple of 8 bytes")
        s.hashes = {raw[i:i + 8] for i in range(0, len(raw), 8)}
        if len(s.hashes) != int(d["distinct"]):
            raise ValueError("duplicate hashes do not match the distinct count")
        return s


def _digests(rec: dict) -> tuple | None:
    """(hash of the instruction or None when it is absent, hash of instruction, input and
    output), or None when the record has none of the three."""
    inst = rec.get("instruction")
    inp = rec.get("input")
    out = rec.get("output")
    if inst is None and inp is None and out is None:
        return None
    if type(inst) is not str:
        inst = as_text(inst) if inst is not None else None
    h = _blake2b(inst.encode() if inst else b"", digest_size=8)
    first = h.digest() if inst is not None else None
    if type(inp) is not str:
        inp = as_text(inp)
    if type(out) is not str:
        out = as_text(out)
    h.update(f"\x00{inp}\x00{out}".encode())
    return first, h.digest()


def _auto_ok(value: Any) -> bool:
    """Whether a value fits an auto-detected category: a short scalar or a list of them."""
    t = type(value)
    if t is str:
        return len(value) <= AUTO_VALUE_CHARS
    if t is list:
        return all(type(v) is not list and _auto_ok(v) for v in value)  # no recursion
    return t is not dict


class Accumulator:
    """The statistics of a stream of records (see the module docstring)."""

    def __init__(self, config: Config | None = None, *, _child: bool = False) -> None:
        self.config = config = config or Config()
        self.records = 0
        self.bytes = 0
        self.fields = FieldCounts()
        self._shapes: dict[tuple, list] = {}
        self._nested: dict[tuple, list] = {}
        self.text = {f: TextStats(config.tokens) for f in config.text_fields}
        self._text_paths = [(f, compile_path(f)) for f in config.text_fields]
        cats = config.category_fields()
        self.categories = {f: Tally(config.max_distinct) for f in cats}
        #: auto-detected categories: path -> Tally (dropped ones stay, marked)
        self.auto: dict[str, Tally] = {}
        #: numeric summaries of the auto-detected fields: path -> Numbers
        self.numeric: dict[str, Numbers] = {}
        self._not_auto = set(config.text_fields) | set(cats) | set(DEFAULT_TEXT_FIELDS)
        #: None with --no-duplicates
        self.dup_instruction = DupSet() if config.duplicates else None
        self.dup_triple = DupSet() if config.duplicates else None
        self.diversity = None
        if config.diversity:
            from cqia_cli.stats.nlp import Diversity

            self.diversity = Diversity(config.max_distinct)
        self._words = None
        if config.tokens:
            from cqia_cli.stats.nlp import word_count

            self._words = word_count
        self.groups: dict | None = None
        if config.group and not _child:
            self.groups = {}
            self._group_path = None if config.group == FILE_GROUP else compile_path(config.group)
        self._slots()

    # -- adding -----------------------------------------------------------------------------

    def add(self, rec: dict, size: int = 0, nlp: tuple | None = None,
            source: str | None = None, _memo: tuple | None = None) -> None:
        """Count one record; `size` is the length in bytes of its line; `nlp` is what
        `nlp_inputs(rec)` gives, measured by cqia_cli.stats.nlp.measure (for -j), when the
        jieba figures were computed elsewhere; `source` names the input file (--group @file).
        `_memo` hands a group what its parent already computed for the record (shape, hashes).
        """
        self.records += 1
        self.bytes += size
        if not self.records & 1023:
            self._fold_pending()
        if nlp is None and self.groups is not None and (self.config.tokens
                                                        or self.config.diversity):
            from cqia_cli.stats.nlp import measure

            nlp = measure([self.nlp_inputs(rec)])[0]  # once for the record and its groups
        # fields: counted per record shape (keys, value types, truth), expanded when read;
        # each shape's entry is [count, keys of nested objects, keys to auto-detect]
        if _memo is None:
            values = rec.values()
            shape = (tuple(rec), tuple(map(type, values)), tuple(map(bool, values)))
        else:
            shape = _memo[0]
        entry = self._shapes.get(shape)
        if entry is None:
            if len(self._shapes) >= MAX_SHAPES:
                self._flush_shapes()
            entry = self._shapes[shape] = [0, *self._make_plan(shape, "")]
        entry[0] += 1
        for k in entry[1]:
            sub = rec[k]
            svalues = sub.values()
            sshape = (k, tuple(sub), tuple(map(type, svalues)), tuple(map(bool, svalues)))
            sentry = self._nested.get(sshape)
            if sentry is None:
                if len(self._nested) >= MAX_SHAPES:
                    self._flush_shapes()
                sentry = self._nested[sshape] = [0, *self._make_plan(sshape, k + ".")]
            sentry[0] += 1
            for path, k2 in sentry[2]:
                self._auto_add(path, sub[k2])
        for path, k in entry[2]:
            self._auto_add(path, rec[k])

        # text fields
        for ts, key, path in self._text_slots:
            value = rec.get(key) if path is None else get(rec, path)
            if value is None:
                ts.missing += 1
                continue
            if type(value) is not str:
                value = as_text(value)
            raw = ts.raw
            n = len(value)
            raw[n] = raw.get(n, 0) + 1
            if not value.isascii():
                ts.pending.append(value)
                ts.pending_chars += n
                if ts.pending_chars > HAN_BATCH_CHARS:
                    ts.count_pending()
        if self._words is not None:
            words = nlp[0] if nlp is not None else None
            for i, (ts, key, path) in enumerate(self._text_slots):
                value = rec.get(key) if path is None else get(rec, path)
                if value is not None:
                    ts.tokens.add(self._words(as_text(value)) if words is None else words[i])

        # categories (list fields count each element)
        for tally, key, key2, path in self._cat_slots:
            if key2 is not None:
                value = rec.get(key)
                if type(value) is not dict:
                    continue
                value = value.get(key2)
            elif path is None:
                value = rec.get(key)
            else:
                value = get(rec, path)
            if value is None:
                continue
            tally.records += 1
            counts = tally.counts
            for v in (value if type(value) is list else (value,)):
                if type(v) is not str:
                    v = value_key(v)
                if v in counts:
                    counts[v] += 1
                elif len(counts) < tally.cap:
                    counts[v] = 1
                else:
                    tally.other += 1

        # exact duplicates: 8-byte hashes of the instruction and of the triple
        digests = None
        if self.dup_triple is not None:
            digests = _memo[1] if _memo is not None else _digests(rec)
            if digests is not None:
                if digests[0] is not None:
                    self.dup_instruction.records += 1
                    self.dup_instruction.hashes.add(digests[0])
                self.dup_triple.records += 1
                self.dup_triple.hashes.add(digests[1])

        if self.diversity is not None:
            if nlp is None:
                self.diversity.add(rec.get("instruction"))
            elif nlp[1] is not None:
                self.diversity.add_result(*nlp[1])

        if self.groups is not None:
            memo = (shape, digests)
            if self._group_path is None:
                self._group(source or MISSING_GROUP).add(rec, size, nlp, None, memo)
                return
            for key in self._group_keys(rec):
                self._group(key).add(rec, size, nlp, None, memo)

    def nlp_inputs(self, rec: dict) -> tuple:
        """The texts the jieba figures of `rec` need: (text of each text field or None when
        --tokens is off or the field is missing, the instruction or None)."""
        texts = None
        if self.config.tokens:
            texts = []
            for _, key, path in self._text_slots:
                value = rec.get(key) if path is None else get(rec, path)
                texts.append(value if value is None or type(value) is str else as_text(value))
        inst = None
        if self.config.diversity:
            inst = rec.get("instruction")
            if inst is not None and type(inst) is not str:
                inst = as_text(inst)
        return texts, inst

    def _fold_pending(self) -> None:
        """Fold exact lengths into bins where many distinct ones are pending (bounded memory)."""
        for ts in self.text.values():
            if len(ts.chars.raw) > RAW_LIMIT:
                ts.chars.fold()

    def _slots(self) -> None:
        """Per-field lookups compiled once (and again when from_json replaces the parts)."""
        self._text_slots = []
        for name, path in self._text_paths:
            simple = len(path) == 1 and isinstance(path[0], str)
            self._text_slots.append((self.text[name], path[0], None if simple else path))
        self._cat_slots = []
        for name in self.config.category_fields():
            path = compile_path(name)
            tally = self.categories[name]
            if len(path) == 1 and isinstance(path[0], str):
                self._cat_slots.append((tally, path[0], None, None))
            elif len(path) == 2 and all(isinstance(p, str) for p in path):
                self._cat_slots.append((tally, path[0], path[1], None))
            else:
                self._cat_slots.append((tally, None, None, path))

    def _group_keys(self, rec: dict) -> list:
        value = get(rec, self._group_path)
        if value is None:
            return [MISSING_GROUP]
        if type(value) is list:
            keys = list(dict.fromkeys(key_label(value_key(v)) for v in value))
            return keys or [MISSING_GROUP]
        return [key_label(value_key(value))]

    def _group(self, key: str) -> "Accumulator":
        groups = self.groups
        acc = groups.get(key)
        if acc is None:
            if len(groups) >= MAX_GROUPS + (OTHER_GROUP in groups):
                key = OTHER_GROUP
                acc = groups.get(key)
            if acc is None:
                acc = groups[key] = Accumulator(self.config, _child=True)
        return acc

    def _make_plan(self, shape: tuple, prefix: str) -> tuple:
        keys, types = (shape[1], shape[2]) if prefix else (shape[0], shape[1])
        nested = [] if prefix else [k for k, t in zip(keys, types) if t is dict]
        auto = []
        for k, t in zip(keys, types):
            path = prefix + k
            if t is dict or path in self._not_auto:
                continue
            tally = self.auto.get(path)
            if tally is not None and tally.dropped and not self._numeric_alive(path):
                continue
            auto.append((path, k))
        return nested, auto

    def _numeric_alive(self, path: str) -> bool:
        num = self.numeric.get(path)
        return num is not None and not num.dropped

    def _auto_add(self, path: str, value: Any) -> None:
        if value is None:
            return
        num = self.numeric.get(path)
        if num is None and len(self.numeric) < MAX_FIELDS:
            num = self.numeric[path] = Numbers()
        if num is not None and not num.dropped:
            num.add(value)
            if num.dropped:
                tally = self.auto.get(path)
                if tally is not None and tally.dropped:
                    self._drop_auto(path)
        tally = self.auto.get(path)
        if tally is None:
            if len(self.auto) >= MAX_FIELDS:
                return
            tally = self.auto[path] = Tally(AUTO_DISTINCT + 1)
            if is_bookkeeping(path):  # never a category
                self._drop_auto(path)
                return
        elif tally.dropped:
            return
        if not _auto_ok(value):
            self._drop_auto(path)
            return
        tally.add_value(value)
        if len(tally.counts) > AUTO_DISTINCT:
            self._drop_auto(path)

    def _drop_auto(self, path: str) -> None:
        """`path` is not categorical after all: stop counting it, for good."""
        tally = self.auto[path]
        tally.dropped = True
        tally.counts = {}
        tally.other = tally.records = 0
        if self._numeric_alive(path):  # still summarised as numbers
            return
        for table in (self._shapes, self._nested):
            for entry in table.values():
                entry[-1] = [(p, k) for p, k in entry[-1] if p != path]

    def _flush_shapes(self) -> None:
        add = self.fields.add
        for (keys, types, truths), (n, *_) in self._shapes.items():
            for k, t, truth in zip(keys, types, truths):
                add(k, TYPE_NAMES.get(t, "other"), not truth and t in _EMPTY_TYPES, n)
        for (prefix, keys, types, truths), (n, *_) in self._nested.items():
            for k, t, truth in zip(keys, types, truths):
                add(f"{prefix}.{k}", TYPE_NAMES.get(t, "other"),
                    not truth and t in _EMPTY_TYPES, n)
        self._shapes = {}
        self._nested = {}

    # -- merging ----------------------------------------------------------------------------

    def merge(self, other: "Accumulator") -> None:
        """Add `other`'s statistics, as if its records had followed ours."""
        if other.config != self.config:
            raise ValueError(config_difference(self.config, other.config))
        self._flush_shapes()
        other._flush_shapes()
        self.records += other.records
        self.bytes += other.bytes
        self.fields.merge(other.fields)
        for name, ts in self.text.items():
            ts.merge(other.text[name])
        for name, tally in self.categories.items():
            tally.merge(other.categories[name])
        for path, tally in other.auto.items():
            mine = self.auto.get(path)
            if mine is None:
                if len(self.auto) >= MAX_FIELDS:
                    continue
                mine = self.auto[path] = Tally(AUTO_DISTINCT + 1)
            if mine.dropped:
                continue
            if tally.dropped:
                self._drop_auto(path)
                continue
            mine.merge(tally)
            if len(mine.counts) > AUTO_DISTINCT:
                self._drop_auto(path)
        for path, num in other.numeric.items():
            mine_n = self.numeric.get(path)
            if mine_n is None:
                if len(self.numeric) >= MAX_FIELDS:
                    continue
                mine_n = self.numeric[path] = Numbers()
            mine_n.merge(num)
        if self.dup_triple is not None:
            self.dup_instruction.merge(other.dup_instruction)
            self.dup_triple.merge(other.dup_triple)
        if self.diversity is not None:
            self.diversity.merge(other.diversity)
        if self.groups is not None:
            for key, acc in other.groups.items():
                self._group(key).merge(acc)

    # -- reading ----------------------------------------------------------------------------

    def finish(self) -> "Accumulator":
        self._flush_shapes()
        if self.groups:
            for acc in self.groups.values():
                acc.finish()
        return self

    def auto_categories(self) -> dict[str, Tally]:
        """Auto-detected categorical fields: few distinct short values, seen in records (not
        the numeric fields that `numeric_fields` summarises)."""
        numeric = self.numeric_fields()
        return {p: t for p, t in self.auto.items()
                if not t.dropped and t.records and t.counts and p not in numeric}

    def numeric_fields(self) -> dict[str, Numbers]:
        """Fields summarised as numbers: every value a number, and the field bookkeeping
        (`_`-prefixed) or with more than NUMERIC_DISTINCT distinct values."""
        out = {}
        for p, num in self.numeric.items():
            if num.dropped or not num.count:
                continue
            tally = self.auto.get(p)
            many = tally is None or tally.dropped or len(tally.counts) > NUMERIC_DISTINCT
            if is_bookkeeping(p) or many:
                out[p] = num
        return out

    def to_json(self, *, config: bool = True) -> dict:
        self.finish()
        d: dict = {}
        if config:
            d["schema"] = SCHEMA
            d["kind"] = "stats"
            d["config"] = self.config.to_json()
        d["records"] = self.records
        d["bytes"] = self.bytes
        d["fields"] = self.fields.to_json()
        d["fields_overflow"] = self.fields.overflow
        d["text"] = {name: ts.to_json() for name, ts in self.text.items()}
        d["categories"] = {name: t.to_json() for name, t in self.categories.items()}
        d["auto_categories"] = {p: (None if t.dropped else t.to_json())
                                for p, t in self.auto.items()}
        d["numbers"] = {p: n.to_json() for p, n in self.numeric.items()}
        d["duplicates"] = None if self.dup_triple is None else {
            "instruction": self.dup_instruction.to_json(), "triple": self.dup_triple.to_json()}
        if self.diversity is not None:
            d["diversity"] = self.diversity.to_json()
        if self.groups is not None:
            # "(other)" last, wherever it was opened: the same order as a merge gives
            keys = [k for k in self.groups if k != OTHER_GROUP]
            keys += [OTHER_GROUP] if OTHER_GROUP in self.groups else []
            d["groups"] = {"field": self.config.group,
                           "values": [[k, self.groups[k].to_json(config=False)] for k in keys]}
        return d

    @classmethod
    def from_json(cls, d: dict, config: Config | None = None, *, _child: bool = False
                  ) -> "Accumulator":
        if config is None:
            if not isinstance(d, dict) or d.get("schema") != SCHEMA:
                got = d.get("schema") if isinstance(d, dict) else None
                raise ValueError(f"not a cqia stats JSON (schema {SCHEMA!r} expected, got "
                                 f"{got!r})")
            if d.get("kind") != "stats":
                raise ValueError(f"a {d.get('kind')!r} document, not the stats of one input")
            config = Config.from_json(d["config"])
        acc = cls(config, _child=_child)
        acc.records = int(d["records"])
        acc.bytes = int(d["bytes"])
        acc.fields = FieldCounts.from_json(d["fields"], int(d.get("fields_overflow", 0)))
        acc.text = {name: TextStats.from_json(d["text"][name], config.tokens)
                    for name in config.text_fields}
        acc.categories = {name: Tally.from_json(d["categories"][name], config.max_distinct)
                          for name in config.category_fields()}
        for path, t in d["auto_categories"].items():
            if t is None:
                tally = Tally(AUTO_DISTINCT + 1)
                tally.dropped = True
            else:
                tally = Tally.from_json(t, AUTO_DISTINCT + 1)
            acc.auto[path] = tally
        for path, n in d.get("numbers", {}).items():  # absent from stats JSON of cqia <= 0.1
            acc.numeric[path] = Numbers.from_json(n)
        if config.duplicates:
            acc.dup_instruction = DupSet.from_json(d["duplicates"]["instruction"])
            acc.dup_triple = DupSet.from_json(d["duplicates"]["triple"])
        if config.diversity:
            from cqia_cli.stats.nlp import Diversity

            acc.diversity = Diversity.from_json(d["diversity"], config.max_distinct)
        acc._slots()
        if acc.groups is not None:
            for key, sub in d["groups"]["values"]:
                acc.groups[key] = cls.from_json(sub, config, _child=True)
        return acc


def config_difference(a: Config, b: Config) -> str:
    diffs = [f"{k} {getattr(a, k)!r} vs {getattr(b, k)!r}"
             for k in a.__dataclass_fields__ if getattr(a, k) != getattr(b, k)]
    return "made with different options: " + ", ".join(diffs)
