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


def has(record: Any, path: str | tuple) -> bool:
    return get(record, path, MISSING) is not MISSING


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

    __slots__ = ("fields", "_paths", "_simple")

    def __init__(self, fields: Sequence[str] | None = None):
        self.fields = tuple(fields) if fields else DEFAULT_TEXT_FIELDS
        self._paths = [compile_path(f) for f in self.fields]
        self._simple = all(len(p) == 1 and isinstance(p[0], str) for p in self._paths)

    def __call__(self, record: dict) -> str:
        if self._simple:
            parts = [record.get(p[0]) for p in self._paths]
        else:
            parts = [get(record, p) for p in self._paths]
        return "\n".join(t for t in map(as_text, parts) if t)


def record_text(record: dict, fields: Iterable[str] | None = None) -> str:
    """The text of one record (see TextGetter); for hot loops build a TextGetter once."""
    return TextGetter(tuple(fields) if fields else None)(record)
