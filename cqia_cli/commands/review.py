"""cqia review: people read records in the terminal, accept, reject or correct them; the
decisions are kept in SQLite, reported on and applied."""

from __future__ import annotations

import os
import tempfile

import click

from cqia_cli import console
from cqia_cli.options import IOOptions, command, io_options
from cqia_cli.status import CqiaError, ExitStatus

EXAMPLES = [
    ("Read every record of a file, one at a time (decisions in data.jsonl.review.sqlite)",
     "cqia review data.jsonl"),
    ("Read a random sample of 400, then see how good the whole file is",
     "cqia review --sample 400 --seed 7 data.jsonl && cqia review --report data.jsonl"),
    ("Two reviewers share a sample, 20% of it read by both (for Cohen's kappa)",
     "cqia review --sample 400 --reviewers ann,bo --overlap 20 --reviewer ann data.jsonl"),
    ("Write the reviewed file: accepted records verified, rejected ones aside",
     "cqia review --apply data.jsonl --rejects rejected.jsonl -o reviewed.jsonl"),
    ("Only what people accepted, with every record labelled for score --truth",
     "cqia review --apply --only-decided --mark data.jsonl | cqia score --truth human_verified"),
    ("The report for a machine",
     "cqia review --report --json data.jsonl | jq .acceptance"),
]

DEFAULT_REASONS = ("off-topic", "wrong", "incomplete", "low-quality", "unsafe", "duplicate",
                   "format")


def _names(values: tuple) -> tuple:
    return tuple(n.strip() for v in values for n in v.split(",") if n.strip())


@command("review", examples=EXAMPLES,
         short_help="Read records in the terminal; accept, reject or fix them; estimate quality.",
         exit_codes={65: "bad input data, or decisions made on another file (see --force)"})
@io_options(seed=True)
@click.option("--decisions", metavar="PATH",
              help="The decisions file (SQLite)  [default: FILE.review.sqlite beside FILE].")
@click.option("--reviewer", metavar="NAME",
              help="Who decides  [default: your user name]; with --report or --apply: use only "
                   "this reviewer's decisions  [default: everyone's].")
@click.option("--sample", type=click.IntRange(min=1), metavar="N",
              help="Read a seeded random sample of N records, in random order, instead of all "
                   "in file order.")
@click.option("--reviewers", multiple=True, metavar="A,B,...",
              help="The team sharing the sample: each reads a share of it (see --overlap).")
@click.option("--overlap", type=click.FloatRange(0, 100), default=0.0, metavar="PCT",
              help="With --reviewers: this percent of the sample is read by two reviewers, "
                   "for Cohen's kappa in the report  [default: 0].")
@click.option("--reasons", multiple=True, metavar="R,...",
              help="The rejection reasons offered by `r` (a reason can also be typed)  "
                   f"[default: {','.join(DEFAULT_REASONS)}].")
@click.option("--report", "report", is_flag=True,
              help="No interface: print the acceptance rate with its 95% Wilson interval for "
                   "the whole file, rejection reasons, agreement with _score/_reject and "
                   "between reviewers.")
@click.option("--json", "as_json", is_flag=True, help="With --report: as one JSON object.")
@click.option("--score-threshold", "threshold", type=float, default=8.0, show_default=True, metavar="X",
              help="With --report: a record's _score agrees with an acceptance when >= X.")
@click.option("--apply", "apply_", is_flag=True,
              help="No interface: write the records with the decisions applied (accepted: "
                   "human_verified true, edits made; rejected: to --rejects; undecided: as "
                   "they are).")
@click.option("--rejects", metavar="FILE",
              help="With --apply: the rejected records, each with _review {reason, reviewer}.")
@click.option("--only-decided", is_flag=True,
              help="With --apply: leave out the records nobody accepted or rejected.")
@click.option("--mark", is_flag=True,
              help="With --apply: keep rejected records in the output too (human_verified "
                   "false, _review), so one stream carries every label.")
@click.option("--force", is_flag=True,
              help="Use decisions made on a file with another sha256 (by line number).")
def cli(io: IOOptions, decisions: str | None, reviewer: str | None, sample: int | None,
        reviewers: tuple, overlap: float, reasons: tuple, report: bool, as_json: bool,
        threshold: float, apply_: bool, rejects: str | None, only_decided: bool, mark: bool,
        force: bool) -> None:
    """Review records by hand in the terminal, keep every decision, and say how good the whole
    file is from a sample.

    Without --apply or --report, opens an interface (the optional extra cqia[review]) showing
    one record at a time, instruction, input and output, with what earlier stages left on it
    (_score and its reason, _reject, _dup_of, _source, task_type, domain). Keys: a accept,
    r reject (pick or type a reason), e edit a field, E edit it in $EDITOR, s skip, u undo,
    j/k or arrows next/previous, / search, n next match, g go to record N, ? help, q quit.

    Every decision is committed at once to the decisions file (SQLite, WAL) with the reviewer,
    the time and the new text of edits; killing the program loses at most the record on
    screen, and reopening resumes at the first undecided record. The input is never
    modified. The decisions file records the input's sha256 (of its uncompressed bytes) and
    refuses another file unless --force. Records are keyed by line number.

    The interface needs a plain file (it indexes line offsets: 16 bytes a record, opens a
    million records in about a second); a compressed file is refused with how to decompress
    it. --report and --apply read compressed files and standard input (with --decisions).

    --sample N --seed S reads a deterministic random sample, in random order, so that any
    prefix read is a random sample too; --report then estimates the acceptance rate of the
    whole file with a 95% Wilson interval. --reviewers deals the sample out; --overlap PCT
    gives that share to two reviewers each, and the report gives Cohen's kappa.

    --apply writes every input record in order: accepted ones with human_verified true (edited
    fields replaced, the old text in _review.original), rejected ones to --rejects (or dropped;
    kept with --mark), undecided ones unchanged (left out with --only-decided). When two
    reviewers decided a record differently, the later decision is applied.
    """
    modes = sum(map(bool, (report, apply_)))
    if modes > 1:
        raise click.UsageError("give one of --report and --apply")
    if as_json and not report:
        raise click.UsageError("--json goes with --report")
    for flag, name in ((rejects, "--rejects"), (only_decided, "--only-decided"),
                       (mark, "--mark")):
        if flag and not apply_:
            raise click.UsageError(f"{name} goes with --apply")
    if mark and rejects:
        raise click.UsageError("--mark keeps rejected records in the output: --rejects "
                               "would write them twice")
    if len(io.files) > 1:
        raise click.UsageError("review reads one FILE (its decisions belong to it)")
    path = io.files[0] if io.files else "-"
    stdin = path == "-"
    if stdin and decisions is None and (report or apply_):
        raise click.UsageError("reading standard input: give --decisions PATH")
    from cqia_cli.review.store import default_path, default_reviewer

    if decisions is not None and (report or apply_) and not os.path.exists(decisions):
        raise CqiaError(f"{decisions}: no such decisions file", ExitStatus.NO_INPUT)
    decisions = decisions or (None if stdin else default_path(path))
    if report:
        return _report(io, path, decisions, as_json, threshold, force, reviewer)
    if apply_:
        return _apply(io, path, decisions, rejects, only_decided, mark, force, reviewer)
    team = _names(reviewers)
    if overlap and not team:
        raise click.UsageError("--overlap shares the sample between --reviewers: give them")
    if team and len(set(team)) != len(team):
        raise click.UsageError("--reviewers names a reviewer twice")
    reviewer = reviewer or (team[0] if len(team) == 1 else default_reviewer())
    _interactive(io, path, decisions, reviewer, sample, team, overlap,
                 _names(reasons) or DEFAULT_REASONS, force)


def _interactive(io, path, decisions, reviewer, sample, team, overlap, reasons, force) -> None:
    import sys

    from cqia_cli.review.sample import Plan

    if path == "-":
        raise click.UsageError("the interface reads a FILE, not standard input (save the "
                               "stream to a file first)")
    if io.output or io.errors:
        raise click.UsageError("-o and --errors go with --apply")
    from cqia_cli.io import check_inputs, compression_of

    check_inputs([path])
    if compression_of(path):
        from cqia_cli.review.index import LineIndex

        LineIndex(path)  # raises: how to decompress it
    try:
        from cqia_cli.review.app import ReviewApp
    except ImportError as e:
        if "textual" not in str(e):
            raise
        raise CqiaError("the interface needs the optional textual package: "
                        "pip install 'cqia[review]'", ExitStatus.USAGE) from None
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CqiaError("the interface needs a terminal; for scripts use --apply or --report",
                        ExitStatus.USAGE)
    from cqia_cli.review.session import Session

    if team and reviewer not in team:
        raise click.UsageError(f"--reviewer {reviewer} is not one of --reviewers "
                               f"{','.join(team)}")
    plan = None
    if sample is not None or team:
        plan = Plan(sample, io.seed, overlap if team else 0.0, tuple(team))
    session = Session(path, decisions, reviewer, plan, force=force, encoding=io.encoding)
    try:
        if session.warning:
            console.message(session.warning)
        before = dict(session.counts())
        app = ReviewApp(session, reasons=reasons)
        app.run()
        after = session.counts()
        made = sum(after[k] for k in ("accept", "reject", "skip")) - \
            sum(before[k] for k in ("accept", "reject", "skip"))
        if not io.quiet:
            console.plain(f"review: {reviewer}: {made:+,} decisions this session; "
                          f"{session.left():,} of {len(session):,} left; accepted "
                          f"{after['accept']:,}, rejected {after['reject']:,}, skipped "
                          f"{after['skip']:,} (in {decisions})")
        if app.return_code == ExitStatus.INTERRUPTED:
            raise CqiaError("interrupted (every decision made is saved)",
                            ExitStatus.INTERRUPTED)
    finally:
        session.close()


def _open_store(decisions: str):
    from cqia_cli.review.store import Store

    return Store(decisions, create=False)


def _report(io, path, decisions, as_json, threshold, force, reviewer) -> None:
    from cqia_cli.io import Job
    from cqia_cli.review import report as R
    from cqia_cli.review.session import check_input

    if io.errors:
        raise click.UsageError("--errors goes with --apply")
    store = _open_store(decisions)
    try:
        warning = None
        if path != "-":
            st = os.stat(path) if os.path.exists(path) else None
            from cqia_cli.io import check_inputs

            check_inputs([path])
            warning = check_input(store, path, force=force, size=st.st_size,
                                  mtime_ns=st.st_mtime_ns)
        plan = store.plan
        records = int(store.get_meta("records") or 0)
        rep = R.build(store.decisions(reviewer), records=records,
                      plan_text=plan.describe() if plan else "no plan",
                      sampled=bool(plan and plan.sample is not None), threshold=threshold,
                      input_name=store.get_meta("input") or path)
    finally:
        store.close()
    if warning:
        console.message(warning)
    with Job([], output=io.output, quiet=io.quiet, reader=lambda errors_out: _NoRecords()) \
            as job:
        if as_json:
            job.out.write(rep)
        else:
            job.out.write_text(R.render(rep))


class _NoRecords:
    """The reader of a Job that reads no records (--report reads only the decisions)."""

    skipped = 0
    records = 0


def _apply(io, path, decisions, rejects, only_decided, mark, force, reviewer) -> None:
    from cqia_cli.io import Job, RecordReader, check_inputs
    from cqia_cli.review import apply as A
    from cqia_cli.review.session import check_input
    from cqia_cli.review.store import resolve

    check_inputs([path])
    spool = None
    chosen: dict = {}
    warning = None
    have = decisions is not None and os.path.exists(decisions)
    try:
        source = path
        if have:
            store = _open_store(decisions)
            try:
                if store.get_meta("sha256") is not None:
                    digest = None
                    if path == "-":
                        spool, digest = _spool_stdin()
                        source = spool
                    st = os.stat(source)
                    warning = check_input(store, source, force=force, digest=digest,
                                          name=None if path != "-" else "<stdin>",
                                          size=st.st_size if path != "-" else None,
                                          mtime_ns=st.st_mtime_ns if path != "-" else None)
                chosen = resolve(store.decisions(reviewer))
                conflicts = _conflicts(store) if reviewer is None else 0
            finally:
                store.close()
        else:
            conflicts = 0
        if warning:
            console.message(warning)
        names = ["<stdin>"] if path == "-" else None
        job = Job([path] if path != "-" else [], encoding=io.encoding, on_error=io.on_error,
                  errors=io.errors, output=io.output, quiet=io.quiet,
                  reader=lambda errors_out: RecordReader(
                      [source], encoding=io.encoding, on_error=io.on_error,
                      errors_out=errors_out, names=names))
        with job:
            rejects_out = job.side_output(rejects, "rejects") if rejects else None
            reader = job.reader
            n = acc = edited = rej = undecided = 0
            seen = 0
            for rec in job.records():
                n += 1
                d = chosen.get(reader.lineno)
                if d is None:
                    undecided += 1
                    if not only_decided:
                        job.write(rec)
                    continue
                seen += 1
                if d.status == "accept":
                    acc += 1
                    out = A.accepted(rec, d)
                    edited += "original" in out["_review"]
                    job.write(out)
                else:
                    rej += 1
                    out = A.rejected(rec, d, mark=mark)
                    if mark:
                        job.write(out)
                    elif rejects_out is not None:
                        rejects_out.write(out)
            where = (f" (to {rejects_out.name})" if rejects_out is not None
                     else " (kept, --mark)" if mark else " (dropped: --rejects FILE keeps them)")
            text = (f"review: {n:,} records: accepted {acc:,} ({edited:,} edited), rejected "
                    f"{rej:,}{where}, undecided {undecided:,}"
                    f"{' left out' if only_decided else ' passed through'}")
            if not have:
                text += f"; no decisions file {decisions} yet" if decisions else ""
            if conflicts:
                text += (f"; {conflicts:,} records decided differently by two reviewers "
                         "(the later decision applied)")
            if len(chosen) > seen and not job.skipped:
                text += f"; {len(chosen) - seen:,} decisions name lines that are not records"
            job.summary(text)
    finally:
        if spool is not None:
            try:
                os.unlink(spool)
            except OSError:
                pass


def _conflicts(store) -> int:
    row = store.db.execute(
        "SELECT count(*) FROM (SELECT line FROM decisions WHERE status IN ('accept', 'reject') "
        "GROUP BY line HAVING count(DISTINCT status) > 1)").fetchone()
    return int(row[0])


def _spool_stdin() -> tuple[str, str]:
    """Standard input saved to a temporary file (to check its sha256 before writing
    anything), and that digest."""
    import hashlib

    from cqia_cli.io import stdin_binary

    h = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix="cqia-review-", suffix=".jsonl")
    try:
        with os.fdopen(fd, "wb") as f:
            src = stdin_binary()
            while True:
                block = src.read(1 << 20)
                if not block:
                    break
                h.update(block)
                f.write(block)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp, h.hexdigest()
