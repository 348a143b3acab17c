"""The in-memory duplicate index: compact numpy state, a few hundred bytes per indexed record.

An *entry* is one indexed record (a survivor of this run, a reference record of --against, or an
entry of a loaded --index). Per entry the index keeps:

    exact key      8 + 4 bytes (entry id)   64-bit hash of the normalised text
    band hashes    bands x (4 + 4) bytes    low 32 bits of each band's hash; only for records
                                            long enough to have shingles
    signature      num_perm x 2 bytes       low 16 bits of each bin, to verify LSH candidates
    origin         4 + 8 bytes              source (label), record number
    shingles       2 bytes                  how many (saturated at 65,535)
    short text     32 + 2 per unit          a text that can be in a short pair (verify.py) keeps
                                            its units (4 bytes each past U+FFFF), where its
                                            first field ends and a bit per stop-shingle; its
                                            shingle values are made again from them when a
                                            pair needs them
    row            8 bytes                  only when entries and signature rows differ
                                            (--keep longest/best)
    id             only with --id-field     the record's id value

With the defaults (128 bins, 31 bands of 3 rows) that is 12 + 248 + 256 + 14 = 530 bytes per
survivor, and a short one (at most 128 shingles) ~32 + 2 bytes per character more; duplicates
cost nothing. Truncation is safe because candidates are verified: a 32-bit
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

from cqia_cli.dedup.minhash import Params, order32, sorted_unique
from cqia_cli.dedup.verify import Ragged, Sides, gather, offsets, set_values

FORMAT = "cqia-dedup-index/2"
#: what an index of an older format needs (its short texts' sets were kept otherwise)
OLD_FORMAT = ("saved by an earlier cqia ({old}): this version keeps the units of short texts "
              "to verify them (and checks the input of records that share a prompt); build it "
              "again with this version: cqia dedup --save-index NEW.npz over the records it "
              "was made from")


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
            # a merge of two sorted runs: where each newer key goes (after the older equal
            # keys), no sort and no index array over the whole
            at = np.searchsorted(k1, k2, "right") + np.arange(k2.size)
            older = np.ones(k1.size + k2.size, dtype=bool)
            older[at] = False
            k = np.empty(older.size, self.dtype)
            k[older] = k1
            k[at] = k2
            del k1, k2
            v = np.empty(older.size, np.int32)
            v[older] = v1
            v[at] = v2
            del v1, v2, older, at
            self.keys.append(k)
            self.vals.append(v)

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
    #: `present` has a bit per value of a key's top PRESENT_BITS bits, set once such a key is
    #: added: a query whose bit is clear is not searched at all. On 100k records with few
    #: duplicates 95% of the band lookups find nothing; 2 MB, however large the index grows.
    PRESENT_BITS = 24

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []
        self.present: np.ndarray | None = None  # made at the first add

    def __len__(self) -> int:
        return sum(r.size for r in self.runs)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.runs) + \
            (self.present.nbytes if self.present is not None else 0)

    def _slots(self, keys32: np.ndarray) -> np.ndarray:
        return (keys32 >> np.uint64(32 - self.PRESENT_BITS)).astype(np.int64)

    def _mark(self, keys32: np.ndarray) -> None:
        if self.present is None:
            self.present = np.zeros(1 << (self.PRESENT_BITS - 3), np.uint8)
        slot = sorted_unique(self._slots(keys32))
        byte = slot >> 3
        bits = np.left_shift(1, slot & 7).astype(np.uint8)
        first = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]])
        self.present[byte[first]] |= np.bitwise_or.reduceat(bits, first)

    def add(self, keys: np.ndarray, vals: np.ndarray) -> None:
        if keys.size == 0:
            return
        keys32 = keys.astype(np.uint64) & np.uint64(0xFFFFFFFF)
        self._mark(keys32)
        run = keys32 << np.uint64(32)
        run |= vals.astype(np.uint64)
        run.sort()
        self.runs.append(run)
        while len(self.runs) > 1 and self.runs[-1].size * 2 >= self.runs[-2].size and \
                self.runs[-1].size + self.runs[-2].size <= self.MAX_RUN:
            b, a = self.runs.pop(), self.runs.pop()
            self.runs.append(_merged(a, b))
            del a, b

    def lookup(self, q: np.ndarray, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """All (position in q, value) pairs whose key equals q[position] (q: 32-bit keys); with
        `limit`, at most the `limit` smallest values of each key in each run."""
        if not self.runs or q.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        q = q.astype(np.uint64) & np.uint64(0xFFFFFFFF)
        slot = self._slots(q)
        where = np.flatnonzero((self.present[slot >> 3] >> (slot & 7)) & 1)
        if where.size == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        if where.size < q.size:
            q = q[where]  # the others are in no run
        else:
            where = None
        order = order32(q)  # the queries in order: searched run by run with locality
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
        qi = np.concatenate(qis)
        return (qi if where is None else where[qi]), np.concatenate(vals)

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.runs:
            return np.empty(0, np.uint32), np.empty(0, np.int32)
        allr = np.sort(np.concatenate(self.runs), kind="stable")  # timsort: merges the runs
        return (allr >> np.uint64(32)).astype(np.uint32), \
            (allr & np.uint64(0xFFFFFFFF)).astype(np.int32)


_STEP = 1 << 16


def _merged(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Two sorted uint64 runs as one, in place: `a` grown (realloc: a large array is remapped,
    not copied), then merged from the back, a piece of at most ~2 x _STEP items at a time (equal
    values are the same item, so no order among them matters). Peak: a + b, where a new array
    and a sort would need 2 (a + b) and more."""
    na, nb = a.size, b.size
    try:
        a.resize(na + nb, refcheck=False)
    except ValueError:  # not its own data (a view)
        a = np.concatenate([a, np.empty(nb, a.dtype)])
    ia, jb, k = na, nb, na + nb
    while jb > 0:
        if ia == 0:
            a[:jb] = b[:jb]
            break
        cut = max(a[max(0, ia - _STEP)], b[max(0, jb - _STEP)])
        la = ia - int(np.searchsorted(a[:ia], cut, "left"))
        lb = jb - int(np.searchsorted(b[:jb], cut, "left"))
        piece = np.concatenate([a[ia - la:ia], b[jb - lb:jb]])
        # two sorted runs: numpy's stable sort of uint64 (timsort) finds them and merges them in
        # one linear pass; its default (introsort) sorts them afresh, 12x slower (measured on
        # 98k values: 4.5 -> 0.37 ms)
        piece.sort(kind="stable")
        a[k - la - lb:k] = piece  # at or after ia - la: nothing not yet merged is overwritten
        ia, jb, k = ia - la, jb - lb, k - la - lb
    return a


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
        for b in sorted_unique(blk).tolist():
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
        # each entry's signature row: None while entry i is row i (--keep first: always), an
        # array once they differ (--keep longest/best stores every row before the entries)
        self.row: array | None = None
        # per signature row: shingles (saturated at 65,535: only "at most --num-perm" matters)
        self.nsh_rows = array("H")
        # the texts that can be in a short pair (verify.py) keep their units: the rows that
        # have one (ascending), where each starts in its pool, its length (negative: in the
        # 32-bit pool, for units past U+FFFF or jieba words) and its first field's length
        self.krow = array("q")
        self.koff = array("q")
        self.klen = array("i")
        self.khead = array("i")
        self.pool16 = array("H")
        self.pool32 = array("I")
        # and which of its shingles are stop-shingles, one bit each (byte offset, -1: none), so
        # that its set is made again without hashing it: the index's stop-shingles never change
        self.kbits = array("q")
        self.bits = array("B")
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
                + 12 * len(self.src) + (8 * len(self.row) if self.row is not None else 0)
                + 2 * len(self.nsh_rows) + 32 * len(self.krow) + 2 * len(self.pool16)
                + 4 * len(self.pool32) + len(self.bits))

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
        entries = np.asarray(entries, dtype=np.int64)
        if self.row is None:
            return entries
        return np.frombuffer(self.row, dtype=np.int64)[entries]

    def signatures(self, entries: np.ndarray) -> np.ndarray:
        return self.sigs.get(self.rows_of(entries))

    def nsh(self, entries: np.ndarray) -> np.ndarray:
        return self.row_nsh(self.rows_of(entries))

    def short_units(self, entries: np.ndarray):
        return self.row_units(self.rows_of(entries))

    def row_nsh(self, rows: np.ndarray) -> np.ndarray:
        return np.frombuffer(self.nsh_rows, dtype=np.uint16)[np.asarray(rows, dtype=np.int64)] \
            .astype(np.int32)

    def row_texts(self, rows: np.ndarray):
        """(kept mask, units (uint32) of the kept rows one after the other, unit counts (0
        where not kept), heads, and which of their shingles are stop-shingles: a bool per
        shingle, text after text, or None without stop-shingles) of signature rows."""
        rows = np.asarray(rows, dtype=np.int64)
        m = rows.size
        kept = np.zeros(m, dtype=bool)
        lens = np.zeros(m, np.int64)
        heads = np.full(m, -1, np.int64)
        kr = np.frombuffer(self.krow, dtype=np.int64)
        if kr.size == 0 or m == 0:
            return kept, np.empty(0, np.uint32), lens, heads, None
        pos = np.minimum(np.searchsorted(kr, rows), kr.size - 1)
        kept = kr[pos] == rows
        pos = pos[kept]
        kl = np.frombuffer(self.klen, dtype=np.int32)[pos].astype(np.int64)
        ko = np.frombuffer(self.koff, dtype=np.int64)[pos]
        heads[kept] = np.frombuffer(self.khead, dtype=np.int32)[pos]
        n = np.abs(kl)
        lens[kept] = n
        out = np.empty(int(n.sum()), np.uint32)
        at = offsets(n)[:-1]
        for wide, pool, dt in ((False, self.pool16, np.uint16), (True, self.pool32, np.uint32)):
            sel = (kl < 0) if wide else (kl > 0)
            if not sel.any():
                continue
            ln = n[sel]
            got = gather(np.frombuffer(pool, dtype=dt), ko[sel], ln)
            dest = np.repeat(at[sel] - (np.cumsum(ln) - ln), ln) + np.arange(got.size)
            out[dest] = got
        return kept, out, lens, heads, self._stopped(pos, n)

    def _stopped(self, pos: np.ndarray, n: np.ndarray) -> np.ndarray | None:
        """The stop bits of kept texts `pos` (with `n` units each), text after text."""
        if self.stop.size == 0:
            return None
        sh = np.maximum(n - self.params.ngram + 1, 0)  # shingles of each text
        out = np.zeros(int(sh.sum()), dtype=bool)
        kb = np.frombuffer(self.kbits, dtype=np.int64)[pos]
        has = np.flatnonzero(kb >= 0)
        if has.size:
            nbytes = (sh[has] + 7) // 8
            raw = gather(np.frombuffer(self.bits, dtype=np.uint8), kb[has], nbytes)
            bits = np.unpackbits(raw).astype(bool)
            # text j's bits start at 8 x its byte offset in `raw`, and go to it in `out`
            src = np.repeat(8 * (np.cumsum(nbytes) - nbytes) - (np.cumsum(sh[has]) - sh[has]),
                            sh[has]) + np.arange(int(sh[has].sum()))
            at = offsets(sh)[:-1][has]
            dst = np.repeat(at - (np.cumsum(sh[has]) - sh[has]), sh[has]) + \
                np.arange(int(sh[has].sum()))
            out[dst] = bits[src]
        return out

    def row_units(self, rows: np.ndarray):
        """The `verify.Sides` of signature rows: their units, and their shingle values made
        again from them (what short pairs are verified with)."""
        uniq, inv = np.unique(np.asarray(rows, dtype=np.int64), return_inverse=True)
        kept, units, lens, heads, stopped = self.row_texts(uniq)  # each row's set made once
        vals = np.empty(0, np.uint64)
        vlens = np.zeros(lens.size, np.int64)
        if kept.any():
            vals, vl = set_values(units, lens[kept], heads[kept], self.params, self.stop,
                                  stopped)
            vlens[kept] = vl
        inv = inv.reshape(-1)
        v, vl = Ragged(vals, offsets(vlens)).take(inv)
        return Sides((kept & (vlens > 0))[inv], v, vl, Ragged(units, offsets(lens)), inv)

    def add_rows(self, sigs: np.ndarray, texts) -> np.ndarray:
        """Store signatures (and texts: `Sketch.texts`) that are not (yet) entries; returns their
        row numbers."""
        nsh, uflat, ulens, heads = texts
        start = self.sigs.size
        self.sigs.append(sigs)
        self.nsh_rows.frombytes(np.minimum(np.asarray(nsh, dtype=np.int64), 0xFFFF)
                                .astype(np.uint16).tobytes())
        ulens = np.asarray(ulens, dtype=np.int64)
        keep = np.flatnonzero(ulens > 0)
        if keep.size:
            uflat = np.asarray(uflat, dtype=np.uint32)
            ln = ulens[keep]
            rec = np.repeat(np.arange(keep.size), ln)
            wide = np.zeros(keep.size, dtype=bool)
            if uflat.size and int(uflat.max()) > 0xFFFF:
                wide = np.bincount(rec[uflat > 0xFFFF], minlength=keep.size) > 0
            w = np.repeat(wide, ln)
            off = np.empty(keep.size, np.int64)
            for is_wide, pool, dt in ((False, self.pool16, np.uint16),
                                      (True, self.pool32, np.uint32)):
                sel = wide if is_wide else ~wide
                if sel.any():
                    off[sel] = len(pool) + np.cumsum(ln[sel]) - ln[sel]
                    pool.frombytes(uflat[w == is_wide].astype(dt).tobytes())
            self.krow.frombytes((start + keep).astype(np.int64).tobytes())
            self.koff.frombytes(off.tobytes())
            self.klen.frombytes(np.where(wide, -ln, ln).astype(np.int32).tobytes())
            self.khead.frombytes(np.asarray(heads, dtype=np.int64)[keep].astype(np.int32)
                                 .tobytes())
            self._add_bits(uflat, ln)
        return np.arange(start, self.sigs.size, dtype=np.int64)

    def _add_bits(self, units: np.ndarray, lens: np.ndarray) -> None:
        """Keep the stop bits of texts being added (`units`, `lens`: theirs, one after the
        other): a text without a stop-shingle keeps none (-1)."""
        from cqia_cli.dedup.minhash import shingle_hashes, stop_mask

        k = lens.size
        kb = np.full(k, -1, np.int64)
        if self.stop.size:
            h, rec = shingle_hashes(units, lens, self.params)
            stopped = stop_mask(h, rec, self.stop)
            has = np.flatnonzero(np.bincount(rec[stopped], minlength=k) > 0)
            if has.size:
                sh = np.bincount(rec, minlength=k)[has]
                nbytes = (sh + 7) // 8
                starts = offsets(np.bincount(rec, minlength=k))[:-1][has]
                src = np.repeat(starts - (np.cumsum(sh) - sh), sh) + np.arange(int(sh.sum()))
                padded = np.zeros(int(8 * nbytes.sum()), dtype=bool)
                dst = np.repeat(8 * (np.cumsum(nbytes) - nbytes) - (np.cumsum(sh) - sh), sh) + \
                    np.arange(int(sh.sum()))
                padded[dst] = stopped[src]
                kb[has] = len(self.bits) + np.cumsum(nbytes) - nbytes
                self.bits.frombytes(np.packbits(padded).tobytes())
        self.kbits.frombytes(kb.tobytes())

    def _map_rows(self, start: int, rows) -> None:
        """Entries start.. have signature rows `rows`."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.row is None and not np.array_equal(rows, np.arange(start, start + rows.size)):
            self.row = array("q", range(start))  # entries and rows part: keep the map
        if self.row is not None:
            self.row.frombytes(rows.tobytes())

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
        self._map_rows(start, rows)
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
        _kept, units, lens, heads, _stopped = self.row_texts(rows)
        arrays = dict(exact_keys=ek, exact_vals=ev, band_keys=bk, band_vals=bv,
                      sigs=self.sigs.get(rows), nsh=self.row_nsh(rows).astype(np.uint16),
                      units=units, unit_lens=lens.astype(np.int32),
                      heads=heads.astype(np.int32), stop=self.stop,
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
        fmt = meta.get("format")
        if isinstance(fmt, str) and fmt.startswith("cqia-dedup-index/") and fmt != FORMAT:
            raise ValueError(OLD_FORMAT.format(old=fmt))
        if fmt != FORMAT:
            raise ValueError(f"not a cqia dedup index (format {fmt!r})")
        return meta, data

    def load(self, meta: dict, data: Any) -> None:
        """Add the entries of a saved index (whose params were checked to be equal)."""
        base = len(self)
        labels = [self.label(name) for name in meta["labels"]]
        src = np.asarray(labels, dtype=np.int32)[data["src"]] if len(labels) else data["src"]
        self.exact.add(data["exact_keys"], data["exact_vals"].astype(np.int64) + base)
        self.bands.add(data["band_keys"], data["band_vals"].astype(np.int64) + base)
        self.stop = np.asarray(data["stop"], dtype=np.uint64)  # before the texts' stop bits
        rows = self.add_rows(data["sigs"], (data["nsh"], data["units"], data["unit_lens"],
                                            data["heads"]))
        self._map_rows(base, rows)
        self.src.extend(src.astype(np.int32).tolist())
        self.num.extend(data["num"].tolist())
        if self.ids is not None:
            ids = json.loads(bytes(data["ids"]).decode()) if "ids" in data.files else None
            self.ids.extend(ids if ids is not None else [None] * int(meta["entries"]))


__all__ = ["MemoryIndex", "SortedRuns", "PackedRuns", "Rows"]
