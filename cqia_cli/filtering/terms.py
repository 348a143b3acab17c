"""Term lists and the one compiled matcher every list-based rule uses.

A term file has one term a line; `#` starts a comment line; blank lines are skipped. A line
`re:PATTERN` is a regular expression (the `re` syntax, or the `regex` module's where `re` cannot
compile it) instead of a literal term, and a line `!WORD` is an allowed word (see below).
Matching ignores ASCII case: terms and patterns see the text lower-cased.

Literal terms are matched with one Aho–Corasick automaton (the ahocorasick-rs package, Rust), so
the cost does not grow with the number of terms: 50,000 terms scan as fast as 50. The few regular
expressions of a list are searched one after the other. An allowlist names longer harmless words
(可靠 for 靠, 去死胡同 for 去死): a term found only inside an allowed word does not count.
"""

from __future__ import annotations

import os
from importlib import resources
from typing import Iterable, Iterator, Sequence

import regex

DATA_PACKAGE = "cqia_cli.data"


def shipped_path(name: str, folder: str = "filter") -> str:
    """The path of a list shipped in cqia_cli/data/FOLDER/ (e.g. `ads.txt` of filter's)."""
    return str(resources.files(DATA_PACKAGE).joinpath(folder).joinpath(name))


def resolve(path: str, folder: str = "filter") -> str:
    """`shipped:NAME` names a list shipped in cqia_cli/data/FOLDER/; anything else is a path."""
    if path.startswith("shipped:"):
        return shipped_path(path[len("shipped:"):], folder)
    return path


class TermFileError(ValueError):
    """A term file that cannot be read or holds a bad regular expression."""


def list_lines(path: str, folder: str = "filter") -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of a list file's entries: one a line, `#` comment lines and
    blank lines skipped, a BOM ignored; TermFileError names the file when it cannot be read.
    Filter's term lists and clean's pattern lists (folder "clean") are read by it."""
    try:
        with open(resolve(path, folder), encoding="utf-8-sig") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise TermFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise TermFileError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if line and not line.startswith("#"):
            yield lineno, line


def compile_checked(pattern: str, path: str, lineno: int) -> None:
    """TermFileError at PATH:LINE when `pattern` is not a regular expression."""
    try:
        regex.compile(pattern)
    except regex.error as e:
        raise TermFileError(f"{path}:{lineno}: bad regular expression: {e}") from None


def read_terms(paths: Iterable[str]) -> tuple[list[str], list[str], list[str]]:
    """The literal terms, `re:` patterns and `!` allowed words of term files, de-duplicated."""
    terms: dict[str, None] = {}
    patterns: dict[str, None] = {}
    allowed: dict[str, None] = {}
    for path in paths:
        for lineno, line in list_lines(path):
            if line.startswith("re:"):
                pat = line[3:].strip()
                compile_checked(pat, path, lineno)
                patterns[pat] = None
            elif line.startswith("!") and len(line) > 1:
                allowed[line[1:].strip().lower()] = None
            else:
                terms[line.lower()] = None
    return list(terms), list(patterns), list(allowed)


class Matcher:
    """Find the first listed term (or pattern) in a text, ignoring allowed longer words.

    `find(text)` returns the matched text or None. Text is lower-cased only when a term or
    pattern has ASCII letters (lower-casing does not change Chinese).
    """

    __slots__ = ("terms", "patterns", "_ac", "_nblock", "_regexes", "_lower", "_has_allow",
                 "_starts")

    def __init__(self, terms: Sequence[str], patterns: Sequence[str] = (),
                 allow: Sequence[str] = ()):
        import ahocorasick_rs

        self.terms = list(terms)
        self.patterns = list(patterns)
        allow = [a.lower() for a in allow if a.strip()]
        self._nblock = len(self.terms)
        everything = self.terms + allow
        self._has_allow = bool(allow)
        self._ac = (ahocorasick_rs.AhoCorasick(everything, matchkind=ahocorasick_rs.MatchKind.Standard)
                    if everything else None)
        self._regexes = [_compile_fast(p) for p in self.patterns]
        self._starts = self._pattern_starts()
        self._lower = any(c.isascii() and c.isalpha() for t in everything + self.patterns
                          for c in t)

    def __len__(self) -> int:
        return len(self.terms) + len(self.patterns)

    def find(self, text: str) -> str | None:
        if not text:
            return None
        if self._ac is not None:
            hay = text.lower() if self._lower else text
            if not self._has_allow:
                hits = self._ac.find_matches_as_indexes(hay)
                if hits:
                    _, start, end = hits[0]
                    return text[start:end]
            else:
                hit = self._first_not_allowed(hay)
                if hit is not None:
                    return text[hit[0]:hit[1]]
        return self.find_patterns(text) if self._regexes else None

    def pattern_triggers(self) -> list[str] | None:
        """Literal prefixes one of which starts every match of the patterns (None when a
        pattern can start with anything), so that a shared scan can skip texts without them."""
        return self._starts

    def _pattern_starts(self) -> list[str] | None:
        out: set[str] = set()
        for p in self.patterns:
            prefixes = literal_prefixes(p)
            if not prefixes:
                return None
            out |= prefixes
        return sorted({c.lower() for c in out})

    def find_patterns(self, text: str) -> str | None:
        """The first match of the `re:` patterns only."""
        hay = text.lower() if self._lower else text
        for rx in self._regexes:
            m = rx.search(hay)
            if m:
                return text[m.start():m.end()]
        return None

    def _first_not_allowed(self, hay: str) -> tuple[int, int] | None:
        hits = self._ac.find_matches_as_indexes(hay, overlapping=True)
        if not hits:
            return None
        nblock = self._nblock
        allowed = [(s, e) for i, s, e in hits if i >= nblock]
        best = None
        for i, s, e in hits:
            if i >= nblock:
                continue
            if any(a <= s and e <= b for a, b in allowed):
                continue
            if best is None or s < best[0]:
                best = (s, e)
        return best


def _sre():
    try:  # Python 3.11+
        from re import _constants as constants, _parser as parser
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_constants as constants  # type: ignore[no-redef]
        import sre_parse as parser  # type: ignore[no-redef]
    return parser, constants


def literal_prefixes(pattern: str, limit: int = 2) -> set[str] | None:
    """Literal prefixes (up to `limit` characters) one of which every match of `pattern` starts
    with, when the pattern says so plainly (literals, classes of literals, alternatives of
    those, lookbehinds skipped); None when it does not. A shared scan looks for these to skip
    texts in which the pattern cannot match."""
    import re

    parser, _ = _sre()
    if pattern.startswith("(?i)"):
        pattern = pattern[4:]
    try:
        parsed = parser.parse(pattern)
    except (re.error, Exception):  # noqa: BLE001 - regex-only syntax: no pre-check
        return None
    return _prefixes(list(parsed), limit)


def first_chars(pattern: str) -> set[str] | None:
    """The literal characters a match of `pattern` must start with (see literal_prefixes)."""
    return literal_prefixes(pattern, 1)


def _prefixes(items: list, limit: int) -> set[str] | None:
    _, c = _sre()
    out = [""]
    for op, av in items:
        if op in (c.ASSERT, c.ASSERT_NOT) and av[0] < 0:  # a lookbehind consumes nothing
            continue
        if op in (c.LITERAL, c.IN):
            chars, single = _first([(op, av)]), True
        elif op in (c.SUBPATTERN, c.BRANCH):
            chars, single = _first([(op, av)]), False
        else:
            break
        if not chars:
            break
        out = [p + ch for p in out for ch in chars]
        if not single or len(out[0]) >= limit:
            break
    return set(out) if out[0] else None


def _first(items: list) -> set[str] | None:
    _, c = _sre()
    if not items:
        return None
    op, av = items[0]
    if op is c.LITERAL:
        return {chr(av)}
    if op is c.IN:
        chars = set()
        for sub_op, sub_av in av:
            if sub_op is not c.LITERAL:
                return None
            chars.add(chr(sub_av))
        return chars
    if op is c.SUBPATTERN:
        return _first(list(av[-1]))
    if op is c.BRANCH:
        out: set[str] = set()
        for branch in av[1]:
            got = _first(list(branch))
            if not got:
                return None
            out |= got
        return out
    if op in (c.ASSERT, c.ASSERT_NOT) and av[0] < 0:  # a lookbehind: look past it
        return _first(items[1:])
    return None


def _compile_fast(pattern: str):
    """A pattern compiled with `re` when it can (its first-character scan is fast), else with
    `regex` (for \\p{..} classes and the like). Patterns are searched one by one: an
    alternation of them would lose that scan. Case is handled by lower-casing the text (as for
    the literal terms), not by IGNORECASE."""
    import re

    if pattern.startswith("(?i)"):
        pattern = pattern[4:]
    try:
        return re.compile(pattern)
    except re.error:
        return regex.compile(pattern, regex.V0)


def load_matcher(paths: Sequence[str], allow_paths: Sequence[str] = ()) -> Matcher:
    """One matcher for the terms of `paths`; the words of `allow_paths` (and `!` lines) allowed."""
    terms, patterns, allow = read_terms(paths)
    if allow_paths:
        more, allow_patterns, more_allowed = read_terms(allow_paths)
        if allow_patterns:
            raise TermFileError("an allowlist holds words, not re: patterns")
        allow = allow + more + more_allowed
    return Matcher(terms, patterns, allow)


def file_exists(path: str) -> bool:
    return os.path.exists(resolve(path))
