"""cqia validate: check records against the COIG-CQIA schema, passing them through."""

from __future__ import annotations

from collections import Counter

import click

from cqia_cli import console
from cqia_cli.options import IOOptions, command, io_options
from cqia_cli.schema import ANSWER_FROM, REQUIRED, Checker
from cqia_cli.status import CheckFailed

EXAMPLES = [
    ("Check a file; the problems go to standard error, the records to /dev/null",
     "cqia validate data.jsonl > /dev/null"),
    ("Guard a pipeline: stop it (status 1) when anything is invalid",
     "cqia validate raw.jsonl | cqia filter > clean.jsonl"),
    ("Keep only valid records, and the invalid ones with their reasons aside",
     "cqia validate --drop-invalid --invalid invalid.jsonl raw.jsonl -o valid.jsonl"),
    ("Read a GB18030 file and skip lines that are not JSON, keeping them",
     "cqia validate --encoding gb18030 --on-error skip --errors bad.txt old.jsonl"),
]


@command(
    "validate",
    examples=EXAMPLES,
    exit_codes={1: "some record was invalid (the records were still written); with "
                   "--drop-invalid, only with --strict"},
    short_help="Check records against the COIG-CQIA schema.",
)
@io_options()
@click.option("--drop-invalid", is_flag=True,
              help="Pass only valid records to the output (invalid ones are still reported); "
                   "the status is then 0, as for a filter, unless --strict.")
@click.option("--strict", is_flag=True,
              help="Exit with status 1 when any record was invalid, also with --drop-invalid.")
@click.option("--invalid", "invalid_path", metavar="FILE",
              help="Write invalid records here, each with an `_invalid` list of its problems.")
@click.option("--optional", "optional", multiple=True, metavar="FIELD",
              type=click.Choice(REQUIRED),
              help="A required field that may be absent (repeatable); it is still type-checked "
                   "when present.")
@click.option("--answer-from", "answer_from", default=",".join(ANSWER_FROM), show_default=True,
              metavar="LIST", help="Comma-separated values accepted in answer_from.")
@click.option("--max-problems", type=click.IntRange(min=0), default=20, show_default=True,
              metavar="N",
              help="Print at most N problem lines (0: all); the table and summary count them "
                   "all, and --invalid FILE keeps every invalid record with its problems.")
def cli(io: IOOptions, drop_invalid: bool, strict: bool, invalid_path: str | None,
        optional: tuple, answer_from: str, max_problems: int) -> None:
    """Check each record against the COIG-CQIA schema and pass it through.

    Required: instruction and output (non-empty strings), input (a string, may be empty),
    task_type ({"major": [..] non-empty, "minor": [..]}), domain (a non-empty array of
    strings), answer_from ("human", "llm" or "expert"; see --answer-from), human_verified (true or false). metadata and
    copyright are optional strings. Fields starting with `_` and other extra fields pass.

    Each problem is printed on standard error as `FILE:LINE: field: problem` (the first 20;
    see --max-problems), followed by a table of problem counts and a summary. The exit status
    is 1 when any record was invalid, so `cqia validate` can guard a pipeline; with
    --drop-invalid it is 0 (the invalid records were asked to be dropped, and `set -o
    pipefail` pipelines go on), unless --strict.
    """
    check = Checker(optional=optional,
                    answer_from=tuple(v.strip() for v in answer_from.split(",")))
    counts: Counter = Counter()
    invalid = valid = printed = 0
    with io.job() as job:
        invalid_out = job.side_output(invalid_path, "invalid") if invalid_path else None
        reader = job.reader
        write = job.out.write
        for rec in job.records():
            problems = check(rec)
            if not problems:
                valid += 1
                write(rec)
                continue
            invalid += 1
            where = reader.where()
            for field, problem in problems:
                counts[(field, problem.split(", got ")[0])] += 1
                if not max_problems or printed < max_problems:
                    console.plain(f"{where}: {field}: {problem}")
                    printed += 1
            if not drop_invalid:
                write(rec)
            if invalid_out is not None:
                invalid_out.write({**rec, "_invalid": [f"{f}: {p}" for f, p in problems]})
        total = valid + invalid
        more = sum(counts.values()) - printed
        if not io.quiet and max_problems and more > 0:
            keep = "" if invalid_path else "--invalid FILE or "
            console.message(f"{more:,} more problem{'s' if more != 1 else ''}, see {keep}"
                            f"--max-problems 0")
        if counts and not io.quiet:
            job.summary(lambda: _print_table(counts, total))
        job.summary(
            f"validate: {total:,} records, {valid:,} valid, {invalid:,} invalid "
            f"({console.fmt_share(invalid, total)})"
        )
    if invalid and (strict or not drop_invalid):
        raise CheckFailed("")


def _print_table(counts: Counter, total: int) -> None:
    from rich.table import Table

    table = Table(title="problems", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("field")
    table.add_column("problem")
    table.add_column("records", justify="right")
    table.add_column("share", justify="right")
    for (field, problem), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(field, problem, f"{n:,}", console.fmt_share(n, total))
    console.stderr_console().print(table)
