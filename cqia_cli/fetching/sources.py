"""From what the user typed to records: sources resolved to files, files read as one stream.

A SOURCE is, in this order of precedence:
  `-`                 standard input (its container by content, or --format)
  hf://datasets/...   files of a dataset on the Hugging Face Hub (hub.py)
  http(s)://...       one file at a URL
  an existing path    a file, or a folder: its data files at any depth, sorted
  a glob              local files matching it (`**` spans folders), sorted
  a catalog name      what the catalog entry names (catalog.py)
"""

from __future__ import annotations

import glob
import os
import posixpath
import urllib.parse
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from cqia_cli.containers import ContainerReader, is_data_file
from cqia_cli.fetching import catalog as catalog_mod
from cqia_cli.fetching.hub import GLOB_CHARS, Hub, is_hub_uri
from cqia_cli.fetching.transport import Cache, Remote, safe_filename
from cqia_cli.io import STDIN, RecordReader, display_name
from cqia_cli.status import InputError


@dataclass
class Source:
    uri: str  #: how records from it are named: messages and _source
    path: str | None = None  #: a local file (or `-`)
    remote: Remote | None = None  #: or a remote one, fetched when the stream reaches it


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


class Resolver:
    def __init__(self, cache: Cache, hub: Callable[[], Hub],
                 catalog: dict[str, catalog_mod.Entry], sha256: dict[str, str]):
        self.cache = cache
        self._hub_factory = hub
        self._hub: Hub | None = None
        self.catalog = catalog
        self.sha256 = sha256

    @property
    def hub(self) -> Hub:
        if self._hub is None:
            self._hub = self._hub_factory()
        return self._hub

    def resolve(self, specs: Sequence[str]) -> list[Source]:
        out: list[Source] = []
        for spec in specs:
            out += self._one(spec, depth=0)
        return out

    def _one(self, spec: str, depth: int) -> list[Source]:
        if spec == STDIN:
            return [Source(display_name(STDIN), STDIN)]
        if is_hub_uri(spec):
            return [Source(r.uri, remote=r) for r in self.hub.expand(spec)]
        if is_url(spec):
            return [Source(spec, remote=self.url_remote(spec))]
        if os.path.isdir(spec):
            files = sorted(p for p in glob.glob(os.path.join(glob.escape(spec), "**", "*"),
                                                recursive=True)
                           if os.path.isfile(p) and is_data_file(p))
            if not files:
                raise InputError(f"{spec}: a folder without data files (.jsonl, .json, .csv, "
                                 ".tsv, .parquet, optionally compressed)")
            return [Source(p, p) for p in files]
        if os.path.exists(spec):
            if not os.access(spec, os.R_OK):
                raise InputError(f"{spec}: permission denied")
            return [Source(spec, spec)]
        if any(c in spec for c in GLOB_CHARS):
            files = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
            if not files:
                raise InputError(f"{spec}: no files match")
            return [Source(p, p) for p in files]
        entry = self.catalog.get(spec)
        if entry is not None and depth < 4:
            return [s for uri in entry.uris for s in self._one(uri, depth + 1)]
        raise InputError(f"{spec}: no such file (nor a URL, an hf:// path or a catalog name; "
                         "see cqia fetch --list)")

    def url_remote(self, url: str) -> Remote:
        name = posixpath.basename(urllib.parse.urlsplit(url).path)
        return Remote(url=url, uri=url, key=f"url\n{url}", filename=safe_filename(name),
                      sha256=self.sha256.get(url))


class FetchReader:
    """The records of every source as one stream, with the interface of the core
    RecordReader (path, lineno, raw, where(), bad_line(), skipped), so that Job takes it.

    Remote files are fetched when the stream reaches them: `--limit 10` downloads one file.
    """

    def __init__(self, sources: list[Source], cache: Cache, *, encoding: str, on_error: str,
                 errors_out=None, fmt: str | None = None, add_source: bool = False):
        self.sources = sources
        self.cache = cache
        self.encoding = encoding
        self.on_error = on_error
        self.errors_out = errors_out
        self.fmt = fmt
        self.add_source = add_source
        self.readers: list[RecordReader] = []
        self.records = 0
        #: for the progress bar: the size of the inputs when all are local files
        self.total_bytes = None
        if sources and all(s.remote is None and s.path != STDIN for s in sources):
            try:
                self.total_bytes = sum(os.path.getsize(s.path) for s in sources)
            except OSError:
                pass

    # the RecordReader interface Job relies on

    @property
    def _current(self) -> RecordReader | None:
        return self.readers[-1] if self.readers else None

    @property
    def path(self) -> str:
        return self._current.path if self._current else ""

    @property
    def lineno(self) -> int:
        return self._current.lineno if self._current else 0

    @property
    def raw(self) -> bytes:
        return self._current.raw if self._current else b""

    @property
    def skipped(self) -> int:
        return sum(r.skipped for r in self.readers)

    def where(self) -> str:
        return f"{self.path}:{self.lineno}"

    def bad_line(self, line: bytes, lineno: int, problem: str, path: str | None = None) -> None:
        self._current.bad_line(line, lineno, problem, path)

    def done_bytes(self) -> int | None:
        if self.total_bytes is None or not self.readers:
            return None
        done = sum(r.total_bytes or 0 for r in self.readers[:-1])
        return done + (self.readers[-1].done_bytes() or 0)

    def __iter__(self) -> Iterator[dict]:
        for src in self.sources:
            path = src.path if src.remote is None else self.cache.fetch(src.remote)
            reader = ContainerReader([path], names=[src.uri], container=self.fmt,
                                     encoding=self.encoding, on_error=self.on_error,
                                     errors_out=self.errors_out)
            self.readers.append(reader)
            add_source = self.add_source
            for rec in reader:
                self.records += 1
                if add_source:
                    rec["_source"] = {"uri": src.uri, "line": reader.lineno}
                yield rec
