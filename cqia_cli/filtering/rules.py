"""The rules of `cqia filter`: each one a small class with a name, parameters with defaults, the
fields it reads by default, and `check(record)` -> None (keep) or (field, detail) (reject).

Parameters are declared once (`Param`) so that recipes, `--set`, `--list-rules` and the man page
all see the same names, types and defaults. A per-field parameter holds one value per field
(`{"instruction": 2, "output": 1}`); the key "*" applies to any field not named.
"""

from __future__ import annotations

from dataclasses import dataclass
import re
from operator import and_ as _and, eq as _eq
from typing import Any, ClassVar, Iterator

import regex

from cqia_cli.fields import FieldPath, as_text, get
from cqia_cli.text import pii
from cqia_cli.text.latex import _LATEX as _EATEN, latex_repairable
from cqia_cli.text.spans import CODE_OR_MATH, URLS, prose, without_code  # noqa: F401
from cqia_cli.filtering.expr import ExprError, Expression, tokenize
from cqia_cli.filtering.terms import load_matcher, read_terms

# -- parameters ------------------------------------------------------------------------------

KINDS = ("int", "float", "bool", "str", "list", "files", "per-field-int", "per-field-float",
         "exprs")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str
    default: Any
    help: str
    choices: tuple = ()
    #: (lowest, highest) a number may be (None: no bound), checked by `coerce`
    bounds: tuple = (None, None)

    def describe_default(self) -> str:
        d = self.default
        if self.kind.startswith("per-field"):
            return ", ".join(f"{k}={v}" for k, v in d.items()) if d else "none"
        if isinstance(d, (list, tuple)):
            return ",".join(map(str, d)) if d else "none"
        if isinstance(d, bool):
            return "true" if d else "false"
        return str(d)

    def coerce(self, value: Any, *, field: str | None = None) -> Any:
        """Check and convert a value from a recipe (typed) or the command line (a string).

        Raises ValueError with a message that names what is wrong."""
        kind = self.kind
        if kind.startswith("per-field"):
            scalar = Param(self.name, kind.split("-")[-1], None, "", bounds=self.bounds)
            if isinstance(value, dict):
                return {str(k): scalar.coerce(v) for k, v in value.items()}
            if field is not None:
                return {field: scalar.coerce(value)}
            if isinstance(value, str) and "=" in value:
                out = {}
                for part in value.split(","):
                    k, _, v = part.partition("=")
                    if not k.strip():
                        raise ValueError(f"expected FIELD=VALUE, got {part!r}")
                    out[k.strip()] = scalar.coerce(v.strip())
                return out
            return {"*": scalar.coerce(value)}
        if field is not None:
            raise ValueError("is not a per-field parameter")
        if kind in ("int", "float"):
            number = self._number(value)
            lo, hi = self.bounds
            if lo is not None and number < lo or hi is not None and number > hi:
                if hi is None:
                    want = f"at least {lo:g}"
                elif lo is None:
                    want = f"at most {hi:g}"
                else:
                    want = f"between {lo:g} and {hi:g}"
                raise ValueError(f"{number:g} is out of range: expected a number {want}")
            if number != number:  # NaN
                raise ValueError("expected a number, got NaN")
            return number
        return self._other(value)

    def _number(self, value: Any) -> Any:
        kind = self.kind
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError(f"expected an integer, got {value!r}")
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            try:
                return int(str(value).strip())
            except ValueError:
                raise ValueError(f"expected an integer, got {value!r}") from None
        if kind == "float":
            if isinstance(value, bool):
                raise ValueError(f"expected a number, got {value!r}")
            if isinstance(value, (int, float)):
                return float(value)
            try:
                return float(str(value).strip())
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        raise AssertionError(kind)

    def _other(self, value: Any) -> Any:
        kind = self.kind
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "yes", "1", "on"):
                return True
            if text in ("false", "no", "0", "off"):
                return False
            raise ValueError(f"expected true or false, got {value!r}")
        if kind == "str":
            if not isinstance(value, str):
                raise ValueError(f"expected a string, got {value!r}")
            if self.choices and value not in self.choices:
                raise ValueError(f"expected one of {', '.join(self.choices)}, got {value!r}")
            return value
        # list-like kinds
        if isinstance(value, str):
            items = [value] if kind == "exprs" else [v.strip() for v in value.split(",")]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise ValueError(f"expected a list, got {value!r}")
        items = [i for i in items if not (isinstance(i, str) and not i.strip())]
        for item in items:
            if not isinstance(item, str):
                raise ValueError(f"expected a list of strings, got {item!r}")
            if self.choices and item not in self.choices:
                raise ValueError(f"unknown value {item!r} (known: {', '.join(self.choices)})")
        return items


FIELDS_PARAM = Param("fields", "list", (), "Fields (dotted paths) the rule reads.")


def per_field(values: dict, field: str, default: Any = None) -> Any:
    return values.get(field, values.get("*", default))


# -- text helpers ----------------------------------------------------------------------------

# prose() and without_code() live in the text module shared with clean and dedup
_CODE = CODE_OR_MATH
_URLS = URLS


def _fmt(x: float) -> str:
    return f"{x:.3g}" if 0 < x < 0.1 else f"{x:.2f}"


_BELOW = ", below"


def _char(c: str) -> str:
    return f"U+{ord(c):04X}"


# -- the base class --------------------------------------------------------------------------


class Configurable:
    """What a filter rule and a clean step share: a name, parameters checked by name, the
    fields it reads, and a spec that rebuilds it in a worker process."""

    #: what the class is called in messages ("rule", "step")
    kind: ClassVar[str] = "rule"
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    default_fields: ClassVar[tuple[str, ...]] = ("output",)
    params: ClassVar[tuple[Param, ...]] = ()
    #: part of the default set
    default_on: ClassVar[bool] = True
    #: reads text fields: `--field` replaces its fields
    text_rule: ClassVar[bool] = True

    def __init__(self, fields: list[str] | tuple = (), **values: Any):
        known = {p.name for p in self.params}
        for key in values:
            if key not in known:
                raise ValueError(f"unknown parameter {key!r} of {self.kind} {self.name}")
        self.fields = tuple(fields) or self.default_fields
        self._paths = [(f, FieldPath(f)) for f in self.fields]
        #: (field, top-level key or None, path parts): a plain dict lookup for top-level fields
        self._keys = [(f, p.top, p.parts) for f, p in self._paths]
        self.values = {p.name: values.get(p.name, p.default) for p in self.params}
        self.setup(**self.values)

    def setup(self, **values: Any) -> None:
        """Compile what the parameters say (patterns, lists); called once."""

    @classmethod
    def param(cls, name: str) -> Param:
        if name == "fields":
            return FIELDS_PARAM
        for p in cls.params:
            if p.name == name:
                return p
        known = ", ".join(["fields", *(p.name for p in cls.params)])
        raise KeyError(f"unknown parameter {name!r} of {cls.kind} {cls.name} (known: {known})")

    def spec(self) -> tuple[str, tuple, dict]:
        """What rebuilds this rule or step in a worker process: (name, fields, parameters)."""
        return self.name, self.fields, dict(self.values)


class Rule(Configurable):
    """One quality rule. Subclasses set the class attributes and implement `check_text` (one
    field's text) or `check` (the whole record)."""

    def watched(self) -> list[str]:
        """Fields the user named for this rule whose absence they should hear about: a
        Filter counts the records without each one, and the command warns when most lack it
        (`--threshold 'nosuchfield >= 5'` would otherwise drop everything silently)."""
        return []

    def texts(self, record: dict) -> Iterator[tuple[str, str]]:
        """(field, text) for each of the rule's fields; missing fields give ''."""
        for name, path in self._paths:
            value = path(record)
            yield name, value if type(value) is str else as_text(value)

    #: this rule's slot in a Filter's shared trigger scan (set by the Filter; None: not gated)
    slot: int | None = None

    def triggers(self) -> list[str] | None:
        """Lower-case literal strings of which a field must hold one for `check_text` to find
        anything that `check_gated` does not look for anyway; None when there is no such list.

        A Filter scans each field once for the triggers of all its rules (one Aho–Corasick
        pass) and lets every rule skip the fields that hold none of its triggers."""
        return None

    #: check_gated(field, text, False) is always None: a field without triggers is skipped
    gate_only: bool = False

    def check(self, record: dict, scan: "Scan | None" = None) -> tuple[str, str] | None:
        slot = self.slot if scan is not None else None
        gate_only = False
        if slot is not None:
            cache = scan.cache
            gate_only = self.gate_only
        for field, key, parts in self._keys:
            if gate_only:
                # a field already scanned (by this rule or another on the same field) without
                # this rule's triggers: nothing to find, not even the text to fetch
                slots = cache.get(field)
                if slots is not None and slot not in slots:
                    continue
            value = record.get(key) if key is not None else get(record, parts)
            if value is None or value == "":
                continue
            text = value if type(value) is str else as_text(value)
            if not text:
                continue
            if slot is None:
                detail = self.check_text(field, text)
            else:
                slots = cache.get(field)
                if slots is None:
                    slots = scan.slots(field, text)
                if slot in slots:
                    detail = self.check_gated(field, text, True)
                elif gate_only:
                    continue
                else:
                    detail = self.check_gated(field, text, False)
            if detail:
                return field, detail
        return None

    def check_gated(self, field: str, text: str, triggered: bool) -> str | None:
        """`check_text` when a trigger was found in the field; else only what the triggers do
        not cover (nothing, by default)."""
        return self.check_text(field, text) if triggered else None

    def check_text(self, field: str, text: str) -> str | None:  # pragma: no cover - abstract
        raise NotImplementedError


# -- length ----------------------------------------------------------------------------------

_FILLER_STRIP = regex.compile(r"[\s\p{P}]+")


class Length(Rule):
    name = "length"
    summary = ("Characters per field (a Chinese character counts as one), optionally jieba "
               "words; required fields that are empty or only whitespace (required follows "
               "--field unless set).")
    default_fields = ("instruction", "input", "output")
    params = (
        Param("min", "per-field-int", {"instruction": 2, "output": 1},
              "Fewest characters (surrounding whitespace not counted).", bounds=(0, None)),
        Param("max", "per-field-int", {"instruction": 16384, "input": 32768, "output": 32768},
              "Most characters (0: no limit).", bounds=(0, None)),
        Param("min_words", "per-field-int", {}, "Fewest jieba words (0: no limit; loads jieba).",
              bounds=(0, None)),
        Param("max_words", "per-field-int", {}, "Most jieba words (0: no limit; loads jieba).",
              bounds=(0, None)),
        Param("required", "list", ("instruction", "output"),
              "Fields that must be present and not empty or only whitespace."),
        Param("filler", "files", (),
              "Files of filler replies: an output that is nothing but one of them is rejected "
              "(none by default: the non-answer rule checks the shipped list, knowing the "
              "kind of question)."),
        Param("filler_fields", "list", ("output",), "Fields checked against the filler list."),
    )

    def __init__(self, fields: list[str] | tuple = (), **values: Any):
        if fields and "required" not in values:
            # `required` follows the fields read (-f text), unless it is set: the default
            # required fields that are read, else all the fields read
            default = self.param("required").default
            values["required"] = [f for f in default if f in fields] or list(fields)
        super().__init__(fields, **values)

    def setup(self, min, max, min_words, max_words, required, filler, filler_fields):
        self.min, self.max = min, max
        self.min_words, self.max_words = min_words, max_words
        self.required = tuple(required)
        self._required_paths = [(f, FieldPath(f)) for f in self.required]
        terms, _, _ = read_terms(filler) if filler else ([], [], [])
        self.filler = frozenset(_FILLER_STRIP.sub("", t) for t in terms) - {""}
        self.filler_fields = frozenset(filler_fields)
        self._words = bool(any(min_words.values()) or any(max_words.values()))
        #: field -> (min, max), looked up once per field name
        self._limits: dict[str, tuple] = {}

    def watched(self) -> list[str]:
        named: dict[str, None] = {}
        if self.fields != self.default_fields:
            named.update(dict.fromkeys(self.fields))
        for p in self.params:
            if p.kind.startswith("per-field"):
                value = self.values[p.name]
                named.update((k, None) for k, v in value.items()
                             if k != "*" and p.default.get(k) != v)
        if tuple(self.required) != tuple(self.param("required").default):
            named.update(dict.fromkeys(self.required))
        return list(named)

    def check(self, record: dict, scan: "Scan | None" = None) -> tuple[str, str] | None:
        for name, path in self._required_paths:
            value = path(record)
            if value is None:
                return name, "missing" if path.top is None or name not in record else "null"
            text = value if type(value) is str else as_text(value)
            if not text:
                return name, "empty"
            if text.isspace():
                return name, "only whitespace"
        return super().check(record, scan)

    def check_text(self, field: str, text: str) -> str | None:
        n = len(text.strip())
        limits = self._limits.get(field)
        if limits is None:
            limits = self._limits[field] = (per_field(self.min, field, 0),
                                            per_field(self.max, field, 0))
        lo, hi = limits
        if lo and n < lo:
            return f"{n:,} characters, below {lo:,}"
        if hi and n > hi:
            return f"{n:,} characters, above {hi:,}"
        if self.filler and field in self.filler_fields and n <= 12:
            key = _FILLER_STRIP.sub("", text).lower()
            if key in self.filler:
                return f"a filler reply: {text.strip()}"
        if self._words:
            wlo = per_field(self.min_words, field, 0)
            whi = per_field(self.max_words, field, 0)
            if wlo or whi:
                words = _count_words(text)
                if wlo and words < wlo:
                    return f"{words:,} words, below {wlo:,}"
                if whi and words > whi:
                    return f"{words:,} words, above {whi:,}"
        return None


class NonAnswer(Rule):
    name = "non-answer"
    summary = ("Outputs that answer nothing: only punctuation, symbols or emoji; forum filler "
               "and slang (顶, cy, gkd, 插眼, 码住, +1: filler.txt); a bare number to a question "
               "that asks for none; fewer characters than the kind of question needs (open "
               "questions 4; the answers A, 对, 是 or a number pass for choice, yes/no, fill-in "
               "and maths questions).")
    default_fields = ("output",)
    params = (
        Param("min", "per-field-int",
              {"open": 4, "short": 1, "choice": 1, "yesno": 1, "fill": 1, "maths": 1},
              "Fewest letters, digits and ideographs an answer needs, per kind of question: "
              "open, short (什么, 谁, 哪), choice, yesno, fill, maths; a question of several "
              "kinds takes the lowest.", bounds=(0, None)),
        Param("question", "list", ("instruction", "input"),
              "Fields that hold the question whose kind is judged."),
        Param("filler", "files", ("shipped:filler.txt",),
              "Files of filler and slang replies: an answer that is nothing but one of them "
              "(spaces, punctuation, symbols and case ignored) is rejected, unless it is what "
              "the question asks for (the number 3 to a maths question, 对 to a yes/no one)."),
        Param("symbols_only", "bool", True,
              "Reject an answer with no letter, digit or ideograph (only punctuation, symbols, "
              "emoji)."),
        Param("numbers_only", "bool", True,
              "Reject a bare number unless the question is a maths, fill-in or choice one."),
    )
    #: texts longer than this are not judged for filler, numbers or length
    _SHORT = 40

    def setup(self, min, question, filler, symbols_only, numbers_only):
        from cqia_cli.filtering import answers

        unknown = [k for k in min if k != "*" and k not in answers.KINDS]
        if unknown:
            raise ValueError(f"min: unknown kind of question {unknown[0]!r} (known: "
                             f"{', '.join(answers.KINDS)})")
        self.answers = answers
        self.min = {k: per_field(min, k, 0) for k in answers.KINDS}
        self._most = max(self.min.values())
        self.question = [(f, FieldPath(f)) for f in question]
        terms, _, _ = read_terms(filler) if filler else ([], [], [])
        self.filler = frozenset(answers.NOISE.sub("", t).lower() for t in terms) - {""}
        self.symbols_only, self.numbers_only = symbols_only, numbers_only

    def kinds(self, record: dict) -> frozenset:
        parts = []
        for _, path in self.question:
            value = path(record)
            if value:
                parts.append(value if type(value) is str else as_text(value))
        return self.answers.question_kinds("\n".join(parts))

    def check(self, record: dict, scan: "Scan | None" = None) -> tuple[str, str] | None:
        a = self.answers
        for field, path in self._paths:
            top = path.top
            value = record.get(top) if top is not None else get(record, path.parts)
            if value is None or value == "":
                continue
            text = value if type(value) is str else as_text(value)
            text = text.strip()
            if not text:
                continue
            if len(text) > self._SHORT:
                if self.symbols_only and _CONTENT_CHAR.search(text) is None:
                    return field, f"only punctuation, symbols or emoji: {_clip(text)}"
                continue
            n = a.content_length(text)
            if n == 0:
                if (self.symbols_only and not (text.rstrip("。.！! ") in a.TICKS
                                               and "yesno" in self.kinds(record))):
                    return field, f"only punctuation, symbols or emoji: {_clip(text)}"
                continue
            key = a.NOISE.sub("", text).lower()
            filler = a.is_filler(key, self.filler)
            number = self.numbers_only and a.is_number(text)
            if not (filler or number or n < self._most):
                continue  # long enough for any kind of question: the kind is not needed
            kinds = self.kinds(record)
            if filler and not a.fits(kinds, key, text):
                return field, f"a filler reply: {_clip(text)}"
            if number and not kinds & {"maths", "fill", "choice"}:
                return field, (f"only a number ({_clip(text)}) to {_kind_name(kinds)} "
                               "question")
            lo = min(self.min[k] for k in kinds)
            if n < lo:
                return field, (f"{n} character{'s' if n != 1 else ''}, below {lo} for "
                               f"{_kind_name(kinds)} question")
        return None


#: a letter, digit or ideograph
_CONTENT_CHAR = regex.compile(r"[\p{L}\p{N}]")


def _clip(text: str, most: int = 24) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[:most - 1] + "…"


def _kind_name(kinds: frozenset) -> str:
    names = {"open": "an open", "short": "a short-answer", "choice": "a choice",
             "yesno": "a yes/no", "fill": "a fill-in", "maths": "a maths"}
    return " and ".join(names[k] if i == 0 else names[k].split(" ", 1)[1]
                        for i, k in enumerate(sorted(kinds)))


def _count_words(text: str) -> int:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return sum(1 for w in jieba.lcut(text) if w.strip() and not _FILLER_STRIP.fullmatch(w))


# -- cjk-ratio -------------------------------------------------------------------------------

#: Han ideographs (CJK Unified Ideographs, extensions A-G, compatibility); `re` is several
#: times faster than `regex` on plain ranges
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]+")
#: letters: word characters that are neither digits nor underscore
_LETTERS = re.compile(r"[^\W\d_]+")


class CjkRatio(Rule):
    name = "cjk-ratio"
    summary = ("Share of Han characters among letters, min/max per field; code blocks, inline "
               "code, LaTeX, links and lines that look like code or data (braces, tags, "
               "semicolons, JSON keys) are left out before counting.")
    default_fields = ("output",)
    params = (
        Param("min", "per-field-float", {"output": 0.05},
              "Lowest share of Han characters among letters.", bounds=(0, 1)),
        Param("max", "per-field-float", {}, "Highest share (e.g. 0.2 to keep English only).",
              bounds=(0, 1)),
        Param("min_letters", "int", 30,
              "Judge only texts with at least this many letters outside code and maths.",
                    bounds=(0, None)),
        Param("unless_asked", "list", ("instruction",),
              "Fields that excuse a low share when they ask for another language (英文, 英语, "
              "English, 翻译成日文...) or are themselves below the minimum (an English exam "
              "question answered in English)."),
    )
    _ASKS_LANGUAGE = re.compile(r"(?i)英文|英语|英译|(?:翻译|译)成?(?:英|日|法|德|韩|俄|西班牙)"
                                r"|用(?:英|日|法|德|韩|俄)|in english|into english"
                                r"|口语|短语|词组|单词|词汇|句型|例句|俚语|地道表达|论文|文献"
                                r"|书单|书名|片名|歌名|歌单|paper|phrase|idiom|vocabulary")

    def setup(self, min, max, min_letters, unless_asked):
        self.min, self.max, self.min_letters = min, max, min_letters
        self.asked = [FieldPath(f) for f in unless_asked]

    def check(self, record: dict, scan: "Scan | None" = None) -> tuple[str, str] | None:
        hit = super().check(record, scan)
        if hit is None or _BELOW not in hit[1]:
            return hit
        value = FieldPath(hit[0])(record)
        if isinstance(value, str) and _short_lines(value):
            return None
        for path in self.asked:
            value = path(record)
            if not isinstance(value, str) or not value:
                continue
            if self._ASKS_LANGUAGE.search(value):
                return None
            share = self.share(value, 10)
            if share is not None and share < per_field(self.min, hit[0], 0):
                return None
        return hit

    def share(self, text: str, min_letters: int) -> float | None:
        """The Han share of a text's prose, or None when it has too few letters to judge."""
        text = _without_code_lines(prose(text))
        letters = sum(map(len, _LETTERS.findall(text)))
        if letters < min_letters:
            return None
        return sum(map(len, _HAN.findall(text))) / letters

    def check_text(self, field: str, text: str) -> str | None:
        lo = per_field(self.min, field)
        hi = per_field(self.max, field)
        if not lo and hi is None:
            return None
        if hi is None and _surely_han_enough(text, lo):
            return None
        text = _without_code_lines(prose(text))
        if hi is None and _han_bound(text, lo):
            return None
        letters = sum(map(len, _LETTERS.findall(text)))
        if letters < self.min_letters:
            return None
        han = sum(map(len, _HAN.findall(text)))
        share = han / letters
        if lo and share < lo:
            return f"Han share {_fmt(share)} of {letters:,} letters{_BELOW} {_fmt(lo)}"
        if hi is not None and share > hi:
            return f"Han share {_fmt(share)} of {letters:,} letters, above {_fmt(hi)}"
        return None


def _short_lines(text: str) -> bool:
    """True when the text is a list of short lines (titles of papers, phrases for learners,
    names), not prose: at least 3 lines, 80% of them at most 15 words."""
    lines = [line for line in text.split("\n") if line.strip()]
    if len(lines) < 3:
        return False
    short = sum(1 for line in lines if len(line.split()) <= 15 and len(line) <= 140)
    return short >= 0.8 * len(lines)


#: a line of code or data outside a code block: braces, tags, semicolons, assignments, JSON keys
_CODE_LINE = re.compile(r'[{}<>;=]|\(\)|":')


def _without_code_lines(text: str) -> str:
    """The lines of `text` that do not look like code or data (unfenced code, HTML, JSON
    labels such as {"PREDICTION": "CASH_DEPOSIT"}): their identifiers are not English prose."""
    if not _CODE_LINE.search(text):
        return text
    return "\n".join(line for line in text.split("\n") if not _CODE_LINE.search(line))


_ASCII_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
_ASCII = bytes(range(128))
#: UTF-8 lead bytes of U+4000..U+9FFF: Han (CJK Unified Ideographs and the end of extension A)
#: but for the 64 Yijing hexagram symbols U+4DC0..U+4DFF, which the bound would count as Han
_HAN_LEADS = bytes(range(0xE4, 0xEA))


def _surely_han_enough(text: str, lo: float) -> bool:
    """A byte-level lower bound of the Han share, in C (bytes.translate): when even the bound
    reaches `lo`, the exact count is not needed. Texts with code, maths or links (which the
    exact count leaves out) always take the exact path."""
    if "`" in text or "$" in text or "\\" in text or "http" in text or "www." in text:
        return False
    return _han_bound(text, lo)


def _han_bound(text: str, lo: float) -> bool:
    """True when a lower bound of the Han share of `text` reaches `lo`: Han counted from the
    UTF-8 lead bytes of U+4000..U+9FFF, letters bounded by ASCII letters plus every non-ASCII
    character."""
    b = text.encode("utf-8", "surrogatepass")
    size = len(b)
    han_low = size - len(b.translate(None, _HAN_LEADS))
    if not han_low:
        return False
    if lo >= 0 and han_low >= lo * len(text):  # letters_up below is at most len(text)
        return True
    ascii_letters = size - len(b.translate(None, _ASCII_LETTERS))
    ascii_chars = size - len(b.translate(None, _ASCII))
    letters_up = ascii_letters + (len(text) - ascii_chars)
    return han_low >= lo * letters_up


# -- pii -------------------------------------------------------------------------------------


class Pii(Rule):
    name = "pii"
    summary = ("Personal and contact data: URLs (off by default), e-mail addresses, mainland "
               "mobile and landline numbers, QQ and WeChat ids, resident identity numbers "
               "(checksum verified), bank card numbers (Luhn).")
    default_fields = ("instruction", "input", "output")
    params = (
        Param("kinds", "list", pii.DEFAULT_KINDS, "What to look for.", choices=pii.KINDS),
        Param("skip_code", "bool", True,
              "Ignore code blocks and inline code (an e-mail in a git config example)."),
    )

    def setup(self, kinds, skip_code):
        self.find = pii.finder(tuple(kinds))
        self.may_have = pii.prefilter(tuple(kinds))
        self.may_have_number = pii.number_prefilter(tuple(kinds))
        self.skip_code = skip_code

    def triggers(self) -> list[str] | None:
        return pii.triggers(tuple(self.values["kinds"]))

    def check_gated(self, field: str, text: str, triggered: bool) -> str | None:
        if triggered or self.may_have_number(text):
            return self.check_text(field, text)
        return None

    def check_text(self, field: str, text: str) -> str | None:
        if not self.may_have(text):
            return None
        if self.skip_code:
            text = without_code(text)
        hit = self.find(text)
        if hit:
            return f"{hit[0]}: {hit[1]}"
        return None


# -- term-list rules -------------------------------------------------------------------------


class TermRule(Rule):
    """A rule that rejects a text holding one of the terms of its lists."""

    label: ClassVar[str] = "term"
    #: look outside code blocks, inline code and maths only
    skip_code: ClassVar[bool] = True
    shipped: ClassVar[tuple[str, ...]] = ()
    params = (
        Param("terms", "files", (), "Term files (one term a line; `re:` patterns, `!` allowed "
                                    "words); `shipped:NAME` is a list shipped with cqia."),
        Param("extra", "files", (), "More term files, added to `terms`."),
        Param("allow", "files", (), "Allowlist files: words inside which a term does not count."),
    )

    def setup(self, terms, extra, allow, **more):
        self.matcher = load_matcher(list(terms) + list(extra), list(allow))
        # without triggers in a field, nothing can match there: skip it outright
        self.gate_only = not self.matcher.patterns or bool(self.matcher.pattern_triggers())

    def triggers(self) -> list[str] | None:
        if not self.matcher.patterns:
            return self.matcher.terms or None
        starts = self.matcher.pattern_triggers()
        return self.matcher.terms + starts if starts else self.matcher.terms or None

    def check_gated(self, field: str, text: str, triggered: bool) -> str | None:
        if triggered:
            return self.check_text(field, text)
        if self.matcher.patterns and not self.matcher.pattern_triggers():
            hit = self.matcher.find_patterns(without_code(text) if self.skip_code else text)
            if hit:
                return f"{self.label} {hit!r}"
        return None

    def check_text(self, field: str, text: str) -> str | None:
        hit = self.matcher.find(without_code(text) if self.skip_code else text)
        if hit:
            return f"{self.label} {hit!r}"
        return None


def _with_defaults(params: tuple[Param, ...], terms: tuple[str, ...], help_terms: str):
    return tuple(Param(p.name, p.kind, terms, help_terms) if p.name == "terms" else p
                 for p in params)


class Ads(TermRule):
    name = "ads"
    label = "ad"
    summary = ("Contact and sales solicitations (加微信, 扫码, 关注公众号, 优惠券, 淘口令, shop "
               "links), from an editable list shipped with cqia (ads.txt).")
    default_fields = ("instruction", "input", "output")
    params = _with_defaults(TermRule.params, ("shipped:ads.txt",),
                            "Term files of solicitations.")


class LlmBoilerplate(TermRule):
    name = "llm-boilerplate"
    label = "AI boilerplate"
    summary = ("AI self-references and refusals in answers (作为一个AI语言模型, 抱歉，我不能, "
               "As an AI language model), from a shipped list (llm_boilerplate.txt).")
    default_fields = ("output",)
    params = _with_defaults(TermRule.params, ("shipped:llm_boilerplate.txt",),
                            "Phrase files of AI boilerplate.") + (
        Param("unless_asked", "list", ("instruction",),
              "Fields that, when they address the model as an AI themselves (作为人工智能，你…), "
              "make the self-reference an answer to the question, not boilerplate."),
    )
    _ASKS_AI = re.compile(r"(?i)人工智能|语言模型|(?<![a-z])ai(?![a-z])|机器人|chatgpt|gpt")

    def setup(self, terms, extra, allow, unless_asked):
        super().setup(terms, extra, allow)
        self.asked = [FieldPath(f) for f in unless_asked]

    def check(self, record: dict, scan: "Scan | None" = None) -> tuple[str, str] | None:
        hit = super().check(record, scan)
        if hit is not None:
            for path in self.asked:
                value = path(record)
                if isinstance(value, str) and self._ASKS_AI.search(value):
                    return None
        return hit


class Blocklist(TermRule):
    name = "blocklist"
    label = "blocked term"
    summary = ("Terms from your own files (--blocklist FILE), one compiled Aho–Corasick "
               "automaton however many; an allowlist (--allowlist FILE) keeps harmless longer "
               "words (可靠 for 靠). On when a file is given.")
    default_fields = ("instruction", "input", "output")
    default_on = False
    params = _with_defaults(TermRule.params, (), "Blocklist files (required).")

    def setup(self, terms, extra, allow, **more):
        if not terms and not extra:
            raise ValueError("rule blocklist needs term files: --blocklist FILE or "
                             "[rules.blocklist] terms = [...]")
        super().setup(terms, extra, allow)


class MissingMedia(TermRule):
    name = "references-missing-media"
    label = "refers to media it does not carry:"
    summary = ("Texts that depend on a picture, video or link the record does not carry (如图所示, "
               "见下图, 点击链接, [图片]), from a shipped list (media.txt); a record with a "
               "non-empty media field passes.")
    default_fields = ("instruction", "input", "output")
    params = _with_defaults(TermRule.params, ("shipped:media.txt",),
                            "Phrase files of media references.") + (
        Param("media_fields", "list", ("image", "images", "img", "media", "video", "videos",
                                       "attachments", "pictures"),
              "Fields that carry media: a record where one is non-empty passes."),
    )
    _EMBEDDED = re.compile(r"!\[[^\]]*\]\([^)]+\)|<img\s", re.I)

    def setup(self, terms, extra, allow, media_fields):
        super().setup(terms, extra, allow)
        paths = [FieldPath(f) for f in media_fields]
        self.media_keys = frozenset(p.top for p in paths if p.top is not None)
        self.media_paths = [p.parts for p in paths if p.top is None]

    def carries_media(self, record: dict) -> bool:
        if not self.media_keys.isdisjoint(record):
            if any(record.get(k) for k in self.media_keys):
                return True
        return any(get(record, parts) for parts in self.media_paths)

    def check(self, record: dict, scan: "Scan | None" = None) -> tuple[str, str] | None:
        if self.carries_media(record):
            return None
        return super().check(record, scan)

    def check_gated(self, field: str, text: str, triggered: bool) -> str | None:
        if triggered or (self.matcher.patterns and not self.matcher.pattern_triggers()):
            return self.check_text(field, text)
        return None

    def check_text(self, field: str, text: str) -> str | None:
        hit = self.matcher.find(without_code(text))
        if hit and not self._EMBEDDED.search(text):
            return f"{self.label} {hit}"
        return None


# -- repetition ------------------------------------------------------------------------------

#: runs of one non-word character (------, ======, ......) count as one for n-grams;
#: decorative runs of ～ and 。 (and ，、~) in social-media posts are not spam
RUN_CHARS = ("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
             "！？!?]")


def _compile_fast(pattern: str):
    """`re` when it can (plain classes scan faster), `regex` for \\p{..} and the like."""
    try:
        return re.compile(pattern)
    except re.error:
        return regex.compile(pattern)


_SYMBOL_RUNS = re.compile(r"([^\w])\1+")
_SENTENCE_SPLIT = re.compile(r"[。！？!?；;\n]+")
_SENTENCES = re.compile(r"[^。！？!?；;\n]+").findall


class Repetition(Rule):
    name = "repetition"
    summary = ("Repeated character n-grams, repeated lines or sentences, and the longest run of "
               "one character (哈哈哈哈哈哈哈哈, ！！！！！！); code and maths are left out. "
               "Answers only by default: questions legitimately quote repetitive logs and "
               "patterns.")
    default_fields = ("output",)
    params = (
        Param("max_run", "int", 9,
              "Longest run of one character of `run_chars` (0: no limit).", bounds=(0, None)),
        Param("run_chars", "str", RUN_CHARS,
              "Regex character class whose runs are measured (Han, kana, Hangul and "
              "！？!?; not spaces, digits, rules like ---- nor decorative ～～～ and 。。。)."),
        Param("max_dup_lines", "float", 0.7,
              "Highest share of non-empty lines that repeat an earlier line.", bounds=(0, 1)),
        Param("max_dup_sentences", "float", 0.7,
              "Highest share of sentences that repeat an earlier sentence.", bounds=(0, 1)),
        Param("min_units", "int", 4, "Judge lines and sentences only when there are this many.",
              bounds=(1, None)),
        Param("ngram", "int", 10, "Length of the character n-grams.", bounds=(1, None)),
        Param("max_dup_ngrams", "float", 0.7,
              "Highest share of character n-grams that repeat an earlier one.", bounds=(0, 1)),
        Param("min_chars", "int", 24, "Judge n-grams only in texts of at least this many chars.",
              bounds=(0, None)),
    )

    def setup(self, max_run, run_chars, max_dup_lines, max_dup_sentences, min_units, ngram,
              max_dup_ngrams, min_chars):
        self.v = dict(max_run=max_run, max_dup_lines=max_dup_lines,
                      max_dup_sentences=max_dup_sentences, min_units=min_units, ngram=ngram,
                      max_dup_ngrams=max_dup_ngrams, min_chars=max(min_chars, ngram + 1))
        pattern = f"({run_chars})\\1{{{max_run},}}"
        #: a run longer than max_run holds three equal characters at some position p with
        #: p % step == 0 (see _may_have_run)
        self._run_step = max(1, max_run - 1)
        try:
            self._run = _compile_fast(pattern) if max_run > 0 else None
        except regex.error as e:
            raise ValueError(f"run_chars: bad character class: {e}") from None

    def check_text(self, field: str, text: str) -> str | None:
        v = self.v
        text = prose(text)
        if self._run is not None and _may_have_run(text, self._run_step):
            m = self._run.search(text)
            if m:
                return f"a run of {len(m.group(0))} × {m.group(1)!r}"
        units = v["min_units"]
        if text.count("\n") >= units - 1:
            lines = [s for s in (line.strip() for line in text.split("\n")) if s]
            if len(lines) >= units:
                share = 1 - len(set(lines)) / len(lines)
                if share > v["max_dup_lines"]:
                    return f"{share:.0%} of {len(lines)} lines repeat an earlier line"
        # the pieces between separator runs, without the empty ones at the ends
        sentences = _SENTENCES(text)
        if len(sentences) >= units:
            sentences = [s for s in map(str.strip, sentences) if s]
            if len(sentences) >= units:
                share = 1 - len(set(sentences)) / len(sentences)
                if share > v["max_dup_sentences"]:
                    return f"{share:.0%} of {len(sentences)} sentences repeat an earlier sentence"
        compact = "".join(text.split())
        if len(compact) >= v["min_chars"] and v["max_dup_ngrams"] < 1:
            n = v["ngram"]
            limit = v["max_dup_ngrams"]
            # the estimate runs on the text with separator runs (-----) still in: it can only
            # be higher than on the cleaned text, so nothing above the limit is missed
            if _sampled_dup_exceeds(compact, n, limit - 0.4):
                share = dup_ngram_share(_SYMBOL_RUNS.sub(r"\1", compact), n)
                if share > limit:
                    return f"{share:.0%} of {n}-grams repeat an earlier one"
        return None


def _may_have_run(text: str, step: int) -> bool:
    """False only when `text` surely has no run of more than step + 1 equal characters.

    Such a run covers step + 2 consecutive positions, among which the first `step` hold a
    multiple p of `step`, and then p, p+1, p+2 are all in the run. Comparing the characters at
    those positions only is a few C-level comparisons instead of a regex scan of every one."""
    if step < 2:
        return True
    a = text[0::step]
    b = text[1::step]
    if not any(map(_eq, a, b)):
        return False
    c = text[2::step]
    return any(map(_and, map(_eq, a, b), map(_eq, b, c)))


def dup_ngram_share(text: str, n: int) -> float:
    """The share of the character n-grams of `text` that repeat an earlier n-gram."""
    total = len(text) - n + 1
    if total <= 0:
        return 0.0
    return 1 - len({text[i:i + n] for i in range(total)}) / total


def _sampled_dup_share(text: str, n: int, samples: int = 12) -> float:
    """An estimate of dup_ngram_share from at most `samples` evenly spaced n-grams, each looked
    up in the text before it (str.find, in C). It only decides whether the exact count is
    worth doing: with the 0.4 margin used above, a miss is nearly three standard errors
    away (12 samples: at most 0.145)."""
    total = len(text) - n + 1
    if total <= 0:
        return 0.0
    step = max(1, total // samples)
    find = text.find
    hits = tried = 0
    for i in range(step, total, step):
        tried += 1
        if find(text[i:i + n], 0, i + n - 1) != -1:
            hits += 1
    return hits / tried if tried else 0.0


def _sampled_dup_exceeds(text: str, n: int, threshold: float, samples: int = 12) -> bool:
    """`_sampled_dup_share(text, n, samples) > threshold`, stopping as soon as the samples left
    cannot lift the share above the threshold."""
    total = len(text) - n + 1
    if total <= 0:
        return 0.0 > threshold
    step = max(1, total // samples)
    positions = range(step, total, step)
    tried = len(positions)
    if not tried:
        return 0.0 > threshold
    find = text.find
    hits = 0
    left = tried
    for i in positions:
        left -= 1
        if find(text[i:i + n], 0, i + n - 1) != -1:
            hits += 1
        elif (hits + left) / tried <= threshold:
            return False
    return hits / tried > threshold


# -- garbled ---------------------------------------------------------------------------------

_BAD_CHARS = re.compile("[\uFFFD\ue000-\uf8ff\U000f0000-\U0010ffff\ud800-\udfff"
                        "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: symbols and emoji: arrows, technical and miscellaneous symbols, dingbats, emoji and
#: pictographs, variation selectors; not Braille (a script), the geometric shapes ○●■□ that
#: puzzles use, nor the circled numbers ①②③ and ㈠㈡, units ㎡ ㎏ that Chinese texts use
_SYMBOLS = re.compile("[\u00a9\u00ae\u2190-\u21ff\u2300-\u245f\u2600-\u27bf\u2b00-\u2bff"
                      "\ufe0f\U0001f000-\U0001faff]")
_BAD_OR_SYMBOL = re.compile(_BAD_CHARS.pattern[:-1] + _SYMBOLS.pattern[1:])


def _char_triggers() -> list[str]:
    """Every character of _BAD_OR_SYMBOL in the Basic Multilingual Plane and the emoji planes,
    and its lower case, as single-character triggers for the shared scan (which sees
    lower-cased text). Astral private-use characters and lone surrogates are left to
    `_has_astral_or_surrogate`."""
    ranges = [(0xFFFD, 0xFFFD), (0xE000, 0xF8FF), (0x00, 0x08), (0x0B, 0x0C), (0x0E, 0x1F),
              (0x7F, 0x9F), (0xA9, 0xA9), (0xAE, 0xAE), (0x2190, 0x21FF), (0x2300, 0x245F),
              (0x2600, 0x27BF), (0x2B00, 0x2BFF), (0xFE0F, 0xFE0F),
              (0x1F000, 0x1FAFF)]
    out = set()
    for lo, hi in ranges:
        for cp in range(lo, hi + 1):
            c = chr(cp)
            assert _BAD_OR_SYMBOL.match(c)
            out.add(c)
            out.add(c.lower())
    return sorted(out)


_ASTRAL_OR_SURROGATE = re.compile("[\ud800-\udfff\U00010000-\U0010ffff]")


def _has_astral_or_surrogate(text: str) -> bool:
    """True when the text has a character beyond U+FFFF or a lone surrogate: only then can an
    astral private-use character be there."""
    return _ASTRAL_OR_SURROGATE.search(text) is not None


#: the combining marks zalgo spam stacks: the combining diacritics blocks (U+0300.., U+1AB0..,
#: U+1DC0.., U+20D0.., U+FE20..), Cyrillic, Hebrew, Arabic, Thai and Lao marks. Scripts whose
#: letters legitimately stack marks (Devanagari, Tibetan) are not among them.
_MARK_RANGES = [(0x0300, 0x036F), (0x0483, 0x0489), (0x0591, 0x05BD), (0x05BF, 0x05C7),
                (0x0610, 0x061A), (0x064B, 0x065F), (0x0670, 0x0670), (0x06D6, 0x06ED),
                (0x0E31, 0x0E31), (0x0E34, 0x0E3A), (0x0E47, 0x0E4E), (0x0EB1, 0x0EB1),
                (0x0EB4, 0x0EBC), (0x0EC8, 0x0ECD), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF),
                (0x20D0, 0x20F0), (0xFE20, 0xFE2F)]


#: one combining mark: a quick look before the run scan below
_MARK = re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _MARK_RANGES) + "]")
#: a run of combining marks and the character before it (or the start of the text)
_MARK_RUN = re.compile("(^|[^" + "".join(f"{chr(a)}-{chr(b)}" for a, b in _MARK_RANGES) + "])(["
                       + "".join(f"{chr(a)}-{chr(b)}" for a, b in _MARK_RANGES) + "]+)", re.M)
#: private-use characters that GBK and GB 18030 decoders give rare Han characters (方正 and
#: other font vendors' user-defined areas): between Han characters they are a rare character,
#: not garbage
_RARE_HAN_PUA = (0xE000, 0xE8FF)


def _han(c: str) -> bool:
    o = ord(c)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF
            or 0x20000 <= o <= 0x3134F)


def _rare_han(text: str, i: int) -> bool:
    """True when the private-use character at `i` stands for a rare Han character: in the
    range GBK decoders use for them, with a Han character beside it."""
    if not _RARE_HAN_PUA[0] <= ord(text[i]) <= _RARE_HAN_PUA[1]:
        return False
    return (i > 0 and _han(text[i - 1])) or (i + 1 < len(text) and _han(text[i + 1]))


#: LaTeX commands that start with a JSON escape letter: \f (form feed) of \frac, \b
#: (backspace) of \beta, \boldsymbol
_LATEX_ESCAPE = re.compile("[\x08\x0c][a-zA-Z]+")


_CHAR_TRIGGERS = _char_triggers() + sorted({chr(cp) for a, b in _MARK_RANGES
                                            for cp in range(a, min(b, 0xFFFF) + 1)})


class Garbled(Rule):
    name = "garbled"
    summary = ("Broken text: U+FFFD, mojibake (锟斤拷, Ã¤, from mojibake.txt), private-use and "
               "control characters, and a high share of symbols and emoji.")
    default_fields = ("instruction", "input", "output")
    params = (
        Param("mojibake", "files", ("shipped:mojibake.txt",), "Files of mojibake sequences."),
        Param("max_symbols", "float", 0.3,
              "Highest share of symbols and emoji among non-space characters.", bounds=(0, 1)),
        Param("min_chars", "int", 8, "Judge the symbol share only in texts this long.",
              bounds=(0, None)),
        Param("private_use", "bool", True,
              "Reject private-use characters (false: keep them all). Those that GBK decoders "
              "give rare Han characters (U+E000..U+E8FF) next to a Han character always pass: "
              "classical texts carry rare characters that way."),
        Param("max_marks", "int", 3,
              "Most combining marks on one character (Thai, Arabic, Vietnamese need at most "
              "3); more, or marks on a space, is zalgo spam (0: no check).",
              bounds=(0, None)),
    )

    def setup(self, mojibake, max_symbols, min_chars, private_use, max_marks):
        self.matcher = load_matcher(list(mojibake)) if mojibake else None
        self.max_symbols, self.min_chars = max_symbols, min_chars
        self.private_use = private_use
        self.max_marks = max_marks

    def _zalgo(self, text: str) -> str | None:
        for m in _MARK_RUN.finditer(text):
            base, marks = m.group(1), m.group(2)
            if len(marks) > self.max_marks:
                return (f"{len(marks)} combining marks stacked on one character (zalgo text), "
                        f"{_char(marks[0])}...")
            if not base or base.isspace():
                return f"combining mark {_char(marks[0])} on a space (zalgo text)"
        return None

    def triggers(self) -> list[str] | None:
        if self.matcher is not None and self.matcher.patterns:
            return None
        terms = self.matcher.terms if self.matcher is not None else []
        return terms + _CHAR_TRIGGERS

    def check_gated(self, field: str, text: str, triggered: bool) -> str | None:
        if triggered or _has_astral_or_surrogate(text):
            return self.check_text(field, text)
        return None

    def check_text(self, field: str, text: str) -> str | None:
        if self.max_marks and _MARK.search(text):
            zalgo = self._zalgo(text)
            if zalgo:
                return zalgo
        if _BAD_OR_SYMBOL.search(text) is None:
            hit = self.matcher.find(text) if self.matcher is not None else None
            return f"mojibake {hit!r}" if hit else None
        for m in _BAD_CHARS.finditer(text):
            c = m.group(0)
            what = ("replacement character" if c == "\uFFFD" else
                    "control character" if ord(c) < 0xA0 else
                    "surrogate" if 0xD800 <= ord(c) <= 0xDFFF else "private-use character")
            if what == "private-use character" and (not self.private_use
                                                     or _rare_han(text, m.start())):
                continue
            if what == "control character":
                # what clean's latex-escapes repairs (the shared detector), named as such
                latex = _EATEN.match(text, m.start()) if latex_repairable(text, m.start()) \
                    else None
                if latex:
                    name = "form feed" if c == "\x0c" else "backspace"
                    cmd = ("\\f" if c == "\x0c" else "\\b") + latex.group(0)[1:]
                    return (f"{name} {_char(c)} where JSON read the LaTeX {cmd} as an escape "
                            "(repairable: cqia clean)")
            return f"{what} {_char(c)}"
        if self.matcher is not None:
            hit = self.matcher.find(text)
            if hit:
                return f"mojibake {hit!r}"
        if self.max_symbols < 1:
            symbols = len(_SYMBOLS.findall(text))
            if symbols:
                size = len("".join(text.split())) if symbols > 2 else 0
                if size >= self.min_chars and symbols / size > self.max_symbols:
                    return f"symbols and emoji {symbols / size:.0%} of {size:,} characters"
        return None


# -- echo ------------------------------------------------------------------------------------

#: what echo ignores: everything but letters, digits and ideographs (spaces, punctuation,
#: symbols)
_ECHO_STRIP = re.compile(r"[\W_]+")


class Echo(Rule):
    name = "echo"
    summary = ("The output repeats the instruction, or is a substring of it (an answer that "
               "only copies the question).")
    default_fields = ("output",)
    params = (
        Param("source", "list", ("instruction",), "Fields the output must not merely repeat."),
        Param("min_chars", "int", 10,
              "Shortest output (without spaces and punctuation) judged as a substring; a shorter "
              "one is judged only when equal (so the answer 'A' of a choice question passes).",
                    bounds=(0, None)),
        Param("min_share", "float", 0.6,
              "A substring counts only when it is at least this share of the source (so an "
              "answer extracted from a long passage passes).", bounds=(0, 1)),
    )

    def setup(self, source, min_chars, min_share):
        self.sources = [(f, FieldPath(f)) for f in source]
        #: (name, top-level key or None, path parts): a plain dict lookup for top-level fields
        self._sources = [(f, p.top, p.parts) for f, p in self.sources]
        self.min_chars = min_chars
        self.min_share = min_share

    def check(self, record: dict, scan: "Scan | None" = None) -> tuple[str, str] | None:
        strip = _ECHO_STRIP.sub
        for field, path in self._paths:  # as self.texts(record), inline
            top = path.top
            value = record.get(top) if top is not None else get(record, path.parts)
            text = value if type(value) is str else as_text(value)
            if not text:
                continue
            for src, key, spath in self._sources:
                value = record.get(key) if key is not None else get(record, spath)
                if not value:
                    continue
                raw = value if type(value) is str else as_text(value)
                # an echo's Han characters are all in the source (normalising keeps them as
                # they are): one of the output's first ones missing there rules it out cheaply
                if _han_missing(text, raw):
                    continue
                # normalising a prefix of the output is enough to see that it is longer than
                # the source could be after normalising: first a short one, then a longer one
                if len(text) > len(raw) + 16 and len(strip("", text[:len(raw) + 16])) > len(raw):
                    continue
                cut = 2 * len(raw) + 64
                head = strip("", text[:cut])
                if len(head) > len(raw) or not head:
                    continue
                ref = strip("", raw).lower()
                head = head.lower()
                if len(head) > len(ref):
                    continue
                out = head if len(text) <= cut else strip("", text).lower()
                if not out:
                    continue
                if out == ref:
                    return field, f"repeats the {src}"
                if (len(out) >= self.min_chars and len(out) >= self.min_share * len(ref)
                        and out in ref):
                    return field, f"is a substring of the {src}"
        return None


_HAN_CHAR = re.compile(_HAN.pattern[:-1])


def _han_missing(text: str, source: str, chars: int = 64, most: int = 12) -> bool:
    """True when one of the first `most` Han characters in the first `chars` characters of
    `text` does not occur in `source` (then `text` cannot be an echo of it)."""
    seen = 0
    for m in _HAN_CHAR.finditer(text, 0, chars):
        if m.group() not in source:
            return True
        seen += 1
        if seen == most:
            break
    return False


# -- threshold and where ---------------------------------------------------------------------

_CMP = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


class Condition:
    """`PATH OP VALUE`, e.g. `score >= 8`, `answer_from == "human"`, `human_verified == true`."""

    __slots__ = ("text", "path", "parts", "op", "value")

    def __init__(self, text: str):
        try:
            tokens = tokenize(text)
        except ExprError as e:
            raise ValueError(f"{text!r}: {e}") from None
        shape = [t[0] for t in tokens]
        if (len(tokens) != 4 or shape[0] not in ("name", "path") or shape[1] != "op"
                or tokens[1][1] not in _CMP or shape[2] not in ("num", "str", "kw")
                or shape[2] == "kw" and tokens[2][1] not in ("true", "false", "null")):
            raise ValueError(f"{text!r}: expected FIELD OP VALUE with OP one of == != < <= > >= "
                             "(e.g. 'score >= 8'); use --where for anything else")
        self.text = text
        self.path = tokens[0][1]
        self.parts = FieldPath(self.path).parts
        self.op = tokens[1][1]
        raw = tokens[2]
        self.value = ({"true": True, "false": False, "null": None}[raw[1]] if raw[0] == "kw"
                      else raw[1])
        if self.op not in ("==", "!=") and not isinstance(self.value, (int, float)):
            raise ValueError(f"{text!r}: {self.op} needs a number")

    def __reduce__(self):
        return (Condition, (self.text,))

    def test(self, record: dict) -> tuple[bool, Any]:
        value = get(record, self.parts, _MISSING)
        if value is _MISSING:
            return False, _MISSING
        target = self.value
        if isinstance(target, (int, float)) and not isinstance(target, bool):
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    return False, value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return False, value
        elif isinstance(target, bool) != isinstance(value, bool):
            return self.op == "!=", value
        return _CMP[self.op](value, target), value


_MISSING = object()


class Threshold(Rule):
    name = "threshold"
    summary = ("Numeric comparisons and equality on any field: score >= 8, upvotes >= 5, "
               "answer_from == \"human\" (--threshold, repeatable; all must hold).")
    default_fields = ()
    default_on = False
    text_rule = False
    params = (
        Param("conditions", "exprs", (), "Conditions FIELD OP VALUE, all of which must hold."),
        Param("missing", "str", "reject", "What a record without the field gets.",
              choices=("reject", "keep")),
    )

    def setup(self, conditions, missing):
        if not conditions:
            raise ValueError("rule threshold needs conditions: --threshold 'score >= 8'")
        self.conditions = [Condition(c) for c in conditions]
        self.keep_missing = missing == "keep"

    def watched(self) -> list[str]:
        if self.keep_missing:  # missing = "keep": the user expects records without it
            return []
        return list(dict.fromkeys(c.path for c in self.conditions))

    def check(self, record: dict, scan: "Scan | None" = None) -> tuple[str, str] | None:
        for cond in self.conditions:
            ok, value = cond.test(record)
            if ok:
                continue
            if value is _MISSING:
                if self.keep_missing:
                    continue
                return cond.path, f"missing, needs {cond.op} {_show(cond.value)}"
            return cond.path, f"{_show(value)}, needs {cond.op} {_show(cond.value)}"
        return None


def _show(value: Any) -> str:
    import orjson

    text = orjson.dumps(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."


class Where(Rule):
    name = "where"
    summary = ("Keep only records for which every expression is true: comparisons, and/or/not, "
               "len(), in, =~ regex match over fields (--where, repeatable).")
    default_fields = ()
    default_on = False
    text_rule = False
    params = (Param("expr", "exprs", (), "Expressions; a record must satisfy all of them."),)

    def setup(self, expr):
        if not expr:
            raise ValueError("rule where needs an expression: --where 'len(output) >= 20'")
        self.exprs = []
        for text in expr:
            try:
                self.exprs.append(Expression(text))
            except ExprError as e:
                shown = text if len(text) <= 60 else text[:57] + "..."
                raise ValueError(f"--where {shown!r}: {e}") from None

    def watched(self) -> list[str]:
        # a path the expression tests with exists() is expected to be missing at times
        return list(dict.fromkeys(p for e in self.exprs for p in e.paths
                                  if p not in e.optional))

    def check(self, record: dict, scan: "Scan | None" = None) -> tuple[str, str] | None:
        for e in self.exprs:
            if not e(record):
                return (e.paths[0] if e.paths else ""), f"not true: {e.text}"
        return None


#: Every rule, in the order they run (cheap and decisive first); the first failure is reported.
RULES: dict[str, type[Rule]] = {cls.name: cls for cls in (
    Threshold, Where, Length, NonAnswer, Echo, Garbled, Repetition, CjkRatio, LlmBoilerplate, Ads, Pii,
    MissingMedia, Blocklist,
)}


class Scan:
    """One Aho–Corasick pass per field over the lower-cased text, for the triggers of every
    gated rule of a Filter; `has(slot, field, text)` says whether the field holds a trigger of
    that rule. Reset for each record."""

    __slots__ = ("_ac", "_slots_of", "cache")

    def __init__(self, rules: list[Rule]):
        import ahocorasick_rs

        by_term: dict[str, set] = {}
        for i, rule in enumerate(rules):
            trig = rule.triggers()
            if trig:
                rule.slot = i
                for t in trig:
                    by_term.setdefault(t.lower(), set()).add(i)
            else:
                rule.slot = None
        terms = [t for t in by_term if t]
        # a DFA: about twice as fast per character as the default NFA on this scan, which
        # every field of every record goes through; built in a few tens of milliseconds
        self._ac = (ahocorasick_rs.AhoCorasick(terms, matchkind=ahocorasick_rs.MatchKind.Standard,
                                               implementation=ahocorasick_rs.Implementation.DFA)
                    if terms else None)
        self._slots_of = [frozenset(by_term[t]) for t in terms]
        #: field -> the slots whose triggers it holds, for the current record
        self.cache: dict[str, frozenset] = {}

    @property
    def active(self) -> bool:
        return self._ac is not None

    def reset(self) -> None:
        self.cache.clear()

    def slots(self, field: str, text: str) -> frozenset:
        """The slots of the rules whose triggers `text` holds (computed once per field)."""
        hits = self._ac.find_matches_as_indexes(text.lower(), overlapping=True)
        if not hits:
            slots = _NO_SLOTS
        else:
            of = self._slots_of
            slots = frozenset().union(*(of[i] for i, _, _ in hits))
        self.cache[field] = slots
        return slots


_NO_SLOTS: frozenset = frozenset()
