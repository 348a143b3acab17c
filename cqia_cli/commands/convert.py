"""cqia convert: between cqia, alpaca, sharegpt, messages and text; build cqia from raw dumps."""

from __future__ import annotations

import contextlib
import itertools
import os

import click

from cqia_cli.formats.table import SOURCES, TARGETS
from cqia_cli.options import IOOptions, command, io_options, parse_assignments

#: records read before the input format is decided (--from auto)
DETECT_RECORDS = 16
#: --container choices (cqia_cli.containers reads Parquet too, found by suffix or content)
CONTAINERS = ("auto", "jsonl", "json", "csv", "tsv")

EXAMPLES = [
    ("Make a LLaMA-Factory sharegpt file and register it in dataset_info.json",
     "cqia convert --to sharegpt clean.jsonl -o data/cqia.jsonl "
     "--dataset-info data/dataset_info.json --name cqia"),
    ("Read a public alpaca set shipped as a JSON array into cqia records",
     "cqia convert --to cqia alpaca_data.json | cqia validate > alpaca.cqia.jsonl"),
    ("OpenAI chat messages with a system prompt, metadata kept for a later round trip",
     "cqia convert --to messages --system '你是一个乐于助人的助手。' --keep-meta train.jsonl"),
    ("Build instructions from a Xiaohongshu dump with hand-written templates",
     "cqia convert --template xhs.toml --map output=content --set answer_from=human "
     "xhs_dump.jsonl -o xhs.cqia.jsonl"),
    ("Map a forum CSV onto cqia fields",
     "cqia convert --map instruction=title,input=body,output=best_answer "
     "--set domain=社交媒体 forum.csv"),
    ("Pre-training text, only the last exchange of each conversation",
     "cqia convert --to text --last-turn --text-template $'问：{instruction}\\n答：{output}' "
     "chats.jsonl"),
]


def _usage(message: str) -> click.UsageError:
    return click.UsageError(message)


@command(
    "convert",
    examples=EXAMPLES,
    short_help="Convert between cqia, alpaca, sharegpt, messages and text formats.",
)
@io_options(seed=True)
@click.option("--to", "target", type=click.Choice(TARGETS), default="cqia", show_default=True,
              help="Output format.")
@click.option("--from", "source", type=click.Choice(("auto",) + SOURCES), default="auto",
              show_default=True,
              help="Input format; auto decides from the first records, and stops with a usage "
                   "error when they do not say.")
@click.option("--container", type=click.Choice(CONTAINERS), default="auto", show_default=True,
              help="How the input is packed: JSON Lines, a JSON array, CSV or TSV with a header; "
                   "auto goes by suffix (.json .csv .tsv, before .gz etc.), then by content.")
@click.option("--array", is_flag=True,
              help="Write one JSON array (one record a line) instead of JSON Lines.")
@click.option("--last-turn", is_flag=True,
              help="Keep only the last exchange of multi-turn records (text, a single-turn "
                   "target, needs it for them).")
@click.option("--system", metavar="TEXT",
              help="System prompt for records that have none.")
@click.option("--keep-meta", is_flag=True,
              help="Carry the other fields (task_type, domain, answer_from, ...) into alpaca, "
                   "sharegpt, messages and text records; in chat formats also `input`, so a "
                   "round trip back to cqia is exact.")
@click.option("--text-template", metavar="TEMPLATE|@FILE",
              help="With --to text: the text, with {field} placeholders (instruction, input, "
                   "output, system, any field; dotted paths) [default: instruction, input and "
                   "output joined by newlines].")
@click.option("--map", "maps", multiple=True, metavar="FIELD=PATH,...",
              help="Build cqia records from other layouts: take FIELD from the dotted source "
                   "PATH; repeatable.")
@click.option("--set", "sets", multiple=True, metavar="FIELD=VALUE",
              help="Set FIELD to a constant (one per option; [..] or {..} is JSON; domain and "
                   "task_type.major/minor become lists); repeatable.")
@click.option("--template", "template_path", metavar="FILE.toml|NAME",
              help="Instruction templates with {field} placeholders, each with its task_type and "
                   "domain; one is chosen per record by a hash of the record and --seed. NAME "
                   "picks a shipped set: xiaohongshu, douban.")
@click.option("--dataset-info", "dataset_info", metavar="FILE",
              help="Write or update the LLaMA-Factory dataset_info.json entry for -o FILE.")
@click.option("--name", metavar="NAME", help="The dataset's name in --dataset-info.")
def cli(io: IOOptions, target: str, source: str, container: str, array: bool, last_turn: bool,
        system: str | None, keep_meta: bool, text_template: str | None, maps: tuple,
        sets: tuple, template_path: str | None, dataset_info: str | None,
        name: str | None) -> None:
    """Convert records between the formats trainers read, or build COIG-CQIA records from raw
    dumps.

    Formats: cqia (COIG-CQIA records), alpaca (instruction, input, output, optional system and
    history), sharegpt (conversations of {from: system|human|gpt, value}), messages (OpenAI
    chat: messages of {role: system|user|assistant, content}), and, as output only, text (one
    `text` field from --text-template). Multi-turn conversations map to alpaca's and cqia's
    `history` ([[prompt, response], ...]) and back. In chat formats the user turn is the
    instruction followed by the input on the next line.

    Inputs may be JSON Lines, a JSON array, CSV/TSV with a header row (see --container), or
    Parquet (found by suffix or content; needs pip install 'cqia[parquet]'). A
    record that cannot be converted is reported as FILE:LINE: problem under --on-error: a
    missing field, roles out of order (an optional system turn first, then user and assistant
    alternating, ending with the assistant), a multi-turn record for a single-turn target, a
    template placeholder the record lacks.

    --map, --set and --template build records from any layout (a forum dump, a CSV export);
    COIG-CQIA fields they leave out get defaults (task_type 问答, domain 通用, answer_from
    human, human_verified false), so the output passes `cqia validate`.
    """
    from cqia_cli.formats import build
    from cqia_cli.formats.converter import Converter, load_text_template

    raw = bool(maps or template_path)
    if raw and source != "auto":
        raise _usage(f"--map and --template build records from raw fields; they do not combine "
                     f"with --from {source}")
    if text_template is not None and target != "text":
        raise _usage("--text-template needs --to text")
    if dataset_info and not name:
        raise _usage("--dataset-info needs --name NAME")
    if name and not dataset_info:
        raise _usage("--name needs --dataset-info FILE")
    if dataset_info and not io.output:
        raise _usage("--dataset-info needs -o FILE (the file LLaMA-Factory will load)")
    if dataset_info:
        from cqia_cli.io import compression_of

        if compression_of(io.output):
            raise _usage(f"--dataset-info: LLaMA-Factory does not load compressed files "
                         f"({io.output}; it takes arrow, csv, json, jsonl, parquet, txt): "
                         f"write -o without the compression suffix")
    try:
        template_obj = load_text_template(text_template)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--text-template") from None
    try:
        set_values = build.parse_sets(sets)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--set") from None
    try:
        mapping = build.parse_map(parse_assignments(maps, "--map"))
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--map") from None
    builder = None
    if raw:
        try:
            templates = (build.load_templates(build.template_file(template_path))
                         if template_path else [])
            builder = build.Builder(mapping, templates, seed=io.seed, keep_meta=keep_meta)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--template" if template_path
                                     else "--map") from None
        set_names = {p for p, _ in set_values}
        for needed in ("instruction", "output"):
            if not builder.provides(needed) and (needed,) not in set_names:
                raise _usage(f"nothing gives the {needed}: add --map {needed}=FIELD, "
                             f"--set {needed}=TEXT, or a template that has it")

    from cqia_cli.containers import ContainerReader
    from cqia_cli.formats.cells import type_cells

    def containers(errors_out):
        return ContainerReader(io.files or ["-"], container=container, row_hook=type_cells,
                               encoding=io.encoding, on_error=io.on_error,
                               errors_out=errors_out)

    with contextlib.ExitStack() as held, io.job(reader=containers) as job:
        reader = job.reader
        info_out = job.side_output(dataset_info, "dataset-info") if dataset_info else None
        records = job.records()
        head: list = []
        if raw:
            source = "raw"
        elif source == "auto":
            from cqia_cli.formats.chat import DetectError, detect

            for rec in itertools.islice(records, DETECT_RECORDS):
                head.append((rec, reader.mark()))

            def where(mark):
                reader.restore(mark)
                return reader.where()

            try:
                source = detect((rec, lambda m=m: where(m)) for rec, m in head) or "cqia"
            except DetectError as e:
                raise _usage(str(e)) from None
        convert = Converter(source, target, keep_meta=keep_meta, system=system,
                            last_turn=last_turn, text_template=template_obj, sets=set_values,
                            builder=builder)
        written = _run(job, reader, convert, head, records, array)
        if info_out is not None:
            # read, merge and rename under a lock held until the job has committed, so that
            # conversions run at once (make -j) into one dataset_info.json lose no entry
            held.enter_context(_locked_dir(dataset_info))
            _write_info(job, info_out, dataset_info, name, target, convert)
        parts = [f"convert: {written:,} records, {source} -> {target}"]
        if convert.multi_turn:
            parts.append(f"{convert.multi_turn:,} multi-turn")
        job.summary(", ".join(parts))


def _run(job, reader, convert, head: list, records, array: bool) -> int:
    """Convert every record (the detection buffer first, at its own FILE:LINE) and write it."""
    from cqia_cli.formats.chat import RecordProblem

    out = job.out
    if array:
        out.json_array()
    write = out.write
    start = out.count

    def replayed():
        for rec, mark in head:
            reader.restore(mark)
            yield rec

    for rec in itertools.chain(replayed(), records):
        try:
            result = convert(rec)
        except RecordProblem as e:
            job.reject(str(e))
            continue
        write(result)
    return out.count - start


@contextlib.contextmanager
def _locked_dir(path: str):
    """An exclusive lock on the directory of `path` (flock; nothing where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_info(job, info_out, path: str, name: str, target: str, convert) -> None:
    from cqia_cli.formats import llamafactory
    from cqia_cli.status import DataError, InputError

    output = job.out.path
    entry = llamafactory.dataset_entry(
        target, llamafactory.file_name_for(output, path),
        system=convert.with_system > 0, history=convert.multi_turn > 0)
    existing = None
    if os.path.isfile(path):  # merge into a file; a device or FIFO is written, never read
        try:
            with open(path, "rb") as f:
                existing = f.read()
        except OSError as e:
            raise InputError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        info_out.write_raw(llamafactory.merged_info(existing, name, entry, path))
    except ValueError as e:
        raise DataError(str(e)) from None
    job.summary(f"convert: {path}: entry {name!r} ({entry['formatting']}, {entry['file_name']})")
