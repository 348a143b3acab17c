"""HTTP downloads into a local cache: resumed, verified, retried, safe to run twice at once.

One cache entry per remote file, a directory named by the hash of the file's key (its URL, or
its hub coordinates):

    CACHE/files/ab/abcdef.../NAME        the verified file (its suffix tells the container)
    CACHE/files/ab/abcdef.../meta.json   url, size, sha256, etag of that file
    CACHE/files/ab/abcdef.../NAME.part   an unfinished download, resumed with HTTP Range
    CACHE/files/ab/abcdef.../.lock       held (flock) by the one process downloading it

A download goes to NAME.part and is renamed into place only after its size and sha256 have been
checked, under an exclusive lock, so a second process that wants the same file waits and then
finds it complete, and a reader never sees half a file. A cached file is hashed again each time
it is used; one whose sha256 no longer matches is reported and fetched again.

Only the standard library is used (urllib): it honours the usual proxy variables
(HTTPS_PROXY, NO_PROXY), follows redirects (dropping Authorization when the host changes), and
speaks the two endpoints of the hub that fetch needs (see hub.py).

Why not huggingface_hub (checked against its 2.4.0 release): plain URLs need this same cache,
resume, verification and retry logic, which it does not offer for arbitrary URLs, so using it
for the hub would mean two caches, two lock disciplines and two error shapes. Its file GET
retries only 408 and 429 (not 5xx), its cache trusts a blob by its name and does not hash it
again when it is reused (the corrupt-cache case), its errors are multi-line and its bars are
tqdm's; and it brings httpx, fsspec, hf-xet, filelock, tqdm and PyYAML. We keep its
conventions: HF_ENDPOINT, HF_TOKEN and the `hf auth login` token file, HF_HUB_OFFLINE.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Callable

from cqia_cli import __version__, console
from cqia_cli.status import InputError, OutputError

#: statuses worth another try: timeouts, rate limits and server errors
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
#: the longest wait between two tries, whatever the backoff or Retry-After say
MAX_WAIT = 60.0
CHUNK = 1 << 20
USER_AGENT = f"cqia/{__version__} (+https://github.com/cqia)"
COMPRESSION_MAGIC = (
    (b"\x1f\x8b", ".gz"),
    (b"BZh", ".bz2"),
    (b"\xfd7zXZ\x00", ".xz"),
    (b"\x28\xb5\x2f\xfd", ".zst"),
)
COMPRESSED = tuple(suffix for _, suffix in COMPRESSION_MAGIC)


class FetchError(InputError):
    """A remote file cannot be had: one line naming it, exit status 66."""


@dataclass
class Remote:
    """One remote file to fetch."""

    url: str  #: what to GET
    uri: str  #: how the user named it (the URL, or hf://...): messages and _source
    key: str  #: what identifies it in the cache
    filename: str  #: the cached file's name; its suffix tells the container
    size: int | None = None  #: expected size in bytes, when known (hub listing)
    sha256: str | None = None  #: expected sha256 (hub LFS files, --sha256)
    git_oid: str | None = None  #: expected git blob id (hub files outside LFS)
    headers: dict = field(default_factory=dict)  #: e.g. Authorization for the hub


@dataclass
class Settings:
    cache_dir: str
    offline: bool = False
    refresh: bool = False
    retries: int = 5
    backoff: float = 1.0
    timeout: float = 30.0
    progress: bool = True
    #: called with one line for the user (cache corruption, retries), unless --quiet
    note: Callable[[str], None] = console.message


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cqia", "fetch")


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def safe_filename(name: str) -> str:
    name = urllib.parse.unquote(name).replace("/", "_").replace("\\", "_").strip(". ")
    return name[:200] or "download"


# -- HTTP ----------------------------------------------------------------------------------


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follow redirects, but never carry a token to another host (hub files redirect to a CDN)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            if urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
                new.remove_header("Authorization")
        return new


_opener = urllib.request.build_opener(_RedirectHandler())


class _Retry(Exception):
    """A failure worth another try: a timeout, a dropped connection, a 5xx."""

    def __init__(self, problem: str, wait: float | None = None):
        super().__init__(problem)
        self.problem = problem
        self.wait = wait
        self.progressed = False  #: bytes arrived before the failure (a resumable download)


def _http_problem(uri: str, url: str, code: int, reason: str) -> str:
    where = url if uri == url else f"{uri} ({url})"
    hint = ""
    if code in (401, 403):
        hint = "; private or gated: give a token with --token or HF_TOKEN" if uri.startswith(
            "hf://") else "; the server refused access"
    elif code == 404 and uri.startswith("hf://"):
        hint = "; check the repository, revision and path"
    return f"{where}: HTTP {code} {reason}{hint}".rstrip()


def _retry_after(headers) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value and value.strip().isdigit():
        return float(value.strip())
    return None


def open_url(url: str, headers: dict, timeout: float, uri: str | None = None):
    """GET `url`; raises _Retry for what may pass, FetchError (66) for what will not."""
    uri = uri or url
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **headers})
    try:
        return _opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        code, reason, hdrs = e.code, e.reason, e.headers
        e.close()
        if code in RETRY_STATUSES:
            raise _Retry(f"HTTP {code} {reason}", _retry_after(hdrs)) from None
        if code == 416:
            raise
        raise FetchError(_http_problem(uri, url, code, str(reason))) from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise _Retry("timed out") from None
        if isinstance(reason, socket.gaierror):
            raise _Retry(f"cannot resolve host: {reason.strerror or reason}") from None
        if isinstance(reason, OSError):
            raise _Retry(f"cannot connect: {reason.strerror or reason}") from None
        raise FetchError(f"{uri}: {reason}") from None
    except (socket.timeout, TimeoutError):
        raise _Retry("timed out") from None
    except (ConnectionError, http.client.HTTPException) as e:
        raise _Retry(f"connection lost: {e or type(e).__name__}") from None
    except ValueError as e:  # an URL urllib cannot parse
        raise FetchError(f"{uri}: {e}") from None


def with_retries(settings: Settings, uri: str, attempt: Callable[[], object]):
    """Run `attempt` until it succeeds, retrying _Retry with exponential backoff.

    An attempt that made progress (a resumed download that got bytes) starts the count again.
    """
    failures = 0
    while True:
        try:
            return attempt()
        except _Retry as e:
            failures = 1 if e.progressed else failures + 1  # progress forgives earlier failures
            if failures > settings.retries:
                tries = "1 try" if settings.retries == 0 else f"{settings.retries + 1} tries"
                raise FetchError(f"{uri}: {e.problem} (gave up after {tries})") from None
            wait = e.wait if e.wait is not None else settings.backoff * 2 ** max(failures - 1, 0)
            wait = min(wait, MAX_WAIT)
            settings.note(f"{uri}: {e.problem}; trying again in {wait:g}s")
            time.sleep(wait)


def get_bytes(url: str, headers: dict, settings: Settings, uri: str | None = None
              ) -> tuple[bytes, dict]:
    """A small GET (a listing), retried; returns the body and the response headers."""
    uri = uri or url

    def attempt():
        with open_url(url, headers, settings.timeout, uri) as resp:
            try:
                return resp.read(), resp.headers
            except (OSError, http.client.HTTPException) as e:
                raise _Retry(f"connection lost: {e or type(e).__name__}") from None

    return with_retries(settings, uri, attempt)


# -- files ---------------------------------------------------------------------------------


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def git_blob_id(path: str) -> str:
    """The id git gives a file's content (hub files stored outside LFS are listed by it)."""
    h = hashlib.sha1()
    h.update(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _sniff_compression(path: str) -> str | None:
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, suffix in COMPRESSION_MAGIC:
        if head.startswith(magic):
            return suffix
    return None


def _write_json(path: str, data: dict) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    os.replace(tmp, path)


def _read_json(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


class _Lock:
    """An exclusive advisory lock on a file (flock), released on exit."""

    def __init__(self, path: str, on_wait: Callable[[], None] | None = None):
        self.path = path
        self.on_wait = on_wait
        self._f = None

    def __enter__(self):
        self._f = open(self.path, "a+b")
        try:
            import fcntl
        except ImportError:  # Windows: no flock; a single fetch at a time is safe anyway
            return self
        try:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if self.on_wait is not None:
                self.on_wait()
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self._f.close()  # closing the descriptor releases the lock
        return False


class Cache:
    """The download cache (see the module docstring for its layout)."""

    def __init__(self, root: str, settings: Settings):
        self.root = root
        self.settings = settings
        self.downloaded = 0  #: files downloaded in this run
        self.hits = 0  #: files served from the cache in this run
        self.bytes = 0  #: bytes downloaded in this run

    # -- layout ----------------------------------------------------------------------------

    def entry_dir(self, key: str) -> str:
        h = _key_hash(key)
        return os.path.join(self.root, "files", h[:2], h)

    def listing_path(self, key: str) -> str:
        h = _key_hash(key)
        return os.path.join(self.root, "listings", h[:2], h + ".json")

    def _mkdir(self, path: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{path}: cannot create the cache directory: "
                             f"{e.strerror or e} (see --cache-dir)") from None

    # -- listings (small JSON documents kept for --offline) ---------------------------------

    def store_listing(self, key: str, data) -> None:
        path = self.listing_path(key)
        self._mkdir(os.path.dirname(path))
        _write_json(path, {"key": key, "data": data})

    def load_listing(self, key: str):
        doc = _read_json(self.listing_path(key))
        if doc is None or doc.get("key") != key:
            return None
        return doc.get("data")

    # -- files -----------------------------------------------------------------------------

    def cached(self, remote: Remote) -> str | None:
        """The path of a complete, verified copy of `remote` in the cache, or None.

        A copy whose bytes no longer hash to what was stored (or to what the hub says now) is
        removed, with a note when it was corruption rather than a newer upstream version.
        """
        entry = self.entry_dir(remote.key)
        meta = _read_json(os.path.join(entry, "meta.json"))
        if not meta or not meta.get("name"):
            return None
        if meta.get("url") != remote.url and not (remote.sha256 and
                                                  meta.get("sha256") == remote.sha256):
            return None  # the same hub file through another endpoint (a mirror) is still good
        path = os.path.join(entry, meta["name"])
        try:
            size = os.path.getsize(path)
        except OSError:
            return None
        stored_sha = meta.get("sha256")
        if remote.sha256 and stored_sha and remote.sha256 != stored_sha:
            return None  # the upstream file changed since (a new revision): fetch it again
        if remote.size is not None and remote.size != meta.get("size"):
            return None
        if size != meta.get("size") or (stored_sha and file_sha256(path) != stored_sha):
            self.settings.note(f"{remote.uri}: the cached copy is corrupt (its sha256 does not "
                               f"match); fetching it again")
            _unlink(path)
            return None
        return path

    def fetch(self, remote: Remote) -> str:
        """A local path to the verified content of `remote`, downloading it if need be."""
        if not self.settings.refresh or self.settings.offline:
            path = self.cached(remote)
            if path is not None:
                self.hits += 1
                return path
        if self.settings.offline:
            raise FetchError(f"{remote.uri}: not in the cache and --offline (or HF_HUB_OFFLINE) "
                             f"is set; fetch it once online first")
        entry = self.entry_dir(remote.key)
        self._mkdir(entry)
        try:
            with _Lock(os.path.join(entry, ".lock"), lambda: self.settings.note(
                    f"{remote.uri}: another cqia fetch is downloading it; waiting")):
                # another process may have fetched it while we waited for the lock
                path = self.cached(remote)
                if path is not None and not self.settings.refresh:
                    self.hits += 1
                    return path
                path = self._download(remote, entry)
        except OSError as e:  # the cache, not the network (urllib's errors are handled)
            raise OutputError(f"{remote.uri}: cannot write to the cache {entry}: "
                              f"{e.strerror or e} (see --cache-dir)") from None
        self.downloaded += 1
        return path

    def _download(self, remote: Remote, entry: str) -> str:
        part = os.path.join(entry, remote.filename + ".part")
        part_meta_path = os.path.join(entry, "part.json")
        part_meta = _read_json(part_meta_path) or {}
        if part_meta.get("url") != remote.url or self.settings.refresh:
            _unlink(part)
        state = {"etag": part_meta.get("etag") if os.path.exists(part) else None,
                 "resumed": False}

        def attempt():
            return self._get_into(remote, part, part_meta_path, state)

        for whole_again in (False, True):
            total = with_retries(self.settings, remote.uri, attempt)
            problem = self._verify(remote, part, total)
            if problem is None:
                break
            _unlink(part)
            if whole_again or not state["resumed"]:
                raise FetchError(f"{remote.uri}: the download is corrupt: {problem}")
            # a resumed download may have joined two versions of the file: fetch it whole
            self.settings.note(f"{remote.uri}: {problem} after resuming; downloading it whole")
            state.update(etag=None, resumed=False)
        sha = file_sha256(part)
        name = remote.filename
        suffix = _sniff_compression(part)
        if suffix and not name.lower().endswith(COMPRESSED):
            name += suffix  # the core reads compression by suffix
        final = os.path.join(entry, name)
        meta_path = os.path.join(entry, "meta.json")
        _unlink(meta_path)
        os.replace(part, final)
        _write_json(meta_path, {
            "url": remote.url, "uri": remote.uri, "name": name, "size": os.path.getsize(final),
            "sha256": sha, "etag": state["etag"], "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                           time.gmtime()),
        })
        _unlink(part_meta_path)
        return final

    def _verify(self, remote: Remote, path: str, total: int | None) -> str | None:
        size = os.path.getsize(path)
        expected = remote.size if remote.size is not None else total
        if expected is not None and size != expected:
            return f"{size:,} bytes, expected {expected:,}"
        if remote.sha256:
            got = file_sha256(path)
            if got != remote.sha256.lower():
                return f"sha256 {got}, expected {remote.sha256.lower()}"
        elif remote.git_oid:
            got = git_blob_id(path)
            if got != remote.git_oid:
                return f"git blob id {got}, expected {remote.git_oid}"
        return None

    def _get_into(self, remote: Remote, part: str, part_meta_path: str, state: dict):
        """One GET of `remote` into `part`, from where it stopped; returns the expected size."""
        offset = os.path.getsize(part) if os.path.exists(part) else 0
        headers = dict(remote.headers)
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if state.get("etag"):
                headers["If-Range"] = state["etag"]
        try:
            resp = open_url(remote.url, headers, self.settings.timeout, remote.uri)
        except urllib.error.HTTPError as e:  # 416: the part is stale or already whole
            if offset and remote.size == offset:
                return offset
            _unlink(part)
            raise _Retry(f"HTTP {e.code} for a resumed download; starting again") from None
        with resp:
            status = resp.status
            length = resp.headers.get("Content-Length")
            length = int(length) if length and length.isdigit() else None
            start = 0
            if status == 206:
                start = _content_range_start(resp.headers.get("Content-Range"))
                if start != offset:
                    _unlink(part)
                    raise _Retry("the server resumed at the wrong offset; starting again")
                state["resumed"] = True
            else:
                state["resumed"] = False
            etag = resp.headers.get("ETag")
            if not start:
                state["etag"] = etag
                _write_json(part_meta_path, {"url": remote.url, "etag": etag})
            total = start + length if length is not None else None
            if total is None and remote.size is not None:
                total = remote.size
            got = self._copy(resp, part, start, total, remote.uri)
            if length is not None and got < length:
                err = _Retry(f"connection lost after {start + got:,} of {total:,} bytes")
                err.progressed = got > 0
                raise err
        return total

    def _copy(self, resp, part: str, start: int, total: int | None, uri: str) -> int:
        bar = (_Bar(uri, total, start)
               if self.settings.progress and console.stderr_is_terminal() else None)
        got = 0
        try:
            with open(part, "r+b" if start else "wb") as f:
                if start:
                    f.seek(start)
                    f.truncate()
                while True:
                    try:
                        chunk = resp.read(CHUNK if total is None else min(CHUNK, 1 << 16))
                    except (OSError, http.client.HTTPException) as e:
                        err = _Retry(f"connection lost after {start + got:,} bytes "
                                     f"({e or type(e).__name__})")
                        err.progressed = got > 0
                        raise err from None
                    if not chunk:
                        break
                    f.write(chunk)
                    got += len(chunk)
                    self.bytes += len(chunk)
                    if bar is not None:
                        bar.update(start + got)
        finally:
            if bar is not None:
                bar.close()
        return got


def _content_range_start(value: str | None) -> int:
    # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (AttributeError, IndexError, ValueError):
        return -1


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class _Bar:
    """A byte progress bar on stderr, only when it is a terminal."""

    def __init__(self, label: str, total: int | None, done: int):
        from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                                   TimeRemainingColumn, TransferSpeedColumn)

        name = label.rsplit("/", 1)[-1] or label
        self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                  DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                                  console=console.stderr_console(), transient=True)
        self._task = self._progress.add_task(name, total=total, completed=done)
        self._progress.start()
        self._next = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + 0.1
            self._progress.update(self._task, completed=done)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
