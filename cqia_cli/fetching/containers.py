"""Record containers: JSON Lines, a JSON array, CSV/TSV and Parquet, each optionally compressed.

The container is told by the file name's suffix (after the compression suffix), else by the
first bytes: `PAR1` is Parquet, `[` a JSON array, anything else JSON Lines. JSON Lines go
through the core RecordReader unchanged; the other readers are RecordReaders too, so that
every problem is reported the same way, `NAME:N: problem`, and honours --on-error/--errors.
N is the line for JSON Lines and CSV, the item for a JSON array, the row for Parquet.
"""

from __future__ import annotations

import csv
import sys
from typing import Iterator

import orjson

from cqia_cli.io import (BOM, RecordReader, json_kind, compression_of, dumps, is_stdio,
                         open_binary)
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


def strip_compression(name: str) -> str:
    kind = compression_of(name)
    return name[: -len(kind) - 1] if kind else name


def format_by_name(name: str) -> str | None:
    base = strip_compression(name.lower().split("?", 1)[0])
    for suffix, fmt in SUFFIXES.items():
        if base.endswith(suffix):
            return fmt
    return None


def is_data_file(name: str) -> bool:
    return format_by_name(name) is not None


def sniff(path: str) -> str:
    """The container of a file by its first bytes (after decompression)."""
    try:
        with open_binary(path) as f:
            head = f.read(4096)
    except (OSError, EOFError) as e:
        raise InputError(f"{path}: cannot read: {e}") from None
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    text = head.removeprefix(BOM).lstrip()
    return "json" if text.startswith(b"[") else "jsonl"


def detect(path: str, name: str, forced: str | None = None) -> str:
    """The container of the file at `path`, known to the user as `name`.

    `.json` holds a JSON array or, as often on the hub, JSON Lines: the first byte decides.
    """
    if forced:
        return forced
    fmt = format_by_name(name) or format_by_name(path)
    if fmt is None or fmt == "json":
        return sniff(path)
    return fmt


def reader_for(fmt: str, path: str, name: str, **kwargs) -> RecordReader:
    cls = {"jsonl": RecordReader, "json": JsonArrayReader, "csv": CsvReader,
           "tsv": TsvReader, "parquet": ParquetReader}[fmt]
    return cls([path], names=[name], **kwargs)


class _WholeFileReader(RecordReader):
    """A RecordReader over one file in another container; subclasses yield (n, raw, obj)."""

    def _items(self, path: str) -> Iterator[tuple[int, bytes, object]]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[dict]:
        path, name = self.paths[0], self.names[0]
        self.path = name
        for n, raw, obj in self._items(path):
            if type(obj) is not dict:
                self.bad_line(raw, n, f"not a JSON object (a JSON {json_kind(obj)})")
                continue
            self.lineno = n
            self.raw = raw
            self.records += 1
            yield obj


class JsonArrayReader(_WholeFileReader):
    """A file holding one JSON array of objects (read whole: memory grows with the file)."""

    def _items(self, path):
        f = open_binary(path)
        try:
            data = f.read()
        except (OSError, EOFError) as e:
            raise DataError(f"{self.path}: cannot read: {e}") from None
        finally:
            if not is_stdio(path):
                f.close()
        data = data.removeprefix(BOM)
        if self.encoding != "utf-8":
            try:
                data = data.decode(self.encoding).encode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{self.path}: cannot decode as {self.encoding} "
                                f"(byte 0x{data[e.start]:02x}); check --encoding") from None
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            # the whole file is one value: nothing of it can be read, whatever --on-error says
            raise DataError(f"{self.path}:{e.lineno}: invalid JSON: "
                            f"{e.msg.split(': line ')[0]} at column {e.colno}") from None
        if not isinstance(doc, list):
            doc = [doc]
        for i, item in enumerate(doc, 1):
            yield i, (dumps(item) if type(item) is not dict else b""), item


class CsvReader(_WholeFileReader):
    """CSV with a header line; every value is a string (an empty cell is ""). A row whose field
    count differs from the header's is a bad line; --errors keeps its lines verbatim."""

    delimiter = ","

    def _items(self, path):
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long answers
        encoding = "utf-8-sig" if self.encoding == "utf-8" else self.encoding
        raw_lines: list[bytes] = []
        stream = open_binary(path)

        def lines():
            for lineno, line in enumerate(stream, 1):
                raw_lines.append(line)
                try:
                    yield line.decode(encoding if lineno == 1 else self.encoding)
                except UnicodeDecodeError as e:
                    raise _BadBytes(lineno, line, e) from None

        rows = csv.reader(lines(), delimiter=self.delimiter)
        header: list[str] | None = None
        line_start = 1
        try:
            while True:
                raw_lines.clear()
                try:
                    row = next(rows)
                except StopIteration:
                    break
                except csv.Error as e:
                    self.bad_line(b"".join(raw_lines), line_start, f"invalid CSV: {e}")
                    line_start = rows.line_num + 1
                    continue
                except _BadBytes as e:
                    self.bad_line(e.line, e.lineno,
                                  f"cannot decode as {self.encoding} (byte "
                                  f"0x{e.line[e.error.start]:02x} at column {e.error.start + 1})"
                                  "; check --encoding")
                    # the csv reader is broken after an exception from its source: stop here
                    break
                start, line_start = line_start, rows.line_num + 1
                if not row:
                    continue
                if header is None:
                    header = row
                    continue
                raw = b"".join(raw_lines)
                if len(row) != len(header):
                    self.bad_line(raw, start, f"row has {len(row)} fields, the header has "
                                              f"{len(header)}")
                    continue
                yield start, raw, dict(zip(header, row))
        finally:
            if not is_stdio(path):
                stream.close()


class TsvReader(CsvReader):
    delimiter = "\t"


class _BadBytes(Exception):
    def __init__(self, lineno: int, line: bytes, error: UnicodeDecodeError):
        self.lineno, self.line, self.error = lineno, line, error


class ParquetReader(_WholeFileReader):
    """Parquet, read in batches of rows (pyarrow, the optional extra `parquet`). Bytes cells
    become text (UTF-8), decimals become numbers."""

    BATCH = 4096

    def _items(self, path):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError(f"{self.path}: Parquet files need the optional pyarrow package: "
                             "pip install 'cqia[parquet]'") from None
        if is_stdio(path):  # Parquet needs to seek: read standard input whole
            stream = pa.BufferReader(sys.stdin.buffer.read())
        else:
            stream = open_binary(path) if compression_of(path) else path
        try:
            pf = pq.ParquetFile(stream)
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"{self.path}: not a readable Parquet file: {e}") from None
        schema = pf.schema_arrow
        casts = {}
        for f in schema:
            if pa.types.is_decimal(f.type):
                casts[f.name] = pa.float64()
        binary = [f.name for f in schema
                  if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
        n = 0
        try:
            for batch in pf.iter_batches(batch_size=self.BATCH):
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
                            self.bad_line(_row_repr(row), n, problem)
                            continue
                    yield n, b"", row
        except pa.ArrowException as e:
            raise DataError(f"{self.path}:{n + 1}: cannot read Parquet: {e}") from None


def _decode_bytes(row: dict, names: list[str]) -> str | None:
    for name in names:
        value = row.get(name)
        if isinstance(value, bytes):
            try:
                row[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                return f"{name}: bytes that are not UTF-8 text"
    return None


def _row_repr(row: dict) -> bytes:
    return repr(row).encode("utf-8", "replace") + b"\n"
