"""cqia split: records into train/valid/test files or numbered shards, deterministically."""

from __future__ import annotations

from fractions import Fraction

import click

from cqia_cli import console
from cqia_cli.options import FIELD_PATH, IOOptions, command, io_options
from cqia_cli.status import CqiaError, ExitStatus, InputError

EXAMPLES = [
    ("Train, validation and test sets of exactly 90/5/5 percent",
     "cqia split --ratios train=0.9,valid=0.05,test=0.05 -o 'out/{split}.jsonl' clean.jsonl"),
    ("500 test and 500 validation records, the rest to train, compressed",
     "cqia split --counts test=500,valid=500 --rest train -o 'out/{split}.jsonl.gz' clean.jsonl"),
    ("Keep the task mix in every split, and near-duplicates (dedup's _cluster) together",
     "cqia split --ratios train=0.9,test=0.1 --stratify task_type.major --group-by _cluster "
     "-o 'out/{split}.jsonl' clustered.jsonl"),
    ("Constant memory on a huge stream: each record's split is a hash of its instruction",
     "zcat big.jsonl.gz | cqia split --stream --key instruction --ratios train=0.99,test=0.01 "
     "-o 'out/{split}.jsonl.zst'"),
    ("16 shards of (almost) equal size",
     "cqia split --shards 16 -o 'shards/part-{shard:05d}.jsonl' clean.jsonl"),
    ("See which split each record would get, without writing files",
     "cqia split --mark --ratios train=0.9,test=0.1 clean.jsonl | jq -r ._split | sort | uniq -c"),
    ("Splits cut into files of 100,000 records",
     "cqia split --ratios train=0.98,test=0.02 --shard-size 100000 "
     "-o 'out/{split}-{shard:03d}.jsonl' clean.jsonl"),
]

#: More parts than this are summarised by their smallest and largest instead of one row each.
_MAX_TABLE_ROWS = 32


@command(
    "split",
    examples=EXAMPLES,
    short_help="Split records into train/valid/test sets or shards, deterministically.",
)
@io_options(output=False, seed=True)
@click.option("-o", "--output", "pattern", metavar="PATTERN",
              help="File name pattern with {split} (the split's name) and/or {shard} (its "
                   "number; {shard:05d} pads it); each file written atomically, compressed by "
                   "suffix (.gz .bz2 .xz .zst). Required.")
@click.option("--ratios", multiple=True, metavar="NAME=R,...",
              help="Split by ratios, e.g. train=0.9,valid=0.05,test=0.05 (or 1/3); ratios "
                   "adding up to less than 1 leave the rest to --rest.")
@click.option("--counts", multiple=True, metavar="NAME=N,...",
              help="Split by record counts, e.g. test=500,valid=500; the rest goes to --rest.")
@click.option("--rest", metavar="NAME",
              help="The split that takes what --counts or --ratios leave  [default: train].")
@click.option("--stream", is_flag=True,
              help="One pass in constant memory: each record's split is a seeded hash of its "
                   "key, stable across runs, machines and shards of the input (ratios are then "
                   "met on average, not exactly).")
@click.option("--key", "keys", multiple=True, metavar="PATH", type=FIELD_PATH,
              help="With --stream: the field(s) whose text is hashed (for a record without a "
                   "--group-by value, when that is given); repeatable  [default: instruction, "
                   "input and output].")
@click.option("--stratify", metavar="PATH", type=FIELD_PATH,
              help="Keep the ratios within each value of this field (e.g. task_type.major, "
                   "domain); a list counts by its first element.")
@click.option("--group-by", metavar="PATH", type=FIELD_PATH,
              help="Records with the same value here (e.g. _cluster, instruction) land in the "
                   "same split; a record without a value is a group of its own.")
@click.option("--shards", type=click.IntRange(min=1), metavar="N",
              help="Deal the records into N numbered shards of (almost) equal size instead of "
                   "named splits; the pattern needs {shard}.")
@click.option("--shard-size", type=click.IntRange(min=1), metavar="N",
              help="Cut each split's file (or the whole input, alone) into files of N records, "
                   "in input order; the pattern needs {shard}.")
@click.option("--mark", is_flag=True,
              help="Write every record, in input order, to standard output (or to -o FILE, a "
                   "plain name) with its split in a `_split` field (`_shard` with --shards), "
                   "instead of one file per split.")
def cli(io: IOOptions, pattern: str | None, ratios: tuple, counts: tuple, rest: str | None,
        stream: bool, keys: tuple, stratify: str | None, group_by: str | None,
        shards: int | None, shard_size: int | None, mark: bool) -> None:
    """Split records into train/validation/test files, or numbered shards, deterministically.

    Every input record goes to exactly one output file, unchanged; within a file the records
    keep their input order. -o is a pattern with {split} (or {shard}); nothing goes to standard
    output, unless --mark writes all records there, each with its split in `_split`. The same
    input, options and --seed give byte-identical files; another seed gives another split.

    Exact mode (the default) meets the ratios exactly: each split gets the floor or the ceiling
    of N x ratio records (largest remainders get the ceilings). It reads the input twice: input
    files are read again, standard input and pipes are spooled to a temporary file (in $TMPDIR).
    Between the passes it holds about one byte per record (4 more with --stratify; 4 more and
    ~100 per distinct group with --group-by), not the records.

    --stream reads once in constant memory: each record's split is decided by a seeded 64-bit
    hash of its key (--key, or --group-by when given), so a record lands in the same split in
    every run, on every machine and in any shard of the input; the ratios then hold on average.

    --stratify keeps the ratios within every stratum (each stratum within one record of exact,
    the whole split still exact). --group-by keeps every group in one split (largest groups are
    placed first, each on the split furthest below its target). A table of records per split,
    and per stratum, goes to standard error.
    """
    from cqia_cli.splitting import PlanError, check_pattern

    try:
        plan = _plan(ratios, counts, rest, shards, shard_size, stream, keys, stratify, group_by)
        if mark:
            if shard_size is not None:
                raise PlanError("--mark writes one stream; --shard-size cuts files: give one")
            io.output = pattern  # one plain file, or standard output
        else:
            named = not plan.numbered and not plan.whole
            pattern = check_pattern(pattern, named=named,
                                    sharded=plan.numbered or shard_size is not None)
    except PlanError as e:
        raise click.UsageError(str(e)) from None
    if (plan.numbered or shard_size is not None) and not mark:
        _raise_open_file_limit()
    if plan.whole:
        stream = True  # one part: nothing to decide, a single pass
    with io.job(output=mark) as job:
        writer = _writer(job, pattern, plan, shard_size, mark)
        if stream:
            table = _run_stream(job, io, plan, writer, keys, group_by)
        else:
            table = _run_exact(job, io, plan, writer, stratify, group_by)
        total = sum(writer.counts)
        if not io.quiet:
            _print_tables(plan, writer, table, total)
        parts = ", ".join(f"{_label(plan, k)} {c:,}" for k, c in enumerate(writer.counts))
        if len(plan.names) > _MAX_TABLE_ROWS:
            parts = f"{len(plan.names):,} shards of {min(writer.counts):,} to " \
                    f"{max(writer.counts):,}"
        job.summary(f"split: {total:,} records: {parts}")


def _plan(ratios, counts, rest, shards, shard_size, stream, keys, stratify, group_by):
    from cqia_cli.splitting import Plan, PlanError, make_plan

    if shards is not None and shard_size is not None:
        raise PlanError("give --shards N (how many) or --shard-size N (how big), not both")
    if shard_size is not None and not (ratios or counts or shards):
        for name, value in (("--rest", rest), ("--stratify", stratify),
                            ("--group-by", group_by), ("--key", keys)):
            if value:
                raise PlanError(f"{name} goes with --ratios, --counts or --shards; --shard-size "
                                "alone cuts the input into files in order")
        return Plan(("all",), ratios=(Fraction(1),), whole=True)
    plan = make_plan(ratios, counts, rest, shards)
    if stream and plan.counts is not None:
        raise PlanError("--counts needs exact mode: a hash cannot count; use --ratios with "
                        "--stream")
    if stream and stratify:
        raise PlanError("--stratify needs exact mode: with --stream each record's split is a "
                        "hash of its key alone")
    if keys and not stream:
        raise PlanError("--key sets the hash key of --stream; in exact mode use --group-by to "
                        "keep records together")
    return plan


def _raise_open_file_limit() -> None:
    """Every shard stays open until the end (files are renamed into place only on success)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


def _writer(job, pattern, plan, shard_size, mark):
    from cqia_cli.splitting import MarkWriter, PartWriter, PlanError

    if mark:
        return MarkWriter(job.out, plan.names, numbered=plan.numbered)
    try:
        return PartWriter(pattern, plan.names, lambda path: job.side_output(path, "output"),
                          numbered=plan.numbered, shard_size=shard_size)
    except PlanError as e:
        raise click.UsageError(str(e)) from None


def _run_stream(job, io: IOOptions, plan, writer, keys, group_by):
    from cqia_cli.splitting import Field, StreamAssigner, group_key, key_text

    group = group_key(Field(group_by)) if group_by else None
    assign = StreamAssigner(plan.weights(0), io.seed, key_text(keys), group)
    if writer.direct is not None:
        direct = writer.direct
        for record in job.records():
            direct[assign(record)](record)
    else:
        write = writer.write
        for record in job.records():
            write(assign(record), record)
    return None


def _run_exact(job, io: IOOptions, plan, writer, stratify, group_by):
    from cqia_cli.io import unwritable
    from cqia_cli.splitting import ExactAssigner, Field, PlanError, group_key, stratum_key

    assigner = ExactAssigner(stratum_key(Field(stratify)) if stratify else None,
                             group_key(Field(group_by)) if group_by else None)
    add = assigner.add
    reject = job.reject
    unwritten = set()  # the records, by position, that cannot be written
    for i, record in enumerate(job.records(again=True)):
        # a record that cannot be written is reported now (--on-error) and gets no part
        problem = unwritable(record)
        if problem is not None:
            reject(problem)
            unwritten.add(i)
            continue
        add(record)
    try:
        table = assigner.assign(plan, io.seed)
    except PlanError as e:
        raise CqiaError(str(e), ExitStatus.USAGE) from None
    parts = assigner.parts()
    direct = writer.direct
    write = writer.write
    name = job.reader.path if len(job.files) == 1 else "an input"
    for i, record in enumerate(_progress(job.second_pass(), io.quiet)):
        if unwritten and i in unwritten:  # reported by the first reading
            continue
        part = next(parts, None)
        if part is None:
            raise InputError(f"{name}: changed while it was being split "
                             "(it has more records than on the first reading)")
        if direct is not None:
            direct[part](record)
        else:
            write(part, record)
    if next(parts, None) is not None:
        raise InputError(f"{name}: changed while it was being split "
                         "(it has fewer records than on the first reading)")
    return (stratify, assigner.stratum_names, table) if stratify else None


def _progress(items, quiet: bool):
    """The second pass, with a record counter on a terminal (the first pass has the job's)."""
    if quiet or not console.stderr_is_terminal():
        return items
    return _counted(items)


def _counted(items):
    progress = console.Progress("split: writing")
    try:
        for i, item in enumerate(items, 1):
            progress.advance(i)
            yield item
    finally:
        progress.close()


def _label(plan, k: int) -> str:
    return f"shard {plan.names[k]}" if plan.numbered else plan.names[k]


def _files(paths: list[str]) -> str:
    if len(paths) == 1:
        return paths[0]
    return f"{paths[0]} … {paths[-1]} ({len(paths):,} files)"


def _print_tables(plan, writer, strata, total: int) -> None:
    from rich.table import Table

    out = console.stderr_console()
    if len(plan.names) <= _MAX_TABLE_ROWS:
        table = Table(show_edge=False, pad_edge=False)
        table.add_column("shard" if plan.numbered else "split")
        table.add_column("records", justify="right")
        table.add_column("share", justify="right")
        table.add_column("file", overflow="fold")
        for k, name in enumerate(plan.names):
            table.add_row(name, f"{writer.counts[k]:,}", console.fmt_share(writer.counts[k], total),
                          _files(writer.files[k]))
        out.print(table)
    if strata is None:
        return
    field, names, rows = strata
    table = Table(show_edge=False, pad_edge=False)
    table.add_column(field)
    for name in plan.names:
        table.add_column(name, justify="right")
    table.add_column("total", justify="right")
    for name, row in zip(names, rows):
        size = sum(row)
        table.add_row(name, *(f"{c:,} ({console.fmt_share(c, size)})" for c in row), f"{size:,}")
    out.print(table)
