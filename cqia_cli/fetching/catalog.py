"""The catalog: short names (`cqia/ruozhiba`) for well-known sets, built in and user-defined.

The built-in entries ship in cqia_cli/data/fetch/catalog.toml; users add or override entries
in $XDG_CONFIG_HOME/cqia/catalog.toml (read when it exists) or in files given with --catalog,
in the same format:

    [sources."my/set"]
    uri = "hf://datasets/me/my-set/data/*.jsonl"   # or uris = [...]
    schema = "alpaca"
    description = "what it is"
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import resources

from cqia_cli.status import DataError, InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


@dataclass
class Entry:
    name: str
    uris: list[str]
    schema: str
    description: str
    origin: str  #: "built-in" or the file it came from


def user_catalog_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "cqia", "catalog.toml")


def _parse(text: str, origin: str) -> dict[str, Entry]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise DataError(f"{origin}: invalid TOML: {e}") from None
    sources = doc.get("sources", {})
    if not isinstance(sources, dict):
        raise DataError(f"{origin}: [sources] must be a table of entries")
    entries = {}
    for name, table in sources.items():
        where = f"{origin}: sources.{name!r}"
        if not isinstance(table, dict):
            raise DataError(f"{where}: must be a table with uri, schema, description")
        uris = table.get("uris", table.get("uri"))
        if isinstance(uris, str):
            uris = [uris]
        if not uris or not isinstance(uris, list) or not all(isinstance(u, str) and u
                                                              for u in uris):
            raise DataError(f"{where}: needs uri = \"...\" or uris = [\"...\", ...]")
        unknown = set(table) - {"uri", "uris", "schema", "description"}
        if unknown:
            raise DataError(f"{where}: unknown key {sorted(unknown)[0]!r} (expected uri, uris, "
                            "schema, description)")
        entries[name] = Entry(name, uris, str(table.get("schema", "")),
                              str(table.get("description", "")), origin)
    return entries


def builtin() -> dict[str, Entry]:
    text = resources.files("cqia_cli").joinpath("data/fetch/catalog.toml").read_text("utf-8")
    return _parse(text, "built-in")


def load(extra_files: tuple[str, ...] | list[str] = ()) -> dict[str, Entry]:
    """The built-in entries, overridden by the user's catalog file and then by --catalog
    files, in that order."""
    entries = builtin()
    files = []
    default = user_catalog_path()
    if os.path.isfile(default):
        files.append(default)
    files += list(extra_files)
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise InputError(f"{path}: cannot read the catalog: {e.strerror or e}") from None
        entries.update(_parse(text, path))
    return entries


def table(entries: dict[str, Entry]) -> str:
    """`cqia fetch --list`: one entry per line, aligned: name, schema, source, description."""
    rows = [("NAME", "SCHEMA", "SOURCE", "DESCRIPTION")]
    for e in sorted(entries.values(), key=lambda e: e.name):
        rows.append((e.name, e.schema or "-", " ".join(e.uris), e.description))
        if e.origin != "built-in":
            rows[-1] = rows[-1][:3] + (f"{e.description} [{e.origin}]".strip(),)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths)) + "  " + r[3]
        for r in rows).rstrip() + "\n"
