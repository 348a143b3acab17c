"""MinHash signatures of shingle sets, vectorised with numpy over a whole batch of records.

A record's shingles are the n-grams of its normalised text: characters by default, or jieba
words (`tokens_batch`). Each n-gram gets one 64-bit hash (a polynomial over its units, then the
splitmix64 finaliser). The signature is a one-permutation MinHash (Li, Owen & Zhang 2012): the
hash's high bits choose one of `num_perm` bins and its low 32 bits compete for that bin's minimum;
empty bins are filled from the next non-empty bin to the right (rotation densification,
Shrivastava & Li 2014). The share of equal bins of two signatures estimates the Jaccard
similarity of the two shingle sets, as `num_perm` independent permutations would, at the cost
of one hash per shingle instead of `num_perm`: what makes it fast in numpy.

LSH: the first `bands * rows` bins are cut into `bands` bands; each band is hashed to 64 bits
(salted by the band's number), so that all bands live in one table.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass

import numpy as np

from cqia_cli.dedup import defaults

EMPTY = np.uint32(0xFFFFFFFF)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_P = np.uint64(0x100000001B3)  # FNV prime: the polynomial's base
_GOLDEN = 0x9E3779B97F4A7C15


def mix64(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place on a uint64 array."""
    h ^= h >> np.uint64(30)
    h *= _M1
    h ^= h >> np.uint64(27)
    h *= _M2
    h ^= h >> np.uint64(31)
    return h


@dataclass(frozen=True)
class Params:
    """Everything that decides signatures and bands: an index is only valid for the same."""

    ngram: int = defaults.NGRAM["char"]
    num_perm: int = defaults.NUM_PERM
    bands: int = 31
    rows: int = 3
    seed: int = 1
    tokenizer: str = "char"
    t2s: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def lsh_params(threshold: float, num_perm: int, fn_weight: float = 0.8) -> tuple[int, int]:
    """Bands and rows for `threshold`: the (b, r), b*r <= num_perm, that minimise the weighted
    false positive and false negative areas of the LSH S-curve (as datasketch does). Candidates
    are verified afterwards, so false negatives weigh more than false positives by default."""
    steps = 400
    s = (np.arange(steps) + 0.5) / steps
    best, best_cost = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p = 1 - (1 - s ** r) ** b
            fp = p[s < threshold].sum() / steps
            fn = (1 - p[s >= threshold]).sum() / steps
            cost = (1 - fn_weight) * fp + fn_weight * fn
            if cost < best_cost - 1e-12:
                best, best_cost = (b, r), cost
    return best


def sorted_unique(x: np.ndarray, presorted: bool = False) -> np.ndarray:
    """np.unique(x) for a 1-d integer array, by a sort and a comparison of neighbours: recent
    numpy's np.unique hashes integers first and measured 3x slower on the 60-120k pair keys of
    a batch."""
    s = x if presorted else np.sort(x)
    if s.size < 2:
        return s.copy()
    keep = np.empty(s.size, dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def sorted_member(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """np.isin(values, table) for a sorted 1-d table (repeats allowed), by binary search.
    np.isin (and np.unique without its optional outputs) import numpy.ma on their first call,
    7-10 ms in every process (and in each -j worker again); see also sorted_unique."""
    if table.size == 0:
        return np.zeros(np.shape(values), dtype=bool)
    pos = np.minimum(np.searchsorted(table, values), table.size - 1)
    return table[pos] == values


def order32(key: np.ndarray) -> np.ndarray:
    """np.argsort(key, kind="stable") for keys below 2**32, by two stable passes over their
    16-bit halves: numpy sorts 16-bit keys by counting, 3-4x faster than it compares wider
    ones (the 63k band keys of a batch: 3.1-3.9 -> 0.9 ms; measured)."""
    key = key.astype(np.uint32, copy=False)
    order = np.argsort((key & np.uint32(0xFFFF)).astype(np.uint16), kind="stable")
    return order[np.argsort((key[order] >> np.uint32(16)).astype(np.uint16), kind="stable")]


def low_halves(h: np.ndarray) -> np.ndarray:
    """The low 32 bits of each value of a contiguous uint64 array, as a uint32 view (no copy)."""
    halves = h.view(np.uint32)
    return halves[0::2] if sys.byteorder == "little" else halves[1::2]


def group_order(h: np.ndarray) -> np.ndarray:
    """An order of the uint64 values `h` in which equal values are together and keep their
    order among them, the groups in the order of their low 32 bits (not of the values):
    `order32` of the low halves, then the few runs of equal low halves that hold two values
    (two well-mixed hashes share them ~once among 100k) put in order."""
    h = np.ascontiguousarray(h, dtype=np.uint64)
    key = low_halves(h)
    order = order32(key)
    hs, ks = h[order], key[order]
    mixed = (ks[1:] == ks[:-1]) & (hs[1:] != hs[:-1])
    if mixed.any():
        bad = np.flatnonzero(sorted_member(ks, ks[1:][mixed]))  # ks is sorted
        # by low half (each run stays where it is), value, then input position
        order[bad] = order[bad][np.lexsort((order[bad], hs[bad], ks[bad]))]
    return order


def _valid(lens: np.ndarray, n: int, count: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Which of the `count` n-gram starts of the concatenated units end inside their own
    record (None: all of them), and the record of each valid one. Only the last n - 1 starts of
    each record are not: they are marked from the record ends, not looked up one by one."""
    rec = np.repeat(np.arange(lens.size), ngram_counts(lens, n))
    if n <= 1:
        return None, rec
    ends = np.cumsum(lens)
    valid = np.ones(count, dtype=bool)
    for j in range(1, n):
        # the start j units before a record's end (when the record has that many units)
        p = (ends - j)[lens >= j]
        valid[p[p < count]] = False
    return valid, rec


def _ngram_hashes(units: np.ndarray, lens: np.ndarray, n: int, seed: int):
    """64-bit hashes of every n-gram of each record's units, and the record of each."""
    total = units.size
    count = total - n + 1
    if count <= 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    u = units.astype(np.uint64)
    h = u[:count] + np.uint64((seed * _GOLDEN) & 0xFFFFFFFFFFFFFFFF)
    for j in range(1, n):
        h *= _P
        h += u[j:j + count]
    valid, rec = _valid(lens, n, count)
    if valid is not None:
        h = h[valid]
    return mix64(h), rec


class _Slots:
    """A sorted table of (well mixed) 64-bit hashes laid out for lookups in one or two probes:
    entry i sits at slot max(home_i, slot_{i-1} + 1), its home being its top bits, so the
    occupied slots stay in ascending order and 0 marks an empty one. A value is looked up from
    its home slot rightwards until it is found, an empty slot or a larger value is met. The
    table has about a quarter of its slots occupied: most values are decided at the first."""

    def __init__(self, table: np.ndarray) -> None:
        self.zero = bool(table[0] == 0)
        t = table[1:] if self.zero else table
        bits = max(10, int(np.ceil(np.log2(max(t.size, 1) * 4))))
        self.shift = np.uint64(64 - bits)
        home = (t >> self.shift).astype(np.int64)
        i = np.arange(t.size)
        pos = i + np.maximum.accumulate(home - i) if t.size else i
        size = max(1 << bits, int(pos[-1]) + 1 if t.size else 0) + 1  # an empty slot ends all
        self.slots = np.zeros(size, np.uint64)
        self.slots[pos] = t

    def contains(self, values: np.ndarray) -> np.ndarray:
        slots = self.slots
        idx = (values >> self.shift).astype(np.intp)
        s = slots[idx]
        out = s == values
        todo = np.flatnonzero((s < values) & (s != 0))
        while todo.size:
            idx_t = idx[todo] + 1
            idx[todo] = idx_t
            v = values[todo]
            s = slots[idx_t]
            out[todo[s == v]] = True
            todo = todo[(s < v) & (s != 0)]
        # 0 marks an empty slot: a value 0 is in the table when the table had it
        out[values == 0] = self.zero
        return out


_slots: dict = {}


def _slot_table(table: np.ndarray) -> _Slots:
    key = (id(table), table.size, int(table[0]), int(table[-1]))
    st = _slots.get(key)
    if st is None:
        st = _Slots(table)
        _slots.clear()
        _slots[key] = st
    return st


def in_sorted(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """values[i] in table (a sorted array of distinct, well mixed hashes), vectorised."""
    if table.size == 0 or values.size == 0:
        return np.zeros(values.size, dtype=bool)
    if values.size >= 1024:
        return _slot_table(table).contains(values)
    pos = np.minimum(np.searchsorted(table, values), table.size - 1)
    return table[pos] == values


def stop_mask(h: np.ndarray, rec: np.ndarray, stop: np.ndarray,
              run: int | None = None) -> np.ndarray:
    """Which shingles to leave out: those in `stop` that stand in a run of at least `run`
    consecutive stop-shingles of their record (a shared phrase: a template, a prompt), not a
    common word on its own. `h`, `rec`: every shingle of each record, in text order."""
    if run is None:
        run = defaults.TEMPLATE_RUN
    m = in_sorted(h, stop)
    if run <= 1 or not m.any():
        return m
    # the runs of stop-shingles: [starts, ends), cut where a record begins
    d = np.diff(m.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(d == 1)
    ends = np.flatnonzero(d == -1)
    # where each record's shingles begin (rec ascends), but the first
    first = sorted_unique(np.searchsorted(rec, np.arange(int(rec[0]) + 1, int(rec[-1]) + 1)),
                          presorted=True)
    cut = first[m[first] & m[first - 1]]
    if cut.size:
        # merged into the sorted starts and ends (no sort: both are sorted)
        starts = np.insert(starts, np.searchsorted(starts, cut), cut)
        ends = np.insert(ends, np.searchsorted(ends, cut), cut)
    long = (ends - starts) >= run
    mark = np.zeros(h.size + 1, dtype=np.int8)
    mark[starts[long]] = 1
    mark[ends[long]] -= 1
    return np.cumsum(mark[:-1]).astype(bool)


def ngram_hashes(units: np.ndarray, lens: np.ndarray, params: Params,
                 stop: np.ndarray | None = None):
    """(hash, record, drop) of every n-gram of each record, in text order: `drop` marks the
    stop-shingles to leave out (see `stop_mask`), None when there are none. Computed once per
    batch and handed to `shingle_hashes` and `shingle_values`."""
    return drop_stop(ngram_pairs(units, lens, params), stop)


def ngram_pairs(units: np.ndarray, lens: np.ndarray, params: Params) -> tuple:
    """(hash, record) of every n-gram of each record, in text order: the half of
    `ngram_hashes` that does not depend on the stop-shingles."""
    return _ngram_hashes(units, lens, params.ngram, params.seed)


def drop_stop(pairs: tuple, stop: np.ndarray | None) -> tuple:
    """`ngram_hashes` from what `ngram_pairs` gave: (hash, record, drop)."""
    h, rec = pairs
    drop = None
    if stop is not None and stop.size and h.size:
        drop = stop_mask(h, rec, stop)
        if not drop.any():
            drop = None
    return h, rec, drop


def shingle_hashes(units: np.ndarray, lens: np.ndarray, params: Params,
                   stop: np.ndarray | None = None, ngrams=None) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit hash of every shingle of each record, and the record of each, without the
    stop-shingles (`stop`: sorted uint64 hashes, see templates.py). `ngrams`: what
    `ngram_hashes` gave for the same units, when already computed."""
    h, rec, drop = ngrams if ngrams is not None else ngram_hashes(units, lens, params, stop)
    if drop is not None:
        keep = ~drop
        h, rec = h[keep], rec[keep]
    return h, rec


def shingle_values(units: np.ndarray, lens: np.ndarray, params: Params,
                   stop: np.ndarray | None = None,
                   drop: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each record's shingles as uint64 values that identify them exactly where they fit (up to
    three characters: 21 bits each; up to two jieba words: their 32-bit numbers), else as their
    64-bit hash; and the record of each. Stop-shingles are left out. For exact Jaccard.
    `drop`: the stop mask of these units' n-grams (`ngram_hashes`), when already computed
    (`stop` is then not looked at)."""
    n = params.ngram
    total = units.size
    count = total - n + 1
    if count <= 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    bits = 21 if params.tokenizer == "char" else 32
    if n * bits > 64:
        if drop is None:
            return shingle_hashes(units, lens, params, stop)
        h, rec = _ngram_hashes(units, lens, n, params.seed)
        return shingle_hashes(units, lens, params, ngrams=(h, rec, drop))
    valid, rec = _valid(lens, n, count)
    starts = np.flatnonzero(valid) if valid is not None else np.arange(count)
    u = units.astype(np.uint64)
    v = u[starts].copy()
    for j in range(1, n):
        v <<= np.uint64(bits)
        v |= u[starts + j]
    if drop is None and stop is not None and stop.size and v.size:
        h, _ = _ngram_hashes(units, lens, n, params.seed)
        drop = stop_mask(h, rec, stop)
    if drop is not None and v.size:
        keep = ~drop
        v, rec = v[keep], rec[keep]
    return v, rec


def ngram_counts(lens: np.ndarray, n: int) -> np.ndarray:
    """How many n-grams each record of `lens` units has (as `_ngram_hashes` gives them)."""
    return np.maximum(lens - (n - 1), 0)


def signatures(units: np.ndarray, lens: np.ndarray, params: Params,
               stop: np.ndarray | None = None, hashes=None) -> np.ndarray:
    """uint32[len(lens), num_perm]: the signature of each record (all EMPTY for a record with
    no shingle: fewer units than the n-gram size, or only stop-shingles). `hashes`: the
    (hash, record) pairs of `shingle_hashes`, when already computed."""
    k = params.num_perm
    nrec = lens.size
    h, rec = hashes if hashes is not None else shingle_hashes(units, lens, params, stop)
    sig = np.full(nrec * k, EMPTY, dtype=np.uint32)
    if h.size:
        bins = ((h >> np.uint64(32)) * np.uint64(k)) >> np.uint64(32)
        flat = rec * k + bins.astype(np.int64)
        np.minimum.at(sig, flat, (h & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    sig = sig.reshape(nrec, k)
    return densify(sig)


def densify(sig: np.ndarray) -> np.ndarray:
    """Fill each empty bin from the next non-empty bin to its right (circularly), offset by the
    distance, so that two records' signatures agree there as often as their sets overlap."""
    empty = sig == EMPTY
    rows = np.flatnonzero(empty.any(axis=1) & ~empty.all(axis=1))
    if rows.size == 0:
        return sig
    k = sig.shape[1]
    sub = sig[rows]
    esub = empty[rows]
    pos = np.arange(k, dtype=np.int32)
    # the next non-empty bin at or right of each bin, k + the first one past the row's end
    big = np.int32(2 * k)
    nxt = np.where(esub, big, pos)
    nxt = np.minimum.accumulate(nxt[:, ::-1], axis=1)[:, ::-1]
    wrap = nxt == big
    nxt[wrap] = np.broadcast_to(nxt[:, :1] + np.int32(k), nxt.shape)[wrap]
    filled = np.take_along_axis(sub, np.where(wrap, nxt - np.int32(k), nxt), axis=1) + \
        (nxt - pos).astype(np.uint32) * np.uint32(0x9E3779B1)
    filled[filled == EMPTY] -= np.uint32(1)  # EMPTY stays reserved for "no shingles"
    sig[rows] = np.where(esub, filled, sub)
    return sig


def band_hashes(sig: np.ndarray, params: Params) -> np.ndarray:
    """uint64[len(sig), bands]: each band's hash, salted by the band's number."""
    b, r = params.bands, params.rows
    x = sig[:, : b * r].reshape(sig.shape[0], b, r).astype(np.uint64)
    h = np.broadcast_to(
        (np.arange(b, dtype=np.uint64) + np.uint64(1)) * np.uint64(_GOLDEN & 0xFFFFFFFFFFFFFFFF),
        (sig.shape[0], b)).copy()
    for j in range(r):
        h *= _P
        h += x[:, :, j]
        mix64(h)
    return h


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity: the share of equal bins (rows of a against rows of b)."""
    return (a == b).mean(axis=-1)


def expected_collision(s: float, bands: int, rows: int) -> float:
    return 1 - (1 - s ** rows) ** bands


def jaccard(a: set, b: set) -> float:
    """Exact Jaccard similarity of two sets (for tests and benchmarks)."""
    return len(a & b) / len(a | b) if (a or b) else 1.0
