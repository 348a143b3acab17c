"""A small, safe expression language over record fields, for `--where` and `--threshold`.

    score >= 8 and answer_from == "human"
    len(output) >= 20 and not output =~ "^(是|否)$"
    "segmentfault" in metadata or task_type.major in ["问答", "试题"]
    exists(upvotes) and upvotes >= 5

Grammar (a tokenizer and a recursive-descent parser; nothing is passed to Python's eval):

    expr  := or
    or    := and ("or" and)*
    and   := not ("and" not)*
    not   := "not" not | cmp
    cmp   := value [OP value]      OP: == != < <= > >= =~ !~ in "not in"
    value := NUMBER | STRING | true | false | null | PATH | `QUOTED.PATH`
           | NAME "(" [expr ("," expr)*] ")" | "(" expr ")" | "[" [expr ("," expr)*] "]"

A PATH is a dotted field path (`task_type.major`, `conversations.0.value`); a missing field is
null. Comparisons between values of different kinds (a number and a string) are false rather
than errors, so a record with an odd field is filtered, not fatal. `=~` searches with a regular
expression (the `regex` module; `(?i)` for case-insensitive). `in` tests membership in a list or
a substring in a string. Functions: len(x), lower(x), exists(PATH), num(x) (a number from a
numeric string, else null).
"""

from __future__ import annotations

from typing import Any, Callable

import regex

from cqia_cli.fields import MISSING, FieldPath

Evaluator = Callable[[dict], Any]


class ExprError(ValueError):
    """A syntax error, with the column where it was found."""


_TOKEN = regex.compile(r"""
    (?P<ws>\s+)
  | (?P<num>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<qpath>`[^`]+`)
  | (?P<op>==|!=|<=|>=|=~|!~|<|>|\(|\)|\[|\]|,)
  | (?P<name>[\p{L}_][\p{L}\p{N}_]*(?:\.[\p{L}\p{N}_]+)*)
""", regex.VERBOSE)

_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}


def _unquote(s: str) -> str:
    body = s[1:-1]
    out = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def tokenize(text: str) -> list[tuple[str, Any, int]]:
    """(kind, value, column) tokens; kinds: num str path name kw op end."""
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExprError(f"at column {pos + 1}: unexpected {text[pos]!r}")
        kind = m.lastgroup
        raw = m.group()
        col = pos + 1
        pos = m.end()
        if kind == "ws":
            continue
        if kind == "num":
            value = float(raw) if any(c in raw for c in ".eE") else int(raw)
            tokens.append(("num", value, col))
        elif kind == "str":
            tokens.append(("str", _unquote(raw), col))
        elif kind == "qpath":
            tokens.append(("path", raw[1:-1], col))
        elif kind == "op":
            tokens.append(("op", raw, col))
        elif raw in _KEYWORDS:
            tokens.append(("kw", raw, col))
        else:
            tokens.append(("name", raw, col))
    tokens.append(("end", None, len(text) + 1))
    return tokens


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _ordered(op: str) -> Callable[[Any, Any], bool]:
    import operator

    fn = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]

    def compare(a: Any, b: Any) -> bool:
        if _is_num(a) and _is_num(b) or isinstance(a, str) and isinstance(b, str):
            return fn(a, b)
        return False

    return compare


def _contains(a: Any, b: Any) -> bool:
    if isinstance(b, str):
        return isinstance(a, str) and a in b
    if isinstance(b, (list, tuple)):
        return any(_eq(a, x) for x in b)
    if isinstance(b, dict):
        return isinstance(a, str) and a in b
    return False


def _len(v: Any) -> int:
    if v is None:
        return 0
    if isinstance(v, (str, list, dict)):
        return len(v)
    return len(str(v))


def _num(v: Any) -> Any:
    if _is_num(v):
        return v
    if isinstance(v, str):
        try:
            return float(v) if any(c in v for c in ".eE") else int(v)
        except ValueError:
            return None
    return None


def _lower(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


_FUNCS = {"len": (_len, 1), "lower": (_lower, 1), "num": (_num, 1)}


#: the deepest nesting of parentheses, lists, calls and `not`s an expression may have
MAX_DEPTH = 64


class Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        #: the field paths the expression reads, in order of appearance
        self.paths: list[str] = []
        #: how deeply the parser is nested in parentheses, lists, calls and `not`s
        self.depth = 0
        #: the paths the expression asks exists() of: it expects them to be missing at times
        self.optional: set[str] = set()

    # -- token helpers ---------------------------------------------------------------------

    def peek(self) -> tuple[str, Any, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, Any, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def accept(self, kind: str, value: Any = None) -> bool:
        k, v, _ = self.peek()
        if k == kind and (value is None or v == value):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, value: Any, what: str) -> None:
        if not self.accept(kind, value):
            self.fail(f"expected {what}")

    def fail(self, msg: str) -> None:
        kind, value, col = self.peek()
        found = "the end" if kind == "end" else repr(str(value) if kind != "str" else value)
        raise ExprError(f"at column {col}: {msg}, found {found}")

    # -- grammar ---------------------------------------------------------------------------

    def parse(self) -> Evaluator:
        if self.peek()[0] == "end":
            raise ExprError("empty expression")
        node = self.or_()
        if self.peek()[0] != "end":
            self.fail("expected an operator or the end")
        return node

    def or_(self) -> Evaluator:
        parts = [self.and_()]
        while self.accept("kw", "or"):
            parts.append(self.and_())
        if len(parts) == 1:
            return parts[0]
        return lambda r: any(p(r) for p in parts)

    def and_(self) -> Evaluator:
        parts = [self.not_()]
        while self.accept("kw", "and"):
            parts.append(self.not_())
        if len(parts) == 1:
            return parts[0]
        return lambda r: all(p(r) for p in parts)

    def nest(self) -> None:
        """One level deeper (a parenthesis, list, call or `not`): deeper than MAX_DEPTH is an
        error, not a RecursionError of the parser or the evaluator."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExprError(f"nested more than {MAX_DEPTH} levels deep (parentheses, lists, "
                            "calls and 'not's count)")

    def not_(self) -> Evaluator:
        if self.accept("kw", "not"):
            self.nest()
            inner = self.not_()
            self.depth -= 1
            return lambda r: not inner(r)
        return self.cmp()

    def cmp(self) -> Evaluator:
        left = self.value()
        kind, op, col = self.peek()
        if kind == "op" and op in ("==", "!=", "<", "<=", ">", ">=", "=~", "!~"):
            self.i += 1
        elif kind == "kw" and op == "in":
            self.i += 1
        elif kind == "kw" and op == "not" and self.tokens[self.i + 1][:2] == ("kw", "in"):
            self.i += 2
            op = "not in"
        else:
            return left
        if op in ("=~", "!~"):
            k, pattern, pcol = self.peek()
            if k != "str":
                self.fail(f"expected a quoted regular expression after {op}")
            self.i += 1
            try:
                rx = regex.compile(pattern)
            except regex.error as e:
                raise ExprError(f"at column {pcol}: bad regular expression: {e}") from None
            search = rx.search
            if op == "=~":
                return lambda r: isinstance(v := left(r), str) and search(v) is not None
            return lambda r: not (isinstance(v := left(r), str) and search(v) is not None)
        right = self.value()
        if op == "==":
            return lambda r: _eq(left(r), right(r))
        if op == "!=":
            return lambda r: not _eq(left(r), right(r))
        if op == "in":
            return lambda r: _contains(left(r), right(r))
        if op == "not in":
            return lambda r: not _contains(left(r), right(r))
        compare = _ordered(op)
        return lambda r: compare(left(r), right(r))

    def value(self) -> Evaluator:
        kind, v, col = self.peek()
        if kind in ("num", "str"):
            self.i += 1
            return lambda r: v
        if kind == "kw" and v in ("true", "false", "null"):
            self.i += 1
            const = {"true": True, "false": False, "null": None}[v]
            return lambda r: const
        if kind == "op" and v == "(":
            self.i += 1
            self.nest()
            inner = self.or_()
            self.expect("op", ")", "')'")
            self.depth -= 1
            return inner
        if kind == "op" and v == "[":
            self.i += 1
            self.nest()
            items: list[Evaluator] = []
            if not self.accept("op", "]"):
                items.append(self.or_())
                while self.accept("op", ","):
                    items.append(self.or_())
                self.expect("op", "]", "',' or ']'")
            self.depth -= 1
            return lambda r: [it(r) for it in items]
        if kind == "path":
            self.i += 1
            return self._path(v, col)
        if kind == "name":
            self.i += 1
            if self.accept("op", "("):
                return self._call(v, col)
            return self._path(v, col)
        self.fail("expected a field, a value or '('")
        raise AssertionError  # unreachable

    def _path(self, path: str, col: int) -> Evaluator:
        try:
            field = FieldPath(path)
        except ValueError as e:
            raise ExprError(f"at column {col}: {e}") from None
        self.paths.append(path)
        if field.top is not None:
            key = field.top
            return lambda r: r.get(key)
        return field

    def _call(self, name: str, col: int) -> Evaluator:
        if name == "exists":
            kind, path, pcol = self.peek()
            if kind not in ("name", "path"):
                self.fail("exists() takes a field path")
            self.i += 1
            self.expect("op", ")", "')'")
            field = FieldPath(path)
            self.paths.append(path)
            self.optional.add(path)
            return lambda r: field(r, MISSING) is not MISSING
        if name not in _FUNCS:
            known = ", ".join(sorted([*_FUNCS, "exists"]))
            raise ExprError(f"at column {col}: unknown function {name}() (known: {known})")
        fn, arity = _FUNCS[name]
        args: list[Evaluator] = []
        self.nest()
        if not self.accept("op", ")"):
            args.append(self.or_())
            while self.accept("op", ","):
                args.append(self.or_())
            self.expect("op", ")", "',' or ')'")
        self.depth -= 1
        if len(args) != arity:
            raise ExprError(f"at column {col}: {name}() takes {arity} argument, got {len(args)}")
        arg = args[0]
        return lambda r: fn(arg(r))


class Expression:
    """A compiled expression: `Expression("score >= 8")(record)` is True or False."""

    __slots__ = ("text", "paths", "optional", "_fn")

    def __init__(self, text: str):
        parser = Parser(text)
        self._fn = parser.parse()
        self.text = text
        self.paths = parser.paths
        self.optional = parser.optional

    def __call__(self, record: dict) -> bool:
        return bool(self._fn(record))

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __reduce__(self):
        return (Expression, (self.text,))


def compile_expr(text: str) -> Expression:
    return Expression(text)
