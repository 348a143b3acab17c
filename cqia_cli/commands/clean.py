"""cqia clean: repair text instead of dropping it, every change named and counted."""

from __future__ import annotations

import click

from cqia_cli import console
from cqia_cli.options import IOOptions, command, io_options

EXAMPLES = [
    ("Clean with the default steps, keeping a log of every change",
     "cqia clean raw.jsonl --changes changes.jsonl -o clean.jsonl"),
    ("Clean before filtering, in one pipe",
     "cqia clean raw.jsonl | cqia filter --rejects rejects.jsonl > kept.jsonl"),
    ("Only some steps; or all but some",
     "cqia clean --steps whitespace,html data.jsonl; cqia clean --skip punct,width data.jsonl"),
    ("Traditional to Simplified as well (pip install 'cqia[t2s]')",
     "cqia clean --set t2s.config=tw2s data.jsonl > simplified.jsonl"),
    ("Your own rewrites: drop numbering and a rating suffix",
     "cqia clean --sub 'output:^\\d+\\. :' --sub 'output:\\n评分：[0-9.]+$:' data.jsonl"),
    ("Mark the changed records with the steps that changed them",
     "cqia clean --mark data.jsonl | jq -c 'select(._clean)'"),
    ("A recipe with a profile; every step and its parameters as it sets them",
     "cqia clean --recipe clean.toml --profile zhihu --list-steps"),
]

BATCH = 512


class _Lines(click.types.StringParamType):
    """A string option whose environment variable holds one value per line (not per word)."""

    envvar_list_splitter = "\n"
    name = "text"


LINES = _Lines()


def _names(values: tuple) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def build_stepset(recipe, profile, steps, skip, settings, subs):
    from cqia_cli.cleaning.config import ConfigError, StepSet, load_recipe

    ss = StepSet()
    try:
        if recipe:
            ss.apply_recipe(load_recipe(recipe), recipe, profile)
        elif profile:
            raise click.UsageError("--profile needs a recipe: --recipe FILE")
        only = _names(steps)
        if only:
            for name in only:
                ss.cls(name, "--steps: ")
            for name in ss.registry:
                ss.enabled[name] = name in only
        for item in settings:
            target, sep, value = item.partition("=")
            parts = target.strip().split(".")
            if not sep or len(parts) != 2 or not all(parts):
                raise click.BadParameter(f"expected STEP.PARAM=VALUE, got {item!r}",
                                         param_hint="--set")
            ss.set(parts[0], parts[1], value.strip(), where="--set: ")
            ss.enable(parts[0], where="--set: ")
        if subs:
            ss.set("sub", "rules", list(subs), append=True, where="--sub: ")
            ss.enable("sub")
        for name in _names(skip):
            ss.enable(name, False, where="--skip: ")
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    return ss


@command(
    "clean",
    examples=EXAMPLES,
    short_help="Repair text (whitespace, HTML, mojibake, LaTeX escapes, PII...); log every change.",
)
@io_options(fields=True, jobs=True,
            field_help="Field to clean, instead of instruction, input and output; repeatable; "
                       "dotted paths.")
@click.option("--recipe", metavar="FILE", envvar="CQIA_CLEAN_RECIPE",
              help="A TOML recipe that selects and tunes steps ([steps.NAME]), and may hold "
                   "named profiles.")
@click.option("--profile", metavar="NAME", help="The recipe's profile to apply over its steps.")
@click.option("--steps", "steps", multiple=True, metavar="STEP[,STEP]",
              help="Run only these steps (instead of the defaults or the recipe's).")
@click.option("--skip", multiple=True, metavar="STEP[,STEP]", help="Do not run these steps.")
@click.option("--set", "settings", multiple=True, metavar="STEP.PARAM=VALUE", type=LINES,
              envvar="CQIA_CLEAN_SET",
              help="Set a step parameter (and turn the step on), e.g. "
                   "whitespace.max_blank_lines=2, pii-mask.kinds=email,mobile; repeatable.")
@click.option("--sub", "subs", multiple=True, metavar="FIELD:PATTERN:REPLACEMENT", type=LINES,
              envvar="CQIA_CLEAN_SUB",
              help="A regex rewrite (the sub step), FIELD empty for every field; a colon in "
                   "the replacement is written \\:; repeatable, applied in order.")
@click.option("--changes", metavar="FILE",
              help="Log every changed field here as JSON lines: file, line, field, steps, and "
                   "the changed stretch before and after.")
@click.option("--mark", is_flag=True,
              help="Add `_clean: [steps]` to every changed record.")
@click.option("--report", metavar="FILE",
              help="Write the per-step counts (and the step settings) to FILE as JSON.")
@click.option("--list-steps", is_flag=True,
              help="Print every step with its parameters and values, and exit.")
def cli(io: IOOptions, recipe, profile, steps, skip, settings, subs, changes, mark, report,
        list_steps) -> None:
    """Repair text instead of dropping it: every change named and counted.

    Steps, in the order they run (see --list-steps): mojibake, html, latex-escapes, width, t2s
    (opt-in), sub (with --sub), pii-mask, trailers, whitespace, punct. Each applies to the
    instruction, input and output fields (--field changes that) and leaves code blocks, inline
    code, maths and links alone where it could damage them. The steps of a field repeat until
    they change nothing, so cleaning twice gives what cleaning once gives.

    A record no step changed is written as the core writes any record; a changed one is the
    same record with the field rewritten. --changes FILE logs each changed field (file, line,
    field, steps, before and after); --mark adds `_clean: [steps]` to the record instead. At the
    end a table on standard error counts, per step, the records it changed and the characters it
    removed and replaced.
    """
    ss = build_stepset(recipe, profile, steps, skip, settings, subs)
    if list_steps:
        _list_steps(ss, io.fields)
        return
    from cqia_cli.cleaning.config import ConfigError
    from cqia_cli.cleaning.engine import Cleaner, CleanWork, Tally
    from cqia_cli.cleaning.steps import MissingDependency

    specs = ss.specs(tuple(io.fields))
    try:
        built = ss.build(tuple(io.fields))
    except MissingDependency as e:
        raise click.UsageError(str(e)) from None
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    cleaner = Cleaner(built)
    tally = Tally(cleaner.step_order())
    with io.job() as job:
        changes_out = job.side_output(changes, "changes") if changes else None
        report_out = job.side_output(report, "report") if report else None
        work = CleanWork(specs, mark, changes_out is not None, cleaner)
        _run(job, work, changes_out, io.jobs, tally)
        if report_out is not None:
            import orjson

            body = tally.as_dict()
            body["settings"] = [{"step": n, "fields": list(f), "params": p} for n, f, p in specs]
            report_out.write_raw(orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n")
        if not io.quiet:
            job.summary(lambda: _print_table(tally))
        job.summary(f"clean: changed {tally.changed:,} of {tally.records:,} records "
                    f"({console.fmt_share(tally.changed, tally.records)})")


def _run(job, work, changes_out, jobs: int, tally) -> None:
    """`Job.map_lines` reads, parses (in the workers for -j N), reports bad lines and keeps the
    order; `work` cleans and serialises each run of records; this process writes the bytes, the
    change log (with the input's name) and stops at a record the work could not finish."""
    from cqia_cli.cleaning.engine import change_lines
    from cqia_cli.status import CqiaError, DataError, ExitStatus

    write = job.out.write_raw
    write_side = changes_out.write_raw if changes_out is not None else None
    for out, changed, counts, error in job.map_lines(work, jobs, batch=BATCH, numbered=True):
        if out:
            write(out)
        name = job.input_name
        if changed and write_side is not None:
            write_side(b"".join(change_lines(entries, name, lineno)
                                for lineno, entries in changed))
        tally.merge(*counts)
        if error is not None:
            lineno, status, message = error
            message = f"{name}:{lineno}: {message}"
            if status == 65:
                raise DataError(message)
            raise CqiaError(message, ExitStatus.USAGE)


def _print_table(tally) -> None:
    from rich.table import Table

    table = Table(title="clean", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("step")
    table.add_column("records", justify="right")
    table.add_column("share", justify="right")
    table.add_column("fields", justify="right")
    table.add_column("chars removed", justify="right")
    table.add_column("chars replaced", justify="right")
    n = tally.records
    for name in tally.names:
        table.add_row(name, f"{tally.step_records[name]:,}",
                      console.fmt_share(tally.step_records[name], n),
                      f"{tally.step_fields[name]:,}", f"{tally.removed[name]:,}",
                      f"{tally.replaced[name]:,}")
    table.add_section()
    table.add_row("changed", f"{tally.changed:,}", console.fmt_share(tally.changed, n), "", "",
                  "")
    console.stderr_console().print(table)


def _list_steps(ss, global_fields: tuple) -> None:
    import textwrap

    from cqia_cli.filtering.rules import FIELDS_PARAM

    def wrap(text: str, width: int) -> list[str]:
        return textwrap.wrap(text, width, break_long_words=False) or [""]

    out = []
    for name, cls in ss.registry.items():
        state = "on" if ss.enabled.get(name) else "off"
        out.append(f"{name} [{state}]")
        out.extend("    " + line for line in wrap(cls.summary, 92))
        fields = ss.fields.get(name) or global_fields or cls.default_fields
        out.append(f"    {FIELDS_PARAM.name:<18} {','.join(fields)}")
        for p in cls.params:
            value = ss.values[name].get(p.name, p.default)
            shown = type(p)(p.name, p.kind, value, p.help).describe_default()
            out.append(f"    {p.name:<18} {shown}")
            out.extend(" " * 8 + line for line in wrap(p.help, 88))
        out.append("")
    click.echo("\n".join(out).rstrip("\n"))
