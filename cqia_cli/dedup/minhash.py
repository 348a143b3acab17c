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
    mix64(h)
    ends = np.cumsum(lens)
    rec = np.repeat(np.arange(lens.size), lens)[:count]
    # an n-gram is valid when it ends inside its own record
    valid = np.arange(n, count + n) <= ends[rec]
    return h[valid], rec[valid]


_BITS = 22
_bitmaps: dict = {}


def _bitmap(table: np.ndarray) -> np.ndarray:
    """A one-byte-per-slot filter over the top bits of a table of (well mixed) hashes: most
    values not in the table are told apart without a binary search."""
    key = (id(table), table.size, int(table[0]), int(table[-1]))
    bm = _bitmaps.get(key)
    if bm is None:
        bm = np.zeros(1 << _BITS, dtype=bool)
        bm[(table >> np.uint64(64 - _BITS)).astype(np.int64)] = True
        _bitmaps.clear()
        _bitmaps[key] = bm
    return bm


def in_sorted(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    """values[i] in table (a sorted array), vectorised."""
    if table.size == 0 or values.size == 0:
        return np.zeros(values.size, dtype=bool)
    if table.size >= 1024 and values.size >= 4096:
        out = _bitmap(table)[(values >> np.uint64(64 - _BITS)).astype(np.int64)]
        maybe = np.flatnonzero(out)
        if maybe.size:
            v = values[maybe]
            pos = np.minimum(np.searchsorted(table, v), table.size - 1)
            out[maybe] = table[pos] == v
        return out
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
    start = np.ones(h.size, dtype=bool)
    start[1:] = (m[1:] != m[:-1]) | (rec[1:] != rec[:-1])
    seg = np.cumsum(start) - 1
    return m & (np.bincount(seg)[seg] >= run)


def shingle_hashes(units: np.ndarray, lens: np.ndarray, params: Params,
                   stop: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 64-bit hash of every shingle of each record, and the record of each, without the
    stop-shingles (`stop`: sorted uint64 hashes, see templates.py)."""
    h, rec = _ngram_hashes(units, lens, params.ngram, params.seed)
    if stop is not None and stop.size and h.size:
        keep = ~stop_mask(h, rec, stop)
        h, rec = h[keep], rec[keep]
    return h, rec


def shingle_values(units: np.ndarray, lens: np.ndarray, params: Params,
                   stop: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each record's shingles as uint64 values that identify them exactly where they fit (up to
    three characters: 21 bits each; up to two jieba words: their 32-bit numbers), else as their
    64-bit hash; and the record of each. Stop-shingles are left out. For exact Jaccard."""
    n = params.ngram
    total = units.size
    count = total - n + 1
    if count <= 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    bits = 21 if params.tokenizer == "char" else 32
    if n * bits > 64:
        return shingle_hashes(units, lens, params, stop)
    ends = np.cumsum(lens)
    rec = np.repeat(np.arange(lens.size), lens)[:count]
    valid = np.arange(n, count + n) <= ends[rec]
    starts = np.flatnonzero(valid)
    rec = rec[valid]
    u = units.astype(np.uint64)
    v = u[starts].copy()
    for j in range(1, n):
        v <<= np.uint64(bits)
        v |= u[starts + j]
    if stop is not None and stop.size and v.size:
        h, _ = _ngram_hashes(units, lens, n, params.seed)
        keep = ~stop_mask(h, rec, stop)
        v, rec = v[keep], rec[keep]
    return v, rec


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
    pos = np.arange(2 * k)
    idx = np.where(np.concatenate([esub, esub], axis=1), 4 * k, pos)
    nxt = np.minimum.accumulate(idx[:, ::-1], axis=1)[:, ::-1][:, :k]
    filled = np.take_along_axis(sub, nxt % k, axis=1) + \
        (nxt - pos[:k]).astype(np.uint32) * np.uint32(0x9E3779B1)
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
