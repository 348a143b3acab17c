"""Dotted field paths (`task_type.major`) and the default text of a record.

A path is split on dots once (`compile_path`) and then walked per record. A path part that is a
decimal number indexes a list (`conversations.0.value`). Missing parts give `default`.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

#: The fields whose values, joined by newlines, are a record's text unless --field says otherwise.
DEFAULT_TEXT_FIELDS = ("instruction", "input", "output")

MISSING: Any = object()


def compile_path(path: str) -> tuple:
    """Split a dotted path into its parts; numeric parts become list indexes."""
    if not path or path.startswith(".") or path.endswith(".") or ".." in path:
        raise ValueError(f"bad field path {path!r}")
    return tuple(int(p) if p.isdigit() else p for p in path.split("."))


class FieldPath:
    """A dotted path compiled once, called per record: `FieldPath("task_type.major")(record)`
    is the value there, or `default` when a part is missing.

    A path of one part (`output`, also `2024`) is a top-level key, looked up as the string it
    is: `top` holds it (None for a nested path), so that a hot loop may inline
    `record.get(p.top) if p.top is not None else get(record, p.parts)`; `parts` are the
    compiled parts (numeric ones index lists) for `get`."""

    __slots__ = ("path", "parts", "top")

    def __init__(self, path: str):
        self.path = path
        self.parts = compile_path(path)
        self.top: str | None = path if len(self.parts) == 1 else None

    def __call__(self, record: Any, default: Any = None) -> Any:
        if self.top is not None and type(record) is dict:
            return record.get(self.top, default)
        return get(record, self.parts, default)

    def __repr__(self) -> str:
        return f"FieldPath({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldPath) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __reduce__(self):
        return (FieldPath, (self.path,))


def get(record: Any, path: str | tuple, default: Any = None) -> Any:
    """The value at `path` in `record`, or `default` when any part of it is missing."""
    parts = compile_path(path) if isinstance(path, str) else path
    value = record
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part if not isinstance(part, int) else str(part), MISSING)
            if value is MISSING:
                return default
        elif isinstance(value, list) and isinstance(part, int):
            if part >= len(value):
                return default
            value = value[part]
        else:
            return default
    return value


def set(record: dict, path: str | tuple, value: Any) -> None:  # noqa: A001 - mirrors get()
    """Set the value at `path`, creating intermediate objects as needed."""
    parts = compile_path(path) if isinstance(path, str) else path
    target = record
    for part in parts[:-1]:
        key = str(part) if isinstance(part, int) and isinstance(target, dict) else part
        if isinstance(target, list) and isinstance(key, int):
            target = target[key]
            continue
        nxt = target.get(key)
        if not isinstance(nxt, (dict, list)):
            nxt = {}
            target[key] = nxt
        target = nxt
    last = parts[-1]
    if isinstance(target, list) and isinstance(last, int):
        target[last] = value
    else:
        target[str(last) if isinstance(last, int) else last] = value


def as_text(value: Any) -> str:
    """A field value as text: strings as they are, lists joined by newlines, None as ''."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(as_text(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "\n".join(as_text(v) for v in value.values())
    return str(value)


class TextGetter:
    """Build a record's text from `fields` (default instruction, input, output).

    The non-empty values of the fields are joined by newlines, in the order given.
    Compile once, call per record: `text = TextGetter(fields)(record)`.
    """

    __slots__ = ("fields", "_paths", "_tops")

    def __init__(self, fields: Sequence[str] | None = None):
        self.fields = tuple(fields) if fields else DEFAULT_TEXT_FIELDS
        self._paths = [FieldPath(f) for f in self.fields]
        tops = [p.top for p in self._paths]
        self._tops = tops if None not in tops else None

    def __call__(self, record: dict) -> str:
        if self._tops is not None:
            parts = [record.get(k) for k in self._tops]
        else:
            parts = [p(record) for p in self._paths]
        return "\n".join(t for t in map(as_text, parts) if t)


def record_text(record: dict, fields: Iterable[str] | None = None) -> str:
    """The text of one record (see TextGetter); for hot loops build a TextGetter once."""
    return TextGetter(tuple(fields) if fields else None)(record)
