"""The one I/O core of cqia: read records from files or stdin, write JSON lines atomically.

No command opens files or parses JSON itself. A command builds its Job from the shared options
(`io.job()`, see options.io_options) and either iterates records in this process:

    with io.job() as job:
        for record in job.records():
            ...
            job.write(record)
        job.summary("validate: 12,725 records")

or maps them, in `-j` worker processes (or threads for blocking I/O), with `Job.map_lines`
(asyncio work, many HTTP requests in flight, uses `Job.map_async`, the same contract):
the workers get raw lines and parse them with the one shared loop (`parse_lines`), the function
gets runs of records and returns what to write, and this process writes the results in input
order and reports bad lines exactly as plain iteration does. A whole mapping verb:

    def shout(records):                       # runs in each worker, or here with -j 1
        return b"".join(dumps({**r, "output": r["output"].upper()}) for r in records)

    @command("shout", short_help="Upper-case every output.")
    @io_options(jobs=True)
    def cli(io):
        with io.job() as job:
            for data in job.map_lines(shout, io.jobs):
                job.out.write_raw(data)

A command that must learn something from the first records before the pass (dedup's template
phrases) takes them with `Job.peek(n, batch=...)`; `map_lines` then still starts at the first
line, without reading anything twice (standard input included).

A function may return more than bytes (side-output bytes, counts to add up, per-record keys for
a decision the parent takes in input order, as dedup's does); the caller consumes each result
as it comes.

Reading: FILE... or stdin (`-`), compression by suffix (.gz .bz2 .xz, .zst with zstandard),
a leading BOM, blank lines skipped, CRLF accepted, `--encoding` for ASCII-compatible encodings
such as gb18030. Every bad line is reported as `FILE:LINE: problem`; `--on-error skip` drops and
counts them, and `--errors FILE` keeps them byte for byte.

Writing: compact JSON, non-ASCII kept, keys in input order. A file output goes to a temporary
file beside it and is renamed into place only when the command succeeds; an output that names an
input is refused. Side outputs (`--rejects`, `--dupes`, ...) come from `Job.side_output`.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import gc
import gzip
import io as _pyio
import itertools
import lzma
import os
import signal
import stat
import sys
import tempfile
import zlib
from collections import deque
from typing import TYPE_CHECKING, Any, BinaryIO, Callable, Iterable, Iterator, Protocol, Sequence

import orjson

from cqia_cli import console
from cqia_cli.status import (CqiaError, DataError, ExitStatus, InputError, Interrupted, OutputError,
                              Terminated)

if TYPE_CHECKING:
    from cqia_cli.parallel import Workers

BOM = codecs.BOM_UTF8
STDIN = "-"
ON_ERROR = ("fail", "skip")
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")
_loads = orjson.loads
_dumps = orjson.dumps
_NL = orjson.OPT_APPEND_NEWLINE
_READ_BUFFER = 1 << 20

#: the temporary files of the outputs not yet renamed into place: what the last-resort exit on
#: a signal (cli._watchdog) removes when the orderly clean-up did not finish in time
LIVE_TEMP: set[str] = set()
#: inside `signals_held` (a Job renaming its outputs into place, an output making its
#: temporary file), cli's signal handler puts a SIGINT or SIGTERM in "held" instead of raising;
#: it is raised when the block is over
SIGNAL_HOLD: dict = {"on": False, "held": []}


@contextlib.contextmanager
def signals_held():
    """SIGINT and SIGTERM wait (cli's handler keeps them) until the block is over, then are
    raised: for the few steps that must happen together or not at all (a temporary file made
    and listed for removal; every output renamed into place)."""
    if SIGNAL_HOLD["on"]:  # nested: the outer block raises
        yield
        return
    SIGNAL_HOLD["on"] = True
    try:
        yield
    finally:
        SIGNAL_HOLD["on"] = False
        held = SIGNAL_HOLD["held"][:1]
        SIGNAL_HOLD["held"].clear()
    if held:
        raise Terminated() if held[0] == signal.SIGTERM else Interrupted()


def display_name(path: str | None) -> str:
    return "<stdin>" if path in (None, STDIN) else path


def is_stdio(path: str | None) -> bool:
    return path in (None, STDIN)


def compression_of(path: str) -> str | None:
    lower = path.lower()
    for suffix in COMPRESSED_SUFFIXES:
        if lower.endswith(suffix):
            return suffix[1:]
    return None


def _zstandard(path: str):
    try:
        import zstandard
    except ImportError:
        raise InputError(
            f"{path}: .zst files need the optional zstandard package: pip install 'cqia[zstd]'"
        ) from None
    return zstandard


def check_encoding(encoding: str) -> str:
    """Accept only encodings in which a newline is the byte 0x0A (UTF-8, GB18030, Big5, ...)."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f"unknown encoding {encoding!r}") from None
    try:
        if "\n{}a".encode(info.name) != b"\n{}a":
            raise ValueError
    except (ValueError, UnicodeError):
        raise ValueError(
            f"encoding {encoding!r} is not ASCII-compatible (JSON Lines needs one such as "
            "utf-8 or gb18030)"
        ) from None
    return info.name


def check_inputs(paths: Sequence[str]) -> None:
    """Fail with status 66 before any output is written when an input cannot be read."""
    for path in paths:
        if is_stdio(path):
            continue
        if not os.path.exists(path):
            raise InputError(f"{path}: no such file")
        if os.path.isdir(path):
            raise InputError(f"{path}: is a directory")
        if not os.access(path, os.R_OK):
            raise InputError(f"{path}: permission denied")


class FileLines(list):
    """The lines of a batch read from a regular file, and where they are in it: `where` is
    (absolute path, device, inode, the reading process, its descriptor, offset, bytes), or
    None. A -j worker is sent only that and reads the lines from the file itself (parallel.py's
    `_TaskReader`), instead of this process joining them and both copying them through a pipe
    (~3 MB a dedup batch). Measured on dedup -j 2, 100k shared records, twelve interleaved
    rounds of -j 1 then -j 2, three times (the prototype twice, this code once): -j 2 2.68 ->
    2.63 s, 2.68 -> 2.66 s, 2.65 -> 2.64 s; its CPU 4.97 -> 4.89 s, 4.96 -> 4.92 s, 4.94 ->
    4.90 s; the ratio to -j 1 +1 to +2%."""

    __slots__ = ("where",)

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.where = None


def _regular_file(path: str, stream, raw) -> tuple | None:
    """(absolute path, device, inode, this process, the descriptor it reads with) of an input
    that is a regular file read without decompression, else None (standard input, a pipe, a
    compressed file)."""
    if stream is not raw or is_stdio(path):
        return None
    try:
        fd = raw.fileno()
        st = os.fstat(fd)
    except (OSError, ValueError, AttributeError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return os.path.abspath(path), st.st_dev, st.st_ino, os.getpid(), fd


def open_input(path: str) -> tuple[BinaryIO, BinaryIO]:
    """Open one input for binary reading, decompressing by suffix.

    Returns (stream, raw): `raw.tell()` is how far the underlying file has been read (progress).
    """
    if is_stdio(path):
        raw = stdin_binary()
        return raw, raw
    try:
        raw = open(path, "rb", buffering=_READ_BUFFER)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    kind = compression_of(path)
    if kind is None:
        return raw, raw
    if kind == "gz":
        stream = gzip.GzipFile(fileobj=raw, mode="rb")
    elif kind == "bz2":
        stream = bz2.BZ2File(raw, mode="rb")
    elif kind == "xz":
        stream = lzma.LZMAFile(raw, mode="rb")
    else:
        zstandard = _zstandard(path)
        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        import io as _io

        stream = _io.BufferedReader(stream, buffer_size=_READ_BUFFER)
    return stream, raw


def open_binary(path: str) -> BinaryIO:
    """Open any input (compressed or not) as a binary stream: for commands that read whole files
    in another container (JSON arrays, CSV)."""
    return open_input(path)[0]


def _std_stream(stream, mode: str) -> BinaryIO:
    """stdin or stdout as a binary stream with a large buffer (the default 8 KiB one costs a
    system call every few records); the plain `.buffer` where there is no file descriptor."""
    try:
        fd = stream.fileno()
        if "w" in mode:
            stream.flush()
        return open(fd, mode, buffering=1 << 16, closefd=False)
    except (AttributeError, ValueError, OSError):
        return stream.buffer


_stdin: tuple = (None, None)


def stdin_binary() -> BinaryIO:
    """Standard input as one binary stream with a large buffer, the same object for every
    caller in a run (a second buffered reader on the same descriptor would lose what the first
    had buffered, e.g. after a peek to sniff the container)."""
    global _stdin
    owner, stream = _stdin
    if owner is not sys.stdin or stream is None or stream.closed:
        stream = _std_stream(sys.stdin, "rb")
        _stdin = (sys.stdin, stream)
    return stream


_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, lzma.LZMAError, gzip.BadGzipFile, zlib.error,
)


class Reader(Protocol):
    """What a Job reads records from: RecordReader (JSON Lines), containers.ContainerReader
    (JSON arrays, CSV, TSV, Parquet as well) and fetching's FetchReader (downloads) implement it.
    A Job gets one through `Job(reader=factory)` (or `IOOptions.job(reader=factory)`), where
    `factory(errors_out)` builds it with the job's --errors output.

    After each record is yielded, `path`, `lineno` and `raw` say where it came from."""

    path: str
    lineno: int
    raw: bytes
    encoding: str
    records: int       # records yielded so far
    total_bytes: int | None  # the inputs' size, for progress (None: unknown)

    def __iter__(self) -> Iterator[dict]: ...

    @property
    def skipped(self) -> int: ...  # bad lines skipped under --on-error skip

    def where(self) -> str: ...  # "FILE:LINE" of the current record

    def bad_line(self, line: bytes, lineno: int, problem: str, path: str | None = None) -> None:
        """Report a bad line: raise under --on-error fail, else count it and keep it aside."""

    def done_bytes(self) -> int | None: ...  # how far the inputs have been read


class RecordReader:
    """Iterate the JSON objects of several JSON Lines inputs as one stream.

    After each record is yielded, `path`, `lineno` and `raw` describe where it came from, so a
    command can report a per-record problem with `where()` or hand it to `Job.reject()`.
    """

    def __init__(
        self,
        paths: Sequence[str],
        *,
        encoding: str = "utf-8",
        on_error: str = "fail",
        errors_out: "Output | None" = None,
        names: Sequence[str] | None = None,
    ):
        self.paths = list(paths) or [STDIN]
        #: the name each path is reported by (`name:LINE: problem`): e.g. the URL a cached
        #: download came from; defaults to the path itself
        self.names = list(names) if names is not None else [display_name(p) for p in self.paths]
        if len(self.names) != len(self.paths):
            raise ValueError("names must be parallel to paths")
        self.encoding = check_encoding(encoding)
        self.utf8 = self.encoding == "utf-8"
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}")
        self.on_error = on_error
        self.errors_out = errors_out
        self.path = self.names[0]
        self.lineno = 0
        self.raw = b""
        self.skipped = 0
        self.records = 0
        self.total_bytes = self._total_bytes()
        self._done_bytes = 0
        self._raw: BinaryIO | None = None

    def _total_bytes(self) -> int | None:
        total = 0
        for p in self.paths:
            if is_stdio(p):
                return None
            try:
                total += os.path.getsize(p)
            except OSError:
                return None
        return total

    def done_bytes(self) -> int | None:
        if self.total_bytes is None:
            return None
        try:
            return self._done_bytes + (self._raw.tell() if self._raw is not None else 0)
        except (OSError, ValueError):
            return self._done_bytes

    def where(self) -> str:
        return f"{self.path}:{self.lineno}"

    # -- errors -----------------------------------------------------------------------------

    def bad_line(self, line: bytes, lineno: int, problem: str, path: str | None = None) -> None:
        """Report a bad line: raise under --on-error fail, else count it and keep it aside.

        `path` names the input the line came from when that is not the current one (a line of
        `raw_batches` that a worker found bad)."""
        self.lineno = lineno
        self.raw = line
        if self.on_error == "fail":
            raise DataError(f"{self.path if path is None else path}:{lineno}: {problem}")
        self.skipped += 1
        if self.errors_out is not None:
            self.errors_out.write_raw(line if line.endswith(b"\n") else line + b"\n")

    # -- iteration --------------------------------------------------------------------------

    def _lines(self, stream: BinaryIO) -> Iterator[bytes]:
        lines = iter(stream)
        first = next(lines, None)
        if first is None:
            return iter(())
        if first.startswith(BOM):
            first = first[len(BOM):]
        return itertools.chain((first,), lines)

    def __iter__(self) -> Iterator[dict]:
        loads = _loads
        utf8 = self.utf8
        encoding = self.encoding
        for lineno, line in self._numbered():
            try:
                obj = loads(line) if utf8 else loads(line.decode(encoding))
            except ValueError:  # JSONDecodeError, UnicodeDecodeError: say why
                problem = parse_line(line, encoding)
                if problem is not None:
                    self.bad_line(line, lineno, problem)
                continue
            if type(obj) is not dict:
                self.bad_line(line, lineno, f"not a JSON object (a JSON {json_kind(obj)})")
                continue
            self.lineno = lineno
            self.raw = line
            self.records += 1
            yield obj

    def raw_batches(self, size: int) -> Iterator[tuple[str, int, list[bytes]]]:
        """The input lines, not parsed, in batches of at most `size`: (name of the input, number
        of the first line, [line, ...]), the lines numbered on from the first. A batch never
        spans two inputs; a leading BOM is removed; blank lines stay in (`parse_line` gives
        None for them, to skip).

        For `-j N` work where workers parse the lines and the parent only moves bytes: the
        parent reports a line that a worker found bad with `bad_line(line, lineno, problem,
        path=name)`, which then behaves as in plain iteration (--on-error, --errors, the same
        message). Reading errors (corrupt compressed data, ...) are raised as there, after a
        last batch of the lines read before them."""
        for path, name in zip(self.paths, self.names):
            self.path = name
            self.lineno = 0
            stream, raw = open_input(path)
            self._raw = raw
            done = 0  # lines of this input given
            batch: list[bytes] = []
            # a regular file read as it is: each batch also says where its lines are in it
            # (FileLines), so that a -j worker reads them there itself
            known = _regular_file(path, stream, raw)
            end = None  # where the last batch ended in it
            try:
                lines = self._lines(stream)
                while True:
                    # the lines of a batch are taken in one C loop, not one generator step
                    # each; a reading error keeps the lines taken before it in `batch`
                    batch = [] if known is None else FileLines()
                    batch.extend(itertools.islice(lines, size))
                    if not batch:
                        break
                    if known is not None:
                        start = end
                        end = stream.tell()
                        if start is None:  # the first: after a BOM, if there was one
                            start = end - sum(map(len, batch))
                        batch.where = known + (start, end - start)
                    yield name, done + 1, batch
                    done += len(batch)
                    if len(batch) < size:
                        break
            except _DECOMPRESS_ERRORS + (OSError,) as e:
                error = self._read_error(e, done + len(batch))
                if batch:  # the lines read before it first, as plain iteration gives them
                    yield name, done + 1, batch
                raise error from None
            finally:
                self._close_input(path, stream, raw)

    def _read_error(self, e: BaseException, lineno: int) -> CqiaError:
        """A reading error after `lineno` lines as what it means (`FILE:LINE: problem`)."""
        if isinstance(e, _DECOMPRESS_ERRORS):
            return DataError(
                f"{self.path}:{lineno + 1}: corrupt or truncated compressed data ({e})")
        if isinstance(e, BrokenPipeError):
            raise e
        if compression_of(self.path):  # bz2 reports a corrupt stream as OSError
            return DataError(
                f"{self.path}:{lineno + 1}: corrupt or truncated compressed data ({e})")
        return InputError(f"{self.path}: read error: {e.strerror or e}")

    def _close_input(self, path: str, stream, raw) -> None:
        self._raw = None
        if not is_stdio(path):
            try:
                self._done_bytes += os.path.getsize(path)
            except OSError:
                pass
            stream.close()
            raw.close()

    def _numbered(self) -> Iterator[tuple[int, bytes]]:
        """(line number, line) of every input in turn (`path` names the current one), the
        errors of reading reported as `FILE:LINE: problem`."""
        for path, name in zip(self.paths, self.names):
            self.path = name
            self.lineno = 0
            stream, raw = open_input(path)
            self._raw = raw
            lineno = 0
            try:
                for lineno, line in enumerate(self._lines(stream), 1):
                    yield lineno, line
            except _DECOMPRESS_ERRORS + (OSError,) as e:
                raise self._read_error(e, lineno) from None
            finally:
                self._close_input(path, stream, raw)


def parse_line(line: bytes, encoding: str = "utf-8") -> dict | str | None:
    """One JSON Lines line as a record (a dict); else why it is bad (a str: the problem, as
    `FILE:LINE: problem` gives it), or None for a blank line (skipped silently). `encoding`
    is a normalised codec name (`check_encoding`)."""
    try:
        if encoding == "utf-8":
            obj = _loads(line)
        else:
            obj = _loads(line.decode(encoding))
    except UnicodeDecodeError as e:
        return (f"cannot decode as {encoding} (byte 0x{line[e.start]:02x} at column "
                f"{e.start + 1}); check --encoding")
    except (orjson.JSONDecodeError, ValueError) as e:
        return _diagnose(line, e, encoding == "utf-8")
    if type(obj) is not dict:
        return f"not a JSON object (a JSON {json_kind(obj)})"
    return obj


Bad = tuple  # (line number, line, problem): a line that is not a record, as parse_lines finds it


def parse_lines(lines: Sequence[bytes], first: int, encoding: str = "utf-8",
                linenos: list | None = None) -> list[tuple[list[dict], "Bad | None"]]:
    """Parse a batch of raw lines numbered from `first` (one of `RecordReader.raw_batches`):
    the runs of records between bad lines, each with the bad line that ends it:
    [([record, ...], (lineno, line, problem)), ..., ([record, ...], None)]. Blank lines are
    skipped; a run may be empty. The one parse loop of every `-j` worker (`Job.map_lines`).
    `linenos`, when given, receives the line number of every record, in order."""
    loads = _loads
    utf8 = encoding == "utf-8"
    runs: list[tuple[list[dict], Bad | None]] = []
    records: list[dict] = []
    for lineno, line in enumerate(lines, first):
        try:
            obj = loads(line) if utf8 else loads(line.decode(encoding))
        except ValueError:  # JSONDecodeError, UnicodeDecodeError: why, as iteration says it
            problem = parse_line(line, encoding)
            if problem is not None:  # None: a blank line
                runs.append((records, (lineno, line, problem)))
                records = []
            continue
        if type(obj) is not dict:
            runs.append((records, (lineno, line, f"not a JSON object (a JSON {json_kind(obj)})")))
            records = []
            continue
        records.append(obj)
        if linenos is not None:
            linenos.append(lineno)
    runs.append((records, None))
    return runs


class _LineWork:
    """The task of one `-j` worker in `Job.map_lines`: parse a batch, apply `func` to each run of
    records: [(records in the run, func(run), or None for an empty run; the bad line after it
    or None), ...]."""

    def __init__(self, func: Callable[[list[dict]], Any], encoding: str, numbered: bool = False,
                 lazy: bool = False):
        self.func = func
        self.encoding = encoding
        self.numbered = numbered
        self.lazy = lazy and not numbered

    def __call__(self, batch: tuple[int, list[bytes]]) -> list:
        return self._run(self.func, batch)

    def _run(self, fn: Callable, batch: tuple[int, list[bytes]]) -> list:
        if self.lazy:
            return self._lazy(fn, *batch)
        return self._eager(fn, *batch)

    def _lazy(self, fn: Callable, first: int, lines: list[bytes]) -> list:
        """func(iterator of a run's records), each parsed as func takes it (while the record
        is still in the CPU's cache); on a record func cannot write, the rest done eagerly."""
        loads = _loads
        encoding = self.encoding
        utf8 = encoding == "utf-8"
        end = len(lines)
        out: list = []
        state = [0, 0, None]  # next line index, records given, the bad line ending the run

        def run() -> Iterator[dict]:
            pos = state[0]
            try:
                while pos < end:
                    line = lines[pos]
                    pos += 1
                    try:
                        obj = loads(line) if utf8 else loads(line.decode(encoding))
                    except ValueError:
                        problem = parse_line(line, encoding)
                        if problem is not None:  # None: a blank line
                            state[2] = (first + pos - 1, line, problem)
                            return
                        continue
                    if type(obj) is not dict:
                        state[2] = (first + pos - 1, line,
                                    f"not a JSON object (a JSON {json_kind(obj)})")
                        return
                    state[1] += 1
                    yield obj
            finally:
                state[0] = pos

        while True:
            start = state[0]
            if start >= end and out:
                return out
            state[1], state[2] = 0, None
            records = run()
            head = next(records, None)
            if head is None:  # an empty run
                out.append((0, None, state[2]))
            else:
                try:
                    result = fn(itertools.chain((head,), records))
                except orjson.JSONEncodeError:
                    out.extend(self._eager(fn, first + start, lines[start:]))
                    return out
                if next(records, None) is not None:
                    raise RuntimeError("map_lines(lazy=True): func must take every record")
                out.append((state[1], result, state[2]))
            if state[0] >= end:
                return out

    def _eager(self, fn: Callable, first: int, lines: list[bytes]) -> list:
        # the line numbers are needed by numbered funcs, else only by the rare retry
        linenos: list[int] | None = [] if self.numbered else None
        runs = parse_lines(lines, first, self.encoding, linenos)
        out = []
        at = 0
        for records, bad in runs:
            n = len(records)
            at += n
            if not n:
                out.append((0, None, bad))
                continue
            try:
                numbers = linenos[at - n:at] if linenos is not None else None
                out.append((n, self._apply(fn, records, numbers), bad))
            except orjson.JSONEncodeError:
                if linenos is None:
                    linenos = []
                    parse_lines(lines, first, self.encoding, linenos)
                out.extend(self._isolate(fn, lines, first, linenos[at - n:at], bad))
        return out

    def _apply(self, fn: Callable, records: list[dict], linenos: list[int]) -> Any:
        return fn(records, linenos) if self.numbered else fn(records)

    def _isolate(self, fn: Callable, lines: Sequence[bytes], first: int, linenos: list[int],
                 bad: "Bad | None") -> list:
        """A run in which `func` met a record it cannot write as JSON (nested deeper than
        orjson writes, 255 levels): the run parsed anew (func may have changed the records),
        each such record made a bad line (`FILE:LINE: cannot write a record as JSON: ...`,
        reported by the parent as parse errors are) and func applied to the runs between."""
        out = []
        records: list[dict] = []
        numbers: list[int] = []
        for lineno in linenos:
            line = lines[lineno - first]
            rec = parse_line(line, self.encoding)
            try:
                _dumps(rec)
            except orjson.JSONEncodeError as e:
                out.append((len(records), self._checked(fn, records, numbers),
                            (lineno, line, f"cannot write a record as JSON: {e}")))
                records, numbers = [], []
                continue
            records.append(rec)
            numbers.append(lineno)
        out.append((len(records), self._checked(fn, records, numbers), bad))
        return out

    def _checked(self, fn: Callable, records: list[dict], linenos: list[int]) -> Any:
        if not records:
            return None
        try:
            return self._apply(fn, records, linenos)
        except orjson.JSONEncodeError as e:
            raise DataError(f"cannot write a record as JSON: {e}") from None


class _StagedLineWork(_LineWork):
    """`_LineWork` of a `parallel.Staged` func, in its two stages too (`Workers.send_early`):
    `prepare` parses and applies `func.prepare` to each run, `finish` applies `func.finish` to
    what that gave. A record that cannot be written is found by `prepare` (func.prepare
    writes the records)."""

    def prepare(self, batch: tuple[int, list[bytes]]) -> list:
        return self._run(self.func.prepare, batch)

    def finish(self, runs: list) -> list:
        finish = self.func.finish
        return [(n, finish(p) if n else None, bad) for n, p, bad in runs]


def _line_work(func: Callable, encoding: str, numbered: bool, lazy: bool) -> _LineWork:
    from cqia_cli.parallel import Staged

    cls = _StagedLineWork if isinstance(func, Staged) else _LineWork
    return cls(func, encoding, numbered, lazy)


def _diagnose(line: bytes, exc: Exception, utf8: bool) -> str | None:
    """Why `line` did not parse; None for a blank line (skipped silently)."""
    if not line.strip():
        return None
    if utf8:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            return (
                f"not valid UTF-8 (byte 0x{line[e.start]:02x} at column {e.start + 1}); "
                "if the file is in another encoding, give it with --encoding (e.g. gb18030)"
            )
    msg = getattr(exc, "msg", None) or str(exc)
    col = getattr(exc, "colno", None)
    if isinstance(exc, orjson.JSONDecodeError) and col:
        msg = msg.split(": line ")[0]
        return f"invalid JSON: {msg} at column {col}"
    return f"invalid JSON: {msg}"


def json_kind(obj: Any) -> str:
    if isinstance(obj, list):
        return "array"
    if isinstance(obj, str):
        return "string"
    if isinstance(obj, bool):
        return "boolean"
    if obj is None:
        return "null"
    return "number"


def unwritable(record: Any) -> str | None:
    """Why `record` cannot be written as JSON (nested deeper than the 255 levels orjson
    writes; it reads 1,024), or None. For a command that must know before it writes: split
    plans its parts on a first reading."""
    try:
        _dumps(record)
    except TypeError as e:
        return f"cannot write a record as JSON: {e}"
    return None


def dumps(record: Any) -> bytes:
    """One compact JSON line (with its newline), non-ASCII kept, keys in their order."""
    return _dumps(record, option=_NL)


# -- output ---------------------------------------------------------------------------------


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _std_fd(path: str) -> int | None:
    """The descriptor a name such as /dev/stdout, /dev/stderr or /dev/fd/N (process
    substitution, `>(cmd)`) stands for; None for any other path."""
    for prefix in ("/dev/fd/", "/proc/self/fd/"):
        if path.startswith(prefix) and path[len(prefix):].isdigit():
            return int(path[len(prefix):])
    return {"/dev/stdout": 1, "/dev/stderr": 2}.get(path)


def _make_parents(directory: str, path: str) -> list[str]:
    """Create the missing directories up to `directory`; returns those made, outermost first
    (for `abort` to remove again). A failure is an output error (74)."""
    missing = []
    d = directory
    while d and not os.path.isdir(d):
        missing.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    made: list[str] = []
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            if not os.path.isdir(d):
                _remove_dirs(made)
                raise OutputError(f"{path}: cannot create directory {d}: not a directory") from None
            continue
        except OSError as e:
            _remove_dirs(made)
            raise OutputError(
                f"{path}: cannot create directory {d}: {e.strerror or e}") from None
        made.append(d)
    return made


def _remove_dirs(made: list[str]) -> None:
    for d in reversed(made):
        try:
            os.rmdir(d)
        except OSError:
            break


class _Stream(_pyio.RawIOBase):
    """An Output as a writable, not seekable binary file object, for libraries that write to
    one (numpy's savez): write errors are reported as the Output reports them."""

    def __init__(self, out: "Output"):
        super().__init__()
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        data = bytes(data)
        self._out.write_raw(data)
        return len(data)


class Output:
    """One output of a command, by what its path names:

    - nothing or `-`: standard output;
    - a new path or a regular file: a temporary file beside it, renamed into place by `commit`
      (an interrupted or failed run leaves the old file, or no file); missing parent
      directories are made (and removed again by `abort`);
    - a symbolic link: the same, beside the file it points to; the link stays;
    - anything else that exists (character or block device, FIFO, socket) and the names of
      open descriptors (/dev/stdout, /dev/stderr, /dev/fd/N from `>(cmd)`): written in place,
      never replaced.

    A suffix .gz .bz2 .xz .zst compresses, whatever the kind. A write error is status 74.
    Records go out as JSON Lines, or as one JSON array (`json_array()`: `[`, one record a
    line, `]`; `[]` when there is none).
    """

    def __init__(self, path: str | None, *, inputs: Iterable[str] = (), label: str = "output"):
        self.path = None if is_stdio(path) else path
        self.label = label
        #: called with the problem when a record cannot be written as JSON (nested too deep);
        #: a Job's outputs report it as the current record's `FILE:LINE: problem` (Job.reject)
        self.reject: Callable[[str, tuple | None], None] | None = None
        self._array = False
        self._tmp: str | None = None
        self._target: str | None = None  # the regular file the temporary file replaces
        self._made: list[str] = []  # parent directories this output created
        self._file: BinaryIO | None = None
        self._raw_file: BinaryIO | None = None
        self._close_raw = True  # False for standard output and error (flushed, not closed)
        #: written in place: a device, FIFO, socket or descriptor; no temporary file
        self.in_place = False
        self.count = 0
        if self.path is None:
            self._file = self._raw_file = _std_stream(sys.stdout, "wb")
            self._close_raw = False
            return
        raw = self._open_special(self.path)
        if raw is None:
            raw = self._open_atomic(self.path, inputs)
        self._raw_file = raw
        kind = compression_of(self.path)
        if kind is None:
            self._file = raw
        elif kind == "gz":
            # mtime=0 and no file name in the header: byte-identical output on every run
            self._file = gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0)
        elif kind == "bz2":
            self._file = bz2.BZ2File(raw, mode="wb")
        elif kind == "xz":
            self._file = lzma.LZMAFile(raw, mode="wb")
        else:
            try:
                zstandard = _zstandard(self.path)
            except InputError as e:
                self.abort()
                raise OutputError(e.message) from None
            self._file = zstandard.ZstdCompressor().stream_writer(raw, closefd=False)

    def _open_special(self, path: str) -> BinaryIO | None:
        """Open in place what must not be replaced; None for a regular file or a new path."""
        fd = _std_fd(path)
        if fd is not None:
            self.in_place = True
            if fd in (1, 2):
                self._close_raw = False
                return _std_stream(sys.stdout if fd == 1 else sys.stderr, "wb")
            try:
                return os.fdopen(os.dup(fd), "wb", buffering=1 << 16)
            except OSError as e:
                raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None  # a new path, or a link to one
        except OSError as e:
            raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
        if stat.S_ISREG(st.st_mode):
            return None
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{path}: cannot write: is a directory")
        self.in_place = True
        try:
            if stat.S_ISSOCK(st.st_mode):
                import socket

                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(path)
                    return os.fdopen(sock.detach(), "wb", buffering=1 << 16)
                except OSError:
                    sock.close()
                    raise
            # a FIFO waits here for its reader, as `cat > fifo` does
            return os.fdopen(os.open(path, os.O_WRONLY | os.O_NOCTTY), "wb",
                             buffering=1 << 16)
        except OSError as e:
            raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None

    def _open_atomic(self, path: str, inputs: Iterable[str]) -> BinaryIO:
        """A temporary file beside the file `path` names (through links), for `commit`."""
        for src in inputs:
            if not is_stdio(src) and os.path.exists(path) and _same_file(src, path):
                raise OutputError(f"{path}: refusing to write over an input file (--{self.label})")
        target = os.path.realpath(path) if os.path.islink(path) else path
        directory = os.path.dirname(os.path.abspath(target))
        self._made = _make_parents(directory, path)
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)  # an existing file keeps its mode
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        try:
            with signals_held():  # no signal between the file and its listing for removal
                fd, self._tmp = tempfile.mkstemp(
                    prefix=f".{os.path.basename(target)}.", suffix=".part", dir=directory
                )
                LIVE_TEMP.add(self._tmp)
        except OSError as e:
            _remove_dirs(self._made)
            self._made = []
            raise OutputError(f"{path}: cannot write: {e.strerror or e}") from None
        except BaseException:  # the signal held meanwhile: this output never was
            if self._tmp is not None:
                os.close(fd)
                self.abort()
            raise
        self._target = target
        os.fchmod(fd, mode)
        return os.fdopen(fd, "wb", buffering=1 << 16)

    @property
    def name(self) -> str:
        return self.path or "<stdout>"

    def _fail(self, e: OSError) -> None:
        if isinstance(e, BrokenPipeError) and (
                self.path is None or (self.in_place and self.label == "output")):
            raise e  # the reader of the data went away: end quietly, as `cat` does
        raise OutputError(f"{self.name}: cannot write: {e.strerror or e}") from None

    def json_array(self) -> None:
        """Write the records (`write`) as the elements of one JSON array, closed on commit."""
        if self.count:
            raise ValueError("json_array() comes before the first record")
        self._array = True

    def write(self, record: Any, at: "tuple[str, int, bytes] | None" = None) -> None:
        """Write one record. `at` = (input name, line number, line) of the record when it is not
        the job's current one (a command that reads ahead): named if it cannot be written."""
        try:
            if self._array:
                line = (b",\n" if self.count else b"[\n") + _dumps(record)
            else:
                line = _dumps(record, option=_NL)
        except TypeError as e:
            problem = f"cannot write a record as JSON: {e}"
            if self.reject is None:
                raise DataError(problem) from None
            self.reject(problem, at)  # the job's: FILE:LINE of the record, or skip it
            return
        try:
            self._file.write(line)
        except OSError as e:
            self._fail(e)
        self.count += 1

    def write_raw(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as e:
            self._fail(e)

    def write_text(self, text: str) -> None:
        self.write_raw(text.encode("utf-8"))

    def stream(self) -> _Stream:
        """This output as a writable binary file object (`write(bytes)`), not seekable."""
        return _Stream(self)

    def commit(self) -> None:
        """Flush; close a file (or device) and rename a temporary file into place."""
        self.finish()
        self.publish()

    def finish(self) -> None:
        """Flush and close, all but the rename: this may wait on a slow pipe, so a Job does it
        for every output first, with signals live."""
        if self._array:  # the end of the array, once
            self._array = False
            self.write_raw(b"\n]\n" if self.count else b"[]\n")
        try:
            if self._file is None:
                return
            if not self._close_raw:
                if self._file is not self._raw_file:
                    self._file.close()
                self._raw_file.flush()
                self._file = None
                return
            if self._file is not self._raw_file:
                self._file.close()
            self._raw_file.close()
            self._file = None
        except OSError as e:
            self.abort()
            self._fail(e)

    def publish(self) -> None:
        """Rename a finished temporary file into place (nothing for stdout or a device)."""
        if self._tmp is None:
            return
        try:
            os.replace(self._tmp, self._target)
        except OSError as e:
            self.abort()
            self._fail(e)
        LIVE_TEMP.discard(self._tmp)
        self._tmp = None
        self._made = []

    def abort(self) -> None:
        """Drop a file output: its temporary file is removed, the final name never appears, and
        the directories made for it are removed again. A device or pipe is only closed."""
        files = (self._raw_file,) if self.in_place else (self._file, self._raw_file)
        if not self._close_raw:
            files = ()
            # standard output keeps what was written before the error (the records before a
            # bad line), flushed here, not left to the buffer's end with the interpreter's
            if self._file is not None:
                try:
                    self._file.flush()
                except Exception:  # noqa: BLE001 - best effort on the error path
                    pass
        for f in files:
            if f is not None:
                try:
                    f.close()
                except Exception:  # noqa: BLE001 - best effort on the error path
                    pass
        self._file = None
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except OSError:
                pass
            LIVE_TEMP.discard(self._tmp)
            self._tmp = None
        _remove_dirs(self._made)
        self._made = []


class Job:
    """Everything one run of a command touches: its inputs, outputs, progress and summary.

    Use as a context manager: file outputs are committed (renamed into place) only when the
    body finishes without an exception, and removed otherwise.
    """

    def __init__(
        self,
        files: Sequence[str] = (),
        *,
        encoding: str = "utf-8",
        on_error: str = "fail",
        errors: str | None = None,
        output: str | None = None,
        quiet: bool = False,
        progress: bool = True,
        reader: "Callable[[Output | None], Reader] | None" = None,
    ):
        # `reader(errors_out)` builds the Reader of the records in place of a RecordReader over
        # `files` (convert: containers; fetch: downloads, and `files` are then only the local
        # inputs, to check and to protect from -o)
        self.files = list(files) or ([] if reader is not None else [STDIN])
        self.quiet = quiet
        self.on_error = on_error
        check_inputs(self.files)
        if self.files.count(STDIN) > 1:
            raise CqiaError("standard input (-) can be read only once", ExitStatus.USAGE)
        self._outputs: list[Output] = []
        self._output_keys: dict[tuple, Output] = {}  # name and inode -> output, see side_output
        self._summaries: list[str] = []
        #: with map_lines(numbered=True): the input the last result came from
        self.input_name: str | None = None
        self.errors_out = self.side_output(errors, "errors") if errors else None
        #: the readers of `open_reader` that report their own bad lines: counted in `skipped`
        self._other_readers: list[RecordReader] = []
        if reader is not None:
            self.reader = reader(self.errors_out)
        else:
            self.reader = RecordReader(
                self.files, encoding=encoding, on_error=on_error, errors_out=self.errors_out
            )
        self.out = self.side_output(output, "output")
        self._progress_enabled = progress and not quiet
        self.progress: console.Progress | None = None
        self._spool: BinaryIO | None = None  # standard input kept for second_pass
        #: the reader of the second pass, while it runs: where its current record is
        self._second: "RecordReader | _SpoolReader | None" = None
        #: what peek read ahead: the raw batches, for raw_batches/map_lines to give again first
        self._ahead: list | None = None
        self._ahead_size = 0
        self._ahead_rest: Iterator | None = None  # the batches after them, as they come
        self._ahead_error: CqiaError | None = None  # a reading error met while peeking
        if STDIN in self.files and console.stdin_is_terminal() and not quiet:
            console.message("waiting for standard input (end with Ctrl-D)")

    # -- outputs ----------------------------------------------------------------------------

    def side_output(self, path: str | None, label: str) -> Output:
        """Open an extra output (`--rejects FILE`, `--dupes FILE`, ...), committed with the job."""
        keys = _file_keys(path) if path and not is_stdio(path) else []
        for key in keys:  # a dict, not a scan: split opens thousands of shard files
            other = self._output_keys.get(key)
            if other is not None:
                raise CqiaError(
                    f"{path}: given for both --{other.label} and --{label}", ExitStatus.USAGE
                )
        out = Output(path, inputs=self.files, label=label)
        out.reject = self.reject
        self._outputs.append(out)
        for key in keys:
            self._output_keys[key] = out
        return out

    def write(self, record: Any, at: "tuple[str, int, bytes] | None" = None) -> None:
        self.out.write(record, at)

    # -- inputs -----------------------------------------------------------------------------

    def records(self, *, again: bool = False) -> Iterator[dict]:
        """The input records, one stream; shows progress on a terminal.

        again=True: the command will read them a second time (`second_pass`); standard input
        and pipes, which cannot be read twice, are then kept in a temporary file meanwhile."""
        if self._ahead is not None:
            raise RuntimeError("Job.records after Job.peek: peek serves raw_batches/map_lines")
        if again and self._spool is None and not self._rereadable():
            self._spool = tempfile.TemporaryFile(prefix="cqia-", buffering=1 << 20)
            return self._spooled(self._records())
        return self._records()

    def _records(self) -> Iterator[dict]:
        reader = self.reader
        if not self._progress_enabled or not console.stderr_is_terminal():
            yield from reader
            return
        self.progress = console.Progress(console.command_name, reader.total_bytes)
        try:
            for rec in reader:
                self.progress.advance(reader.records, reader.done_bytes())
                yield rec
        finally:
            self.progress.close()

    def _rereadable(self) -> bool:
        return bool(self.files) and type(self.reader) is RecordReader and all(
            not is_stdio(p) and os.path.isfile(p) for p in self.files)

    def _spooled(self, records: Iterator[dict]) -> Iterator[dict]:
        # each record's input, line number and line as read: the second pass names the same
        # FILE:LINE and keeps the same bytes in --errors as the first
        write = self._spool.write
        reader = self.reader
        lines = type(reader) is RecordReader  # else (containers) the record as JSON
        for rec in records:
            if lines:
                raw = reader.raw
            else:
                try:
                    raw = _dumps(rec, option=_NL)
                except TypeError as e:
                    self.reject(f"cannot write a record as JSON: {e}")
                    continue
            path = str(getattr(reader, "path", "")).encode()
            write(b"%d %s %d %d\n" % (len(path), path, reader.lineno, len(raw)))
            write(raw)
            yield rec

    def second_pass(self) -> Iterator[dict]:
        """The records of the first pass (`records(again=True)`) again, in the same order: the
        input files read anew, or what was kept of standard input. Bad lines were reported by
        the first pass and are skipped silently here. A file that changed in between is the
        caller's to detect (compare the counts)."""
        if self._spool is not None:
            self._spool.flush()
            self._spool.seek(0)
            reader = _SpoolReader(self._spool, self.reader.encoding)
        else:
            reader = self.open_reader(self.files, on_error="skip", errors=False)
        self._second = reader
        try:
            yield from reader
        finally:
            self._second = None

    def open_reader(self, paths: "str | Sequence[str]", *, on_error: str | None = None,
                    errors: bool = True) -> "RecordReader":
        """A reader of other JSON Lines inputs (a reference set, one side of a comparison)
        with the job's encoding, and its --on-error and --errors unless told otherwise: the
        same messages as the job's own input."""
        paths = [paths] if isinstance(paths, str) else list(paths)
        check_inputs(paths)
        reader = RecordReader(paths, encoding=self.reader.encoding,
                              on_error=on_error or self.on_error,
                              errors_out=self.errors_out if errors else None)
        if errors:  # its bad lines count in the run's "skipped N" (a second pass's are repeats)
            self._other_readers.append(reader)
        return reader

    def peek(self, n: int, *, batch: int = 64, workers: "Workers | None" = None,
             extra: int = 0) -> list[dict]:
        """The first `n` records (fewer when the input has fewer), read ahead of the pass that
        follows: learn something from them (dedup's template phrases) before `map_lines` (or
        `raw_batches`) starts, and that pass still gets every line from the first, without
        reading anything twice (standard input included). Call it once, before any reading,
        with the `batch` the pass will use. Bad lines are not reported here but by the pass,
        in their place; a reading error met here is raised by the pass, after the lines read
        before it. `records()` cannot follow a peek (take the first records from it instead).

        workers: the `line_workers` of that `map_lines`, for a `parallel.Staged` func: each
        batch read here goes to them at once (`Workers.send_early`), so that they prepare
        those batches while this process works on the records peeked. extra: with workers,
        that many more batches per worker are read (not parsed) and sent, for a worker that
        would otherwise wait before this process is done with the records."""
        if self._ahead is not None:
            raise RuntimeError("Job.peek: the input was already peeked at")
        self._ahead_size = batch
        rest = self._raw_batches(batch)
        ahead: list = []
        out: list[dict] = []
        encoding = self.reader.encoding
        send = workers.send_early if workers is not None else None
        # the records peeked at live on while the caller learns from them: the cyclic
        # collector would walk them (and everything else) again and again as they are parsed,
        # for nothing (no cycles in parsed JSON), so it is off meanwhile and they are frozen
        # out of its way after (freed by reference count as before)
        enabled = gc.isenabled()
        gc.disable()
        try:
            while len(out) < n:
                item = next(rest, None)
                if item is None:
                    break
                ahead.append(item)
                if send is not None and not send((item[1], item[2])):
                    send = None  # no workers (-j 1)
                for records, _bad in parse_lines(item[2], item[1], encoding):
                    out.extend(records)
            for _ in range(extra * workers.count if send is not None else 0):
                item = next(rest, None)
                if item is None:
                    break
                ahead.append(item)
                send((item[1], item[2]))
        except CqiaError as e:
            self._ahead_error = e
        finally:
            if enabled:
                gc.freeze()
                gc.enable()
        self._ahead = ahead
        self._ahead_rest = rest
        return out[:n]

    def raw_batches(self, size: int) -> Iterator[tuple[str, int, list[bytes]]]:
        """`RecordReader.raw_batches`, with progress on a terminal (counted in lines); after
        `peek`, the batches it read ahead first, then the rest."""
        if self._ahead is None:
            yield from self._raw_batches(size)
            return
        if size != self._ahead_size:
            raise ValueError(f"Job.raw_batches: batch {size} after peek(batch={self._ahead_size})")
        ahead, self._ahead = self._ahead, []
        yield from ahead
        if self._ahead_error is not None:
            error, self._ahead_error = self._ahead_error, None
            raise error
        yield from self._ahead_rest

    def _raw_batches(self, size: int) -> Iterator[tuple[str, int, list[bytes]]]:
        reader = self.reader
        if not self._progress_enabled or not console.stderr_is_terminal():
            yield from reader.raw_batches(size)
            return
        self.progress = console.Progress(console.command_name, reader.total_bytes)
        lines = 0
        try:
            for item in reader.raw_batches(size):
                lines += len(item[2])
                self.progress.advance(lines, reader.done_bytes())
                yield item
        finally:
            self.progress.close()

    def line_workers(self, func: Callable[[list[dict]], Any], jobs: int = 1, *,
                     numbered: bool = False, lazy: bool = False,
                     warm_up: Callable | None = None, warm_args: tuple = ()) -> "Workers":
        """The worker processes of a later `map_lines(func, jobs, ..., workers=...)` (same
        numbered and lazy), started now: before this process builds state the workers do not
        need (a sample, a model), whose heap they would otherwise share copy-on-write
        (`parallel.Workers`; `warm_up(*warm_args)` runs in each as it starts). A context
        manager; none are started for jobs == 1."""
        from cqia_cli.parallel import Workers

        return Workers(_line_work(func, self.reader.encoding, numbered, lazy), jobs,
                       warm_up=warm_up, warm_args=warm_args)

    def map_lines(
        self,
        func: Callable[[list[dict]], Any],
        jobs: int = 1,
        *,
        batch: int = 64,
        threads: bool = False,
        initializer: Callable | None = None,
        initargs: tuple = (),
        numbered: bool = False,
        lazy: bool = False,
        workers: "Workers | None" = None,
        schedule: dict | None = None,
    ) -> Iterator[Any]:
        """Apply `func` to the input records in `jobs` workers; yield its results in input order.

        The input is read as raw lines in batches of `batch`; a worker parses them
        (`parse_lines`: the one parse loop) and calls `func(records)` with each run of records
        between bad lines (usually the whole batch). This process yields each result in input
        order and reports every bad line after the results before it, exactly as plain
        iteration does (`--on-error fail` raises at it, `skip` counts it and keeps it in
        `--errors`); a reading error (corrupt compressed data) is raised after the results of
        the lines read before it. A record `func` cannot write as JSON (orjson.JSONEncodeError:
        nested over 255 levels) is reported the same way, as `FILE:LINE: cannot write a record
        as JSON: ...`, and `func` is called again on the records around it, parsed anew (so
        `func` must not keep state across calls that such a retry would count twice). `func` returns anything picklable, typically the bytes to
        write (`dumps(record)` joined) and counts to add up.

        jobs == 1 runs the same `func` here, in this process; jobs > 1 in worker processes
        (`parallel.map_batches`: `func` is inherited when the workers fork, so a closure or an
        object holding large state costs nothing; with spawn it must be picklable, and
        `initializer(*initargs)` runs once in each worker). threads=True runs `func` in `jobs`
        threads instead (`aio.thread_map`), for blocking I/O-bound work such as HTTP requests:
        with batch=1, each call gets one record and `jobs` calls are in flight. Either way the
        output is the same for every `jobs`, and SIGINT/SIGTERM end the workers at once.

        numbered=True calls `func(records, linenos)` with the input line number of each record,
        and sets `self.input_name` to the name of the input each result came from before it is
        yielded, for work that reports where a record was (clean's --changes log).

        workers: the processes `line_workers` started earlier for the same func, jobs and
        lazy (not with threads). schedule: `map_batches`' `queued` and `reserve`, for a
        consumer with much work of its own per result.

        lazy=True calls `func(records)` with an iterator that parses each record as `func`
        takes it, for a `func` that goes through a large batch once (dedup, batch 2048):
        parsing the whole batch first leaves its records out of the CPU's cache by the time
        `func` reaches them. `func` must take every record. Not with numbered.
        """
        from cqia_cli.parallel import map_batches

        reader = self.reader
        names: deque = deque()
        failed: list = []

        def tasks():
            try:
                for name, first, lines in self.raw_batches(batch):
                    names.append(name)
                    yield first, lines
            except CqiaError as e:
                # a reading error: raised once the batches read before it are written, as
                # plain iteration gives the records before it
                failed.append(e)

        if workers is not None:
            work = workers.func
            if work.func is not func or work.numbered != numbered or work.lazy != lazy or \
                    threads:
                raise ValueError("map_lines: workers started for another func")
        else:
            work = _line_work(func, reader.encoding, numbered, lazy)
        if threads:
            from cqia_cli.aio import thread_map

            results = thread_map(work, tasks(), jobs)
        else:
            results = map_batches(work, tasks(), jobs, initializer=initializer,
                                  initargs=initargs, workers=workers, **(schedule or {}))
        bad_line = reader.bad_line
        try:
            for runs in results:
                name = names.popleft()
                for n, result, bad in runs:
                    if n:
                        reader.records += n
                        self.input_name = name
                        yield result
                    if bad is not None:
                        bad_line(bad[1], bad[0], bad[2], path=name)
        finally:
            results.close()
        if failed:
            raise failed[0]

    def where(self) -> str:
        return self.reader.where()

    def reject(self, problem: str, at: "tuple[str, int, bytes] | None" = None) -> None:
        """A per-record problem found by the command, e.g. a template placeholder the record lacks:
        raises under --on-error fail, else counts the record and keeps its line in --errors.
        The record is the current one (of the second pass while it runs), or the one at
        `at` = (input name, line number, line)."""
        if at is not None:
            path, lineno, raw = at
            self.reader.bad_line(raw, lineno, problem, path=path)
            return
        at = self._second
        if at is None:
            self.reader.bad_line(self.reader.raw, self.reader.lineno, problem)
        else:
            self.reader.bad_line(at.raw, at.lineno, problem, path=at.path)

    @property
    def skipped(self) -> int:
        """Bad lines skipped under --on-error skip: of the input, and of the other files read
        with `open_reader` (an --against reference, a --compare side), each once."""
        return self.reader.skipped + sum(r.skipped for r in self._other_readers)

    def _skipped_line(self) -> str:
        kept = f" (kept in {self.errors_out.name})" if self.errors_out else ""
        parts = [(r.skipped, ", ".join(r.names)) for r in self._other_readers if r.skipped]
        if parts and self.reader.skipped:
            files = [display_name(f) for f in self.files]
            parts.insert(0, (self.reader.skipped, files[0] if len(files) == 1 else "the input"))
        where = ": " + ", ".join(f"{n:,} in {name}" for n, name in parts) if len(parts) > 1 \
            else f" in {parts[0][1]}" if parts else ""
        return f"skipped {self.skipped:,} bad lines{where}{kept}"

    def map_async(self, fn: Callable[[Any], Any], *, prepare: Callable | None = None,
                  window: int = 256, batch: int = 256, in_flight: int | None = None):
        """I/O-bound work over the input records, many calls in flight (score's and generate's
        HTTP requests): `async for item, at, result in job.map_async(fn)`, in input order, with
        the contract of `map_lines` (bad lines reported in their place, as plain iteration
        does). `fn(item)` returns a value or an awaitable; see `aio.map_records`."""
        from cqia_cli.aio import map_records

        return map_records(self, fn, prepare=prepare, window=window, batch=batch,
                           in_flight=in_flight)

    # -- stderr -----------------------------------------------------------------------------

    def note(self, text: str) -> None:
        """A line on stderr now, unless --quiet."""
        if not self.quiet:
            self._close_progress()
            console.message(text)

    def summary(self, text: "str | Callable[[], None]") -> None:
        """The one-line summary printed at the end of a successful run, unless --quiet; or a
        function that prints the run's report (a table) then. Either comes once every output
        is in place: a run interrupted before that printed no report of work it then undid."""
        self._summaries.append(text)

    def _close_progress(self) -> None:
        if self.progress is not None:
            self.progress.close()

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> "Job":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._close_progress()
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        if exc_type is None:
            try:
                for out in self._outputs:
                    out.finish()
                # the renames, all or none: a signal that comes meanwhile (Ctrl-C and `timeout`
                # at the very end of a run) is held by cli's handler until every output is in
                # place, so a run never leaves some of its outputs and not others. (Not a
                # signal mask: Python runs handlers in the main thread whichever thread the
                # signal reached, and queue feeder or HTTP threads may be running.)
                with signals_held():
                    for out in self._outputs:
                        out.publish()
            except BaseException:
                # the ones not committed yet leave no temporary file; the last opened first, so
                # that a directory made for several outputs is empty when its maker removes it
                for out in reversed(self._outputs):
                    out.abort()
                raise
            if not self.quiet:
                for text in self._summaries:
                    if callable(text):
                        text()
                    else:
                        console.plain(text)
                if self.skipped:
                    console.message(self._skipped_line())
        else:
            for out in reversed(self._outputs):
                out.abort()
        return False


class _SpoolReader:
    """The records kept by `Job._spooled`, read back with where each came from."""

    def __init__(self, spool: BinaryIO, encoding: str):
        self.spool = spool
        self.encoding = encoding
        self.path = ""
        self.lineno = 0
        self.raw = b""

    def __iter__(self) -> Iterator[dict]:
        read = self.spool.read
        readline = self.spool.readline
        utf8 = self.encoding == "utf-8"
        while True:
            head = readline()
            if not head:
                return
            size, rest = head.split(b" ", 1)
            size = int(size)
            self.path = rest[:size].decode()
            lineno, length = rest[size + 1:].split()
            self.lineno = int(lineno)
            self.raw = line = read(int(length))
            yield _loads(line) if utf8 else _loads(line.decode(self.encoding))


def _file_keys(path: str) -> list[tuple]:
    """What makes two output paths the same file: the resolved name, and the inode when the
    file exists already (a link or another spelling of the same file). None for what is
    written in place (a device or pipe may take several outputs: `--rejects /dev/null
    --errors /dev/null`)."""
    if _std_fd(path) is not None:
        return []
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if st is not None and not stat.S_ISREG(st.st_mode):
        return []
    keys: list[tuple] = [("name", os.path.realpath(path))]
    if st is not None:
        keys.append(("inode", st.st_dev, st.st_ino))
    return keys


def read_records(files: Sequence[str], **kwargs) -> Iterator[dict]:
    """Plain iteration over the records of files, for library use and tests."""
    return iter(RecordReader(files, **kwargs))


def write_records(path: str | None, records: Iterable[Any]) -> int:
    """Write records to `path` atomically (or stdout); returns the count."""
    out = Output(path)
    try:
        for rec in records:
            out.write(rec)
    except BaseException:
        out.abort()
        raise
    out.commit()
    return out.count

