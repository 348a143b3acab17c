"""cqia dedup: remove exact and near duplicates (MinHash LSH), within or across sets."""

from __future__ import annotations

import os

import click

from cqia_cli.dedup import defaults as D
from cqia_cli.options import IOOptions, command, io_options

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
@click.option("--threshold", type=float, default=D.THRESHOLD, show_default=True,
              callback=_probability, metavar="J",
              help="Near duplicates: Jaccard similarity of the shingle sets at least J (exact "
                   "when either text is short, else the MinHash estimate). Every LSH candidate "
                   "is verified against J.")
@click.option("--ngram", type=click.IntRange(min=1), default=None, metavar="N",
              help="Shingle size in units (characters, or words with --tokenizer jieba) "
                   "[default: 3 characters, 2 words].")
@click.option("--tokenizer", type=click.Choice(["char", "jieba"]), default="char",
              show_default=True, help="Shingle units: characters, or jieba words.")
@click.option("--num-perm", type=click.IntRange(min=8, max=1024), default=D.NUM_PERM,
              show_default=True, metavar="K", help="MinHash signature size (bins).")
@click.option("--bands", type=click.IntRange(min=1), default=None, metavar="B",
              help="LSH bands [default: derived from --threshold and --num-perm].")
@click.option("--rows", type=click.IntRange(min=1), default=None, metavar="R",
              help="LSH rows per band [default: derived from --threshold and --num-perm].")
@click.option("--template-share", type=click.FloatRange(0.0, 1.0), default=D.TEMPLATE_SHARE,
              show_default=True, metavar="F",
              help="Template-aware shingles: shingles found in at least this share of the first "
                   "--template-sample records (a template, a shared prompt, a signature) are "
                   "left out of every comparison; 0 turns it off.")
@click.option("--template-sample", type=click.IntRange(min=1), default=D.TEMPLATE_SAMPLE,
              show_default=True, metavar="N",
              help="How many of the first records --template-share counts in.")
@click.option("--answer-threshold", type=click.FloatRange(0.0, 1.0), default=None,
              metavar="J",
              help="Per-field evidence: when both records have an input (a prompt applied to "
                   "it), a short pair must also reach this exact Jaccard similarity without "
                   "the first field (the prompt): in input and output. A shared prompt with "
                   "other inputs and answers is not a duplicate. 0 turns it off "
                   "[default: --threshold].")
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
              type=click.Path(allow_dash=False),  # read: checked by io.check_inputs (66)
              help="Also remove records that duplicate a record of REF (repeatable); REF records "
                   "are never written.")
@click.option("--index", "index_path", metavar="PATH",
              type=click.Path(),  # read: checked by io.check_inputs (66)
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
@click.option("--namespace", metavar="NAME", default=D.NAMESPACE, show_default=True,
              help="With --storage: prefix of the Redis keys (one index per namespace).")
@click.option("--id-field", metavar="PATH",
              help="A field that identifies records: _dup_of names the survivor by it too.")
def cli(io: IOOptions, threshold: float, ngram: int | None, tokenizer: str, num_perm: int,
        bands: int | None, rows: int | None, template_share: float, template_sample: int,
        answer_threshold: float, t2s: bool, keep: str, dupes_path: str | None,
        mark: bool, clusters_path: str | None, against: tuple, index_path: str | None,
        save_index: str | None, storage: str | None, shards: int | None,
        shard_name: str | None, namespace: str, id_field: str | None) -> None:
    """Remove exact and near duplicates, keeping one record of each cluster.

    Exact first: records whose normalised text is identical (NFKC, full-width folded to
    half-width, case folded, whitespace and all punctuation removed) are duplicates. Near:
    MinHash LSH over the character n-grams (or jieba word n-grams) of the normalised text,
    leaving out the shingles that a large share of the records have (templates, shared
    prompts: --template-share). Every LSH candidate is verified before a record is called a
    duplicate: by the exact Jaccard similarity when either text is short (at most --num-perm
    shingles; a short pair of 16 shingles or more whose signatures agree in under an eighth
    of the threshold is rejected unchecked), by the MinHash estimate otherwise; very short
    texts (32 characters or fewer)
    that each have content the other lacks (another subject in one template) are never
    duplicates; two short records that both have an input must also be similar without their
    instruction (--answer-threshold): one prompt with other inputs and answers is not a
    duplicate. Texts shorter than one shingle are compared exactly only.

    Survivors are written unchanged, in input order. A removed record names its survivor by
    its position in the input stream (1 for the first record) and says how the similarity
    was measured (identical, jaccard or minhash). The same input and options give the same
    output, for any -j. More than a third of the input removed gives a warning with the
    likeliest cause.
    """
    from cqia_cli import console
    from cqia_cli.dedup.index import MemoryIndex
    from cqia_cli.dedup.minhash import Params, lsh_params
    from cqia_cli.dedup.run import Clusters, Options, Runner
    from cqia_cli.dedup.sketch import MissingDependency, t2s_converter
    from cqia_cli.fields import compile_path
    from cqia_cli.io import check_inputs, is_stdio
    from cqia_cli.status import CqiaError, ExitStatus, InputError

    if mark and dupes_path:
        raise click.UsageError("--mark removes nothing: it cannot be used with --dupes")
    if (shards or shard_name) and not storage:
        raise click.UsageError("--shards and --shard-name need --storage")
    if id_field:
        try:
            compile_path(id_field)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--id-field") from None
    if storage and keep != "first":
        raise click.UsageError("--storage works with --keep first only")
    if shards and clusters_path:
        raise click.UsageError("--clusters is not available with --shards")
    if storage and (index_path or save_index):
        raise click.UsageError("--storage keeps the index in Redis: it cannot be used with "
                               "--index or --save-index")
    ctx = click.get_current_context()
    explicit = {name for name in ("ngram", "tokenizer", "num_perm", "bands", "rows", "t2s")
                if ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT,
                                                          None)}
    check_inputs(list(against) + ([index_path] if index_path else []))
    for path in against:
        if not is_stdio(path) and any(not is_stdio(f) and os.path.exists(f)
                                      and os.path.samefile(f, path) for f in io.files):
            raise click.UsageError(f"{path} is both an input and an --against reference")

    loaded = None
    if index_path:
        try:
            loaded = MemoryIndex.read_meta(index_path)
        except (OSError, ValueError, KeyError) as e:
            raise InputError(f"{index_path}: cannot read the index: {e}") from None
        saved = Params(**loaded[0]["params"])
        wanted = {"ngram": ngram, "tokenizer": tokenizer, "num_perm": num_perm, "bands": bands,
                  "rows": rows, "t2s": t2s}
        for name in sorted(explicit):
            if wanted[name] != getattr(saved, name):
                raise click.UsageError(
                    f"--{name.replace('_', '-')} {wanted[name]} differs from the index "
                    f"{index_path} ({name}={getattr(saved, name)}); an index is only valid for "
                    "the settings it was built with")
        params = saved
    else:
        ngram = ngram or D.NGRAM[tokenizer]
        if bands is None or rows is None:
            b, r = lsh_params(threshold, num_perm)
            if bands is not None:
                r = max(1, num_perm // bands)
                b = bands
            elif rows is not None:
                b = max(1, num_perm // rows)
                r = rows
            bands, rows = b, r
        if bands * rows > num_perm:
            raise click.BadParameter(f"bands x rows ({bands} x {rows}) exceeds --num-perm "
                                     f"{num_perm}", param_hint="--bands/--rows")
        params = Params(ngram=ngram, num_perm=num_perm, bands=bands, rows=rows,
                        tokenizer=tokenizer, t2s=t2s)
    if params.t2s:
        try:
            t2s_converter()
        except MissingDependency as e:
            raise CqiaError(str(e), ExitStatus.USAGE) from None

    from cqia_cli.dedup.parts import PartsGetter

    # texts that know where their first field ends: the per-field rule (dedup/parts.py)
    get_text = PartsGetter(io.text_getter().fields)
    names = [f for f in io.files] or ["-"]
    stream_name = ", ".join("<stdin>" if is_stdio(f) else f for f in names)
    redis_index = None
    if storage:
        from cqia_cli.dedup.redis_index import open_storage

        redis_index = open_storage(storage, namespace, params, keep_ids=bool(id_field))
        redis_index.stream_name = stream_name
        if shards:
            redis_index.check_fresh(shards)
    # the stop-shingles are learned from this input, unless an index brings its own: --index,
    # or a Redis namespace that another process created (every process must shingle alike);
    # parts that run at the same time (--shards) learn none
    learn = not loaded and not shards and (redis_index is None or redis_index.fresh)
    opts = Options(params=params, threshold=threshold, keep=keep, mark=mark, id_field=id_field,
                   against=against, jobs=io.jobs, stream_name=stream_name,
                   encoding=io.encoding, template_share=template_share,
                   answer=threshold if answer_threshold is None else answer_threshold,
                   sample=template_sample, learn=learn)
    if redis_index is not None and not shards:
        index = redis_index
    else:
        index = MemoryIndex(params, keep_ids=bool(id_field))
        if redis_index is not None:
            index.stop = redis_index.stop
    if loaded is not None:
        index.load(*loaded)
    with io.job() as job:
        runner = Runner(opts, index, get_text)
        runner.open_reader = job.open_reader
        dupes = job.side_output(dupes_path, "dupes") if dupes_path else None
        clusters_out = job.side_output(clusters_path, "clusters") if clusters_path else None
        index_out = job.side_output(save_index, "save-index") if save_index else None
        clusters = Clusters() if clusters_out is not None else None
        write = job.out.write
        write_dupe = dupes.write if dupes is not None else (lambda rec: None)
        if shards:
            from cqia_cli.dedup.run import run_sharded

            def sharded(records, reread, write, write_dupe, clusters):
                run_sharded(runner, redis_index, records, reread, write, write_dupe,
                            shards=shards, shard=shard_name or stream_name, note=job.note)

            _two_pass(job, io, runner, sharded, write, write_dupe, clusters)
        elif keep == "first":
            from cqia_cli.dedup.lines import run_first_lines

            # workers parse raw lines, sketch and serialise; this process decides and writes
            run_first_lines(runner, job, job.out.write_raw,
                            dupes.write_raw if dupes is not None else None, clusters)
        else:
            _two_pass(job, io, runner, runner.run_two_pass, write, write_dupe, clusters)
        if clusters is not None:
            clusters.write(clusters_out, runner)
        if save_index:
            index.labels[index.labels.index("\x00current")] = stream_name
            index.save(index_out.stream())
            index.labels[index.labels.index(stream_name)] = "\x00current"
        st = runner.stats
        if st.empty:
            fields = ", ".join(get_text.fields)
            job.note(f"warning: {st.empty:,} records have no text in {fields} (see --field); "
                     "they are duplicates of each other")
        if st.records and st.removed > st.records * D.WARN_SHARE and not mark:
            job.note(_warning(runner, get_text.fields))
        kept = st.records - st.removed
        detail = f"{st.exact:,} exact, {st.near:,} near"
        if st.external:
            detail += f"; {st.external:,} of them of records outside this input"
        verb = "marked" if mark else "removed"
        job.summary(f"dedup: kept {kept:,} of {st.records:,} ({console.fmt_share(kept, st.records)}); "
                    f"{verb} {st.removed:,} ({detail})")


def _warning(runner, fields) -> str:
    """More than a third removed: the likeliest cause, and the option that addresses it."""
    st = runner.stats
    share = st.removed / st.records
    msg = f"warning: removed {share:.0%} of the input ({st.removed:,} of {st.records:,})"
    from cqia_cli.dedup.templates import shared_words

    heads = runner.removed_heads
    words, count = shared_words(heads)
    if words and count * 2 >= len(heads):
        share_opt = runner.o.template_share
        fix = (f"lower --template-share (now {share_opt:g}) so that more shared shingles are "
               "left out" if share_opt > 0 else
               f"leave shared shingles out with --template-share {D.TEMPLATE_SHARE:g}")
        msg += (f"; {count:,} of {len(heads):,} removed records looked at share \"{words}\" "
                "(normalised) near their start: a shared template or prompt? Compare only the "
                f"part that varies (--field output), or {fix}")
    elif st.exact * 2 >= st.removed:
        msg += "; most are exact copies (the same normalised text): nothing to change"
    else:
        msg += (f"; most are near duplicates at --threshold {runner.o.threshold:g}: raise it "
                f"for stricter matches, or compare fewer fields than {', '.join(fields)} "
                "with --field")
    return msg


def _two_pass(job, io, runner, run, write, write_dupe, clusters) -> None:
    """--keep longest|best and --shards: decide over the whole input, then read it again to
    write (`Job.second_pass`: standard input is kept in a temporary file for that)."""
    import itertools

    records = job.records(again=True)
    head = list(itertools.islice(records, runner.sample_size))
    runner.start([runner.get_text(r) for r in head])
    run(itertools.chain(head, records), job.second_pass, write, write_dupe, clusters)
