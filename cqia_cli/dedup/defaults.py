"""Every default of `cqia dedup`, in one place (the command's options, Params and Options read
them). Measured on bench/dedup_groundtruth.py (docs/dedup.md)."""

NGRAM = {"char": 3, "jieba": 2}
THRESHOLD = 0.4
NUM_PERM = 128
#: templates.py: stop-shingles are the shingles in at least this share of the sample's
#: records (and in at least TEMPLATE_MIN of them)
TEMPLATE_SHARE = 0.001
TEMPLATE_MIN = 10
TEMPLATE_SAMPLE = 10_000
#: minhash.stop_mask: a stop-shingle is left out where it stands in a run of at least this
#: many (a shared phrase of 10 characters or more), not alone (a common word)
TEMPLATE_RUN = 8
#: verify.py, parts.py: when both records have an input, a short pair must also be this similar
#: (exact Jaccard) without the first field (the prompt), in input and answer; the command's
#: default is --threshold's value
ANSWER_THRESHOLD = THRESHOLD
#: verify.py: a short pair whose texts both have at least SKIP_MIN shingles and whose
#: signatures agree in fewer than threshold / SKIP_DIVISOR of their bins is rejected without
#: its exact Jaccard (the signatures all but rule it out)
SKIP_MIN = 16
SKIP_DIVISOR = 8
#: engine.py: an LSH bucket gives at most its oldest BUCKET_LIMIT entries as candidates
BUCKET_LIMIT = 16
#: run.py: records per batch (what a -j worker sketches at once)
BATCH = 2048
#: commands/dedup.py: warn when more than this share of the input is removed
WARN_SHARE = 1 / 3
NAMESPACE = "cqia:dedup"
