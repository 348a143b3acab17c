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
               min_count: int = MIN_COUNT) -> np.ndarray:
    """The stop-shingles of a sample of texts: sorted uint64 shingle hashes (as in
    minhash.shingle_hashes) that occur in at least max(min_count, share x len(texts)) texts."""
    from cqia_cli.dedup.normalize import normalize_batch
    from cqia_cli.dedup.sketch import t2s_converter, word_units
    from cqia_cli.dedup.verify import _distinct

    empty = np.empty(0, np.uint64)
    if share <= 0 or not texts:
        return empty
    need = max(min_count, math.ceil(share * len(texts)))
    if need > len(texts):
        return empty
    parts: list[np.ndarray] = []
    convert = t2s_converter() if params.t2s else None
    for a in range(0, len(texts), _CHUNK):
        chunk = [t[:HEAD] for t in texts[a:a + _CHUNK]]
        if convert is not None:
            chunk = [convert(t) for t in chunk]
        units, lens = normalize_batch(chunk)
        if params.tokenizer == "jieba":
            units, lens = word_units(units, lens)
        h, rec = shingle_hashes(units, lens, params)
        if h.size == 0:
            continue
        parts.append(_distinct(h, rec)[0])  # each record's distinct shingles
    if not parts:
        return empty
    # in how many records each shingle occurs: one sort of every record's distinct shingles
    allh = np.concatenate(parts)
    del parts
    allh.sort()
    start = np.flatnonzero(np.r_[True, allh[1:] != allh[:-1]])
    counts = np.diff(np.r_[start, allh.size])
    return allh[start][counts >= need].astype(np.uint64)


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
