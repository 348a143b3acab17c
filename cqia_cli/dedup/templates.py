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
from cqia_cli.dedup.minhash import Params, shingle_hashes

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
    With jobs > 1 the texts are counted in that many processes (chunks counted apart, the
    counts added up: the same result for any jobs)."""
    from cqia_cli.parallel import map_batches

    empty = np.empty(0, np.uint64)
    if share <= 0 or not texts:
        return empty
    need = max(min_count, math.ceil(share * len(texts)))
    if need > len(texts):
        return empty
    # jobs > 1: two chunks a process, so that they end together
    size = _CHUNK if jobs <= 1 else max(1, min(_CHUNK, math.ceil(len(texts) / (2 * jobs))))
    chunks = (texts[a:a + size] for a in range(0, len(texts), size))
    parts = [p for p in map_batches(_ChunkCounts(params), chunks, jobs if len(texts) > size else 1)
             if p[0].size]
    if not parts:
        return empty
    # in how many records each shingle occurs: the chunks' counts added up
    allh = np.concatenate([h for h, _ in parts])
    counts = np.concatenate([c for _, c in parts])
    del parts
    order = np.argsort(allh, kind="stable")
    allh, counts = allh[order], counts[order]
    start = np.flatnonzero(np.r_[True, allh[1:] != allh[:-1]])
    total = np.add.reduceat(counts, start)
    return allh[start][total >= need].astype(np.uint64)


class _ChunkCounts:
    """For a chunk of texts: its shingles (sorted) and in how many of its texts each occurs."""

    def __init__(self, params: Params) -> None:
        self.params = params

    def __call__(self, chunk: list[str]) -> tuple[np.ndarray, np.ndarray]:
        from cqia_cli.dedup.normalize import normalize_batch
        from cqia_cli.dedup.sketch import t2s_converter, word_units
        from cqia_cli.dedup.verify import _distinct

        params = self.params
        chunk = [t[:HEAD] for t in chunk]
        if params.t2s:
            convert = t2s_converter()
            chunk = [convert(t) for t in chunk]
        units, lens = normalize_batch(chunk)
        if params.tokenizer == "jieba":
            units, lens = word_units(units, lens)
        h, rec = shingle_hashes(units, lens, params)
        if h.size == 0:
            return np.empty(0, np.uint64), np.empty(0, np.int64)
        h = _distinct(h, rec)[0]  # each record's distinct shingles
        h.sort()
        start = np.flatnonzero(np.r_[True, h[1:] != h[:-1]])
        return h[start], np.diff(np.r_[start, h.size])


def shared_words(heads: list[str], n: int = 8) -> tuple[str, int]:
    """The character n-gram found in the most of `heads` (the starts of removed records'
    normalised texts), grown while as many heads share the longer string: the warning's
    likeliest cause. ("", 0) when there is none."""
    from collections import Counter

    def df(size: int) -> Counter:
        c: Counter = Counter()
        for h in heads:
            c.update({h[i:i + size] for i in range(len(h) - size + 1)})
        return c

    counts = df(n)
    if not counts:
        return "", 0
    best, count = counts.most_common(1)[0]
    while True:
        longer = [w for w in df(len(best) + 1).items() if best in w[0] and w[1] >= count]
        if not longer:
            return best, count
        best = max(longer, key=lambda w: (w[1], w[0]))[0]
