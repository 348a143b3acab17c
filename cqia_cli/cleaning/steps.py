"""The steps of `cqia clean`: each a small class with a name, parameters with defaults, and
`fix(text, field)` -> (new text, characters removed, characters replaced).

Steps are declared like filter's rules (the same `Param`, so recipes, `--set`, `--list-steps`
and the man page all see the same names, types and defaults) and run in the order of `STEPS`.
Every step is idempotent on its own: `fix(fix(x)) == fix(x)`; a step that could expose work for
itself (nested HTML escapes, nested parentheses) repeats until nothing changes.

Code blocks, inline code, LaTeX maths and links are left alone where a step could damage them
(`cqia_cli.text.spans`).
"""

from __future__ import annotations

import html as _html
import re
from typing import Any, ClassVar

from cqia_cli.fields import DEFAULT_TEXT_FIELDS
from cqia_cli.filtering.rules import Configurable, Param
from cqia_cli.text import normalize as nz
from cqia_cli.text import pii
from cqia_cli.text.latex import (  # noqa: F401 - re-exported
    _ESCAPE_LETTER, _LATEX, LATEX_AMBIGUOUS, LATEX_COMMANDS, _latex_pattern, _needs_math,
    in_math, latex_repairable,
)
from cqia_cli.text.spans import merge, outside, protected

Fix = tuple[str, int, int]


class Step(Configurable):
    """One cleaning step. Subclasses set the class attributes and implement `fix`."""

    kind: ClassVar[str] = "step"
    default_fields: ClassVar[tuple[str, ...]] = DEFAULT_TEXT_FIELDS
    #: part of the default set
    default_on: ClassVar[bool] = True
    #: `--field` replaces its fields (the recipe machinery asks)
    text_rule: ClassVar[bool] = True
    #: applied once per run, not again in the rounds that settle the other steps (sub)
    once: ClassVar[bool] = False
    #: a regex class body of the characters without one of which (and without `also(text)`)
    #: the step has nothing to do: the Cleaner scans each text once for the characters of all
    #: its steps and calls `fix` only where one is there. None: always call `fix`.
    chars: str | None = None
    #: whether a change by this step can give a step before it new work (the Cleaner runs
    #: another round only then); a step may set `exposed` after each fix to say so per text
    exposes: ClassVar[bool] = True
    exposed: bool = True

    def also(self, text: str) -> bool:
        """Whether the step may have work in a text that holds none of its `chars`."""
        return False

    def fix(self, text: str, field: str) -> Fix:  # pragma: no cover - abstract
        raise NotImplementedError


def counted_sub(pattern: re.Pattern, repl, text: str, pos_filter=None) -> Fix:
    """`pattern.sub(repl, text)` (repl a function of the match, or a string), counting the
    characters removed and replaced: a match of a characters replaced by b counts min(a, b)
    replaced and a - b removed when shorter. `repl` returning the match unchanged counts
    nothing."""
    removed = replaced = 0

    def one(m: re.Match) -> str:
        nonlocal removed, replaced
        new = repl(m) if callable(repl) else repl
        old = m.group(0)
        if new != old:
            a, b = len(old), len(new)
            replaced += min(a, b)
            if a > b:
                removed += a - b
        return new

    return pattern.sub(one, text), removed, replaced


def _outside_counted(text: str, spans, fn) -> Fix:
    """`fn` (a text -> Fix function) applied to the stretches of `text` between `spans`."""
    removed = replaced = 0

    def part(segment: str) -> str:
        nonlocal removed, replaced
        new, r, p = fn(segment)
        removed += r
        replaced += p
        return new

    return outside(text, spans, part), removed, replaced


# -- latex-escapes ----------------------------------------------------------------------------
# (first, since whitespace asks it which control characters to leave for it)

# the command list, the pattern and the maths test live in cqia_cli/text/latex.py (shared)
_LATEX_GATE = re.compile("[\x08\x0c\t\r\n][A-Za-z]")


class LatexEscapes(Step):
    name = "latex-escapes"
    exposes = False  # a backslash before a letter is nothing any step before it looks for
    chars = "\x08\x0c\t\r"
    summary = ("Repair LaTeX commands whose backslash a JSON escape ate (\\f+rac -> \\frac, "
               "\\t+imes, \\b+eta, \\r+ight, \\n+eq): only where the word that follows is a "
               "known command, and for words that are also English (\\t+an, \\n+ot) only "
               "inside maths.")
    params = (
        Param("extra", "list", (), "More command names to repair (without the backslash), "
                                   "e.g. bigstar,nvDash."),
        Param("context", "str", "auto",
              "auto: ambiguous words only inside maths; always: wherever a known command "
              "follows.", choices=("auto", "always")),
    )

    def setup(self, extra, context):
        commands = dict(LATEX_COMMANDS)
        for word in extra:
            if not word.isascii() or not word.isalpha() or len(word) < 2:
                raise ValueError(f"extra: {word!r} is not a command name (letters only)")
            ctrl = {v: k for k, v in _ESCAPE_LETTER.items()}.get(word[0])
            if ctrl is None:
                raise ValueError(f"extra: {word!r} does not start with b, f, n, r or t (the "
                                 "escapes JSON has)")
            commands[ctrl] = commands[ctrl] + " " + word
        self.pattern = _latex_pattern(commands) if extra else _LATEX
        self.context = context

    def also(self, text: str) -> bool:
        # a newline starts a command only in maths: with no $ or backslash there is none
        return "\n" in text and ("$" in text or "\\" in text)

    def fix(self, text: str, field: str) -> Fix:
        if "\x0c" not in text and "\x08" not in text and "\t" not in text \
                and "\r" not in text and not ("\n" in text and ("$" in text or "\\" in text)):
            # a newline starts a command only in maths: with no $ or backslash there is none
            return text, 0, 0
        if _LATEX_GATE.search(text) is None or self.pattern.search(text) is None:
            return text, 0, 0
        replaced = 0
        always = self.context == "always"

        def one(m: re.Match) -> str:
            nonlocal replaced
            ctrl = m.group(0)[0]
            word = m.group(0)[1:]
            if not always and _needs_math(ctrl, word) and not in_math(text, m.start()):
                return m.group(0)
            replaced += 1
            return "\\" + _ESCAPE_LETTER[ctrl] + word

        new = self.pattern.sub(one, text)
        return new, 0, replaced


# -- mojibake ---------------------------------------------------------------------------------

#: UTF-8 lead bytes of Han and CJK punctuation (E3..E9) read as Latin-1 or Windows-1252,
#: followed by a continuation byte read the same way: the mark of UTF-8 Chinese decoded as a
#: Western encoding (ä¸­æ–‡ for 中文)
_LATIN_MOJIBAKE = re.compile(
    "[\u00e3-\u00e9\u00ef][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192"
    "\u02c6\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039"
    "\u203a\u20ac\u2122]")
#: a run of characters GBK has (Han, kana, CJK and full-width punctuation, box drawing, Greek,
#: Cyrillic) that may be UTF-8 read as GBK (浣犲ソ涓栫晫 for 你好世界)
_GBK_RUN = re.compile("[\u3000-\u30ff\u3400-\u9fff\ufe30-\ufe4f\uff00-\uffef\u00b7\u2014-\u201d"
                      "\u2460-\u257f\u0391-\u03c9\u0401-\u0451]{4,}")


def _gbk_marks() -> str:
    """The characters GBK reads from a UTF-8 lead byte of Han (E4..E9) and the continuation
    byte after it: every Han character of UTF-8 text read as GBK starts with one of them (涓
    浠 鍙 鏄 ...)."""
    marks = set()
    for lead in range(0xE4, 0xEA):
        for cont in range(0x80, 0xC0):
            try:
                marks.add(bytes([lead, cont]).decode("gbk"))
            except UnicodeDecodeError:
                pass
    return "".join(sorted(marks))


def _gbk_seconds() -> str:
    """The characters GBK reads from a UTF-8 continuation byte and the lead byte of the next
    Han character (E4..E9): what follows a mark in UTF-8 text read as GBK (浣犲 犲 after 浣)."""
    out = set()
    for first in range(0x81, 0xC0):
        for lead in range(0xE4, 0xEA):
            try:
                out.add(bytes([first, lead]).decode("gbk"))
            except UnicodeDecodeError:
                pass
    return "".join(sorted(out))


_GBK_MARKS = re.compile(f"[{_gbk_marks()}]")
#: a mark and the character after it as UTF-8 read as GBK has them: the step's real gate (a
#: mark alone is a common character now and then)
_GBK_SIGNATURE = re.compile(f"[{_gbk_marks()}][{_gbk_seconds()}]")
_HAN_RE = re.compile(f"[{nz.HAN}]")
#: either kind, in one scan of one class (the precise patterns run where it finds one)
_MOJIBAKE_CHARS = "\u00e3-\u00e9\u00ef" + _GBK_MARKS.pattern[1:-1]
_MOJIBAKE_GATE = re.compile(f"[{_MOJIBAKE_CHARS}]")


def _common(text: str) -> bool:
    """True when every character of `text` is in GB2312 (the 6,763 common Han and the usual
    punctuation) or ASCII: what repaired Chinese looks like, and what a chance decoding of real
    text (櫱㱻, 糴彣) does not."""
    try:
        text.encode("gb2312")
        return True
    except UnicodeEncodeError:
        return False


def _gbk_prefix(chars: str) -> tuple[int, str] | None:
    """The longest prefix of `chars` whose GBK bytes are valid UTF-8 Han text: (its length in
    characters, the text it decodes to), or None."""
    try:
        raw = chars.encode("gbk")
    except UnicodeEncodeError as e:
        chars = chars[:e.start]
        raw = chars.encode("gbk")
    try:
        raw.decode("utf-8")
        valid = len(raw)
    except UnicodeDecodeError as e:
        valid = e.start
    # back to a boundary of both encodings
    ends = []
    pos = 0
    for i, c in enumerate(chars):
        pos += len(c.encode("gbk"))
        if pos > valid:
            break
        ends.append((pos, i + 1))
    for pos, n in reversed(ends):
        try:
            fixed = raw[:pos].decode("utf-8")
        except UnicodeDecodeError:
            continue
        han = len(_HAN_RE.findall(fixed))
        if han >= 3 and han * 10 >= len(fixed) * 7 and len(fixed) < n and _common(fixed):
            return n, fixed
        return None
    return None


def _gbk_repair(run: str) -> str | None:
    """`run` with every stretch that is UTF-8 read as GBK decoded back, or None when there is
    none. A stretch starts at a mark character and is the longest whose GBK bytes are valid
    UTF-8 and decode to mostly Han (real Chinese text almost never does: its GBK bytes are
    not valid UTF-8 beyond a character or two)."""
    out = []
    i = 0
    changed = False
    n = len(run)
    while i < n:
        m = _GBK_MARKS.search(run, i)
        if m is None:
            break
        start = m.start()
        found = _gbk_prefix(run[start:])
        if found is None:
            out.append(run[i:start + 1])
            i = start + 1
            continue
        length, fixed = found
        out.append(run[i:start])
        out.append(fixed)
        i = start + length
        changed = True
    if not changed:
        return None
    out.append(run[i:])
    return "".join(out)


class Mojibake(Step):
    name = "mojibake"
    chars = _MOJIBAKE_CHARS
    summary = ("Repair UTF-8 text that was decoded as Latin-1/Windows-1252 (ä¸­æ–‡ -> 中文, "
               "with ftfy) or as GBK (涓枃 -> 中文, a strict round trip); only text that "
               "shows the marks of it is touched.")
    params = (
        Param("latin", "bool", True, "Repair UTF-8 read as Latin-1 or Windows-1252 (ftfy)."),
        Param("gbk", "bool", True, "Repair UTF-8 read as GBK (runs of 4+ characters whose "
                                   "GBK bytes are valid UTF-8 Han)."),
    )

    def setup(self, latin, gbk):
        self.latin, self.gbk = latin, gbk
        if latin:
            import ftfy  # noqa: F401 - fail early, at setup, if it is missing

    def fix(self, text: str, field: str) -> Fix:
        if _MOJIBAKE_GATE.search(text) is None:
            return text, 0, 0
        removed = replaced = 0
        if self.latin and _LATIN_MOJIBAKE.search(text) is not None:
            import ftfy

            new = ftfy.fix_encoding(text)
            if new != text:
                replaced += len(new)
                removed += max(0, len(text) - len(new))
                text = new
        if self.gbk and _GBK_SIGNATURE.search(text) is not None:
            new, r, p = counted_sub(_GBK_RUN, lambda m: _gbk_repair(m.group(0)) or m.group(0),
                                    text)
            text, removed, replaced = new, removed + r, replaced + p
        return text, removed, replaced


# -- html -------------------------------------------------------------------------------------

_BLOCK_TAGS = ("p div br li ul ol table tbody thead tfoot tr h1 h2 h3 h4 h5 h6 blockquote "
               "section article header footer hr dl dt dd pre figure figcaption center "
               "caption").split()
_INLINE_TAGS = ("a span b strong em i u s font sup sub small big img code mark del ins "
                "strike abbr label nobr wbr tt cite q td th").split()
_TAG_NAMES = "|".join(sorted(_BLOCK_TAGS + _INLINE_TAGS, key=lambda s: (-len(s), s)))
#: attributes only in name=value form: `<b and c>` (maths) is not a tag
_ATTRS = r"""(?:\s+[A-Za-z_:][-\w:.]*\s*=\s*(?:"[^"<>]*"|'[^'<>]*'|[^\s"'=<>`]+))*"""
_TAG = re.compile(rf"<(/?)({_TAG_NAMES})({_ATTRS})\s*(/?)>", re.I)
_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.I | re.S)
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
#: an escaped tag (&lt;div&gt;): text about HTML, kept as it is, so that a second run does not
#: strip what the first one unescaped
_LT = r"&(?:lt|#0*60|#[xX]0*3[cC]);"
_GT = r"&(?:gt|#0*62|#[xX]0*3[eE]);"
_ESCAPED_TAG = re.compile(rf"{_LT}/?(?:{_TAG_NAMES})\b(?:(?!{_LT}).)*?{_GT}", re.I | re.S)
#: spaces and &nbsp; after a line break or block tag: HTML's way to indent a paragraph
_BREAK_INDENT = re.compile(rf"(<br\s*/?>|</?(?:p|div|li|h[1-6]|blockquote)\b{_ATTRS}\s*>)"
                           r"(?:[ \t\u00a0]|&nbsp;|&#160;|&#xa0;)+", re.I)
_HTML_GATE = re.compile(r"<[A-Za-z/]|&(?:#|[A-Za-z][A-Za-z0-9]*;)")
#: what makes a text an HTML fragment: a line break tag, a closing tag, an entity, or a tag with
#: name=value attributes
_HTML_EVIDENCE = re.compile(rf"<br\s*/?>|</(?:{_TAG_NAMES})\s*>|{_ENTITY.pattern}"
                            rf"|<(?:{_TAG_NAMES})\s+[A-Za-z_:][-\w:.]*\s*=", re.I)


class Html(Step):
    name = "html"
    chars = "<&"
    summary = ("Unescape HTML entities (&nbsp; &amp; &#8220;), turn <br> and block tags into "
               "newlines, strip known tags keeping their text (a link keeps its words); only in "
               "texts with evidence of HTML, never in code, and `a<b` in maths is not a tag.")
    params = (
        Param("tags", "bool", True, "Strip tags (false: only unescape entities)."),
        Param("entities", "bool", True, "Unescape entities."),
    )

    def setup(self, tags, entities):
        self.tags, self.entities = tags, entities

    def fix(self, text: str, field: str) -> Fix:
        if ("<" not in text and "&" not in text) or _HTML_GATE.search(text) is None \
                or _HTML_EVIDENCE.search(text) is None:
            return text, 0, 0
        if _CODE_SIGNS.search(text) is not None:
            return text, 0, 0  # a text about code: its tags and entities are the subject
        removed = replaced = 0
        tags = self.tags and _is_markup(text)
        for _ in range(6):  # nested escapes (&amp;amp;) settle in a few rounds
            spans = protected(text, math=False, urls=False)
            new, r, p = _outside_counted(text, spans, lambda s: self._once(s, tags))
            if new == text:
                break
            text, removed, replaced = new, removed + r, replaced + p
            if _HTML_GATE.search(text) is None:
                break
        return text, removed, replaced

    def _once(self, text: str, tags: bool) -> Fix:
        removed = replaced = 0
        if tags and "<" in text:
            if "<s" in text.lower():
                text, r, p = counted_sub(_SCRIPT, "", text)
                removed, replaced = removed + r, replaced + p
            if "&" in text or " " in text:  # &nbsp; indentation after a line break goes
                text, r, p = counted_sub(_BREAK_INDENT, lambda m: m.group(1), text)
                removed, replaced = removed + r, replaced + p
            text, r, p = counted_sub(_TAG, lambda m: self._tag(m, text), text)
            removed, replaced = removed + r, replaced + p
        if self.entities and "&" in text:
            spans = [m.span() for m in _ESCAPED_TAG.finditer(text)] if "&" in text else []
            text, r, p = _outside_counted(text, spans,
                                          lambda s: counted_sub(_ENTITY, _entity, s))
            removed, replaced = removed + r, replaced + p
        return text, removed, replaced

    @staticmethod
    def _tag(m: re.Match, text: str) -> str:
        closing, name, attrs, _ = m.groups()
        name = name.lower()
        if len(name) == 1 and not closing and not attrs.strip():
            # <b>, <i>, <p> ... without attributes are tags only where their closing tag is
            # there too (a<b>c in maths is not)
            if f"</{name}" not in text.lower():
                return m.group(0)
        if name == "br" or name == "hr":
            return "\n"
        if name in ("td", "th"):
            return " " if closing else ""
        if name in _BLOCK_TAGS:
            return "\n"
        return ""


#: signs that tags in a text are code under discussion, not markup: Markdown code, templates
_CODE_SIGNS = re.compile(r"`|\{\{|\sv-[a-z]+=|\s@[a-z]+=|\s:[a-z]+=|<\?php|<%")


def _is_markup(text: str) -> bool:
    """True when the tags of a text are markup to strip: at least two pieces of HTML (a line
    break, a closing tag, a tag with attributes, an entity), and no sign that the text is about
    code (Markdown code, template syntax), where a tag is the subject."""
    hits = 0
    for _ in _HTML_EVIDENCE.finditer(text):
        hits += 1
        if hits >= 2:
            return True
    return False


def _entity(m: re.Match) -> str:
    entity = m.group(0)
    if entity == "&nbsp;":
        return " "
    value = _html.unescape(entity)
    if value == entity or not value:
        return entity
    if any(0xD800 <= ord(c) <= 0xDFFF or ord(c) < 9 for c in value):
        return entity
    return value


# -- width ------------------------------------------------------------------------------------


_INDENT = re.compile("^\u3000+", re.M)


class Width(Step):
    name = "width"
    chars = nz.FULLWIDTH_ALNUM + nz.HALFWIDTH_KATAKANA + nz.LIGATURES + nz.IDEOGRAPHIC_SPACE
    summary = ("Full-width letters and digits (Ａ１) and the ideographic space inside a line to "
               "ASCII, half-width katakana and Latin ligatures to their NFKC forms; full-width "
               "Chinese punctuation (，。！？（）), circled numbers, superscripts, units and "
               "ideographic spaces that indent a line stay; code is left alone.")
    params = (
        Param("space", "bool", True, "The ideographic space U+3000 inside a line to an ASCII "
                                     "space (line-start indentation stays)."),
        Param("skip_code", "bool", True, "Leave code blocks and inline code alone."),
    )

    def setup(self, space, skip_code):
        table = dict(nz.WIDTH_TABLE)
        chars = nz.FULLWIDTH_ALNUM + nz.HALFWIDTH_KATAKANA + nz.LIGATURES
        if space:
            table[0x3000] = " "
            chars += nz.IDEOGRAPHIC_SPACE
        self.table = table
        self.space = space
        self.gate = re.compile(f"[{chars}]")
        self.skip_code = skip_code

    def _translate(self, text: str) -> Fix:
        n = len(self.gate.findall(text))
        if not n:
            return text, 0, 0
        return text.translate(self.table), 0, n

    def fix(self, text: str, field: str) -> Fix:
        if self.gate.search(text) is None:
            return text, 0, 0
        spans = protected(text, math=False, urls=False) if self.skip_code else []
        if self.space and "\u3000" in text:
            # ideographic spaces that indent a line are Chinese typography, not junk: they stay
            indents = [m.span() for m in _INDENT.finditer(text)]
            if indents:
                spans = merge(spans + indents)
        if spans:
            return _outside_counted(text, spans, self._translate)
        return self._translate(text)


# -- t2s --------------------------------------------------------------------------------------


class MissingDependency(ValueError):
    """A step needs an optional package that is not installed."""


class T2s(Step):
    name = "t2s"
    summary = ("Traditional to Simplified Chinese (OpenCC), opt-in: pip install 'cqia[t2s]'. "
               "Links are left alone.")
    default_on = False
    params = (
        Param("config", "str", "t2s", "OpenCC configuration: t2s, tw2s (Taiwan), hk2s "
                                      "(Hong Kong), tw2sp (with Taiwan phrases).",
              choices=("t2s", "tw2s", "hk2s", "tw2sp")),
    )

    def setup(self, config):
        try:
            import opencc
        except ImportError:
            raise MissingDependency("step t2s needs the optional OpenCC package: pip install "
                                    "'cqia[t2s]'") from None
        last: Exception | None = None
        for name in (config, config + ".json"):
            try:
                self.convert = opencc.OpenCC(name).convert
                break
            except Exception as e:  # noqa: BLE001 - the two bindings name configs differently
                last = e
        else:
            raise MissingDependency(f"step t2s: the installed OpenCC has no {config} "
                                    f"configuration ({last})")
        self.gate = re.compile(f"[{nz.HAN}]")

    def _convert(self, text: str) -> Fix:
        new = self.convert(text)
        if new == text:
            return text, 0, 0
        if len(new) == len(text):
            return new, 0, sum(a != b for a, b in zip(text, new))
        return new, max(0, len(text) - len(new)), min(len(text), len(new))

    def fix(self, text: str, field: str) -> Fix:
        if self.gate.search(text) is None:
            return text, 0, 0
        return _outside_counted(text, protected(text, code=False, math=False), self._convert)


# -- trailers ---------------------------------------------------------------------------------


def read_patterns(paths) -> list[str]:
    """The regular expressions of pattern files (one a line, # comments); `shipped:NAME` is a
    list shipped in cqia_cli/data/clean/. Read as filter's term lists are."""
    from cqia_cli.filtering.terms import compile_checked, list_lines

    out: dict[str, None] = {}
    for path in paths:
        for lineno, line in list_lines(path, "clean"):
            compile_checked(line, path, lineno)
            out[line] = None
    return list(out)


def required_literals(pattern: str) -> set[str] | None:
    """Strings one of which every match of `pattern` holds (the longest literal run of each
    alternative), or None when that cannot be told (then no text can be skipped)."""
    try:
        from re import _parser as sre_parse  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_parse  # type: ignore[no-redef]
    try:
        parsed = sre_parse.parse(pattern)
    except Exception:  # noqa: BLE001 - `regex`-only syntax: no shortcut
        return None

    def seq(items) -> set[str] | None:
        best: set[str] | None = None
        best_len = 0
        run: list[str] = []

        def flush():
            nonlocal best, best_len, run
            if run and len(run) > best_len:
                best, best_len = {"".join(run)}, len(run)
            run = []

        for op, av in items:
            name = str(op)
            if name == "LITERAL":
                run.append(chr(av))
                continue
            flush()
            inner = None
            if name == "SUBPATTERN":
                inner = seq(av[-1])
            elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") and av[0] >= 1:
                inner = seq(av[2])
            elif name == "BRANCH":
                alts = [seq(b) for b in av[1]]
                if all(alts):
                    inner = set().union(*alts)
            if inner and (best is None or min(map(len, inner)) > best_len):
                best, best_len = inner, min(map(len, inner))
        flush()
        return best

    found = seq(parsed)
    return found if found and all(len(x) >= 2 for x in found) else None


#: where a trailer may start: the start of the text or a line, after whitespace, or after the
#: end of a sentence
_TRAILER_BOUNDARY = "\n\t 。！？!?…）)】」』”\"'.~～"


class Trailers(Step):
    name = "trailers"
    summary = ("Forum and platform trailers at the end of a text (编辑于 2023-01-01, 发布于…, "
               "IP 属地, 著作权归作者所有…, 来自…客户端, 发自我的 iPhone, signatures), from an "
               "editable list shipped with cqia (trailers.txt); only at the very end, and only "
               "where the trailer starts a line or follows a sentence.")
    params = (
        Param("files", "files", ("shipped:trailers.txt",),
              "Pattern files (one regular expression a line); shipped:NAME is a shipped list."),
        Param("extra", "files", (), "More pattern files, added to `files`."),
        Param("tail", "int", 200, "How many characters at the end of a text are searched."),
    )

    def setup(self, files, extra, tail):
        import regex

        patterns = read_patterns(list(files) + list(extra))
        self.tail = max(16, tail)
        literals: set[str] = set()
        for p in patterns:
            need = required_literals(p)
            if need is None:
                literals = set()
                break
            literals |= need
        #: a text whose tail holds none of these cannot end in a trailer (None: no shortcut)
        self.literals = (re.compile("|".join(map(re.escape, sorted(literals, key=len,
                                                                   reverse=True))))
                         if literals else None)
        self.pattern = (regex.compile("(?:" + "|".join(f"(?:{p})" for p in patterns) + r")"
                                      r"[\s。.!！~～]*\Z")
                        if patterns else None)

    def fix(self, text: str, field: str) -> Fix:
        if self.pattern is None or not text:
            return text, 0, 0
        removed = 0
        match = self.pattern.match
        literals = self.literals
        while text:
            start = max(0, len(text) - self.tail)
            if literals is not None and literals.search(text, start) is None:
                break
            # a trailer starts the text or follows a boundary character: try only there (a
            # dozen places in a tail of 400 characters instead of every one)
            found = match(text, 0) if start == 0 else None
            if found is None:
                for b in _BOUNDARY.finditer(text, max(0, start - 1)):
                    found = match(text, b.end())
                    if found is not None:
                        break
            if found is None:
                break
            cut = found.start()
            while cut > 0 and text[cut - 1] in " \t\n\u3000":
                cut -= 1
            removed += len(text) - cut
            text = text[:cut]
        return text, removed, 0


_BOUNDARY = re.compile("[" + re.escape(_TRAILER_BOUNDARY) + "]")


# -- sub --------------------------------------------------------------------------------------


class SubTimeout(Exception):
    """A --sub pattern took longer than its timeout on one text."""


def parse_sub(item: str) -> tuple[str, str, str]:
    """`FIELD:PATTERN:REPLACEMENT` -> (field or '' for every field, pattern, replacement).

    FIELD ends at the first colon, REPLACEMENT starts after the last colon that is not escaped
    as `\\:`, so a pattern may hold colons ((?:..), 评分:); write a colon in the replacement
    as `\\:`."""
    field, sep, rest = item.partition(":")
    if not sep:
        raise ValueError(f"expected FIELD:PATTERN:REPLACEMENT, got {item!r}")
    i = len(rest) - 1
    while i >= 0:
        if rest[i] == ":":
            backslashes = 0
            j = i - 1
            while j >= 0 and rest[j] == "\\":
                backslashes += 1
                j -= 1
            if backslashes % 2 == 0:
                break
        i -= 1
    if i < 0:
        raise ValueError(f"expected FIELD:PATTERN:REPLACEMENT, got {item!r}")
    pattern, replacement = rest[:i], rest[i + 1:].replace("\\:", ":")
    if not pattern:
        raise ValueError(f"{item!r}: empty pattern")
    return field.strip(), pattern, replacement


#: group references of a replacement template: \1, \g<1>, \g<name>
_GROUP_REF = re.compile(r"(?<!\\)(?:\\\\)*\\(?:([1-9][0-9]?)|g<([^>]+)>)")


class Sub(Step):
    name = "sub"
    summary = ("Your own regular-expression rewrites, FIELD:PATTERN:REPLACEMENT (--sub, "
               "repeatable; FIELD empty for every field), with `regex` semantics (\\1, "
               "\\g<name>, \\p{Han}) and a timeout against catastrophic patterns. Applied once, "
               "in the order given.")
    default_on = False
    once = True
    params = (
        Param("rules", "exprs", (), "Rewrites FIELD:PATTERN:REPLACEMENT, applied in order."),
        Param("timeout", "float", 1.0,
              "Most seconds one pattern may take on one text; a pattern that takes longer "
              "stops the run (status 2) naming it."),
    )

    def setup(self, rules, timeout):
        import regex

        if not rules:
            raise ValueError("step sub needs rewrites: --sub 'FIELD:PATTERN:REPLACEMENT'")
        if timeout <= 0:
            raise ValueError("timeout must be above 0")
        self.timeout = timeout
        self.rules = []
        for item in rules:
            field, pattern, replacement = parse_sub(item)
            try:
                compiled = regex.compile(pattern)
            except regex.error as e:
                raise ValueError(f"{item!r}: bad regular expression: {e}") from None
            for ref in _GROUP_REF.finditer(replacement):
                name = ref.group(1) or ref.group(2)
                if (int(name) > compiled.groups if name.isdigit()
                        else name not in compiled.groupindex):
                    raise ValueError(f"{item!r}: bad replacement: no group {name} in the "
                                     "pattern")
            self.rules.append((field, compiled, replacement, item))

    def fix(self, text: str, field: str) -> Fix:
        removed = replaced = 0
        for target, pattern, replacement, item in self.rules:
            if target and target != field:
                continue
            try:
                new, r, p = self._sub(pattern, replacement, text)
            except TimeoutError:
                raise SubTimeout(f"--sub {item!r} took more than {self.timeout:g}s on field "
                                 f"{field} (a catastrophic pattern?); simplify it or raise "
                                 "sub.timeout") from None
            text, removed, replaced = new, removed + r, replaced + p
        return text, removed, replaced

    def _sub(self, pattern, replacement: str, text: str) -> Fix:
        removed = replaced = 0

        def one(m) -> str:
            nonlocal removed, replaced
            new = m.expand(replacement)
            old = m.group(0)
            if new != old:
                a, b = len(old), len(new)
                replaced += min(a, b)
                if a > b:
                    removed += a - b
            return new

        return pattern.sub(one, text, timeout=self.timeout), removed, replaced


# -- pii-mask ---------------------------------------------------------------------------------


_NUMBER_LIKE = re.compile("[0-9][0-9][0-9][-\\s]?[0-9][0-9][0-9][0-9]")
#: QQ and WeChat words, the first character scanned for (a plain alternation is ten times
#: slower)
_ID_WORD = re.compile("[qQvVwW扣企微威薇](?:(?<=[qQ])[qQ]|(?<=[vVwW])[xX]|(?<=[wW])(?i:eixin|echat)"
                      "|(?<=扣)扣|(?<=企)鹅|(?<=[微威薇vV])信)")
#: both, in one scan
_NUMBER_OR_ID_WORD = re.compile(
    "[0-9qQvVwW扣企微威薇](?:(?<=[0-9])[0-9][0-9][-\\s]?[0-9][0-9][0-9][0-9]|(?<=[qQ])[qQ]"
    "|(?<=[vVwW])[xX]|(?<=[wW])(?i:eixin|echat)|(?<=扣)扣|(?<=企)鹅|(?<=[微威薇vV])信)")


def _pii_gate(kinds: tuple[str, ...]):
    """False when none of the kinds can be in the text: no '@', no link, no run of digits like
    a number's, no QQ or WeChat word (cheaper than the detectors' own prefilter, which counts
    digits)."""
    email = "email" in kinds
    url = "url" in kinds
    digits = any(k in kinds for k in ("mobile", "landline", "id-card", "bank-card"))
    ids = "qq" in kinds or "wechat" in kinds
    number_like = _NUMBER_LIKE.search
    id_word = _ID_WORD.search
    if digits and ids:
        either = _NUMBER_OR_ID_WORD.search

        def may_have_all(text: str) -> bool:
            return ("@" in text and email) or either(text) is not None or \
                (url and ("http" in text or "www." in text or "WWW." in text))

        return may_have_all

    def may_have(text: str) -> bool:
        return ((email and "@" in text)
                or (url and ("http" in text or "www." in text or "WWW." in text))
                or (digits and number_like(text) is not None)
                or (ids and id_word(text) is not None))

    return may_have


class PiiMask(Step):
    name = "pii-mask"
    # <PHONE> and the like are no tags, mojibake or escapes (it runs before trailers, which a
    # mask can complete: IP 属地北京<PHONE>)
    exposes = False
    summary = ("Mask contact and personal data with placeholders (<PHONE>, <EMAIL>, <QQ>, "
               "<WECHAT>, <ID_CARD>, <BANK_CARD>, <URL>) so the record survives filter's pii "
               "rule; the same detectors (checksums, no arithmetic), code left alone.")
    params = (
        Param("kinds", "list", pii.DEFAULT_KINDS,
              "What to mask (url is off by default: curated answers cite documentation).",
              choices=pii.KINDS),
        Param("skip_code", "bool", True,
              "Leave code blocks and inline code alone (an e-mail in a git config example)."),
    )

    def setup(self, kinds, skip_code):
        self.kinds = tuple(kinds)
        self.may_have = _pii_gate(self.kinds)
        self.find_all = pii.find_all
        self.placeholders = pii.PLACEHOLDERS
        self.skip_code = skip_code

    def _mask(self, text: str) -> Fix:
        hits = self.find_all(text, self.kinds)
        if not hits:
            return text, 0, 0
        parts = []
        pos = 0
        removed = replaced = 0
        for start, end, kind in hits:
            ph = self.placeholders[kind]
            parts.append(text[pos:start])
            parts.append(ph)
            a, b = end - start, len(ph)
            replaced += min(a, b)
            removed += max(0, a - b)
            pos = end
        parts.append(text[pos:])
        return "".join(parts), removed, replaced

    def fix(self, text: str, field: str) -> Fix:
        if not self.may_have(text):
            return text, 0, 0
        if self.skip_code:
            spans = protected(text, math=False, urls=False)
            if spans:
                return _outside_counted(text, spans, self._mask)
        return self._mask(text)


# -- whitespace -------------------------------------------------------------------------------

#: one class, so that `re` scans for it (\r\n, and joiners next to emoji, are told apart in
#: the replacement function)
_WS_CHARS = re.compile(
    f"[\r{nz.LINE_BREAKS}{nz.CONTROLS}{nz.INVISIBLE}{nz.UNICODE_SPACES}{nz.JOINERS}]")
_JOINABLE = re.compile(f"[{nz.JOINABLE}]")
_INVISIBLE = re.compile(f"[{nz.INVISIBLE}]")
_WS_CLASS = re.compile(
    f"[\r{nz.LINE_BREAKS}{nz.CONTROLS}{nz.INVISIBLE}{nz.UNICODE_SPACES}{nz.JOINERS}]")


def _ws_gate(text: str) -> bool:
    """Whether the text may have anything for whitespace but trimming (str.__contains__ and
    one character class: several times faster than one regex with alternatives)."""
    return ("  " in text or " \n" in text or "\t\n" in text or "\n\n\n" in text
            or _WS_CLASS.search(text) is not None)
_TRAILING = re.compile(r"[ \t]+(?=\n)")
_SPACE_RUN = re.compile("  +")


def _collapse(m: re.Match) -> str:
    """A run of spaces between two words becomes one; indentation and the end stay."""
    s, e = m.span()
    text = m.string
    if s == 0 or e == len(text) or text[s - 1].isspace() or text[e].isspace():
        return m.group(0)
    return " "
_LEADING_BLANK_LINES = re.compile(r"\A(?:[ \t\u3000]*\n)+")
_TRIM = " \t\n\u3000"


class Whitespace(Step):
    name = "whitespace"
    chars = f"\r{nz.LINE_BREAKS}{nz.CONTROLS}{nz.INVISIBLE}{nz.UNICODE_SPACES}{nz.JOINERS}"

    def also(self, text: str) -> bool:
        return bool(text) and ("  " in text or " \n" in text or "\t\n" in text
                               or "\n\n\n" in text or text[0] in _TRIM or text[-1] in _TRIM)
    summary = ("Trim, collapse runs of spaces inside a line (not indentation, not code), "
               "CRLF and CR to LF, at most N blank lines, trailing spaces; remove zero-width "
               "characters, BOMs inside text and C0/C1 controls other than newline and tab; "
               "no-break and other Unicode spaces to spaces; joiners in emoji and Indic text "
               "stay.")
    params = (
        Param("max_blank_lines", "int", 1, "Most blank lines in a row (-1: no limit)."),
        Param("collapse", "bool", True,
              "Collapse runs of spaces between words to one (indentation and code stay)."),
        Param("trim", "bool", True,
              "Strip the text's leading and trailing whitespace (the first line's indentation "
              "stays when later lines are indented too: code)."),
        Param("invisible", "bool", True,
              "Remove zero-width spaces, word joiners, BOMs and soft hyphens (and joiners "
              "outside emoji and Indic text)."),
        Param("controls", "bool", True,
              "Remove C0/C1 control characters but tab and newline (a control character that "
              "starts a LaTeX command a JSON escape ate is left to latex-escapes)."),
        Param("spaces", "bool", True, "No-break and other Unicode spaces to ASCII spaces."),
    )

    def setup(self, max_blank_lines, collapse, trim, invisible, controls, spaces):
        self.v = dict(collapse=collapse, trim=trim, invisible=invisible, controls=controls,
                      spaces=spaces)
        self.blank = (re.compile("\n{%d,}" % (max_blank_lines + 2))
                      if max_blank_lines >= 0 else None)
        self.blank_to = "\n" * (max_blank_lines + 1)

    def fix(self, text: str, field: str) -> Fix:
        if not text:
            return text, 0, 0
        gated = _ws_gate(text)
        if not gated and not (text[0] in _TRIM or text[-1] in _TRIM):
            return text, 0, 0
        v = self.v
        removed = replaced = 0
        # trimming, line ends, trailing spaces and blank lines give no step before it work;
        # removing characters inside a line or collapsing spaces may (a phone number with a
        # zero-width space or two spaces in it)
        self.exposed = False
        if gated:
            if v["invisible"] and _INVISIBLE.search(text) is not None:
                # first, so that what the others see (a control character before a LaTeX
                # word) is what a second run would see
                text, r, p = counted_sub(_INVISIBLE, "", text)
                removed += r
                self.exposed = True

            def char(m: re.Match) -> str:
                c = m.group(0)
                if c == "\r":
                    e = m.end()
                    if e < len(original) and original[e] == "\n":
                        return ""  # \r\n: the \n stays
                    return c if latex_repairable(original, m.start()) else "\n"
                if c in nz.LINE_BREAKS:
                    return "\n"
                o = ord(c)
                if o < 0x20 or 0x7F <= o <= 0x9F:
                    if not v["controls"] or (c in "\x08\x0c"
                                             and latex_repairable(original, m.start())):
                        return c
                    return ""
                if c in nz.JOINERS:
                    s, e = m.span()
                    if (s and _JOINABLE.match(original, s - 1)) or \
                            (e < len(original) and _JOINABLE.match(original, e)):
                        return c  # an emoji sequence, Indic or Arabic text
                    return "" if v["invisible"] else c
                if c in nz.INVISIBLE:
                    return "" if v["invisible"] else c
                return " " if v["spaces"] else c

            for _ in range(8):
                # again while it changes: removing a control character can end the LaTeX
                # word a control character before it was kept for (\bx\bety -> \bxety)
                original = text
                text, r, p = counted_sub(_WS_CHARS, char, text)
                removed, replaced = removed + r, replaced + p
                if text != original:
                    self.exposed = True
                if text == original or _WS_CHARS.search(text) is None:
                    break
            if "\n" in text:
                text, r, p = counted_sub(_TRAILING, "", text)
                removed += r
            if v["collapse"] and "  " in text:
                spans = protected(text, math=False, urls=False)
                text, r, p = _outside_counted(text, spans,
                                              lambda s: counted_sub(_SPACE_RUN, _collapse, s))
                removed += r
                if r:
                    self.exposed = True
            if self.blank is not None and "\n\n\n" in text:
                text, r, p = counted_sub(self.blank, self.blank_to, text)
                removed += r
        if v["trim"] and text and (text[0] in _TRIM or text[-1] in _TRIM):
            before = len(text)
            text = text.rstrip(_TRIM)
            if text and text[0] in _TRIM:
                text = _LEADING_BLANK_LINES.sub("", text)
                if text and text[0] in " \t\u3000":
                    if not re.search(r"\n[ \t\u3000]", text):
                        text = text.lstrip(" \t\u3000")
                # a new start of the text: a trailer may now start there, and html's test
                # for template code (` v-if=`) may read otherwise
                self.exposed = True
            removed += before - len(text)
        return text, removed, replaced


# -- punct ------------------------------------------------------------------------------------

_OPEN = "“‘「『《〈（【〔"
_CLOSE = "”’」』》〉）】〕"
_HALF_TO_FULL = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！"}
_FULL_TO_HALF = {"，": ",", "；": ";", "：": ":", "？": "?", "！": "!", "（": "(", "）": ")"}
_PUNCT_FWD = re.compile(
    # the mark first (so that `re` scans for it), then what is around it:
    f"([,;:?!])(?:"
    # between Chinese (a space after the mark goes too)
    f"(?<=[{nz.HAN}{_CLOSE}].) ?(?=[{nz.HAN}{_OPEN}])"
    # ? and ! after Chinese, unless Latin text, digits or more marks follow (好?!, 是吗?a=1)
    f"|(?<=[{nz.HAN}][?!])(?![A-Za-z0-9?!=.,'\"])"
    # : and ; after Chinese at the end of a line (如下:)
    f"|(?<=[{nz.HAN}][:;])(?=\n|\\Z))")
_PAREN = re.compile(f"\\(([^()\\n$\\\\`=<>{{}}]{{0,80}}?[{nz.HAN}][^()\\n$\\\\`=<>{{}}]{{0,80}}?)\\)")
_PAREN_NEIGHBOUR = re.compile(f"[{nz.HAN}，。、；：？！“”‘’《》「」『』（）【】]")
#: letters of scripts that use full-width punctuation: a line with none of them is Latin text
_CJK_LETTERS = f"{nz.HAN}\u3040-\u30ff\uac00-\ud7af"
_CJK_LETTER = re.compile(f"[{_CJK_LETTERS}]")
#: a line with no CJK letter that holds a full-width mark: where to_half can have work
_LATIN_LINE = re.compile(f"^[^\n{_CJK_LETTERS}]*[，；：？！（）][^\n{_CJK_LETTERS}]*$", re.M)
_PUNCT_REV = re.compile("[，；：？！（）](?:(?<=[A-Za-z0-9].)|(?=[A-Za-z0-9]))")
#: the mark first, then its neighbours: `re` scans for the marks, not at every position
_PUNCT_FWD_GATE = re.compile(f"[,;:?!()](?:(?<=[{nz.HAN}{_CLOSE}].)|(?= ?[{nz.HAN}{_OPEN}]))")
_PUNCT_REV_GATE = re.compile("[，；：？！（）](?:(?<=[A-Za-z0-9].)|(?=[A-Za-z0-9]))")


class Punct(Step):
    name = "punct"
    exposes = False  # the last step
    summary = ("Half-width , ; : ? ! ( ) between Chinese characters to full-width (，；：？！（）), "
               "and full-width ones in lines of Latin text or code to half-width; maths and "
               "links are left alone, and Chinese text in code.")
    params = (
        Param("to_full", "bool", True, "Half-width punctuation between Chinese to full-width."),
        Param("to_half", "bool", True,
              "Full-width punctuation next to Latin letters or digits, in lines with no "
              "Chinese, Japanese or Korean letter, to half-width."),
    )

    def setup(self, to_full, to_half):
        self.to_full, self.to_half = to_full, to_half

    def _full(self, text: str) -> Fix:
        removed = replaced = 0
        # until nothing changes: nested parentheses go innermost first, and each kind of
        # mark can make the other's neighbour Chinese (担当?(5 分) -> 担当？(5 分) -> （5 分）)
        for _ in range(12):
            before = text
            if "(" in text:

                def paren(m: re.Match) -> str:
                    s, e = m.span()
                    t = m.string
                    if (s and _PAREN_NEIGHBOUR.match(t, s - 1)) or \
                            (e < len(t) and _PAREN_NEIGHBOUR.match(t, e)):
                        return "（" + m.group(1) + "）"
                    return m.group(0)

                text, r, p = counted_sub(_PAREN, paren, text)
                replaced += p
            text, r, p = counted_sub(_PUNCT_FWD, lambda m: _HALF_TO_FULL[m.group(1)], text)
            removed, replaced = removed + r, replaced + p
            if text == before:
                break
        return text, removed, replaced

    def _half(self, text: str) -> Fix:
        """Full-width marks next to Latin letters or digits, in lines with no CJK letter."""
        latin_lines: dict[int, bool] = {}
        spans = None

        def one(m: re.Match) -> str:
            nonlocal spans
            pos = m.start()
            start = text.rfind("\n", 0, pos) + 1
            latin = latin_lines.get(start)
            if latin is None:
                end = text.find("\n", pos)
                line = text[start:] if end < 0 else text[start:end]
                latin = latin_lines[start] = _CJK_LETTER.search(line) is None
            if not latin:
                return m.group(0)
            if spans is None:  # maths and links stay (code does not: a full-width comma in a
                spans = protected(text, code=False)  # line of code with no Chinese is a typo)
            for s, e in spans:
                if s <= pos < e:
                    return m.group(0)
            c = m.group(0)
            half = _FULL_TO_HALF[c]
            e = m.end()
            if c in "，；：" and e < len(text) and text[e].isascii() and text[e].isalpha():
                return half + " "
            return half

        return counted_sub(_PUNCT_REV, one, text)

    def fix(self, text: str, field: str) -> Fix:
        removed = replaced = 0
        if self.to_full and ("," in text or ";" in text or ":" in text or "?" in text
                             or "!" in text or "(" in text) \
                and (_PUNCT_FWD.search(text) is not None
                     or ("(" in text and _PAREN.search(text) is not None)):
            spans = protected(text)
            text, r, p = _outside_counted(text, spans, self._full)
            removed, replaced = removed + r, replaced + p
        if self.to_half and ("\n" in text or _CJK_LETTER.search(text) is None) \
                and _PUNCT_REV_GATE.search(text) is not None \
                and _LATIN_LINE.search(text) is not None:
            text, r, p = self._half(text)
            removed, replaced = removed + r, replaced + p
        return text, removed, replaced


#: Every step, in the order they run: encoding first, then markup, then characters, then
#: content, and whitespace and punctuation last, so that no step exposes work for one before it.
STEPS: dict[str, type[Step]] = {cls.name: cls for cls in (
    Mojibake, Html, LatexEscapes, Width, T2s, Sub, PiiMask, Trailers, Whitespace, Punct,
)}
