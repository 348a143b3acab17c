"""Input containers beyond JSON Lines: a JSON array, CSV and TSV with a header row.

`ContainerReader` is the core's RecordReader (same --on-error, --errors, FILE:LINE reporting,
`where()` and `bad_line()`), extended to read each input in its own container:

    container   chosen when                                 a record's position
    jsonl       .jsonl/.ndjson, or anything else whose      FILE:LINE
                first byte is not `[`
    json        .json or any input starting with `[`        FILE:LINE where the item starts
    csv / tsv   .csv / .tsv (before a compression suffix)   FILE:LINE where the row starts

A JSON array is read whole (its items are parsed one by one, so a broken item is reported at its
line); CSV and TSV are streamed. CSV cells are text, except the columns that hold structure in
some format (conversations, messages, history, task_type, domain), which are read as JSON when
they hold a JSON array or object, and human_verified (true/false). With --errors, a rejected
item or row is kept as one JSON line.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import lzma
import os
import re
import zlib
from typing import Iterator, Sequence

import orjson

from cqia_cli.io import BOM, RecordReader, compression_of, display_name, is_stdio, open_binary, \
    json_kind
from cqia_cli.status import DataError

CONTAINERS = ("auto", "jsonl", "json", "csv", "tsv")
JSON_COLUMNS = frozenset(("conversations", "messages", "history", "task_type", "domain"))
_WS = re.compile(r"[ \t\n\r]*")
_SNIFF = 4096
_CORRUPT = (OSError, EOFError, lzma.LZMAError, zlib.error)


def container_by_suffix(path: str) -> str | None:
    name = path.lower()
    kind = compression_of(name)
    if kind:
        name = name[: -len(kind) - 1]
    for suffix, container in ((".csv", "csv"), (".tsv", "tsv"), (".jsonl", "jsonl"),
                              (".ndjson", "jsonl")):
        if name.endswith(suffix):
            return container
    return None


def container_by_content(head: bytes) -> str:
    head = head[len(BOM):] if head.startswith(BOM) else head
    return "json" if head.lstrip()[:1] == b"[" else "jsonl"


def sniff(path: str) -> str:
    """The container of one input: by suffix, else by its first non-blank byte."""
    if not is_stdio(path):
        kind = container_by_suffix(path)
        if kind:
            return kind
        stream = open_binary(path)
        try:
            head = stream.read(_SNIFF)
        except _CORRUPT:
            head = b""  # the reader proper reports a corrupt file at its line
        finally:
            stream.close()
        return container_by_content(head)
    stream = open_binary(path)  # the core's one standard-input stream: a peek is not lost
    if hasattr(stream, "peek"):
        return container_by_content(stream.peek(_SNIFF)[:_SNIFF])
    if stream.seekable():
        pos = stream.tell()
        head = stream.read(_SNIFF)
        stream.seek(pos)
        return container_by_content(head)
    return "jsonl"


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


class ContainerReader(RecordReader):
    """RecordReader over inputs that may each be JSONL, a JSON array, CSV or TSV."""

    def __init__(self, paths: Sequence[str], *, container: str = "auto", **kwargs):
        super().__init__(paths, **kwargs)
        if container not in CONTAINERS:
            raise ValueError(f"container must be one of {CONTAINERS}")
        self.container = container
        #: the container each input was read as, for the summary
        self.kinds: list[str] = []

    def __iter__(self) -> Iterator[dict]:
        paths = self.paths
        try:
            for path in paths:
                kind = self.container if self.container != "auto" else sniff(path)
                self.kinds.append(kind)
                if kind == "jsonl":
                    self.paths = [path]
                    yield from RecordReader.__iter__(self)
                    continue
                self.path = display_name(path)
                self.lineno = 0
                if kind == "json":
                    yield from self._array(path)
                else:
                    yield from self._table(path, "\t" if kind == "tsv" else ",")
                if not is_stdio(path):
                    try:
                        self._done_bytes += os.path.getsize(path)
                    except OSError:
                        pass
        finally:
            self.paths = paths

    def _read_all(self, path: str) -> bytes:
        stream = open_binary(path)
        try:
            return stream.read()
        except _CORRUPT as e:
            raise DataError(f"{self.path}: corrupt or unreadable input ({e})") from None
        finally:
            if not is_stdio(path):
                stream.close()

    # -- JSON arrays: parsed whole by orjson; an item's line is found only when it is needed ---

    _item = None  # index of the current record in the array `_cur`, its line not yet known
    _raw_item = None  # the same, its raw text not yet made
    _cur: "_Array | None" = None

    @property
    def lineno(self) -> int:
        if self._item is not None:
            self._lineno = self._cur.span(self._item)[0]
            self._item = None
        return self._lineno

    @lineno.setter
    def lineno(self, value: int) -> None:
        self._item = None
        self._lineno = value

    @property
    def raw(self) -> bytes:
        if self._raw_item is not None:
            self._raw_line = self._cur.item_line(self._raw_item)
            self._raw_item = None
        return self._raw_line

    @raw.setter
    def raw(self, value: bytes) -> None:
        self._raw_item = None
        self._raw_line = value

    def mark(self) -> tuple:
        """Where the current record is, cheaply (a JSON array item's line is found later)."""
        return (self.path, self._lineno, self._raw_line, self._item, self._raw_item, self._cur)

    def restore(self, mark: tuple) -> None:
        """Make `mark` the current record again (for records buffered while detecting)."""
        (self.path, self._lineno, self._raw_line, self._item, self._raw_item,
         self._cur) = mark

    def _array(self, path: str) -> Iterator[dict]:
        data = self._read_all(path)
        if data.startswith(BOM):
            data = data[len(BOM):]
        array = _Array(self.path, data, self.encoding)
        items = _load_whole(data if self.utf8 else array.text())
        if not isinstance(items, list):
            array.spans()  # raises at the line of the problem
            raise DataError(f"{self.path}:1: not a JSON array")  # pragma: no cover
        try:
            for index, obj in enumerate(items):
                items[index] = None  # let converted records go
                if type(obj) is not dict:
                    self.bad_line(orjson.dumps(obj) + b"\n", array.span(index)[0],
                                  f"item {index + 1} is not a JSON object (a JSON "
                                  f"{json_kind(obj)})")
                    continue
                self._cur = array
                self._item = self._raw_item = index
                self.records += 1
                yield obj
        finally:
            self._cur = self._item = self._raw_item = None
            gc.unfreeze()

    def _table(self, path: str, delimiter: str) -> Iterator[dict]:
        csv.field_size_limit(1 << 30)
        binary = open_binary(path)
        encoding = "utf-8-sig" if self.encoding == "utf-8" else self.encoding
        stream = io.TextIOWrapper(binary, encoding=encoding, newline="")
        rows = csv.reader(stream, delimiter=delimiter)
        start = 1
        try:
            header = next(rows, None)
            if header is None:
                return
            names = [h.strip() for h in header]
            seen = set()
            for n, name in enumerate(names, 1):
                if not name:
                    raise DataError(f"{self.path}:1: column {n} of the header has no name")
                if name in seen:
                    raise DataError(f"{self.path}:1: column {name!r} appears twice in the header")
                seen.add(name)
            width = len(names)
            while True:
                start = rows.line_num + 1
                row = next(rows, None)
                if row is None:
                    break
                if not row:
                    continue
                rec = dict(zip(names, row))
                if len(row) != width:
                    self.bad_line(orjson.dumps(rec) + b"\n", start,
                                  f"row has {len(row)} fields, the header has {width}")
                    continue
                for name in JSON_COLUMNS.intersection(rec):
                    cell = rec[name]
                    if cell[:1] in ("[", "{"):
                        try:
                            rec[name] = orjson.loads(cell)
                        except orjson.JSONDecodeError:
                            pass
                if "human_verified" in rec and rec["human_verified"].lower() in ("true", "false"):
                    rec["human_verified"] = rec["human_verified"].lower() == "true"
                self.lineno = start
                self.raw = orjson.dumps(rec) + b"\n"
                self.records += 1
                yield rec
        except UnicodeDecodeError as e:
            raise DataError(f"{self.path}:{rows.line_num + 1}: cannot decode as {self.encoding} "
                            f"(byte 0x{e.object[e.start]:02x}); check --encoding") from None
        except csv.Error as e:
            raise DataError(f"{self.path}:{start}: bad CSV: {e}") from None
        except _CORRUPT as e:
            if isinstance(e, BrokenPipeError):
                raise
            raise DataError(f"{self.path}:{start}: corrupt or unreadable input ({e})") from None
        finally:
            if not is_stdio(path):
                stream.close()
            else:
                stream.detach()


def _load_whole(data) -> object:
    """orjson.loads of a whole array, None when it is not valid JSON.

    Python's cyclic garbage collector would walk the growing heap of new dicts again and again
    while orjson builds them (3x the parse time for 200,000 records): it is off during the
    parse, and the records are then frozen out of its way (they are freed by reference count
    as they are converted; `_array` unfreezes at the end).
    """
    if not data.strip():
        return []
    enabled = gc.isenabled()
    gc.disable()
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    finally:
        if enabled:
            gc.freeze()
            gc.enable()


class _Array:
    """One JSON array input: its bytes, and on demand its text and the place of every item."""

    __slots__ = ("path", "data", "encoding", "_text", "_spans")

    def __init__(self, path: str, data: bytes, encoding: str):
        self.path, self.data, self.encoding = path, data, encoding
        self._text: str | None = None
        self._spans: list | None = None

    def text(self) -> str:
        if self._text is None:
            try:
                self._text = self.data.decode(self.encoding)
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{self.path}:{_line_at(self.data, e.start)}: cannot decode as "
                    f"{self.encoding} (byte 0x{self.data[e.start]:02x}); check --encoding"
                ) from None
        return self._text

    def span(self, index: int) -> tuple[int, int, int]:
        """(line, start, end) of the index-th item."""
        return self.spans()[index]

    def item_line(self, index: int) -> bytes:
        """The index-th item as it is in the file, made one compact JSON line."""
        _, start, end = self.span(index)
        return orjson.dumps(orjson.loads(self.text()[start:end])) + b"\n"

    def spans(self) -> list:
        """Walk the array item by item (once): (line, start, end) of each; DataError at the
        line of the first thing wrong."""
        if self._spans is not None:
            return self._spans
        text = self.text()
        decoder = json.JSONDecoder()
        ws = _WS.match
        spans: list = []
        line, last = 1, 0

        def line_of(pos: int) -> int:
            nonlocal line, last
            line += text.count("\n", last, pos)
            last = pos
            return line

        def fail(pos: int, problem: str) -> DataError:
            return DataError(f"{self.path}:{line_of(pos)}: {problem}")

        i = ws(text, 0).end()
        if i == len(text):
            self._spans = spans
            return spans
        if text[i] != "[":
            raise fail(i, "not a JSON array")
        i = ws(text, i + 1).end()
        if text.startswith("]", i):
            end = i + 1
        else:
            while True:
                number = len(spans) + 1
                try:
                    _, end = decoder.raw_decode(text, i)
                except json.JSONDecodeError as e:
                    raise DataError(f"{self.path}:{e.lineno}: invalid JSON in item {number}: "
                                    f"{e.msg} at column {e.colno}") from None
                spans.append((line_of(i), i, end))
                i = ws(text, end).end()
                sep = text[i:i + 1]
                if sep == ",":
                    i = ws(text, i + 1).end()
                    continue
                if sep == "]":
                    end = i + 1
                    break
                raise fail(i, f"expected ',' or ']' after item {number}"
                              + (f", got {sep!r}" if sep else " (the file ends)"))
        rest = ws(text, end).end()
        if rest != len(text):
            raise fail(rest, "text after the end of the JSON array")
        self._spans = spans
        return spans
