"""Exact mode: see every record once, decide all parts, then hand out the part of each record
in input order.

What is held per record is small and fixed, never the record:

| what       | per record                          | per distinct value                   |
| ---------- | ----------------------------------- | ------------------------------------ |
| the part   | 1 byte (2 beyond 256 parts)         |                                      |
| --stratify | 4 bytes (stratum id)                | the stratum name                     |
| --group-by | 4 bytes (group id)                  | ~100 bytes (64-bit hash, size, ...)  |

Without groups each stratum's parts are a shuffled sequence with exactly the target count of
each part, so the counts are exact. With groups, whole groups are dealt, largest first (ties in
seeded order), each to the part furthest below its target.
"""

from __future__ import annotations

import random
from array import array
from typing import Callable, Iterator

from cqia_cli.splitting.keys import digest64
from cqia_cli.splitting.plan import Plan, seeded_rng, stratified_targets

_GROUP_HASH_KEY = b"cqia-split-group"


def _part_code(parts: int) -> str:
    return "B" if parts <= 1 << 8 else "H" if parts <= 1 << 16 else "I"


class ExactAssigner:
    """Collect keys with `add(record)` (in input order), then `assign(plan, seed)`, then iterate
    `parts()`: the part index of each record, in the same order."""

    def __init__(self, stratum: Callable[[dict], str] | None = None,
                 group: Callable[[dict], str | None] | None = None):
        self.n = 0
        self._stratum = stratum
        self._group = group
        self.strata: dict[str, int] = {}
        self.stratum_ids = array("I") if stratum else None
        self._groups: dict[int, int] = {}
        self.group_ids = array("I") if group else None
        self._group_sizes = array("I")
        self._group_stratum = array("I")
        self._sequences: list[array] = []
        self._group_part: array | None = None
        #: records per stratum and part, once assigned
        self.table: list[list[int]] = []

    @property
    def stratum_names(self) -> list[str]:
        return list(self.strata) if self._stratum else []

    def add(self, record: dict) -> None:
        s = 0
        if self._stratum is not None:
            name = self._stratum(record)
            s = self.strata.get(name)
            if s is None:
                s = self.strata[name] = len(self.strata)
            self.stratum_ids.append(s)
        if self._group is not None:
            key = self._group(record)
            g = None
            if key is not None:
                h = digest64(key, _GROUP_HASH_KEY)
                g = self._groups.get(h)
                if g is None:
                    g = self._groups[h] = len(self._group_sizes)
            if g is None:  # no value: a group of its own
                g = len(self._group_sizes)
            if g == len(self._group_sizes):
                self._group_sizes.append(0)
                self._group_stratum.append(s)
            self._group_sizes[g] += 1
            self.group_ids.append(g)
        self.n += 1

    def stratum_sizes(self) -> list[int]:
        """Records per stratum; with --group-by a group counts whole in the stratum of its
        first record (a group cannot be cut)."""
        if self._stratum is None:
            return [self.n]
        sizes = [0] * len(self.strata)
        if self._group is not None:
            for s, size in zip(self._group_stratum, self._group_sizes):
                sizes[s] += size
        else:
            for s in self.stratum_ids:
                sizes[s] += 1
        return sizes

    def assign(self, plan: Plan, seed: int) -> list[list[int]]:
        """Decide every record's part; returns the records per stratum and part."""
        self._groups = {}  # only needed while reading
        weights = plan.weights(self.n)
        totals = plan.totals(self.n)
        sizes = self.stratum_sizes()
        if len(sizes) == 1:
            targets = [totals]
        else:
            targets = stratified_targets(sizes, weights, totals, seed)
        rng = seeded_rng(seed, "parts")
        code = _part_code(len(plan.names))
        if self._group is None:
            self._sequences = []
            for row in targets:
                seq = array(code)
                for k, count in enumerate(row):
                    seq.extend(array(code, [k]) * count)
                rng.shuffle(seq)
                self._sequences.append(seq)
            self.table = [list(row) for row in targets]
        else:
            self.table = self._deal_groups(targets, rng, code)
        return self.table

    def _deal_groups(self, targets: list[list[int]], rng: random.Random, code: str):
        n_groups = len(self._group_sizes)
        by_stratum: list[list[int]] = [[] for _ in targets]
        for g in range(n_groups):
            by_stratum[self._group_stratum[g]].append(g)
        group_part = array(code, bytes(n_groups * array(code).itemsize))
        table = []
        sizes = self._group_sizes
        for s, groups in enumerate(by_stratum):
            rng.shuffle(groups)
            groups.sort(key=sizes.__getitem__, reverse=True)  # stable: ties stay shuffled
            want = list(targets[s])
            got = [0] * len(want)
            parts = range(len(want))
            for g in groups:
                k = max(parts, key=lambda k: want[k] - got[k])
                group_part[g] = k
                got[k] += sizes[g]
            table.append(got)
        self._group_part = group_part
        if self.stratum_ids is not None:
            # report what each stratum really got, record by record
            table = [[0] * len(targets[0]) for _ in targets]
            for s, g in zip(self.stratum_ids, self.group_ids):
                table[s][group_part[g]] += 1
        return table

    def parts(self) -> Iterator[int]:
        """The part of each record, in input order."""
        if self._group_part is not None:
            group_part = self._group_part
            for g in self.group_ids:
                yield group_part[g]
        elif self.stratum_ids is None:
            yield from self._sequences[0] if self._sequences else ()
        else:
            positions = [0] * len(self._sequences)
            sequences = self._sequences
            for s in self.stratum_ids:
                yield sequences[s][positions[s]]
                positions[s] += 1
