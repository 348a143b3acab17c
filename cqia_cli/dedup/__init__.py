"""Exact and near-duplicate detection for `cqia dedup`, as plain functions over batches.

    normalize   the normalised text (NFKC, width, case, punctuation and spaces removed),
                vectorised over a batch with numpy
    minhash     one-permutation MinHash signatures of character or word n-grams, LSH bands
    sketch      texts -> exact keys, signatures, band hashes (what -j workers compute)
    index       the in-memory index: sorted numpy runs, ~540 bytes per survivor
    engine      the first-wins rule over a batch: lookups, verification, in-batch candidates
    run         one run: streaming (--keep first), two passes (--keep longest|best, --shards)
    redis_index the index in Redis (--storage), and the cross-part rule of --shards
"""
