"""Template-aware shingles: the shingles that occur in a large share of the records.

A template sentence, a shared prompt or a signature puts the same shingles into many records;
they carry no evidence that two records are duplicates, yet they can make up most of a short
record's shingles (`convert --template xiaohongshu`: one of four sentences around each title;
COIG-CQIA's finance subset: ~50 records under each long extraction prompt). Before anything
is compared, `learn_stop` counts in how many records of a sample (the first records of the
input) each shingle occurs; those in at least `share` of them (and in at least `min_count`)
are *stop-shingles*. A stop-shingle is left out of a record's signature and exact Jaccard where
it stands in a run of at least 8 consecutive stop-shingles (a shared phrase of 10 characters or
more: a template sentence, a prompt), not where it stands alone (a common word: removing those
lowers the similarity of edited copies, measured). Records built from one template around
different content then share little; the same content under two template wordings still shares
its content. The exact-duplicate key (the whole normalised text) is not affected.
"""

from __future__ import annotations

import math

import numpy as np

from cqia_cli.dedup import defaults
from cqia_cli.dedup.minhash import Params, group_order, low_halves, mix64, shingle_hashes

SHARE = defaults.TEMPLATE_SHARE
MIN_COUNT = defaults.TEMPLATE_MIN
SAMPLE = defaults.TEMPLATE_SAMPLE
#: units of a text looked at for the counts (a template or a prompt is near its start)
HEAD = 1_000
_CHUNK = 2_048


def learn_stop(texts: list[str], params: Params, share: float = SHARE,
               min_count: int = MIN_COUNT, jobs: int = 1) -> np.ndarray:
    """The stop-shingles of a sample of texts: sorted uint64 shingle hashes (as in
    minhash.shingle_hashes) that occur in at least max(min_count, share x len(texts)) texts.
    With jobs > 1 the texts are split into words (jieba) or converted (t2s) in that many
    processes (the same result for any jobs)."""
    from cqia_cli.parallel import map_batches

    empty = np.empty(0, np.uint64)
    if share <= 0 or not texts:
        return empty
    need = max(min_count, math.ceil(share * len(texts)))
    if need > len(texts):
        return empty
    if params.tokenizer != "jieba" and not params.t2s:
        jobs = 1  # hashing characters takes less than starting a process (measured)
    # jobs > 1: a few chunks a process, so that they end together
    size = _CHUNK if jobs <= 1 else max(256, math.ceil(len(texts) / (4 * jobs)))
    starts = range(0, len(texts), size)
    # a shingle found in `need` texts occurs at least `need` times, and so does every group of
    # shingles that share their low bits: the groups that do not (most) are left out before
    # anything is sorted, chunk by chunk once every chunk is counted, so that only what may be
    # a stop-shingle (about a third) is joined; the rest is counted exactly: in how many texts.
    # (Joining every chunk's hashes first made the largest arrays of the run's start: 10k
    # texts, peak 80 -> 53 MB, measured; fresh memory is not free, see tune_malloc.)
    counts = np.zeros(_GROUPS, np.int64)
    parts: list = []
    for h, rec in map_batches(_ChunkHashes(params), ((a, texts[a:a + size]) for a in starts),
                              jobs if len(texts) > size else 1):
        counts += np.bincount(_low_bits(h), minlength=_GROUPS)
        parts.append((h, rec))
    often = counts >= need
    del counts
    kept = []
    while parts:
        h, rec = parts.pop(0)
        maybe = often[_low_bits(h)]
        kept.append((h[maybe], rec[maybe]))
    del h, rec, maybe
    h = np.concatenate([k[0] for k in kept])
    rec = np.concatenate([k[1] for k in kept])
    del kept
    if h.size == 0:
        return empty
    # equal shingles together, texts ascending among them (minhash.group_order: radix passes,
    # not a comparison sort of 64-bit values; 1.2M shingles: 0.15 -> 0.09 s, measured)
    order = group_order(h)
    h, rec = h[order], rec[order]
    del order
    first = np.ones(h.size, dtype=bool)  # the first of each (shingle, text)
    first[1:] = (h[1:] != h[:-1]) | (rec[1:] != rec[:-1])
    h = h[first]
    start = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
    texts_with = np.diff(np.r_[start, h.size])
    return np.sort(h[start][texts_with >= need]).astype(np.uint64)  # groups were not in order


#: learn_stop's first count: shingles grouped by their low 20 bits
_GROUPS = 1 << 20


def _low_bits(h: np.ndarray) -> np.ndarray:
    """The low 20 bits of each uint64 as uint32, read from the low halves in place."""
    return low_halves(h) & np.uint32(_GROUPS - 1)


class _ChunkHashes:
    """For a chunk (first text's number, texts): the shingle hashes of each text's head, and
    the number of the text of each."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def __call__(self, chunk: tuple[int, list[str]]) -> tuple[np.ndarray, np.ndarray]:
        from cqia_cli.dedup.normalize import normalize_batch
        from cqia_cli.dedup.sketch import t2s_converter, word_units

        first, texts = chunk
        params = self.params
        texts = [t[:HEAD] for t in texts]
        if params.t2s:
            convert = t2s_converter()
            texts = [convert(t) for t in texts]
        units, lens = normalize_batch(texts)
        if params.tokenizer == "jieba":
            units, lens = word_units(units, lens)
        h, rec = shingle_hashes(units, lens, params)
        return h, rec.astype(np.int32) + np.int32(first)


def shared_words(heads: list[str], n: int = 8) -> tuple[str, int]:
    """The character n-gram found in the most of `heads` (the starts of removed records'
    normalised texts; among as common ones, the one met first), grown while as many heads
    share the longer string: the warning's likeliest cause. ("", 0) when there is none."""
    from collections import Counter

    def grown(best: str) -> Counter:
        """In how many heads each string one character longer than `best` (around it) is:
        only the heads that have `best` can have one."""
        c: Counter = Counter()
        size = len(best)
        for h in heads:
            i = h.find(best)
            if i < 0:
                continue
            found = set()
            while i >= 0:
                if i > 0:
                    found.add(h[i - 1:i + size])
                if i + size < len(h):
                    found.add(h[i:i + size + 1])
                i = h.find(best, i + 1)
            c.update(found)
        return c

    best, count = _most_common_gram(heads, n)
    if not best:
        return "", 0
    while True:
        longer = [w for w in grown(best).items() if w[1] >= count]
        if not longer:
            return best, count
        best = max(longer, key=lambda w: (w[1], w[0]))[0]


#: _most_common_gram's rolling hash: an odd 64-bit multiplier
_GRAM_MULT = 0x9E3779B97F4A7C15


def _most_common_gram(heads: list[str], n: int) -> tuple[str, int]:
    """The n-gram in the most of `heads`, the one met first (head by head, left to right)
    among as common ones, and in how many heads it is; ("", 0) when no head has n characters.

    Counted over 64-bit hashes of the n-grams, in numpy: a Counter of every head's n-grams
    took 60-70 ms for the warning's 4,096 heads of 32 characters, at the end of the run. The
    count of the n-gram found is checked against the heads themselves; on a mismatch (two
    n-grams with one hash) the n-grams are counted as strings instead."""
    lens = np.fromiter(map(len, heads), np.int64, len(heads))
    if not heads or int(lens.max()) < n:
        return "", 0
    cps = np.frombuffer("".join(heads).encode("utf-32-le", "surrogatepass"), np.uint32)
    width = int(lens.max())
    mat = np.zeros((len(heads), width), np.uint64)
    mat[np.repeat(np.arange(len(heads)), lens),
        np.arange(cps.size) - np.repeat(np.cumsum(lens) - lens, lens)] = cps
    span = width - n + 1
    acc = np.zeros((len(heads), span), np.uint64)
    mult = np.uint64(_GRAM_MULT)
    with np.errstate(over="ignore"):
        for k in range(n):
            acc = acc * mult + mat[:, k:k + span] + np.uint64(1)
    valid = np.arange(span)[None, :] <= (lens - n)[:, None]
    rows, cols = np.nonzero(valid)  # head by head, left to right
    gram = mix64(acc[rows, cols])
    order = group_order(gram)  # equal hashes together, in the order met
    g, r = gram[order], rows[order]
    new = np.r_[True, g[1:] != g[:-1]]
    in_heads = np.add.reduceat((new | np.r_[True, r[1:] != r[:-1]]).astype(np.int64),
                               np.flatnonzero(new))  # distinct heads with each hash
    first = order[new]  # where each distinct hash is met first
    at = int(first[in_heads == in_heads.max()].min())
    best = heads[int(rows[at])][int(cols[at]):int(cols[at]) + n]
    count = sum(best in h for h in heads)
    if count == int(in_heads.max()):
        return best, count
    grams: dict[str, int] = {}  # two n-grams with one hash: as strings, the slow way
    for h in heads:
        for w in dict.fromkeys(h[i:i + n] for i in range(len(h) - n + 1)):
            grams[w] = grams.get(w, 0) + 1
    return max(grams.items(), key=lambda w: w[1])
