"""The peers cqia dedup is measured against: datasketch and rensa, used as their docs show.

    python bench/dedup_peers.py rensa|datasketch FILE [--ngram 5] [--threshold 0.8] > kept.jsonl

A complete filter, like `cqia dedup`: read JSONL with orjson, shingle each record's text
(instruction, input, output) into character n-grams, MinHash, LSH, write the records that have
no LSH candidate among the records kept so far. rensa uses its bulk API (a digest matrix per
batch of 2,048 records and `insert_matrix_and_query_duplicate_flags`, its fastest path);
datasketch uses `MinHash.update_batch` and `MinHashLSH` (query, then insert).

`greedy(tool, texts, ...)` is the same for the quality report: for each record in order, its
candidates among the kept records; the earliest one is its survivor (neither tool verifies).
"""

from __future__ import annotations

import sys

import orjson

NUM_PERM = 128
SEED = 42


def text_of(r: dict) -> str:
    return "\n".join(str(r.get(k) or "") for k in ("instruction", "input", "output") if r.get(k))


def shingles(text: str, n: int) -> list[str]:
    if len(text) < n:
        return [text]
    return [text[i:i + n] for i in range(len(text) - n + 1)]


def rensa_bands(threshold: float) -> int:
    """rensa takes a number of bands that divides num_perm: 16 at 0.8 as in its README (8 x 16
    rows: S-curve midpoint ~0.71), 32 below 0.7."""
    return 16 if threshold >= 0.7 else 32


def greedy(tool: str, texts: list[str], ngram: int, threshold: float) -> list[int]:
    """Survivor (0-based index) of each record, or -1 for a kept record."""
    if tool == "rensa":
        from rensa import RMinHash, RMinHashLSH

        lsh = RMinHashLSH(threshold=threshold, num_perm=NUM_PERM,
                          num_bands=rensa_bands(threshold))

        def sketch(t):
            m = RMinHash(num_perm=NUM_PERM, seed=SEED)
            m.update(shingles(t, ngram))
            return m
    else:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)

        def sketch(t):
            m = MinHash(num_perm=NUM_PERM, seed=SEED)
            m.update_batch([s.encode("utf-8") for s in set(shingles(t, ngram))])
            return m
    out = []
    for i, t in enumerate(texts):
        m = sketch(t)
        cands = lsh.query(m)
        if cands:
            out.append(min(cands))
        else:
            lsh.insert(i, m)
            out.append(-1)
    return out


def filter_rensa(path: str, ngram: int, threshold: float) -> None:
    from rensa import RMinHash, RMinHashLSH

    lsh = RMinHashLSH(threshold=threshold, num_perm=NUM_PERM, num_bands=rensa_bands(threshold))
    write = sys.stdout.buffer.write
    start = 0
    with open(path, "rb") as f:
        batch, lines = [], []
        for line in f:
            rec = orjson.loads(line)
            batch.append(shingles(text_of(rec), ngram))
            lines.append(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
            if len(batch) == 2048:
                start = _rensa_batch(lsh, RMinHash, batch, lines, start, write)
                batch, lines = [], []
        if batch:
            _rensa_batch(lsh, RMinHash, batch, lines, start, write)


def _rensa_batch(lsh, RMinHash, batch, lines, start, write) -> int:
    matrix = RMinHash.digest_matrix_from_token_sets(batch, NUM_PERM, SEED)
    flags = lsh.insert_matrix_and_query_duplicate_flags(matrix, start_key=start)
    for line, dup in zip(lines, flags):
        if not dup:
            write(line)
    return start + len(batch)


def filter_datasketch(path: str, ngram: int, threshold: float) -> None:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    write = sys.stdout.buffer.write
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            rec = orjson.loads(line)
            m = MinHash(num_perm=NUM_PERM, seed=SEED)
            m.update_batch([s.encode("utf-8") for s in set(shingles(text_of(rec), ngram))])
            if lsh.query(m):
                continue
            lsh.insert(i, m)
            write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("tool", choices=["rensa", "datasketch"])
    ap.add_argument("file")
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--threshold", type=float, default=0.8)
    a = ap.parse_args()
    (filter_rensa if a.tool == "rensa" else filter_datasketch)(a.file, a.ngram, a.threshold)


if __name__ == "__main__":
    main()
