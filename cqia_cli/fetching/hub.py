"""Dataset files on the Hugging Face Hub: `hf://datasets/OWNER/NAME[@REVISION]/PATH-OR-GLOB`.

Two documented endpoints of the hub (and of its mirrors) are all fetch needs:

    GET {endpoint}/api/datasets/{repo}/tree/{revision}/{path}?recursive=true
        the files under a folder: path, size, git blob id, and for LFS files their sha256;
        paginated with a `Link: <...>; rel="next"` header
    GET {endpoint}/datasets/{repo}/resolve/{revision}/{path}
        the file itself (usually a redirect to a CDN), with HTTP Range

Listings are cached too, so that `--offline` can expand a glob it expanded once online.
A revision holding a slash is written with %2F, as HfFileSystem writes it:
`hf://datasets/OWNER/NAME@refs%2Fconvert%2Fparquet/...`.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import urllib.parse
from dataclasses import dataclass

from cqia_cli.containers import is_data_file
from cqia_cli.fetching.transport import Cache, FetchError, Remote, get_bytes, safe_filename
from cqia_cli.status import CqiaError, ExitStatus

PREFIX = "hf://"
DEFAULT_ENDPOINT = "https://huggingface.co"
GLOB_CHARS = "*?["
TRUE = ("1", "on", "yes", "true")


def env_offline() -> bool:
    """HF_HUB_OFFLINE=1 (or on/yes/true), as huggingface_hub reads it."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUE


def find_token(given: str | None) -> str | None:
    """--token, else HF_TOKEN (given by click), HUGGING_FACE_HUB_TOKEN, or the token file that
    `hf auth login` writes ($HF_TOKEN_PATH, or $HF_HOME/token)."""
    if given:
        return given.strip()
    token = os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token:
        return token.strip()
    path = os.environ.get("HF_TOKEN_PATH")
    if not path:
        home = os.environ.get("HF_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
            "huggingface")
        path = os.path.join(home, "token")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


@dataclass
class HubPath:
    repo: str  #: OWNER/NAME
    revision: str  #: a branch, tag or commit; "main" when not given
    path: str  #: a file, a folder or a glob inside the repository ("" for all of it)
    rev_given: bool = False

    def uri(self, path: str | None = None) -> str:
        rev = "@" + urllib.parse.quote(self.revision, safe="") if self.rev_given else ""
        path = self.path if path is None else path
        return f"{PREFIX}datasets/{self.repo}{rev}" + (f"/{path}" if path else "")


def is_hub_uri(text: str) -> bool:
    return text.startswith(PREFIX)


def parse(uri: str) -> HubPath:
    rest = uri[len(PREFIX):]
    if not rest.startswith("datasets/"):
        raise CqiaError(f"{uri}: only dataset repositories are supported: "
                        "hf://datasets/OWNER/NAME[@REVISION]/PATH", ExitStatus.USAGE)
    parts = rest[len("datasets/"):].split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise CqiaError(f"{uri}: expected hf://datasets/OWNER/NAME[@REVISION]/PATH",
                        ExitStatus.USAGE)
    name, at, rev = parts[1].partition("@")
    if at and not rev:
        raise CqiaError(f"{uri}: empty revision after @", ExitStatus.USAGE)
    path = parts[2].strip("/") if len(parts) > 2 else ""
    return HubPath(f"{parts[0]}/{name}", urllib.parse.unquote(rev) if at else "main", path,
                   bool(at))


def glob_regex(pattern: str) -> re.Pattern:
    """A glob as a regex over repository paths: `*` and `?` stay within a folder, `**` spans
    folders (`**/` also matches no folder at all), `[...]` is a character class."""
    out, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in pattern[i + 2:]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def _glob_base(pattern: str) -> str:
    """The folder to list for a glob: the part before the first glob character."""
    first = min((pattern.index(c) for c in GLOB_CHARS if c in pattern), default=len(pattern))
    return posixpath.dirname(pattern[:first]).strip("/")


_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')

#: files the hub and `datasets` keep beside the data: JSON, but not records
_METADATA = frozenset(("dataset_infos.json", "dataset_info.json", "dataset_dict.json",
                       "state.json", "config.json", "croissant.json", "metadata.json"))
#: a file stem that says it is every subset in one: COIG-CQIA-full, data_all, merged
_AGGREGATE = re.compile(r"(?i)(?:^|[-_. ])(?:full|all|merged|combined)$|^(?:full|all|merged)\b")


def _is_metadata(path: str) -> bool:
    parts = path.split("/")
    return parts[-1].lower() in _METADATA or any(p.startswith(".") for p in parts)


class Hub:
    def __init__(self, endpoint: str | None, token: str | None, cache: Cache):
        self.endpoint = (endpoint or DEFAULT_ENDPOINT).rstrip("/")
        self.cache = cache
        self.settings = cache.settings
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def tree(self, hp: HubPath, folder: str, recursive: bool) -> list[dict]:
        """The entries under `folder` (all levels when `recursive`), from the hub or, offline,
        from the listing cached by the last online run."""
        key = f"tree\n{self.endpoint}\n{hp.repo}\n{hp.revision}\n{folder}\n{recursive}"
        uri = hp.uri(folder)
        if self.settings.offline:
            entries = self.cache.load_listing(key)
            if entries is None:
                raise FetchError(f"{uri}: its file listing is not in the cache and --offline "
                                 "(or HF_HUB_OFFLINE) is set; run once online first")
            return entries
        url = (f"{self.endpoint}/api/datasets/{hp.repo}/tree/"
               f"{urllib.parse.quote(hp.revision, safe='')}")
        if folder:
            url += "/" + urllib.parse.quote(folder)
        if recursive:
            url += "?recursive=true"
        entries: list[dict] = []
        pages = 0
        while url:
            body, headers = get_bytes(url, self.headers, self.settings, uri)
            try:
                page = json.loads(body)
            except ValueError:
                page = None
            if not isinstance(page, list):
                raise FetchError(f"{uri}: {url} did not answer with a file listing "
                                 "(is --endpoint a Hugging Face Hub?)")
            entries += [e for e in page if isinstance(e, dict) and isinstance(e.get("path"), str)]
            match = _NEXT.search(headers.get("Link") or "")
            url = urllib.parse.urljoin(url, match.group(1)) if match else None
            pages += 1
            if pages > 10_000:
                raise FetchError(f"{uri}: the listing does not end")
        self.cache.store_listing(key, entries)
        return entries

    def expand(self, uri: str) -> list[Remote]:
        """The files an hf:// path names, sorted by path: a glob's matches, a folder's data
        files (all levels), or one file."""
        hp = parse(uri)
        pattern = hp.path
        if any(c in pattern for c in GLOB_CHARS):
            regex = glob_regex(pattern)
            entries = self.tree(hp, _glob_base(pattern), recursive=True)
            files = [e for e in entries if e.get("type") == "file" and regex.fullmatch(e["path"])]
        elif not pattern:
            files = self._whole_repository(hp, self._data_files(self.tree(hp, "", recursive=True)))
        else:
            parent = posixpath.dirname(pattern)
            found = [e for e in self.tree(hp, parent, recursive=False) if e["path"] == pattern]
            if not found:
                raise FetchError(f"{uri}: no such file or folder in {hp.repo}@{hp.revision}")
            if found[0].get("type") == "directory":
                files = self._data_files(self.tree(hp, pattern, recursive=True))
            else:
                files = found
        if not files:
            raise FetchError(f"{uri}: no data files match in {hp.repo}@{hp.revision}")
        return [self.remote(hp, e) for e in sorted(files, key=lambda e: e["path"])]

    @staticmethod
    def _data_files(entries: list[dict]) -> list[dict]:
        """The files that hold records: by suffix (.jsonl .json .csv .tsv .parquet, maybe
        compressed), without the hub's metadata files (dataset_infos.json and the like) and
        anything in a hidden folder."""
        return [e for e in entries if e.get("type") == "file" and is_data_file(e["path"])
                and not _is_metadata(e["path"])]

    def _whole_repository(self, hp: HubPath, files: list[dict]) -> list[dict]:
        """A whole repository's data files, without a top-level file named as all of the
        others in one (COIG-CQIA-full.jsonl, data_all.jsonl) when there are data files in
        folders too: fetching both would give every record twice. It is named in a note."""
        nested = [e for e in files if "/" in e["path"]]
        if not nested:
            return files
        whole = [e for e in files if "/" not in e["path"] and _AGGREGATE.search(
            posixpath.basename(e["path"]).split(".")[0])]
        for e in whole:
            self.settings.note(
                f"{hp.uri(e['path'])}: skipped, its name says it holds the repository's other "
                f"files in one; fetch it by name to take it instead "
                f"({hp.uri(e['path'])}), or name folders or a glob to choose")
        return [e for e in files if e not in whole]

    def remote(self, hp: HubPath, entry: dict) -> Remote:
        path = entry["path"]
        url = (f"{self.endpoint}/datasets/{hp.repo}/resolve/"
               f"{urllib.parse.quote(hp.revision, safe='')}/{urllib.parse.quote(path)}")
        lfs = entry.get("lfs") if isinstance(entry.get("lfs"), dict) else None
        sha256 = None
        if lfs and isinstance(lfs.get("oid"), str):
            sha256 = lfs["oid"].removeprefix("sha256:").lower()
        size = lfs.get("size") if lfs else entry.get("size")
        oid = entry.get("oid") if not lfs and isinstance(entry.get("oid"), str) else None
        return Remote(
            url=url,
            uri=hp.uri(path),
            # not keyed by endpoint: a file fetched through a mirror serves the hub too
            key=f"hf\n{hp.repo}\n{hp.revision}\n{path}",
            filename=safe_filename(posixpath.basename(path)),
            size=size if isinstance(size, int) else None,
            sha256=sha256,
            git_oid=oid,
            headers=dict(self.headers),
        )
