"""cqia stats: the dataset report (terminal, JSON, HTML), merging and comparing."""

from __future__ import annotations

import os

import click

from cqia_cli import console
from cqia_cli.io import compression_of, display_name, open_binary
from cqia_cli.options import FIELD_PATH, FieldPathType, IOOptions, command, io_options
from cqia_cli.status import DataError, InputError

EXAMPLES = [
    ("The report of a dataset, in the terminal or piped into less",
     "cqia stats data.jsonl | less"),
    ("Add jieba word counts and the instruction verb-noun diversity, in 2 processes",
     "cqia stats --tokens --diversity -j 2 data.jsonl"),
    ("Per domain, side by side, with the breakdown of a field of your own",
     "cqia stats --group domain --by metadata.source data.jsonl"),
    ("Keep the statistics of a shard as JSON (run on each machine)",
     "cqia stats --json shard1.jsonl > s1.json"),
    ("The report of all shards from their JSON: the same as one run over all records",
     "cqia stats --merge s1.json s2.json s3.json"),
    ("A self-contained HTML page for a dataset card or a pull request",
     "cqia stats --html report.html data.jsonl > report.txt"),
    ("What a filter step changed",
     "cqia filter raw.jsonl > clean.jsonl; cqia stats --compare raw.jsonl clean.jsonl"),
    ("Compare saved statistics with a new stream",
     "cqia dedup clean.jsonl | cqia stats --compare before.json -"),
]

BATCH = 500


def _is_stats_json(path: str) -> bool:
    """A --compare input is a saved stats JSON when its name ends in .json (.json.gz, ...)."""
    name = path.lower()
    if compression_of(name):
        name = name.rsplit(".", 1)[0]
    return name.endswith(".json")


def _load_stats(path: str):
    from cqia_cli.stats import Accumulator

    import orjson

    if path != "-" and not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    f = open_binary(path)  # the core's one standard-input stream for "-"
    try:
        data = f.read()
    finally:
        if path != "-":
            f.close()
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise DataError(f"{display_name(path)}: not a cqia stats JSON: invalid JSON "
                        f"({e.msg} at line {e.lineno})") from None
    try:
        return Accumulator.from_json(doc)
    except (ValueError, KeyError, TypeError) as e:
        what = f"missing {e}" if isinstance(e, KeyError) else str(e)
        raise DataError(f"{display_name(path)}: not usable as cqia stats: {what}") from None


def _accumulate(reader, records, config, jobs: int):
    """One Accumulator over `records` read by `reader` (whose `raw` gives each one's size).

    With jobs > 1 and --tokens or --diversity, the jieba work of each batch is done in worker
    processes and the results are added in input order, so the figures are the same for any
    -j."""
    from collections import deque

    from cqia_cli.parallel import chunked, map_batches, resolve_jobs
    from cqia_cli.stats import Accumulator
    from cqia_cli.stats.accumulator import FILE_GROUP

    acc = Accumulator(config)
    if config.tokens or config.diversity:
        from cqia_cli.stats.nlp import load_jieba, measure

        load_jieba()  # once, before the workers fork
    by_file = config.group == FILE_GROUP
    if resolve_jobs(jobs) == 1 or not (config.tokens or config.diversity):
        add = acc.add
        if by_file:
            for rec in records:
                add(rec, len(reader.raw), None, reader.path)
        else:
            for rec in records:
                add(rec, len(reader.raw))
        return acc
    pending: deque = deque()

    def texts():
        for batch in chunked(_sized(reader, records), BATCH):
            pending.append(batch)
            yield [acc.nlp_inputs(rec) for rec, _, _ in batch]

    for results in map_batches(measure, texts(), jobs):
        batch = pending.popleft()
        for (rec, size, source), nlp in zip(batch, results):
            acc.add(rec, size, nlp, source if by_file else None)
    return acc


def _sized(reader, records):
    for rec in records:
        yield rec, len(reader.raw), reader.path


@command(
    "stats",
    examples=EXAMPLES,
    short_help="Report counts, lengths, categories, duplicates and diversity of a dataset.",
)
@io_options(fields=True, jobs=True, field_help=(
    "Text field to measure as well as instruction, input and output; repeatable; dotted "
    "paths like conversations.0.value."))
@click.option("--json", "as_json", is_flag=True,
              help="Write the statistics as JSON (schema cqia.stats/1, see docs/stats.md) "
                   "instead of the report; JSON of shards merge with --merge.")
@click.option("--html", "html_path", metavar="FILE",
              help="Also write the report as one self-contained HTML page (inline SVG, no "
                   "network).")
@click.option("--merge", is_flag=True,
              help="The FILEs are stats JSON (from --json): report them merged, as one run "
                   "over all their records.")
@click.option("--compare", is_flag=True,
              help="Compare two inputs (BEFORE AFTER) side by side with the differences; an "
                   "input named *.json is read as saved stats JSON.")
@click.option("--group", metavar="FIELD", type=FieldPathType(special=("@file",)),
              help="Also report per value of FIELD, side by side (a list counts in each of its "
                   "values; at most 100 groups, then \"(other)\"); @file: per input file.")
@click.option("--by", multiple=True, metavar="FIELD", type=FIELD_PATH,
              help="Break down by FIELD as well as the CQIA fields and the fields detected as "
                   "categorical; repeatable.")
@click.option("--tokens", is_flag=True, help="Add jieba word counts of each text field.")
@click.option("--diversity", is_flag=True,
              help="Add the leading verbs of instructions and their first nouns (jieba.posseg).")
@click.option("--no-duplicates", "no_duplicates", is_flag=True,
              help="Skip exact duplicates: memory stays flat however many distinct records "
                   "(they need about 180 bytes each), and the JSON stays small.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, metavar="K",
              help="Values shown per breakdown; the rest are summed as \"other\".")
@click.option("--max-distinct", type=click.IntRange(min=1), default=10_000, show_default=True,
              metavar="N",
              help="Distinct values counted per breakdown (first seen first); later new values "
                   "are counted together as \"other\", so memory stays flat.")
def cli(io: IOOptions, as_json: bool, html_path: str | None, merge: bool, compare: bool,
        group: str | None, by: tuple, tokens: bool, diversity: bool, no_duplicates: bool,
        top: int, max_distinct: int) -> None:
    """Report what a dataset holds: records and bytes; fields, their fill rate, empty values and
    types; for each text field (instruction, input, output, and --field) the length in
    characters (min, p5, p25, median, p75, p95, max, mean), a histogram and the share of Han
    characters; breakdowns of task_type.major, task_type.minor, domain, answer_from,
    human_verified, of --by fields and of fields detected as categorical (at most 50 distinct
    short values; a list counts each element); exact duplicates of instructions and of
    (instruction, input, output).

    --tokens adds jieba word counts; --diversity the leading verb of each instruction and the
    first noun after it (top verbs and verb-noun pairs, as in the COIG-CQIA paper); --group
    FIELD the main figures per value of FIELD (@file: per input file), side by side.

    The report goes to standard output (or -o): plain text when that is not a terminal, so it
    reads well in less or a file. --json writes the figures instead (schema cqia.stats/1), and
    --merge adds up such JSON files exactly, thanks to fixed length bins. --html also writes
    one self-contained page. --compare shows two inputs side by side with the differences.
    """
    from cqia_cli.stats import Config
    from cqia_cli.stats.accumulator import DEFAULT_TEXT_FIELDS

    if merge and compare:
        raise click.UsageError("--merge and --compare cannot be used together")
    if merge:
        given = [n for n, v in (("--field", io.fields), ("--by", by), ("--group", group),
                                ("--tokens", tokens), ("--diversity", diversity),
                                ("--no-duplicates", no_duplicates)) if v]
        if given:
            raise click.UsageError(f"with --merge the options come from the stats files; "
                                   f"drop {', '.join(given)}")
        if not io.files:
            raise click.UsageError("--merge needs the stats JSON files to merge")
    if compare and len(io.files) != 2:
        raise click.UsageError(f"--compare needs two inputs, BEFORE and AFTER (got "
                               f"{len(io.files)})")
    if compare and display_name(io.files[0]) == display_name(io.files[1]):
        raise click.UsageError("--compare needs two different inputs")

    text_fields = tuple(dict.fromkeys(DEFAULT_TEXT_FIELDS + tuple(io.fields)))
    config = Config(text_fields=text_fields, by=tuple(by), tokens=tokens, diversity=diversity,
                    group=group, max_distinct=max_distinct, duplicates=not no_duplicates)
    names = tuple(display_name(f) for f in (io.files or ("-",)))

    with io.job() as job:
        html_out = job.side_output(html_path, "html") if html_path else None
        if merge:
            acc = _merged(io.files)
        elif compare:
            before, after = (_one_input(io, job, path, config) for path in io.files)
        else:
            reader = job.reader
            acc = _accumulate(reader, job.records(), config, io.jobs)

        if compare:
            document = _compare_document(before, after) if as_json else None
            text = _render(lambda c: _render_compare(before, after, c, names, top),
                           as_json, document, job)
            if html_out is not None:
                from cqia_cli.stats.html import compare_html

                html_out.write_text(compare_html(before, after, names=names, top=top))
            job.summary(f"stats: compared {before.records:,} and {after.records:,} records")
        else:
            title = ", ".join(names) if len(names) <= 3 else f"{names[0]} and {len(names) - 1} more"
            text = _render(lambda c: _render_report(acc, c, title, top), as_json,
                           acc.to_json() if as_json else None, job)
            if html_out is not None:
                from cqia_cli.stats.html import report_html

                html_out.write_text(report_html(acc, title=title, top=top))
            what = f"merged {len(io.files):,} stats files, " if merge else ""
            job.summary(f"stats: {what}{acc.records:,} records")
        job.out.write_text(text)


def _merged(files):
    acc = None
    for path in files:
        part = _load_stats(path)
        if acc is None:
            acc = part
            continue
        try:
            acc.merge(part)
        except ValueError as e:
            raise DataError(f"{display_name(path)}: cannot merge with {display_name(files[0])}: "
                            f"{e}") from None
    return acc


def _one_input(io: IOOptions, job, path: str, config):
    """The Accumulator of one --compare input: a saved stats JSON, or JSON Lines."""
    if _is_stats_json(path):
        return _load_stats(path)
    reader = job.open_reader(path)  # its bad lines are counted in the job's "skipped" line
    return _accumulate(reader, reader, config, io.jobs)


def _compare_document(before, after) -> dict:
    from cqia_cli.stats.accumulator import SCHEMA
    from cqia_cli.stats.render import compare_rows

    return {"schema": SCHEMA, "kind": "compare", "before": before.to_json(),
            "after": after.to_json(),
            "changes": [[s, m, b, a] for s, m, b, a in compare_rows(before, after)]}


def _render(draw, as_json: bool, document, job) -> str:
    if as_json:
        import orjson

        return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
                            ).decode("utf-8")
    from cqia_cli.stats.render import console_for, rendered

    con = console_for(tty=job.out.path is None and console.stdout_is_terminal())
    draw(con)
    return rendered(con)


def _render_report(acc, con, title, top):
    from cqia_cli.stats.render import render_report

    render_report(acc, con, title=title, top=top)


def _render_compare(before, after, con, names, top):
    from cqia_cli.stats.render import render_compare

    render_compare(before, after, con, names=names, top=top)
