"""Shared click options and the command class every cqia verb uses.

A verb declares the common options in one line and gets them bundled in one `io` argument:

    @command("validate", examples=EXAMPLES, exit_codes={1: "some record was invalid"})
    @io_options(fields=False)
    @click.option("--drop-invalid", is_flag=True, help="...")
    def validate(io: IOOptions, drop_invalid: bool) -> None:
        with io.job() as job:
            for record in job.records():
                job.write(record)

Every option has a long form and the same name in every command; each may also come from the
environment as CQIA_<COMMAND>_<OPTION> (e.g. CQIA_FILTER_ON_ERROR=skip).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import click

from cqia_cli.status import DESCRIPTIONS, ExitStatus

DEFAULT_SEED = 42


class Command(click.Command):
    """A cqia verb: its --help ends with EXAMPLES and EXIT STATUS, from the same definitions
    that make its man page (scripts/gen_man.py)."""

    def __init__(self, *args, examples: Sequence[tuple[str, str]] = (), exit_codes=None,
                 description: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        #: (what it does, command line) pairs
        self.examples = list(examples)
        #: statuses this command uses beyond the common ones, with what they mean for it
        self.exit_codes = dict(exit_codes or {})
        #: longer text for the man page's DESCRIPTION (defaults to the help text)
        self.description = description

    def exit_statuses(self) -> list[tuple[int, str]]:
        rows = {int(k): v for k, v in DESCRIPTIONS.items()}
        if ExitStatus.CHECK_FAILED not in self.exit_codes:
            rows.pop(int(ExitStatus.CHECK_FAILED))
        rows.update({int(k): v for k, v in self.exit_codes.items()})
        return sorted(rows.items())

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        if self.examples:
            with formatter.section("Examples"):
                for what, line in self.examples:
                    formatter.write_text(what + ":")
                    with formatter.indentation():
                        formatter.write_text("$ " + line)
        with formatter.section("Exit status"):
            formatter.write_dl([(str(k), v) for k, v in self.exit_statuses()])


def command(name: str, **kwargs) -> Callable:
    """`click.command` with the cqia Command class and its help settings."""
    kwargs.setdefault("context_settings", {}).setdefault("help_option_names", ["-h", "--help"])
    kwargs["context_settings"].setdefault("max_content_width", 100)
    return click.command(name, cls=Command, **kwargs)


@dataclass
class IOOptions:
    """The common options of one run, bundled: files, encoding, error policy, output, ..."""

    files: tuple = ()
    encoding: str = "utf-8"
    on_error: str = "fail"
    errors: str | None = None
    output: str | None = None
    quiet: bool = False
    fields: tuple = ()
    jobs: int = 1
    seed: int = DEFAULT_SEED

    def job(self, *, progress: bool = True, output: bool = True, reader=None):
        """Open the run's Job (inputs, -o output, --errors) as a context manager; `reader`
        (see Job) reads the inputs in place of a RecordReader, e.g. other containers."""
        from cqia_cli.io import Job

        return Job(
            self.files or ("-",),
            encoding=self.encoding,
            on_error=self.on_error,
            errors=self.errors,
            output=self.output if output else None,
            quiet=self.quiet,
            progress=progress,
            reader=reader,
        )

    def text_getter(self):
        from cqia_cli.fields import TextGetter

        return TextGetter(self.fields or None)


def _check_encoding(ctx, param, value):
    from cqia_cli.io import check_encoding

    try:
        return check_encoding(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


class FieldPathType(click.ParamType):
    """A dotted field path option (`--field task_type.major`): a bad path is a usage error
    (status 2) naming the option; the value stays the path string (fields.FieldPath compiles
    it where records are read)."""

    name = "path"

    def __init__(self, special: tuple[str, ...] = ()):
        #: values that are not paths but mean something to the option (stats --group @file)
        self.special = special

    def convert(self, value, param, ctx):
        from cqia_cli.fields import compile_path

        if value in self.special:
            return value
        try:
            compile_path(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        return value


#: the one click type of every option that names a field of a record
FIELD_PATH = FieldPathType()


FIELD_HELP = (
    "Field to read text from; repeatable; dotted paths like task_type.major "
    "[default: instruction, input and output joined by newlines]."
)


def io_options(
    *,
    output: bool = True,
    fields: bool = False,
    field_help: str = FIELD_HELP,
    jobs: bool = False,
    seed: bool = False,
    files: bool = True,
) -> Callable:
    """Add the common options to a command and pass them bundled as `io: IOOptions`."""

    names = ["files", "encoding", "on_error", "errors", "quiet"]
    decorators = []
    if files:
        decorators.append(click.argument("files", nargs=-1, metavar="[FILE]...",
                                         type=click.Path(allow_dash=True)))  # a directory: 66, by check_inputs
    if output:
        names.append("output")
        decorators.append(click.option(
            "-o", "--output", metavar="FILE", default=None,
            help="Write to FILE instead of standard output; written atomically, compressed by "
                 "suffix (.gz .bz2 .xz .zst)."))
    if fields:
        names.append("fields")
        decorators.append(click.option(
            "-f", "--field", "fields", multiple=True, metavar="PATH", type=FIELD_PATH,
            help=field_help))
    decorators += [
        click.option("--encoding", default="utf-8", show_default=True, metavar="NAME",
                     callback=_check_encoding,
                     help="Encoding of the input files, e.g. gb18030 for data from older "
                          "Chinese sites."),
        click.option("--on-error", type=click.Choice(["fail", "skip"]), default="fail",
                     show_default=True,
                     help="On a bad line: stop with status 65 (fail), or drop it, count it and "
                          "go on (skip)."),
        click.option("--errors", metavar="FILE", default=None,
                     help="With --on-error skip: keep the bad lines here, byte for byte."),
    ]
    if jobs:
        names.append("jobs")
        decorators.append(click.option(
            "-j", "--jobs", type=click.IntRange(min=0), default=1, show_default=True,
            metavar="N", help="Worker processes (0: one per CPU); output is the same for any N."))
    if seed:
        names.append("seed")
        decorators.append(click.option(
            "--seed", type=int, default=DEFAULT_SEED, show_default=True,
            help="Seed of every random choice; the same seed gives the same output."))
    decorators.append(click.option(
        "-q", "--quiet", is_flag=True, help="No progress bar and no summary on standard error."))

    def decorator(f: Callable) -> Callable:
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            bundle = {n: kwargs.pop(n) for n in names if n in kwargs}
            if bundle.get("errors") and bundle.get("on_error") != "skip":
                raise click.UsageError("--errors needs --on-error skip")
            if "files" in bundle:
                bundle["files"] = tuple(bundle["files"])
            kwargs["io"] = IOOptions(**bundle)
            return f(*args, **kwargs)

        for d in reversed(decorators):
            wrapper = d(wrapper)
        return wrapper

    return decorator


def parse_assignments(values: Sequence[str], option: str, *, number: bool = False) -> dict:
    """Parse repeated or comma-separated `name=value` options (`--map a=b,c=d`) into a dict."""
    from cqia_cli.assignments import assignment_pairs

    try:
        pairs = assignment_pairs(values, option)
    except ValueError as e:
        raise click.BadParameter(str(e).split(": ", 1)[1], param_hint=option) from None
    result: dict = {}
    for name, raw in pairs:
        if number:
            try:
                result[name] = int(raw) if raw.lstrip("-").isdigit() else float(raw)
            except ValueError:
                raise click.BadParameter(f"{name}={raw}: {raw!r} is not a number",
                                         param_hint=option) from None
        else:
            result[name] = raw
    return result
