"""The in-memory duplicate index: compact numpy state, a few hundred bytes per indexed record.

An *entry* is one indexed record (a survivor of this run, a reference record of --against, or an
entry of a loaded --index). Per entry the index keeps:

    exact key      8 + 4 bytes (entry id)   64-bit hash of the normalised text
    band hashes    bands x (4 + 4) bytes    low 32 bits of each band's hash; only for records
                                            long enough to have shingles
    signature      num_perm x 2 bytes       low 16 bits of each bin, to verify LSH candidates
    row, origin    8 + 4 + 8 bytes          signature row, source (label), record number
    id             only with --id-field     the record's id value

With the defaults (128 bins, 31 bands of 3 rows) that is 12 + 248 + 256 + 20 = 536 bytes per
survivor; duplicates cost nothing. Truncation is safe because candidates are verified: a 32-bit
band collision only adds a candidate (about one query in 140 at a million survivors), and 16-bit
bins raise an estimated similarity by at most (1 - J) / 65,536. Keys live in `SortedRuns`: sorted uint64 arrays that are merged like a
log-structured merge tree, so that a batch of keys is added or looked up with a few vectorised
`searchsorted` calls and no Python object per key.
"""

from __future__ import annotations

import json
from array import array
from typing import Any

import numpy as np

from cqia_cli.dedup.minhash import Params

FORMAT = "cqia-dedup-index/1"


def _expand(queries, lo, counts):
    """Each query repeated once per match, and the positions of its matches: query i matched
    the run positions lo[i] .. lo[i] + counts[i] - 1."""
    qi = np.repeat(queries, counts)
    pos = np.repeat(lo - (np.cumsum(counts) - counts), counts) + np.arange(qi.size)
    return qi, pos


class SortedRuns:
    """A multimap (uint64 or uint32 keys) -> int32 made of sorted runs; batches in, vectorised
    lookups out."""

    def __init__(self, dtype=np.uint64) -> None:
        self.dtype = np.dtype(dtype)
        self.keys: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(k.size for k in self.keys)

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + v.nbytes for k, v in zip(self.keys, self.vals))

    def add(self, keys: np.ndarray, vals: np.ndarray) -> None:
        if keys.size == 0:
            return
        keys = keys.astype(self.dtype, copy=False)
        order = np.argsort(keys, kind="stable")
        self.keys.append(keys[order])
        self.vals.append(vals[order].astype(np.int32, copy=False))
        # merge while the newest run is at least half the size of the one before it
        while len(self.keys) > 1 and self.keys[-1].size * 2 >= self.keys[-2].size:
            k2, v2 = self.keys.pop(), self.vals.pop()
            k1, v1 = self.keys.pop(), self.vals.pop()
            k = np.concatenate([k1, k2])
            v = np.concatenate([v1, v2])
            order = np.argsort(k, kind="stable")  # stable: older values first among equal keys
            self.keys.append(k[order])
            self.vals.append(v[order])

    def lookup(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All (position in q, value) pairs whose key equals q[position]."""
        qis, vals = [], []
        if not self.keys or q.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.int32)
        q = q.astype(self.dtype, copy=False)
        order = np.argsort(q)  # sorted queries: searchsorted walks each run once, cache-warm
        qs = q[order]
        for keys, values in zip(self.keys, self.vals):
            left = np.searchsorted(keys, qs, "left")
            hit = np.flatnonzero(keys[np.minimum(left, keys.size - 1)] == qs)
            if hit.size == 0:
                continue
            lo = left[hit]
            qi, pos = _expand(order[hit], lo, np.searchsorted(keys, qs[hit], "right") - lo)
            qis.append(qi)
            vals.append(values[pos])
        if not qis:
            return np.empty(0, np.int64), np.empty(0, np.int32)
        return np.concatenate(qis), np.concatenate(vals)

    def first(self, q: np.ndarray) -> np.ndarray:
        """The smallest value stored under each key of q, or -1."""
        out = np.full(q.size, np.iinfo(np.int64).max, dtype=np.int64)
        qi, v = self.lookup(q)
        if qi.size:
            np.minimum.at(out, qi, v.astype(np.int64))
        out[out == np.iinfo(np.int64).max] = -1
        return out

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.keys:
            return np.empty(0, self.dtype), np.empty(0, np.int32)
        k = np.concatenate(self.keys)
        v = np.concatenate(self.vals)
        order = np.lexsort((v, k))
        return k[order], v[order]


class PackedRuns:
    """A multimap uint32 -> uint32 packed as sorted uint64 runs (key << 32 | value): 8 bytes an
    item, merged with an in-place sort (no index array), and no run grows past MAX_RUN items,
    so a merge never needs more than 2 x 64 MB of scratch however large the index grows."""

    MAX_RUN = 1 << 23

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(r.size for r in self.runs)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.runs)

    def add(self, keys: np.ndarray, vals: np.ndarray) -> None:
        if keys.size == 0:
            return
        run = (keys.astype(np.uint64) & np.uint64(0xFFFFFFFF)) << np.uint64(32)
        run |= vals.astype(np.uint64)
        run.sort()
        self.runs.append(run)
        while len(self.runs) > 1 and self.runs[-1].size * 2 >= self.runs[-2].size and \
                self.runs[-1].size + self.runs[-2].size <= self.MAX_RUN:
            b, a = self.runs.pop(), self.runs.pop()
            merged = np.concatenate([a, b])
            del a, b
            merged.sort(kind="stable")
            self.runs.append(merged)

    def lookup(self, q: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """All (position in q, value) pairs whose key equals q[position] (q: 32-bit keys); with
        `limit`, at most the `limit` smallest values of each key in each run."""
        if not self.runs or q.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        q = q.astype(np.uint64) & np.uint64(0xFFFFFFFF)
        order = np.argsort(q)
        lo_q = q[order] << np.uint64(32)
        hi_q = lo_q | np.uint64(0xFFFFFFFF)
        qis, vals = [], []
        for run in self.runs:
            left = np.searchsorted(run, lo_q, "left")
            hit = np.flatnonzero((left < run.size)
                                 & ((run[np.minimum(left, run.size - 1)] >> np.uint64(32))
                                    == (lo_q >> np.uint64(32))))
            if hit.size == 0:
                continue
            lo = left[hit]
            counts = np.searchsorted(run, hi_q[hit], "right") - lo
            if limit is not None:
                counts = np.minimum(counts, limit)
            qi, pos = _expand(order[hit], lo, counts)
            qis.append(qi)
            vals.append((run[pos] & np.uint64(0xFFFFFFFF)).astype(np.int64))
        if not qis:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return np.concatenate(qis), np.concatenate(vals)

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.runs:
            return np.empty(0, np.uint32), np.empty(0, np.int32)
        allr = np.sort(np.concatenate(self.runs))
        return (allr >> np.uint64(32)).astype(np.uint32), \
            (allr & np.uint64(0xFFFFFFFF)).astype(np.int32)


class Rows:
    """A growable matrix (one signature per row) in fixed blocks: no doubling copies."""

    BLOCK = 1 << 14

    def __init__(self, width: int, dtype=np.uint16) -> None:
        self.width = width
        self.dtype = np.dtype(dtype)
        self.blocks: list[np.ndarray] = []
        self.size = 0

    @property
    def nbytes(self) -> int:
        return self.size * self.width * self.dtype.itemsize

    def append(self, rows: np.ndarray) -> None:
        done = 0
        while done < rows.shape[0]:
            off = self.size % self.BLOCK
            if off == 0:
                self.blocks.append(np.empty((self.BLOCK, self.width), dtype=self.dtype))
            take = min(self.BLOCK - off, rows.shape[0] - done)
            self.blocks[-1][off:off + take] = rows[done:done + take]
            done += take
            self.size += take

    def get(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        out = np.empty((ids.size, self.width), dtype=self.dtype)
        blk = ids // self.BLOCK
        off = ids % self.BLOCK
        for b in np.unique(blk).tolist():
            m = blk == b
            out[m] = self.blocks[b][off[m]]
        return out

    def all(self) -> np.ndarray:
        if not self.blocks:
            return np.empty((0, self.width), self.dtype)
        return np.concatenate(self.blocks)[: self.size]


class MemoryIndex:
    """Entries with their exact keys, band hashes, signatures and origins, all in memory."""

    def __init__(self, params: Params, *, keep_ids: bool = False) -> None:
        self.params = params
        self.exact = SortedRuns()
        self.bands = PackedRuns()
        self.sigs = Rows(params.num_perm)
        self.row = array("q")  # each entry's signature row
        # per signature row: shingles, and the units of a text that can be in a short pair
        # (verify.py), kept in one pool
        self.nsh_rows = array("i")
        self.voff = array("q")
        self.vlen = array("i")
        self.vpool = array("Q")
        self.uoff = array("q")
        self.ulen = array("i")
        self.pool = array("I")
        self.src = array("i")
        self.num = array("q")
        self.labels: list[str] = []
        self.ids: list[Any] | None = [] if keep_ids else None
        self.stop = np.empty(0, np.uint64)  # the stop-shingles its signatures were made without

    def __len__(self) -> int:
        return len(self.src)

    @property
    def nbytes(self) -> int:
        return (self.exact.nbytes + self.bands.nbytes + self.sigs.nbytes
                + 20 * len(self.src) + 28 * len(self.nsh_rows) + 8 * len(self.vpool)
                + 4 * len(self.pool))

    def label(self, name: str) -> int:
        if name not in self.labels:
            self.labels.append(name)
        return self.labels.index(name)

    # -- queries ------------------------------------------------------------------------------

    def exact_lookup(self, keys: np.ndarray) -> np.ndarray:
        return self.exact.first(keys)

    def band_lookup(self, hashes: np.ndarray, limit: int | None = None):
        """(row of hashes, entry) for every band match (with `limit`: the oldest `limit`
        entries of a bucket); hashes is [n, bands]."""
        qi, entries = self.bands.lookup(hashes.reshape(-1), limit)
        return qi // hashes.shape[1], entries.astype(np.int64)

    def rows_of(self, entries: np.ndarray) -> np.ndarray:
        return np.frombuffer(self.row, dtype=np.int64)[np.asarray(entries, dtype=np.int64)]

    def signatures(self, entries: np.ndarray) -> np.ndarray:
        return self.sigs.get(self.rows_of(entries))

    def nsh(self, entries: np.ndarray) -> np.ndarray:
        return self.row_nsh(self.rows_of(entries))

    def short_units(self, entries: np.ndarray):
        return self.row_units(self.rows_of(entries))

    def row_nsh(self, rows: np.ndarray) -> np.ndarray:
        return np.frombuffer(self.nsh_rows, dtype=np.int32)[np.asarray(rows, dtype=np.int64)]

    def row_units(self, rows: np.ndarray):
        """The `verify.Sides` of signature rows."""
        from cqia_cli.dedup.verify import Sides, gather

        rows = np.asarray(rows, dtype=np.int64)
        vs = np.frombuffer(self.voff, dtype=np.int64)[rows]
        vl = np.frombuffer(self.vlen, dtype=np.int32)[rows].astype(np.int64)
        us = np.frombuffer(self.uoff, dtype=np.int64)[rows]
        ul = np.frombuffer(self.ulen, dtype=np.int32)[rows].astype(np.int64)
        return Sides(vl > 0, gather(np.frombuffer(self.vpool, dtype=np.uint64), vs, vl), vl,
                     gather(np.frombuffer(self.pool, dtype=np.uint32), us, ul), ul)

    def add_rows(self, sigs: np.ndarray, texts) -> np.ndarray:
        """Store signatures (and texts: `Sketch.texts`) that are not (yet) entries; returns their
        row numbers."""
        nsh, vflat, vlens, uflat, ulens = texts
        start = self.sigs.size
        self.sigs.append(sigs)
        self.nsh_rows.frombytes(np.ascontiguousarray(nsh, dtype=np.int32).tobytes())
        for off, ln, pool, flat, lens, dt in ((self.voff, self.vlen, self.vpool, vflat, vlens,
                                               np.uint64),
                                              (self.uoff, self.ulen, self.pool, uflat, ulens,
                                               np.uint32)):
            lens = np.asarray(lens, dtype=np.int64)
            off.frombytes((len(pool) + np.cumsum(lens) - lens).astype(np.int64).tobytes())
            ln.frombytes(lens.astype(np.int32).tobytes())
            pool.frombytes(np.ascontiguousarray(flat, dtype=dt).tobytes())
        return np.arange(start, self.sigs.size, dtype=np.int64)

    def origin(self, entry: int) -> tuple[str, int, Any]:
        entry = int(entry)
        ident = self.ids[entry] if self.ids is not None and entry < len(self.ids) else None
        return self.labels[self.src[entry]], self.num[entry], ident

    def is_current(self, entry: int, label: int) -> bool:
        return self.src[entry] == label

    # -- updates ------------------------------------------------------------------------------

    def add(self, keys: np.ndarray, sigs: np.ndarray | None, bands: np.ndarray,
            near: np.ndarray, label: int, nums: np.ndarray, ids: list | None = None,
            rows: np.ndarray | None = None, texts=None) -> np.ndarray:
        """Add entries; bands only for rows where `near` (long enough for shingles). Their
        signatures are `sigs`, or rows already stored with `add_rows`."""
        start = len(self)
        entries = np.arange(start, start + keys.size, dtype=np.int64)
        self.exact.add(keys, entries)
        if near.any():
            b = bands[near]
            self.bands.add(b.reshape(-1), np.repeat(entries[near], b.shape[1]))
        if rows is None:
            rows = self.add_rows(sigs, texts)
        self.row.extend(np.asarray(rows, dtype=np.int64).tolist())
        self.src.extend([label] * keys.size)
        self.num.extend(np.asarray(nums, dtype=np.int64).tolist())
        if self.ids is not None:
            self.ids.extend(ids if ids is not None else [None] * keys.size)
        return entries

    def renumber(self, entry: int, num: int) -> None:
        self.num[int(entry)] = int(num)

    # -- files --------------------------------------------------------------------------------

    def save(self, f) -> None:
        """Write the index (.npz) to the binary file object `f` (an Output's stream: the core
        writes it atomically, or in place on a device)."""
        ek, ev = self.exact.merged()
        bk, bv = self.bands.merged()
        meta = {"format": FORMAT, "params": self.params.to_dict(), "labels": self.labels,
                "entries": len(self)}
        rows = self.rows_of(np.arange(len(self)))
        sides = self.row_units(rows)
        arrays = dict(exact_keys=ek, exact_vals=ev, band_keys=bk, band_vals=bv,
                      sigs=self.sigs.get(rows), nsh=self.row_nsh(rows), vals=sides.vals,
                      val_lens=sides.vlens.astype(np.int32), units=sides.units,
                      unit_lens=sides.ulens.astype(np.int32), stop=self.stop,
                      src=np.frombuffer(self.src, dtype=np.int32),
                      num=np.frombuffer(self.num, dtype=np.int64),
                      meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
        if self.ids is not None:
            arrays["ids"] = np.frombuffer(json.dumps(self.ids, ensure_ascii=False).encode(),
                                          dtype=np.uint8)
        np.savez(f, **arrays)

    @staticmethod
    def read_meta(path: str) -> tuple[dict, Any]:
        data = np.load(path, allow_pickle=False)
        meta = json.loads(bytes(data["meta"]).decode())
        if meta.get("format") != FORMAT:
            raise ValueError(f"not a cqia dedup index (format {meta.get('format')!r})")
        return meta, data

    def load(self, meta: dict, data: Any) -> None:
        """Add the entries of a saved index (whose params were checked to be equal)."""
        base = len(self)
        labels = [self.label(name) for name in meta["labels"]]
        src = np.asarray(labels, dtype=np.int32)[data["src"]] if len(labels) else data["src"]
        self.exact.add(data["exact_keys"], data["exact_vals"].astype(np.int64) + base)
        self.bands.add(data["band_keys"], data["band_vals"].astype(np.int64) + base)
        if "nsh" in data.files:
            texts = (data["nsh"], data["vals"], data["val_lens"], data["units"],
                     data["unit_lens"])
        else:  # an index of cqia 0.1: no sets kept, so no short pair with it is a duplicate
            n = data["sigs"].shape[0]
            texts = (np.full(n, np.iinfo(np.int32).max // 2, np.int32), np.empty(0, np.uint64),
                     np.zeros(n, np.int32), np.empty(0, np.uint32), np.zeros(n, np.int32))
        self.row.extend(self.add_rows(data["sigs"], texts).tolist())
        if "stop" in data.files:
            self.stop = np.asarray(data["stop"], dtype=np.uint64)
        self.src.extend(src.astype(np.int32).tolist())
        self.num.extend(data["num"].tolist())
        if self.ids is not None:
            ids = json.loads(bytes(data["ids"]).decode()) if "ids" in data.files else None
            self.ids.extend(ids if ids is not None else [None] * int(meta["entries"]))


__all__ = ["MemoryIndex", "SortedRuns", "PackedRuns", "Rows"]
