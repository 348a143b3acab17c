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
import io
import json
import lzma
import os
import re
import zlib
from typing import Iterator, Sequence

import orjson

from cqia_cli.io import BOM, RecordReader, compression_of, display_name, is_stdio, open_binary, \
    _json_kind
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
    import sys

    stream = sys.stdin.buffer
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

    def _array(self, path: str) -> Iterator[dict]:
        data = self._read_all(path)
        start = len(BOM) if data.startswith(BOM) else 0
        try:
            text = data[start:].decode(self.encoding)
        except UnicodeDecodeError as e:
            raise DataError(
                f"{self.path}:{_line_at(data, start + e.start)}: cannot decode as {self.encoding} "
                f"(byte 0x{data[start + e.start]:02x}); check --encoding") from None
        decoder = json.JSONDecoder()
        ws = _WS.match
        i = ws(text, 0).end()
        if i == len(text):
            return
        if text[i] != "[":
            raise DataError(f"{self.path}:{text.count(chr(10), 0, i) + 1}: not a JSON array")
        line, last = 1, 0

        def line_of(pos: int) -> int:
            nonlocal line, last
            line += text.count("\n", last, pos)
            last = pos
            return line

        i = ws(text, i + 1).end()
        if text.startswith("]", i):
            end = i + 1
        else:
            number = 0
            while True:
                number += 1
                try:
                    obj, end = decoder.raw_decode(text, i)
                except json.JSONDecodeError as e:
                    raise DataError(f"{self.path}:{e.lineno}: invalid JSON in item {number}: "
                                    f"{e.msg} at column {e.colno}") from None
                lineno = line_of(i)
                if type(obj) is not dict:
                    self.bad_line(orjson.dumps(obj) + b"\n", lineno,
                                  f"item {number} is not a JSON object (a JSON {_json_kind(obj)})")
                else:
                    self.lineno = lineno
                    self.raw = orjson.dumps(obj) + b"\n"
                    self.records += 1
                    yield obj
                i = ws(text, end).end()
                sep = text[i:i + 1]
                if sep == ",":
                    i = ws(text, i + 1).end()
                    continue
                if sep == "]":
                    end = i + 1
                    break
                raise DataError(f"{self.path}:{line_of(i)}: expected ',' or ']' after item "
                                f"{number}" + (f", got {sep!r}" if sep else " (the file ends)"))
        rest = ws(text, end).end()
        if rest != len(text):
            raise DataError(f"{self.path}:{line_of(rest)}: text after the end of the JSON array")

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
