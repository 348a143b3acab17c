"""cqia filter: drop low-quality records by rules, and account for every one it drops."""

from __future__ import annotations

import click

from cqia_cli import console
from cqia_cli.options import IOOptions, command, io_options

EXAMPLES = [
    ("Run the default rules; keep the dropped records, each with its reason, aside",
     "cqia filter raw.jsonl --rejects rejects.jsonl -o clean.jsonl"),
    ("Use a recipe and one of its profiles",
     "cqia filter --rules recipe.toml --profile zhihu zhihu.jsonl > kept.jsonl"),
    ("Tune the length rule per field",
     "cqia filter --min-len output=20 --max-len output=4096 data.jsonl > kept.jsonl"),
    ("SegmentFault-style cut-offs: upvotes, human answers, no bare yes/no outputs",
     "cqia filter --threshold 'upvotes >= 5' --where 'answer_from == \"human\" and not "
     "output =~ \"^(是|否)$\"' sf.jsonl"),
    ("Your own blocklist, with an allowlist of harmless longer words",
     "cqia filter --blocklist bad-words.txt --allowlist ok-words.txt data.jsonl > kept.jsonl"),
    ("Look at what would be dropped, with every failing rule",
     "cqia filter --invert --all-reasons data.jsonl | head"),
    ("Four processes, a JSON report, compressed output",
     "cqia filter -j 4 --report report.json big.jsonl.gz -o clean.jsonl.zst"),
    ("Every rule with its parameters and defaults (or as a recipe sets them)",
     "cqia filter --list-rules --rules recipe.toml"),
]

BATCH = 64  # records per map_lines batch: small enough to stay in the CPU caches


class _Lines(click.types.StringParamType):
    """A string option whose environment variable holds one value per line (not per word)."""

    envvar_list_splitter = "\n"
    name = "text"


LINES = _Lines()


def _split_names(values: tuple) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _len_assignments(values: tuple, option: str) -> list[tuple[str | None, str]]:
    from cqia_cli.assignments import assignment_pairs

    try:
        return assignment_pairs(values, option, name_required=False)
    except ValueError as e:
        raise click.BadParameter(str(e).split(": ", 1)[1].replace("NAME", "FIELD"),
                                 param_hint=option) from None


def build_ruleset(recipe: str | None, profile: str | None, no_defaults: bool, enable: tuple,
                  disable: tuple, settings: tuple, min_len: tuple, max_len: tuple,
                  min_cjk: tuple, blocklist: tuple, allowlist: tuple, thresholds: tuple,
                  wheres: tuple):
    from cqia_cli.filtering.config import ConfigError, RuleSet, load_recipe

    rs = RuleSet()
    try:
        if recipe:
            rs.apply_recipe(load_recipe(recipe), recipe, profile)
        elif profile:
            raise click.UsageError("--profile needs a recipe: --rules FILE")
        if no_defaults:
            rs.use_defaults(False)
        for item in settings:
            target, sep, value = item.partition("=")
            parts = target.strip().split(".")
            if not sep or len(parts) not in (2, 3) or not all(parts):
                raise click.BadParameter(f"expected RULE.PARAM=VALUE or RULE.PARAM.FIELD=VALUE, "
                                         f"got {item!r}", param_hint="--set")
            rule, param = parts[0], parts[1]
            field = ".".join(parts[2:]) or None
            rs.set(rule, param, value.strip(), field=field, where="--set: ")
            rs.enable(rule, where="--set: ")
        for option, param, values in (("--min-len", "min", min_len), ("--max-len", "max", max_len)):
            for field, raw in _len_assignments(values, option):
                rs.set("length", param, raw, field=field, where=f"{option}: ")
                rs.enable("length")
        for field, raw in _len_assignments(min_cjk, "--min-cjk"):
            rs.set("cjk-ratio", "min", raw, field=field, where="--min-cjk: ")
            rs.enable("cjk-ratio")
        if blocklist:
            rs.set("blocklist", "terms", list(blocklist), append=True, where="--blocklist: ")
            rs.enable("blocklist")
        if allowlist:
            rs.set("blocklist", "allow", list(allowlist), append=True, where="--allowlist: ")
        if thresholds:
            rs.set("threshold", "conditions", list(thresholds), append=True,
                   where="--threshold: ")
            rs.enable("threshold")
        if wheres:
            rs.set("where", "expr", list(wheres), append=True, where="--where: ")
            rs.enable("where")
        for name in _split_names(enable):
            rs.enable(name, True, where="--enable: ")
        for name in _split_names(disable):
            rs.enable(name, False, where="--disable: ")
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    return rs


@command(
    "filter",
    examples=EXAMPLES,
    short_help="Drop low-quality records by rules; explain every rejection.",
)
@io_options(fields=True, jobs=True,
            field_help="Field every text rule reads, instead of each rule's own fields; "
                       "repeatable; dotted paths.")
@click.option("--rules", "recipe", metavar="FILE", envvar="CQIA_FILTER_RULES",
              help="A TOML recipe that selects and tunes rules, and may hold named profiles.")
@click.option("--profile", metavar="NAME", help="The recipe's profile to apply over its rules.")
@click.option("--no-defaults", is_flag=True,
              help="Start from no rules instead of the default set (add them with --enable, "
                   "--set or the rule's own flags).")
@click.option("--enable", multiple=True, metavar="RULE[,RULE]", help="Turn rules on.")
@click.option("--disable", multiple=True, metavar="RULE[,RULE]", help="Turn rules off.")
@click.option("--set", "settings", multiple=True, metavar="RULE.PARAM[.FIELD]=VALUE", type=LINES,
              envvar="CQIA_FILTER_SET",
              help="Set a rule parameter (and turn the rule on), e.g. cjk-ratio.min.output=0.3, "
                   "pii.kinds=email,mobile,url; repeatable.")
@click.option("--min-len", multiple=True, metavar="[FIELD=]N",
              help="Fewest characters of a field (length.min), e.g. output=20.")
@click.option("--max-len", multiple=True, metavar="[FIELD=]N",
              help="Most characters of a field (length.max), e.g. output=4096.")
@click.option("--min-cjk", multiple=True, metavar="[FIELD=]R",
              help="Lowest Han share among letters (cjk-ratio.min), e.g. output=0.3.")
@click.option("--blocklist", multiple=True, metavar="FILE",
              help="Reject records holding a term of FILE (one a line, # comments); repeatable.")
@click.option("--allowlist", multiple=True, metavar="FILE",
              help="Harmless longer words inside which a blocklist term does not count.")
@click.option("--threshold", "thresholds", multiple=True, metavar="COND", type=LINES,
              envvar="CQIA_FILTER_THRESHOLD",
              help="Keep records where FIELD OP VALUE holds (== != < <= > >=), e.g. "
                   "'score >= 8'; repeatable, all must hold.")
@click.option("--where", "wheres", multiple=True, metavar="EXPR", type=LINES,
              envvar="CQIA_FILTER_WHERE",
              help="Keep records where EXPR is true: comparisons, and/or/not, len(), in, "
                   "=~ regex; repeatable, all must hold.")
@click.option("--rejects", metavar="FILE",
              help="Write every dropped record here, unchanged but for `_reject`: {rule, field, "
                   "detail}.")
@click.option("--all-reasons", is_flag=True,
              help="Run every rule on a dropped record: `_reject` becomes the list of all "
                   "failures, and the table counts them too.")
@click.option("--invert", is_flag=True,
              help="Write the dropped records (with `_reject`) to the output instead of the kept "
                   "ones.")
@click.option("--report", metavar="FILE",
              help="Write the per-rule counts (and the rule settings) to FILE as JSON.")
@click.option("--list-rules", is_flag=True,
              help="Print every rule with its parameters and values, and exit.")
def cli(io: IOOptions, recipe, profile, no_defaults, enable, disable, settings, min_len, max_len,
        min_cjk, blocklist, allowlist, thresholds, wheres, rejects, all_reasons, invert, report,
        list_rules) -> None:
    """Drop low-quality records by rules, writing the kept ones unchanged.

    Rules (see --list-rules): length, non-answer, cjk-ratio, pii, ads, blocklist,
    llm-boilerplate, repetition, garbled, references-missing-media, echo, threshold, where.
    Without options a
    default set suited to Chinese SFT data runs (all but blocklist, threshold and where, which
    need files or conditions). A TOML recipe (--rules) selects and tunes rules, and flags
    override it. An unknown rule or parameter is a usage error.

    Nothing is lost: --rejects FILE receives every dropped record with a `_reject` annotation
    naming the first rule that failed, the field and why; kept plus rejects equals the input,
    record for record, in order. At the end a table on standard error counts the records each
    rule rejected, with the kept total (--report FILE writes it as JSON). Options may also come
    from the environment, as CQIA_FILTER_MIN_LEN=output=20 (one value a line for --where).
    A field named by --threshold, --where or a length setting that most records lack is
    reported on standard error (and in --report); a value out of its range, or a --where
    nested more than 64 levels deep, is a usage error.
    """
    rs = build_ruleset(recipe, profile, no_defaults, enable, disable, settings, min_len, max_len,
                       min_cjk, blocklist, allowlist, thresholds, wheres)
    if list_rules:
        _list_rules(rs, io.fields)
        return
    if invert and rejects:
        raise click.UsageError("--invert writes the dropped records to the output; it cannot be "
                               "combined with --rejects")
    from cqia_cli.filtering.config import ConfigError
    from cqia_cli.filtering.engine import Filter, FilterWork, Tally

    specs = rs.specs(tuple(io.fields))
    try:
        rules = rs.build(tuple(io.fields))
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    flt = Filter(rules, all_reasons)
    tally = Tally([r.name for r in rules])
    with io.job() as job:
        rejects_out = job.side_output(rejects, "rejects") if rejects else None
        report_out = job.side_output(report, "report") if report else None
        write = job.out.write_raw
        write_side = rejects_out.write_raw if rejects_out is not None else None
        work = FilterWork(flt, specs, invert, rejects_out is not None)
        for out, side, counts in job.map_lines(work, io.jobs, batch=BATCH):
            if out:
                write(out)
            if side:
                write_side(side)
            tally.merge(*counts)

        missing = tally.missing_fields(flt)
        if report_out is not None:
            import orjson

            body = tally.as_dict(all_reasons)
            body["missing_fields"] = missing
            body["settings"] = [{"rule": n, "fields": list(f), "params": p} for n, f, p in specs]
            report_out.write_raw(orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n")
        for row in missing:
            console.message(tally.missing_message(row))
        if not io.quiet:
            job.summary(lambda: _print_table(tally, all_reasons))
        job.summary(f"filter: kept {tally.kept:,} of {tally.records:,} "
                    f"({console.fmt_share(tally.kept, tally.records)}), rejected "
                    f"{tally.rejected:,}")


def _print_table(tally, all_reasons: bool) -> None:
    from rich.table import Table

    table = Table(title="filter", title_justify="left", show_edge=False, pad_edge=False)
    table.add_column("rule")
    table.add_column("rejected", justify="right")
    table.add_column("share", justify="right")
    if all_reasons:
        table.add_column("failed", justify="right")
        table.add_column("share", justify="right")
    n = tally.records
    for name in tally.names:
        row = [name, f"{tally.first[name]:,}", console.fmt_share(tally.first[name], n)]
        if all_reasons:
            row += [f"{tally.failed[name]:,}", console.fmt_share(tally.failed[name], n)]
        table.add_row(*row)
    table.add_section()
    row = ["kept", f"{tally.kept:,}", console.fmt_share(tally.kept, n)]
    table.add_row(*(row + ["", ""] if all_reasons else row))
    console.stderr_console().print(table)


def _list_rules(rs, global_fields: tuple) -> None:
    from cqia_cli.filtering.rules import FIELDS_PARAM, RULES

    out = []
    for name, cls in RULES.items():
        state = "on" if rs.enabled.get(name) else "off"
        out.append(f"{name} [{state}]")
        out.extend("    " + line for line in _wrap(cls.summary, 92))
        values = rs.values[name]
        fields = rs.fields.get(name) or (global_fields if cls.text_rule else ()) or ()
        if cls.default_fields or fields:
            shown = ",".join(fields or cls.default_fields)
            out.append(f"    {FIELDS_PARAM.name:<18} {shown}")
        for p in cls.params:
            value = values.get(p.name, p.default)
            shown = type(p)(p.name, p.kind, value, p.help).describe_default()
            out.append(f"    {p.name:<18} {shown}")
            out.extend(" " * 8 + line for line in _wrap(p.help, 88))
        out.append("")
    click.echo("\n".join(out).rstrip("\n"))


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, break_long_words=False) or [""]
