"""Record containers: JSON Lines, a JSON array, CSV/TSV and Parquet, each optionally compressed.

The core's sibling: `cqia fetch` and `cqia convert` read their inputs through it. The container
of an input is told by its name's suffix (after the compression suffix), else by its first
bytes (after decompression): `PAR1` is Parquet, `[` a JSON array, anything else JSON Lines.
A `.json` file is always looked at, since many sets ship JSON Lines under that suffix.

    container   suffixes                      a record's position (FILE:N)
    jsonl       .jsonl .ndjson .jsonlines     the line (the core RecordReader, unchanged)
    json        .json, or content `[`         the line where the item starts
    csv / tsv   .csv / .tsv .tab              the line where the row starts
    parquet     .parquet .pq, or content PAR1 the row (1-based); needs pyarrow

`ContainerReader` is the core's RecordReader (same --on-error, --errors, `where()`,
`bad_line()`), reading each input in its own container. A JSON array is parsed whole by orjson;
an item's line is worked out only when something asks for it (a problem, `--add-source`).
CSV and TSV are streamed; cells are text, and a command may type them (`row_hook`). Parquet is
read in batches. With --errors, a CSV row is kept as its lines verbatim; an array item or a
Parquet row as one JSON line.
"""

from __future__ import annotations

import csv
import gc
import json
import lzma
import os
import re
import zlib
from typing import Callable, Iterator, Sequence

import orjson

from cqia_cli.io import (BOM, RecordReader, compression_of, is_stdio, json_kind, open_input,
                         stdin_binary)
from cqia_cli.status import DataError, InputError

FORMATS = ("jsonl", "json", "csv", "tsv", "parquet")
SUFFIXES = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonlines": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv", ".tab": "tsv",
    ".parquet": "parquet", ".pq": "parquet",
}
PARQUET_MAGIC = b"PAR1"
_WS = re.compile(r"[ \t\n\r]*")
_SNIFF = 4096
_CORRUPT = (OSError, EOFError, lzma.LZMAError, zlib.error)


# -- detection --------------------------------------------------------------------------------


def strip_compression(name: str) -> str:
    kind = compression_of(name)
    return name[: -len(kind) - 1] if kind else name


def format_by_name(name: str) -> str | None:
    """The container a file name (or URL: its query is ignored) says, None when it says none."""
    base = strip_compression(name.lower().split("?", 1)[0])
    for suffix, fmt in SUFFIXES.items():
        if base.endswith(suffix):
            return fmt
    return None


def is_data_file(name: str) -> bool:
    return format_by_name(name) is not None


def format_by_content(head: bytes) -> str:
    """The container that the first bytes of an input (decompressed) say."""
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    head = head[len(BOM):] if head.startswith(BOM) else head
    return "json" if head.lstrip()[:1] == b"[" else "jsonl"


def head_of(path: str) -> bytes:
    """The first bytes of an input, decompressed; standard input is peeked at through the
    core's one stream (cqia_cli.io.stdin_binary), so that nothing is lost to the reader."""
    if is_stdio(path):
        stream = stdin_binary()
        if hasattr(stream, "peek"):
            return stream.peek(_SNIFF)[:_SNIFF]
        if stream.seekable():
            pos = stream.tell()
            head = stream.read(_SNIFF)
            stream.seek(pos)
            return head
        return b""
    stream, raw = open_input(path)
    try:
        return stream.read(_SNIFF)
    except _CORRUPT:
        return b""  # the reader proper reports a corrupt file at its line
    finally:
        _close(stream, raw)


def detect(path: str, name: str | None = None, forced: str | None = None) -> str:
    """The container of the input at `path`, known to the user as `name` (a URL, say).

    `forced` (an option) wins; then the suffix of `name`, then of `path`; then the content,
    which also decides for `.json` (a JSON array, or JSON Lines under that suffix).
    """
    if forced and forced != "auto":
        return forced
    fmt = None
    if not is_stdio(path):
        fmt = (format_by_name(name) if name else None) or format_by_name(path)
    if fmt is None or fmt == "json":
        return format_by_content(head_of(path))
    return fmt


# -- reading ----------------------------------------------------------------------------------


class ContainerReader(RecordReader):
    """RecordReader over inputs that may each be JSON Lines, a JSON array, CSV, TSV or Parquet.

    `container` is "auto" (each input by `detect`) or one of FORMATS for every input.
    `row_hook(record)`, when given, is applied to each CSV/TSV row (convert types some cells).
    """

    def __init__(self, paths: Sequence[str], *, container: str | None = "auto",
                 row_hook: Callable[[dict], object] | None = None, **kwargs):
        super().__init__(paths, **kwargs)
        container = container or "auto"
        if container != "auto" and container not in FORMATS:
            raise ValueError(f"container must be auto or one of {FORMATS}")
        self.container = container
        self.row_hook = row_hook
        #: the container each input was read as
        self.kinds: list[str] = []

    def __iter__(self) -> Iterator[dict]:
        paths, names = self.paths, self.names
        try:
            for path, name in zip(paths, names):
                kind = detect(path, name, self.container)
                self.kinds.append(kind)
                if kind == "jsonl":
                    self.paths, self.names = [path], [name]
                    yield from RecordReader.__iter__(self)
                    continue
                self.path = name
                self.lineno = 0
                if kind == "json":
                    yield from self._array(path)
                elif kind == "parquet":
                    yield from self._parquet(path)
                else:
                    yield from self._table(path, "\t" if kind == "tsv" else ",")
                if not is_stdio(path):
                    try:
                        self._done_bytes += os.path.getsize(path)
                    except OSError:
                        pass
        finally:
            self.paths, self.names = paths, names

    def _read_all(self, path: str) -> bytes:
        stream, raw = open_input(path)
        try:
            return stream.read()
        except _CORRUPT as e:
            raise DataError(f"{self.path}: corrupt or unreadable input ({e})") from None
        finally:
            if not is_stdio(path):
                _close(stream, raw)

    # -- the current record's place: a JSON array item's line is found only when asked ------

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

    # -- JSON arrays: parsed whole by orjson -----------------------------------------------

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
                items[index] = None  # let used records go
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

    # -- CSV and TSV: streamed, a row kept verbatim for --errors ---------------------------

    def _table(self, path: str, delimiter: str) -> Iterator[dict]:
        csv.field_size_limit(1 << 30)  # long answers
        binary, self._raw = open_input(path)  # `_raw`: progress within the file
        raw_file = self._raw
        encoding = self.encoding
        row_lines: list[bytes] = []  # the lines of the row being read, as they are in the file

        def lines():
            lineno = 0
            for chunk in binary:
                for line in _split_cr(chunk) if b"\r" in chunk else (chunk,):
                    lineno += 1
                    if lineno == 1 and line.startswith(BOM):
                        line = line[len(BOM):]
                    try:
                        text = line.decode(encoding)
                    except UnicodeDecodeError as e:
                        # a bad line like any other: --on-error decides; the row goes on
                        # without it
                        self.bad_line(line, lineno,
                                      f"cannot decode as {encoding} (byte 0x{line[e.start]:02x} "
                                      f"at column {e.start + 1}); check --encoding")
                        continue
                    row_lines.append(line)
                    yield text

        rows = csv.reader(lines(), delimiter=delimiter)
        hook = self.row_hook
        start = 1
        try:
            try:
                header = next(rows, None)
            except csv.Error as e:
                raise DataError(f"{self.path}:1: invalid CSV header: {e}") from None
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
            join = b"".join
            while True:
                start = rows.line_num + 1
                row_lines.clear()
                try:
                    row = next(rows, None)
                except csv.Error as e:
                    self.bad_line(join(row_lines), start, f"invalid CSV: {e}")
                    continue
                if row is None:
                    break
                if not row:
                    continue
                if len(row) != width:
                    self.bad_line(join(row_lines), start,
                                  f"row has {len(row)} fields, the header has {width}")
                    continue
                rec = dict(zip(names, row))
                if hook is not None:
                    hook(rec)
                self.lineno = start
                self.raw = join(row_lines)
                self.records += 1
                yield rec
        except _CORRUPT as e:
            if isinstance(e, BrokenPipeError):
                raise
            raise DataError(f"{self.path}:{start}: corrupt or unreadable input ({e})") from None
        finally:
            self._raw = None
            if not is_stdio(path):
                _close(binary, raw_file)

    # -- Parquet: batches of rows (pyarrow, the optional extra `parquet`) ------------------

    PARQUET_BATCH = 4096

    def _parquet(self, path: str) -> Iterator[dict]:
        """Bytes cells become text (UTF-8), decimals become numbers."""
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError(f"{self.path}: Parquet files need the optional pyarrow package: "
                             "pip install 'cqia[parquet]'") from None
        raw = None
        if is_stdio(path):  # Parquet needs to seek: standard input is read whole
            source = pa.BufferReader(self._read_all(path))
        elif compression_of(path):
            source, raw = open_input(path)
        else:
            source = path
        try:
            pf = pq.ParquetFile(source)
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"{self.path}: not a readable Parquet file: {e}") from None
        schema = pf.schema_arrow
        casts = {f.name: pa.float64() for f in schema if pa.types.is_decimal(f.type)}
        binary = [f.name for f in schema
                  if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
        n = 0
        try:
            for batch in pf.iter_batches(batch_size=self.PARQUET_BATCH):
                if casts:
                    batch = pa.RecordBatch.from_arrays(
                        [col.cast(casts[name]) if name in casts else col
                         for name, col in zip(batch.schema.names, batch.columns)],
                        names=batch.schema.names)
                for row in batch.to_pylist():
                    n += 1
                    if binary:
                        problem = _decode_bytes(row, binary)
                        if problem:
                            self.bad_line(_row_line(row), n, problem)
                            continue
                    self.lineno = n
                    self.raw = _row_line(row)
                    self.records += 1
                    yield row
        except pa.ArrowException as e:
            raise DataError(f"{self.path}:{n + 1}: cannot read Parquet: {e}") from None
        finally:
            if not isinstance(source, str):
                _close(source, raw)


# -- helpers ----------------------------------------------------------------------------------


_LONE_CR = re.compile(rb"(?<=\r)(?!\n)")


def _split_cr(chunk: bytes) -> "list[bytes] | tuple[bytes]":
    """A line read up to b"\\n" split after each lone \\r too (old Mac and some spreadsheet
    exports end lines so), as universal newlines would: each piece is one line."""
    if chunk.endswith(b"\r\n") and chunk.count(b"\r") == 1:
        return (chunk,)
    return [piece for piece in _LONE_CR.split(chunk) if piece]


def _close(*streams) -> None:
    for stream in streams:
        if stream is not None:
            stream.close()


def _decode_bytes(row: dict, names: list[str]) -> str | None:
    for name in names:
        value = row.get(name)
        if isinstance(value, bytes):
            try:
                row[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                return f"{name}: bytes that are not UTF-8 text"
    return None


def _row_line(row: dict) -> bytes:
    """A Parquet row as one JSON line (dates as ISO text; anything else orjson cannot write
    as its str())."""
    return orjson.dumps(row, default=_as_text, option=orjson.OPT_APPEND_NEWLINE)


def _as_text(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _load_whole(data) -> object:
    """orjson.loads of a whole array, None when it is not valid JSON.

    Python's cyclic garbage collector would walk the growing heap of new dicts again and again
    while orjson builds them (3x the parse time for 200,000 records): it is off during the
    parse, and the records are then frozen out of its way (they are freed by reference count
    as they are used; `_array` unfreezes at the end).
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
