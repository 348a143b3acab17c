"""Verifying a candidate pair: exact Jaccard where a text is short, the MinHash estimate where
both are long.

A one-permutation MinHash signature of a set with far fewer shingles than bins is mostly
densified (copied) bins, and its estimate of the Jaccard similarity can be far off: two forum
replies that share one 3-gram of fifteen (true Jaccard 0.07) were estimated at 0.46. Measured
on pairs of real CQIA texts (docs/dedup.md), the estimate's error stops shrinking once the
larger set has about as many shingles as the signature has bins. So:

- **Short** (either text has at most `short` shingles, default: as many as --num-perm): the
  similarity is the *exact* Jaccard similarity of the two shingle sets, computed from the texts'
  units (a batch has every text's; the index keeps those of its short texts). A pair where one
  side's units are not at hand (a short record against an earlier survivor with more than
  `short` shingles) is not a duplicate: never more lenient than exact.
  For character n-grams up to 3 (the default) and jieba word n-grams up to 2, shingles are
  compared by their exact value; otherwise by a 64-bit hash.
- **Very short** (either text has at most `guard` units, default 32): also, the two texts may
  differ only on one side apart from particles (吗, 呢, 了, ...): a text that has content
  characters the other lacks *and* lacks some the other has is a different question (帮我写一篇
  关于X的详细介绍 with another X), however many characters they share. Insertions (a 请问
  prefix, a particle), punctuation, spacing and width (already gone in the normalised text)
  keep a duplicate.
- **Long** (both texts have more shingles): the MinHash estimate, the share of equal bins.

`kind` says which: IDENTICAL (the same normalised text), JACCARD (exact), MINHASH (estimate),
or REJECTED (not a duplicate, whatever the similarity).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from cqia_cli.dedup import defaults
from cqia_cli.dedup.minhash import (Params, ngram_counts, ngram_hashes, shingle_hashes,
                                    shingle_values, sorted_member, sorted_unique,
                                    stop_mask)

REJECTED, MINHASH, JACCARD, IDENTICAL = 0, 1, 2, 3
MEASURE = {MINHASH: "minhash", JACCARD: "jaccard", IDENTICAL: "identical"}

#: characters that may be added, dropped or swapped in a very short text without changing what
#: it asks: modal and structural particles
PARTICLES = "吗嘛么呢吧啊呀哦哟哈了的地得啦呐哇嗯噢喔呗咧嘞"
GUARD_UNITS = 32
#: a text that has more units than this times the store cap is not kept (its shingles are
#: mostly stop-shingles): bounds the memory of a kept text
UNITS_PER_SHINGLE = 4


@dataclass
class Ragged:
    """Several uint32 sequences in one array: sequence i is flat[off[i]:off[i + 1]]."""

    flat: np.ndarray
    off: np.ndarray

    @staticmethod
    def empty(n: int, dtype=np.uint32) -> "Ragged":
        return Ragged(np.empty(0, dtype), np.zeros(n + 1, np.int64))

    @property
    def lens(self) -> np.ndarray:
        return np.diff(self.off)

    def take(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.asarray(idx, dtype=np.int64)
        starts = self.off[idx]
        lens = self.off[idx + 1] - starts
        return gather(self.flat, starts, lens), lens


def gather(flat: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    total = int(lens.sum())
    if total == 0:
        return np.empty(0, flat.dtype)
    pos = np.repeat(starts - (np.cumsum(lens) - lens), lens) + np.arange(total)
    return flat[pos]


@dataclass
class Verifier:
    params: Params
    threshold: float
    stop: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    short: int | None = None
    guard: int = GUARD_UNITS
    #: the per-field rule: the input-and-answer parts of a short pair must reach this exact
    #: Jaccard similarity too (0: off)
    answer: float = defaults.ANSWER_THRESHOLD

    def __post_init__(self) -> None:
        if self.short is None:
            self.short = self.params.num_perm
        # the texts whose units are kept: the short ones (a pair of a short record with an
        # earlier, longer survivor whose units are not kept is not a duplicate: measured, it
        # costs little recall, and keeping every text up to short / threshold shingles would
        # double the index's memory per record)
        self.cap = self.short
        # a batch keeps the units of every text that can be in a short pair: a longer text
        # cannot reach the threshold with a short one, as J <= |A| / |B|
        self.reach = int(np.ceil(self.short / max(self.threshold, 1e-9)))
        # and the units of every text that can be in a very short pair (the guard)
        self.tiny_reach = int(np.ceil(self.guard / max(self.threshold, 1e-9)))
        if self.params.tokenizer == "char":
            self.particles = np.array(sorted(map(ord, PARTICLES)), dtype=np.uint32)
        else:
            self.particles = np.array(sorted({zlib.crc32(p.encode()) for p in PARTICLES}),
                                      dtype=np.uint32)

    # -- what a sketch keeps ------------------------------------------------------------------

    def kept(self, nsh: np.ndarray, lens: np.ndarray) -> np.ndarray:
        """Which texts of a batch keep their units: those that can be in a short pair."""
        return (nsh > 0) & (nsh <= self.reach) & (lens <= self.reach * UNITS_PER_SHINGLE)

    # -- pairs --------------------------------------------------------------------------------

    def similarity(self, sig_a: np.ndarray, sig_b: np.ndarray, nsh_a: np.ndarray,
                   nsh_b: np.ndarray, sets_a, sets_b) -> tuple[np.ndarray, np.ndarray]:
        """(similarity float32, kind int8) of pairs. `sets_a`/`sets_b`: callables that take
        the positions (in the pair arrays) of the short pairs and return the `Sides` of their
        a / b records."""
        m = sig_a.shape[0]
        sim = (sig_a == sig_b).mean(axis=1).astype(np.float32) if m else \
            np.zeros(0, np.float32)
        kind = np.full(m, MINHASH, dtype=np.int8)
        least = np.minimum(nsh_a, nsh_b)
        short = np.flatnonzero(least <= self.short)
        # a short pair the signatures all but rule out is rejected without gathering its sets:
        # both texts have SKIP_MIN shingles or more, and fewer than threshold / SKIP_DIVISOR of
        # the bins agree (0.05 at 0.4). Never a removal: only a pair not checked. Measured:
        # on 100k different records 80% of 241k short pairs, none of them at an exact Jaccard
        # of 0.3 or more; on the quality ground truth 14.5k of 62.5k, none either.
        far = (least[short] >= defaults.SKIP_MIN) & \
            (sim[short] < self.threshold / defaults.SKIP_DIVISOR)
        if far.any():
            kind[short[far]] = REJECTED
            short = short[~far]
        # in chunks: the sets of an index's side are made again from its units (index.py),
        # and a batch can have tens of thousands of short candidates: bounded scratch
        for a in range(0, short.size, _PAIRS):
            self._short(sim, kind, short[a:a + _PAIRS], sets_a, sets_b)
        return sim, kind

    def _short(self, sim, kind, short, sets_a, sets_b) -> None:
        A = sets_a(short)
        B = sets_b(short)
        both = A.kept & B.kept
        kind[short[~both]] = REJECTED
        sim[short[~both]] = 0.0
        if both.any():
            sel = np.flatnonzero(both)
            va, la = _subset(A.vals, A.vlens, sel)
            vb, lb = _subset(B.vals, B.vlens, sel)
            rows = short[sel]
            sim[rows] = jaccard(va >> np.uint64(1), la, vb >> np.uint64(1), lb)
            kind[rows] = JACCARD
            if self.answer > 0:
                self.check_answers(sim, kind, rows, va, la, vb, lb)
            ta, tb = A.ulens[sel], B.ulens[sel]
            tiny = np.flatnonzero((np.minimum(ta, tb) <= self.guard) & (ta > 0) & (tb > 0))
            if tiny.size:
                ua, la = A.units(sel[tiny])
                ub, lb = B.units(sel[tiny])
                sub = self.substituted(ua, la, ub, lb)
                kind[rows[tiny[sub]]] = REJECTED

    def check_answers(self, sim, kind, rows, va, la, vb, lb) -> None:
        """The per-field rule (parts.py): of the pairs `rows` that reach the threshold, those
        whose input-and-answer parts (the shingles flagged in their sets) are less similar
        than `answer` are REJECTED; the rule applies where both texts have such a part (both
        records have an input)."""
        hit = np.flatnonzero(sim[rows] >= self.threshold)
        if hit.size == 0:
            return
        sa, sb = _answers(va, la, hit), _answers(vb, lb, hit)
        ja = jaccard(sa[0], sa[1], sb[0], sb[1])
        bad = (sa[1] > 0) & (sb[1] > 0) & (ja < self.answer)
        kind[rows[hit[bad]]] = REJECTED

    def sets(self, units: np.ndarray, lens: np.ndarray, nsh: np.ndarray,
             heads: np.ndarray | None = None, drop: np.ndarray | None = None) -> "ShortTexts":
        """What a batch keeps for the short pairs of its records (`ShortTexts`): which can be
        in one, their units, first fields and stop bits; their sets are made from these when a
        pair needs them (most never do: 22k of 70k kept texts in 100k CQIA records). `drop`:
        the batch's stop mask (minhash.ngram_hashes) when already computed, False when it
        found none; None: computed here."""
        kept = self.kept(nsh, lens)
        n = lens.size
        if not kept.any():
            return ShortTexts(kept, Ragged.empty(n), None, None, self.params)
        sel = np.flatnonzero(kept)
        ku, kl = _subset(units, lens, sel)
        counts = np.where(kept, ngram_counts(lens, self.params.ngram), 0)
        if drop is None:
            drop = ngram_hashes(units, lens, self.params, self.stop)[2]
        stopped = None
        if drop is not None and drop is not False and drop.any():
            stopped = Ragged(drop[np.repeat(kept, ngram_counts(lens, self.params.ngram))],
                             offsets(counts))
        ul = np.where(kept, lens, 0)
        return ShortTexts(kept, Ragged(ku.astype(np.uint32, copy=False), offsets(ul)),
                          None if heads is None else np.asarray(heads, np.int64), stopped,
                          self.params)

    def substituted(self, ua, la, ub, lb) -> np.ndarray:
        """Each text of the pair has a unit (not a particle) more often than the other: a
        substitution, not only insertions. Counted as multisets, so that a repeated word
        replaced by another is seen."""
        n = la.size
        ka, ca = _counted(ua, la)
        kb, cb = _counted(ub, lb)
        more_a = ca > _count_in(ka, kb, cb)
        more_b = cb > _count_in(kb, ka, ca)
        content_a = ~sorted_member((ka & np.uint64(0xFFFFFFFF)).astype(np.uint32),
                                    self.particles)
        content_b = ~sorted_member((kb & np.uint64(0xFFFFFFFF)).astype(np.uint32),
                                    self.particles)
        has_a = np.bincount((ka[more_a & content_a] >> np.uint64(32)).astype(np.int64),
                            minlength=n) > 0
        has_b = np.bincount((kb[more_b & content_b] >> np.uint64(32)).astype(np.int64),
                            minlength=n) > 0
        return has_a & has_b


def _counted(units: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pair << 32 | unit) keys, sorted and distinct, with how often each occurs."""
    rec = np.repeat(np.arange(lens.size, dtype=np.uint64), lens)
    keys, counts = np.unique((rec << np.uint64(32)) | units.astype(np.uint64),
                             return_counts=True)
    return keys, counts


def _count_in(keys: np.ndarray, other: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """How often each of `keys` occurs on the other side (0 when it does not)."""
    if other.size == 0 or keys.size == 0:
        return np.zeros(keys.size, np.int64)
    pos = np.minimum(np.searchsorted(other, keys), other.size - 1)
    return np.where(other[pos] == keys, counts[pos], 0)


@dataclass
class ShortTexts:
    """A batch's texts that can be in a short pair: their units, where their first field ends
    and which of their shingles are stop-shingles left out; `sides(idx)` makes the sets."""

    kept: np.ndarray              # bool[n]
    units: Ragged                 # the units of the kept texts (none for the others)
    heads: np.ndarray | None      # int64[n]: units of the first field (parts.py), -1: no rule
    stopped: Ragged | None        # per kept text, a bool per shingle: a stop-shingle left out
    params: Params
    # the sets made so far (a text is in in-batch pairs and in pairs with the index, on both
    # sides, in several chunks): where each starts in `made` (-1: not yet) and its length.
    # They travel with the batch from a -j worker to the main process.
    made_at: np.ndarray = None
    made_len: np.ndarray = None
    made: np.ndarray = None

    def sides(self, idx: np.ndarray) -> "Sides":
        """The `Sides` of texts idx (positions in the batch): each kept text's set is made
        once however often it comes, in this call or an earlier one."""
        idx = np.asarray(idx, dtype=np.int64)
        kept = self.kept[idx]
        if self.made_at is None:
            self.made_at = np.full(self.kept.size, -1, np.int64)
            self.made_len = np.zeros(self.kept.size, np.int64)
            self.made = np.empty(0, np.uint64)
        todo = sorted_unique(idx[kept])
        todo = todo[self.made_at[todo] < 0]
        if todo.size:
            ku, kl = self.units.take(todo)
            st = None
            if self.stopped is not None:
                st = self.stopped.take(todo)[0]
            v, vl = set_values(ku, kl, None if self.heads is None else self.heads[todo],
                               self.params, _NO_STOP, st)
            self.made_at[todo] = self.made.size + offsets(vl)[:-1]
            self.made_len[todo] = vl
            self.made = np.concatenate([self.made, v])
        vlens = np.where(kept, self.made_len[idx], 0)
        has = vlens > 0
        return Sides(kept, gather(self.made, self.made_at[idx][has], vlens[has]), vlens,
                     self.units, idx)


_NO_STOP = np.empty(0, np.uint64)


@dataclass
class Sides:
    """One side of a list of pairs: its records' shingle sets, and where their units are (only
    the very short records' are looked at: gathered when asked for)."""

    kept: np.ndarray   # bool[m]: the record's set is at hand
    vals: np.ndarray   # uint64: the distinct shingle values, sorted, record after record
    vlens: np.ndarray  # int64[m]
    source: Ragged     # the units of these records (and others)
    at: np.ndarray     # int64[m]: each record's sequence in `source` (length 0: not kept)

    @property
    def ulens(self) -> np.ndarray:
        """int64[m]: each record's units, 0 where not kept."""
        return self.source.off[self.at + 1] - self.source.off[self.at]

    def units(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The units of records `pos` (positions in the pairs), one after the other, and
        how many each has."""
        return self.source.take(self.at[pos])


_PAD = np.uint64(0xFFFFFFFFFFFFFFFF)
_PAIRS = 1024  # short pairs verified at once
_ROWS = 2048  # pairs (or records) sorted at once: bounded scratch


def _padded(vals: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Each sequence in a row of a matrix padded with _PAD (values never reach it: 63-bit
    packed shingles or mixed hashes), each row sorted."""
    n = lens.size
    width = max(1, int(lens.max()) if n else 1)
    m = np.full((n, width), _PAD, dtype=np.uint64)
    rec = np.repeat(np.arange(n), lens)
    col = np.arange(vals.size) - np.repeat(np.cumsum(lens) - lens, lens)
    m[rec, col] = vals
    m.sort(axis=1)
    return m


def jaccard(va, la, vb, lb) -> np.ndarray:
    """Exact Jaccard similarity of pairs of distinct value sets (pair i: la[i] values of va,
    lb[i] of vb, one pair after the other)."""
    n = la.size
    inter = np.zeros(n, np.int64)
    oa, ob = offsets(la), offsets(lb)
    for a in range(0, n, _ROWS):
        b = min(n, a + _ROWS)
        m = _pair_rows(va[oa[a]:oa[b]], la[a:b], vb[ob[a]:ob[b]], lb[a:b])
        inter[a:b] = ((m[:, 1:] == m[:, :-1]) & (m[:, 1:] != _PAD)).sum(axis=1)
    union = la + lb - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0).astype(np.float32)


_LOW63 = np.uint64(0x7FFFFFFFFFFFFFFF)


def shingle_flags(units: np.ndarray, lens: np.ndarray, heads: np.ndarray | None, params: Params,
                  stop: np.ndarray, stopped: np.ndarray | None = None):
    """Each record's shingle values (stop-shingles left out) encoded with the per-field flag:
    value << 1 | (the shingle ends after the record's first field: a record with an input has
    at least one flagged shingle), and the record of each. Values are 63-bit (a packed
    3-gram, or a hash cut to 63 bits). `stopped`: which shingles are stop-shingles left out,
    when known (the index keeps it), else found from `stop`."""
    v, rec = shingle_values(units, lens, params)
    if v.size == 0:
        return v, rec
    n = params.ngram
    flag = np.zeros(v.size, np.uint64)
    if heads is not None and (heads >= 0).any():
        ends = np.cumsum(lens)
        count = units.size - n + 1
        allrec = np.repeat(np.arange(lens.size), lens)[:count]
        starts = np.flatnonzero(np.arange(n, count + n) <= ends[allrec])
        h = heads[rec]
        pos = starts - (ends - lens)[rec]
        flag = ((h >= 0) & (pos + n > h)).astype(np.uint64)
    if stopped is None and stop.size:
        stopped = stop_mask(shingle_hashes(units, lens, params)[0], rec, stop)
    if stopped is not None and stopped.any():
        keep = ~stopped
        v, rec, flag = v[keep], rec[keep], flag[keep]
    return ((v & _LOW63) << np.uint64(1)) | flag, rec


def set_values(units: np.ndarray, lens: np.ndarray, heads: np.ndarray | None, params: Params,
               stop: np.ndarray, stopped: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The distinct shingle values of each text (`shingle_flags`), sorted, text after text,
    and how many each has. A shingle found in both parts of a text is kept once, unflagged:
    the input's evidence is what the prompt does not say already (sent1, PREDICTION, ...)."""
    n = lens.size
    v, r = _distinct(*shingle_flags(units, lens, heads, params, stop, stopped))
    if v.size > 1:  # v << 1 and v << 1 | 1 are neighbours: keep the unflagged one
        twin = np.zeros(v.size, bool)
        twin[1:] = (v[1:] == v[:-1] + np.uint64(1)) & (r[1:] == r[:-1]) & \
            ((v[:-1] & np.uint64(1)) == 0)
        if twin.any():
            v, r = v[~twin], r[~twin]
    return v, np.bincount(r, minlength=n).astype(np.int64) if r.size else np.zeros(n, np.int64)


def _answers(vals: np.ndarray, lens: np.ndarray, pairs: np.ndarray):
    """The flagged values (the input-and-answer shingles, decoded) of pairs `pairs` of a
    pair-after-pair array, and how many each pair has."""
    v, ln = _subset(vals, lens, pairs)
    f = (v & np.uint64(1)) == 1
    rec = np.repeat(np.arange(pairs.size), ln)
    return v[f] >> np.uint64(1), np.bincount(rec[f], minlength=pairs.size).astype(np.int64)


def _pair_rows(va, la, vb, lb) -> np.ndarray:
    """Row i: pair i's a values, then its b values, padded with _PAD, sorted. Each side is
    sorted already (`_distinct`), so a stable sort (timsort) only merges the two runs: half the
    time of sorting the rows afresh."""
    k = la.size
    width = max(1, int((la + lb).max()) if k else 1)
    m = np.full((k, width), _PAD, dtype=np.uint64)
    ra = np.repeat(np.arange(k), la)
    m[ra, np.arange(va.size) - np.repeat(np.cumsum(la) - la, la)] = va
    rb = np.repeat(np.arange(k), lb)
    m[rb, la[rb] + np.arange(vb.size) - np.repeat(np.cumsum(lb) - lb, lb)] = vb
    m.sort(axis=1, kind="stable")
    return m


def offsets(lens: np.ndarray) -> np.ndarray:
    """Where each run of a ragged array starts, and where the last ends (int64, len(lens) + 1):
    run i is flat[off[i]:off[i + 1]]."""
    return np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)


def _subset(flat, lens, sel):
    off = offsets(lens)
    return gather(flat, off[sel], lens[sel]), lens[sel]


def _distinct(v: np.ndarray, rec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (value, record) pairs, sorted by record then value (`rec` ascending, as
    shingle_values gives them)."""
    if v.size == 0:
        return v, rec
    n = int(rec[-1]) + 1
    lens = np.bincount(rec, minlength=n)
    vals, recs = [], []
    off = offsets(lens)
    for a in range(0, n, _ROWS):
        b = min(n, a + _ROWS)
        m = _padded(v[off[a]:off[b]], lens[a:b])
        keep = m != _PAD
        keep[:, 1:] &= m[:, 1:] != m[:, :-1]
        vals.append(m[keep])
        recs.append(np.repeat(np.arange(a, b), keep.sum(axis=1)))
    return np.concatenate(vals), np.concatenate(recs)
