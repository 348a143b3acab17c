"""Output file names from a pattern (`out/{split}.jsonl`, `out/part-{shard:05d}.jsonl.gz`) and
the writer that sends each record to its part's file, cutting shards of --shard-size records.

The pattern is a Python format string with two fields: `{split}` (the part's name) and
`{shard}` (a number from 0, with an optional format spec: `{shard:05d}` is 00000, 00001, ...).
"""

from __future__ import annotations

import string
from typing import Any, Callable, Sequence

import orjson

from cqia_cli.splitting.plan import PlanError

FIELDS = ("split", "shard")


def pattern_fields(pattern: str) -> set[str]:
    """The fields a pattern uses; PlanError for anything but {split} and {shard}."""
    used = set()
    try:
        parsed = list(string.Formatter().parse(pattern))
    except ValueError as e:
        raise PlanError(f"--output {pattern!r}: bad pattern: {e} (write a literal brace as {{{{ "
                        "or }}}})") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in FIELDS:
            raise PlanError(f"--output {pattern!r}: unknown field {{{name}}}; the pattern can use "
                            "{split} and {shard}")
        used.add(name)
    return used


def check_pattern(pattern: str | None, *, named: bool, sharded: bool) -> str:
    """Check that the pattern names every file apart: {split} for named parts, {shard} for
    numbered shards (--shards or --shard-size)."""
    if not pattern or pattern == "-":
        example = "out/part-{shard:05d}.jsonl" if sharded and not named else "out/{split}.jsonl"
        raise PlanError("split writes one file per part: give -o/--output with a pattern, "
                        f"e.g. -o '{example}'")
    used = pattern_fields(pattern)
    if named and "split" not in used:
        raise PlanError(f"--output {pattern!r} has no {{split}}: every split needs a file of "
                        "its own, e.g. -o 'out/{split}.jsonl'")
    if sharded and "shard" not in used:
        raise PlanError(f"--output {pattern!r} has no {{shard}}: every shard needs a file of "
                        "its own, e.g. -o 'out/part-{shard:05d}.jsonl'")
    if not named and "split" in used:
        raise PlanError(f"--output {pattern!r}: {{split}} needs --ratios or --counts; with "
                        "--shards the parts are numbered, use {shard}")
    try:
        pattern.format(split="train", shard=0)
    except (ValueError, IndexError, KeyError) as e:
        raise PlanError(f"--output {pattern!r}: bad format: {e}") from None
    return pattern


class PartWriter:
    """Write records to the file of their part.

    `open_file(path)` returns the job's side output for a path (an object with `write(record)`,
    `write_raw(line)` and `count`). Every part has a file from the start (an empty part gives an
    empty file); with `shard_size`, a part's records are cut into consecutive files of that many
    records, in input order.
    """

    def __init__(self, pattern: str, names: Sequence[str], open_file: Callable[[str], Any], *,
                 numbered: bool = False, shard_size: int | None = None):
        self.pattern = pattern
        self.names = list(names)
        self.numbered = numbered
        self.shard_size = shard_size
        self._open = open_file
        self.files: list[list[str]] = [[] for _ in names]
        self._outs: list[list[Any]] = [[] for _ in names]
        seen: dict[str, int] = {}
        for k in range(len(names)):
            path = self.path(k, 0)
            if path in seen:
                raise PlanError(f"--output {pattern!r} gives the same file {path} for "
                                f"{names[seen[path]]} and {names[k]}")
            seen[path] = k
        for k in range(len(names)):
            self._next_file(k)
        #: with no --shard-size: each part's `write(record)`, to call directly in a hot loop
        self.direct = [outs[0].write for outs in self._outs] if shard_size is None else None

    @property
    def counts(self) -> list[int]:
        """Records written to each part."""
        return [sum(out.count for out in outs) for outs in self._outs]

    def path(self, part: int, shard: int) -> str:
        if self.numbered:
            return self.pattern.format(shard=part)
        return self.pattern.format(split=self.names[part], shard=shard)

    def _next_file(self, part: int) -> None:
        path = self.path(part, len(self.files[part]))
        self._outs[part].append(self._open(path))
        self.files[part].append(path)

    def _current(self, part: int):
        out = self._outs[part][-1]
        if self.shard_size is not None and out.count == self.shard_size:
            self._next_file(part)
            out = self._outs[part][-1]
        return out

    def write(self, part: int, record: Any) -> None:
        self._current(part).write(record)

    def write_line(self, part: int, line: bytes) -> None:
        """Write one already serialised JSON line (with its newline)."""
        out = self._current(part)
        out.write_raw(line)
        out.count += 1


class MarkWriter:
    """--mark: every record to one output, in input order, with its part in a field (`_split`
    holds the name, `_shard` the number); an existing field of that name is overwritten."""

    def __init__(self, out: Any, names: Sequence[str], *, numbered: bool = False):
        self._out = out
        self.field = "_shard" if numbered else "_split"
        self._values = [int(n) if numbered else n for n in names]
        self.counts = [0] * len(names)
        self.files = [[out.name] for _ in names]
        self.direct = None

    def write(self, part: int, record: dict) -> None:
        record[self.field] = self._values[part]
        self._out.write(record)
        self.counts[part] += 1

    def write_line(self, part: int, line: bytes) -> None:
        self.write(part, orjson.loads(line))
