"""From record texts to what the index needs: exact keys, signatures and band hashes.

`sketch_batch(texts, params)` is a pure function of its arguments, so `-j N` runs it in worker
processes and the result is the same for any N.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from cqia_cli.dedup.minhash import (band_hashes, drop_stop, group_order, ngram_pairs,
                                     shingle_hashes, signatures, sorted_unique)
from cqia_cli.dedup.parts import normalize_parts
from cqia_cli.dedup.verify import REJECTED, ShortTexts, Sides, Verifier, gather

#: in-batch candidates: each record is compared with the first record of each band bucket and
#: with up to this many earlier records of the bucket
NEIGHBOURS = 8


class MissingDependency(Exception):
    """An optional package an option needs is not installed (the message says how to get it)."""


@dataclass
class Sketch:
    keys: np.ndarray   # uint64[n]: hash of the normalised text (exact duplicates)
    sigs: np.ndarray   # uint16[n, num_perm]: the low 16 bits of each bin (verification)
    bands: np.ndarray  # uint64[n, bands]
    near: np.ndarray   # bool[n]: has at least one shingle (not a stop-shingle)
    exact_prev: np.ndarray  # int64[n]: first earlier record of the batch with the same key
    local: tuple       # in-batch near candidates (earlier, later, similarity, kind) verified
    nsh: np.ndarray = None    # int32[n]: shingles (stop-shingles left out), with repeats
    short: ShortTexts = None  # the texts that can be in a short pair (verify.py)
    prefix: Prefixes = None  # the first characters of each normalised text (the warning)
    cap: int = 0              # the index keeps the units of texts with at most cap shingles
    heads: np.ndarray = None  # int32[n]: units of the first field (parts.py), -1: no rule

    def __len__(self) -> int:
        return self.keys.size

    def texts(self, idx: np.ndarray):
        """(shingles, units, unit counts, heads) of records idx (an index array or a mask), as
        the index keeps them: units for short texts only (verify.Verifier.cap)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        nsh = self.nsh[idx]
        keep = nsh <= self.cap
        u, ul = self.short.units.take(idx[keep])
        ulens = np.zeros(nsh.size, np.int64)
        ulens[keep] = ul
        return nsh, u, ulens, self.heads[idx]

    def short_units(self, idx: np.ndarray) -> Sides:
        return self.short.sides(idx)


PREFIX = 32


@lru_cache(maxsize=1)
def t2s_converter():
    try:
        import opencc
    except ImportError:
        raise MissingDependency(
            "--t2s needs the optional OpenCC package: pip install 'cqia[t2s]' (or opencc)"
        ) from None
    for config in ("t2s", "t2s.json"):
        try:
            return opencc.OpenCC(config).convert
        except Exception:  # noqa: BLE001 - the two OpenCC bindings name configs differently
            continue
    raise MissingDependency("--t2s: the installed OpenCC package has no t2s configuration")


@lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def exact_keys(units: np.ndarray, lens: np.ndarray, texts: list[str]) -> np.ndarray:
    """64-bit hash of each normalised text (BLAKE2b-64 of its UTF-32-LE, little-endian: the
    key saved in an --index); a text that normalises to nothing is keyed by its raw text
    instead, so that records of only punctuation never all collapse into one. The digests are
    joined and read as one array: no bytes copy or int per text."""
    buf = memoryview(np.ascontiguousarray(units, dtype="<u4")).cast("B")
    blake = hashlib.blake2b
    digests = []
    a = 0
    for i, b in enumerate((np.cumsum(lens) * 4).tolist()):
        if b > a:
            digests.append(blake(buf[a:b], digest_size=8).digest())
        else:
            digests.append(blake(b"\x00raw\x00" + texts[i].encode("utf-8", "surrogatepass"),
                                 digest_size=8).digest())
        a = b
    return np.frombuffer(b"".join(digests), dtype="<u8").astype(np.uint64)


def word_units(units: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """jieba words of each normalised text, each as a 32-bit number (CRC-32 of its UTF-8)."""
    jieba = _jieba()
    buf = units.tobytes()
    ends = np.cumsum(lens) * 4
    starts = ends - lens * 4
    words: list[int] = []
    counts = np.empty(lens.size, dtype=np.int64)
    for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist())):
        text = buf[a:b].decode("utf-32-le", "surrogatepass")
        ws = [zlib.crc32(w.encode("utf-8", "surrogatepass")) for w in jieba.lcut(text, HMM=False)]
        counts[i] = len(ws)
        words.extend(ws)
    return np.asarray(words, dtype=np.uint32), counts


def local_pairs(sk: Sketch, verifier: Verifier) -> tuple:
    """In-batch near candidates (earlier, later, similarity, kind), verified: each record
    against the first record of each of its band buckets and up to NEIGHBOURS earlier records
    of the bucket."""
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32),
             np.empty(0, np.int8))
    rows = np.flatnonzero(sk.near)
    if rows.size < 2:
        return empty
    nb = sk.bands.shape[1]
    h = sk.bands[rows].reshape(-1)
    rec = np.repeat(rows, nb)
    order = group_order(h)  # equal hashes together, rec ascending (it is already) among them
    h, rec = h[order], rec[order]
    pos = np.arange(h.size)
    start = np.ones(h.size, dtype=bool)
    start[1:] = h[1:] != h[:-1]
    gstart = np.maximum.accumulate(np.where(start, pos, 0))
    a = [rec[gstart]]
    b = [rec]
    for s in range(1, NEIGHBOURS + 1):
        same = h[s:] == h[:-s]
        if not same.any():
            break
        a.append(rec[:-s][same])
        b.append(rec[s:][same])
    a = np.concatenate(a)
    b = np.concatenate(b)
    keep = a < b
    if not keep.any():
        return empty
    pair = sorted_unique((a[keep].astype(np.int64) << 32) | b[keep])
    a, b = pair >> 32, pair & 0xFFFFFFFF
    sims, kinds = verifier.similarity(sk.sigs[a], sk.sigs[b], sk.nsh[a], sk.nsh[b],
                                      lambda i: sk.short_units(a[i]),
                                      lambda i: sk.short_units(b[i]))
    ok = (sims >= verifier.threshold) & (kinds != REJECTED)
    return a[ok], b[ok], sims[ok], kinds[ok]


def earlier_equal(keys: np.ndarray) -> np.ndarray:
    """For each record, the first earlier record of the batch with the same exact key, or -1."""
    _, first_idx, inv = np.unique(keys, return_index=True, return_inverse=True)
    prev = first_idx[inv.reshape(-1)].astype(np.int64)
    prev[prev == np.arange(keys.size)] = -1
    return prev


class Prefixes:
    """The first PREFIX normalised characters of each text of a batch, decoded only when asked
    for (the warning looks at the first removed records only): one array of code points."""

    def __init__(self, units: np.ndarray, lens: np.ndarray) -> None:
        starts = np.cumsum(lens) - lens
        plen = np.minimum(lens, PREFIX)
        self.units = gather(units, starts, plen).astype(np.uint32)
        self.off = np.concatenate([[0], np.cumsum(plen)]).astype(np.int64)

    def __len__(self) -> int:
        return self.off.size - 1

    def __getitem__(self, i: int) -> str:
        a, b = int(self.off[i]), int(self.off[i + 1])
        return self.units[a:b].tobytes().decode("utf-32-le", "replace")


def prefixes(units: np.ndarray, lens: np.ndarray) -> Prefixes:
    return Prefixes(units, lens)


@dataclass
class Prepared:
    """What `prepare_batch` made of a batch's texts: everything that does not depend on the
    stop-shingles learned from the input (a -j worker started early does it while they are
    being learned). Not the n-gram hashes: several times the size of the units, and quick to
    compute again (a worker holds a few prepared batches)."""
    units: np.ndarray
    lens: np.ndarray
    heads: np.ndarray
    keys: np.ndarray
    prefix: Prefixes


def prepare_batch(texts: list[str], params) -> Prepared:
    """The stop-independent first half of `sketch_batch`."""
    convert = t2s_converter() if params.t2s else None
    # heads: where each text's first field (the prompt) ends, for the per-field rule (parts.py)
    units, lens, heads = normalize_parts(texts, convert)
    if convert is not None:  # the raw text keys a text that normalises to nothing
        texts = [convert(t) if n == 0 else t for t, n in zip(texts, lens.tolist())]
    keys = exact_keys(units, lens, texts)
    prefix = prefixes(units, lens)
    if params.tokenizer == "jieba":
        units, lens = word_units(units, lens)
        heads = np.full(lens.size, -1, np.int64)  # word boundaries: the rule is off
    return Prepared(units, lens, heads, keys, prefix)


#: `_hashed` works through a batch this many records at a time. Measured on 100k shared records
#: (batches of 2,048; 6 rounds of -j 1 then -j 2): whole batches -j 1 4.72 s, -j 2 2.94 s;
#: 512 4.55 s, 2.86 s; 1,024 4.54 s, 2.82 s; -j 1's peak RSS 200 -> 172 MB.
HASH_CHUNK = 1024


def _hashed(units: np.ndarray, lens: np.ndarray, params, stop) -> tuple:
    """(shingles of each record, int32; uint32 signatures; the stop mask of every n-gram, or
    False when it marks none) of a batch's normalised units. Each record's are its own, so
    they are made HASH_CHUNK records at a time: the per-n-gram arrays of a whole batch (its
    hashes, records, bins: 8 bytes an n-gram each) are several times its units, and they
    were the largest arrays of a run and slower to go through than smaller ones."""
    n = lens.size
    ends = np.cumsum(lens).tolist()
    nsh, sigs, drops = [], [], []
    dropped = False
    for a in range(0, max(n, 1), HASH_CHUNK):
        b = min(n, a + HASH_CHUNK)
        u = units[(ends[a - 1] if a else 0):(ends[b - 1] if b else 0)]
        ln = lens[a:b]
        ngrams = drop_stop(ngram_pairs(u, ln, params), stop)
        h, rec = shingle_hashes(u, ln, params, ngrams=ngrams)
        nsh.append(np.bincount(rec, minlength=ln.size).astype(np.int32))
        sigs.append(signatures(u, ln, params, hashes=(h, rec)))
        dropped = dropped or ngrams[2] is not None
        drops.append(ngrams[2] if ngrams[2] is not None else ngrams[0].size)
        del h, rec, ngrams
    if dropped:  # a chunk without stop-shingles: a mask of its n-grams, none marked
        drops = [np.zeros(d, bool) if isinstance(d, int) else d for d in drops]
    if len(sigs) == 1:
        return nsh[0], sigs[0], drops[0] if dropped else False
    return (np.concatenate(nsh), np.concatenate(sigs),
            np.concatenate(drops) if dropped else False)


def finish_batch(p: Prepared, verifier: Verifier, local: bool = True) -> Sketch:
    """The second half of `sketch_batch`: what depends on the stop-shingles (`verifier.stop`)."""
    params = verifier.params
    units, lens, heads, keys = p.units, p.lens, p.heads, p.keys
    nsh, sigs32, drop = _hashed(units, lens, params, verifier.stop)
    bands = band_hashes(sigs32, params)
    sigs = sigs32.astype(np.uint16)
    near = nsh > 0
    short = verifier.sets(units, lens, nsh, heads, drop=drop)
    sk = Sketch(keys, sigs, bands, near, earlier_equal(keys), None, nsh, short, p.prefix,
                verifier.cap, heads.astype(np.int32))
    sk.local = local_pairs(sk, verifier) if local else \
        (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32),
         np.empty(0, np.int8))
    return sk


def sketch_batch(texts: list[str], verifier: Verifier, local: bool = True) -> Sketch:
    """Everything about a batch that does not need the index (so -j workers can do it)."""
    return finish_batch(prepare_batch(texts, verifier.params), verifier, local)


# -- for map_batches: the verifier travels once per worker, not with every batch ---------------

_verifier: Verifier | None = None


def init_worker(verifier: Verifier) -> None:
    global _verifier
    _verifier = verifier
    warm_up(verifier.params)


def warm_up(params) -> None:
    """What a worker loads once whatever the run learns: the --t2s converter, jieba."""
    if params.t2s:
        t2s_converter()
    if params.tokenizer == "jieba":
        _jieba()


def sketch_in_worker(texts: list[str]) -> Sketch:
    return sketch_batch(texts, _verifier)
