"""cqia dedup: remove exact and near duplicates (MinHash LSH), within or across sets."""

from __future__ import annotations

import click

from cqia_cli.options import IOOptions, command, io_options

#: measured on bench/dedup_groundtruth.py (see docs/dedup.md)
DEFAULT_NGRAM = {"char": 3, "jieba": 2}
DEFAULT_THRESHOLD = 0.4
DEFAULT_NUM_PERM = 128

EXAMPLES = [
    ("Remove duplicates, keeping what was removed (with the survivor it duplicates) aside",
     "cqia dedup --dupes dupes.jsonl data.jsonl > unique.jsonl"),
    ("Keep the best record of each cluster: human-verified, human-written, then longer answer",
     "cqia dedup --keep best --dupes dupes.jsonl data.jsonl -o unique.jsonl"),
    ("Drop nothing: mark clusters, then split so that no cluster straddles train and test",
     "cqia dedup --mark data.jsonl | cqia split --group-by _cluster -o 'out/{split}.jsonl'"),
    ("Decontaminate training data against evaluation sets",
     "cqia dedup --against ceval.jsonl --against cmmlu.jsonl --dupes leaked.jsonl train.jsonl"),
    ("Deduplicate this month's batch against everything seen before, and remember it",
     "cqia dedup --index seen.npz --save-index seen.npz new.jsonl -o new.unique.jsonl"),
    ("Many processes on many machines share one index in Redis",
     "cqia dedup --storage redis://db.local:6379/0 --shards 2 --shard-name a part-a.jsonl"),
    ("Stricter near-duplicates over jieba words, Traditional folded to Simplified, 4 processes",
     "cqia dedup --tokenizer jieba --t2s --threshold 0.7 -j 4 data.jsonl"),
]


def _probability(ctx, param, value):
    if value is not None and not 0.0 < value <= 1.0:
        raise click.BadParameter("must be in (0, 1]")
    return value


@command(
    "dedup",
    examples=EXAMPLES,
    short_help="Remove exact and near duplicates (MinHash LSH).",
)
@io_options(fields=True, jobs=True)
@click.option("--threshold", type=float, default=DEFAULT_THRESHOLD, show_default=True,
              callback=_probability, metavar="J",
              help="Near duplicates: estimated Jaccard similarity of the shingle sets at least J. "
                   "Every LSH candidate is verified against J.")
@click.option("--ngram", type=click.IntRange(min=1), default=None, metavar="N",
              help="Shingle size in units (characters, or words with --tokenizer jieba) "
                   "[default: 3 characters, 2 words].")
@click.option("--tokenizer", type=click.Choice(["char", "jieba"]), default="char",
              show_default=True, help="Shingle units: characters, or jieba words.")
@click.option("--num-perm", type=click.IntRange(min=8, max=1024), default=DEFAULT_NUM_PERM,
              show_default=True, metavar="K", help="MinHash signature size (bins).")
@click.option("--bands", type=click.IntRange(min=1), default=None, metavar="B",
              help="LSH bands [default: derived from --threshold and --num-perm].")
@click.option("--rows", type=click.IntRange(min=1), default=None, metavar="R",
              help="LSH rows per band [default: derived from --threshold and --num-perm].")
@click.option("--t2s", is_flag=True,
              help="Fold Traditional Chinese to Simplified before comparing (needs OpenCC: "
                   "pip install 'cqia[t2s]').")
@click.option("--keep", type=click.Choice(["first", "longest", "best"]), default="first",
              show_default=True,
              help="Which record of a cluster survives: the first in input order, the longest "
                   "text, or the best (human_verified, then answer_from human, then the longer "
                   "output; ties: the first). longest and best read the input twice.")
@click.option("--dupes", "dupes_path", metavar="FILE",
              help="Write every removed record here, unchanged but for "
                   "_dup_of: {line, similarity} naming its survivor.")
@click.option("--mark", is_flag=True,
              help="Remove nothing: add _cluster (the position of the cluster's first record) "
                   "to every record, and _dup_of to those that would be removed.")
@click.option("--clusters", "clusters_path", metavar="FILE",
              help="Write one JSON line per cluster with a removed record: its survivor and "
                   "members with their similarity.")
@click.option("--against", multiple=True, metavar="REF",
              type=click.Path(dir_okay=False, allow_dash=False),
              help="Also remove records that duplicate a record of REF (repeatable); REF records "
                   "are never written.")
@click.option("--index", "index_path", metavar="PATH",
              type=click.Path(dir_okay=False, exists=False),
              help="Load an index saved by --save-index: deduplicate against everything in it "
                   "(its shingle settings apply).")
@click.option("--save-index", "save_index", metavar="PATH",
              help="Save the index (survivors, references, loaded entries) to PATH (.npz).")
@click.option("--storage", metavar="URL",
              help="Keep the index in Redis, redis://HOST:PORT/DB, shared by every process "
                   "that names it (see --shards for processes that run at the same time).")
@click.option("--shards", type=click.IntRange(min=1), default=None, metavar="N",
              help="With --storage: N processes deduplicate N parts of one corpus at the same "
                   "time; the survivor across parts is the record with the smallest key "
                   "(--id-field value, else the hash of its normalised text), whatever the "
                   "timing.")
@click.option("--shard-name", metavar="NAME", default=None,
              help="With --shards: this part's name in _dup_of (default: the input file names).")
@click.option("--namespace", metavar="NAME", default="cqia:dedup", show_default=True,
              help="With --storage: prefix of the Redis keys (one index per namespace).")
@click.option("--id-field", metavar="PATH",
              help="A field that identifies records: _dup_of names the survivor by it too.")
def cli(io: IOOptions, threshold: float, ngram: int | None, tokenizer: str, num_perm: int,
        bands: int | None, rows: int | None, t2s: bool, keep: str, dupes_path: str | None,
        mark: bool, clusters_path: str | None, against: tuple, index_path: str | None,
        save_index: str | None, storage: str | None, shards: int | None,
        shard_name: str | None, namespace: str, id_field: str | None) -> None:
    """Remove exact and near duplicates, keeping one record of each cluster.

    Exact first: records whose normalised text is identical (NFKC, full-width folded to
    half-width, case folded, whitespace and all punctuation removed) are duplicates. Near:
    MinHash LSH over the character n-grams (or jieba word n-grams) of the normalised text;
    every LSH candidate is verified (estimated Jaccard >= --threshold) before a record is
    called a duplicate. Texts shorter than one shingle are compared exactly only.

    Survivors are written unchanged, in input order. A removed record names its survivor by
    its position in the input stream (1 for the first record). The same input and options
    give the same output, for any -j.
    """
    from cqia_cli.dedup.cli import main

    main(**{k: v for k, v in locals().items() if k != "main"})
