"""The glue between `cqia dedup`'s options and the dedup package (kept out of the verb module
so that `cqia dedup --help` imports nothing heavy)."""

from __future__ import annotations

import os

import click

from cqia_cli import console
from cqia_cli.io import RecordReader, check_inputs, is_stdio
from cqia_cli.status import CqiaError, ExitStatus, InputError


def main(io, threshold, ngram, tokenizer, num_perm, bands, rows, t2s, keep, dupes_path, mark,
         clusters_path, against, index_path, save_index, storage, shards, shard_name,
         namespace, id_field) -> None:
    from cqia_cli.commands.dedup import DEFAULT_NGRAM
    from cqia_cli.dedup.index import MemoryIndex
    from cqia_cli.dedup.minhash import Params, lsh_params
    from cqia_cli.dedup.run import Clusters, Options, Runner
    from cqia_cli.dedup.sketch import MissingDependency, t2s_converter
    from cqia_cli.fields import compile_path

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
        ngram = ngram or DEFAULT_NGRAM[tokenizer]
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

    get_text = io.text_getter()
    names = [f for f in io.files] or ["-"]
    stream_name = ", ".join("<stdin>" if is_stdio(f) else f for f in names)
    opts = Options(params=params, threshold=threshold, keep=keep, mark=mark, id_field=id_field,
                   against=against, jobs=io.jobs, stream_name=stream_name)

    redis_index = None
    if storage:
        from cqia_cli.dedup.redis_index import open_storage

        redis_index = open_storage(storage, namespace, params, keep_ids=bool(id_field))
        redis_index.stream_name = stream_name
        if shards:
            redis_index.check_fresh(shards)
    if redis_index is not None and not shards:
        index = redis_index
    else:
        index = MemoryIndex(params, keep_ids=bool(id_field))
    if loaded is not None:
        index.load(*loaded)
    two_pass = keep != "first"
    with io.job() as job:
        runner = Runner(opts, index, get_text)
        dupes = job.side_output(dupes_path, "dupes") if dupes_path else None
        clusters_out = job.side_output(clusters_path, "clusters") if clusters_path else None
        index_out = job.side_output(save_index, "save-index") if save_index else None
        n_ref = 0
        for path in against:
            n_ref += runner.add_reference(path, io.encoding)
        clusters = Clusters() if clusters_out is not None else None
        write = job.out.write
        write_dupe = dupes.write if dupes is not None else (lambda rec: None)
        if shards:
            from cqia_cli.dedup.run import run_sharded

            def sharded(records, reread, write, write_dupe, clusters):
                run_sharded(runner, redis_index, records, reread, write, write_dupe,
                            shards=shards, shard=shard_name or stream_name, note=job.note)

            _two_pass(job, io, sharded, write, write_dupe, clusters)
        elif not two_pass:
            from cqia_cli.dedup.lines import run_first_lines

            # workers parse raw lines, sketch and serialise; this process decides and writes
            run_first_lines(runner, job, job.out.write_raw,
                            dupes.write_raw if dupes is not None else None, clusters)
        else:
            _two_pass(job, io, runner.run_two_pass, write, write_dupe, clusters)
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
        kept = st.records - st.removed
        detail = f"{st.exact:,} exact, {st.near:,} near"
        if st.external:
            detail += f"; {st.external:,} of them of records outside this input"
        verb = "marked" if mark else "removed"
        job.summary(f"dedup: kept {kept:,} of {st.records:,} ({console.fmt_share(kept, st.records)}); "
                    f"{verb} {st.removed:,} ({detail})")


def _two_pass(job, io, run, write, write_dupe, clusters) -> None:
    """--keep longest|best and --shards: decide over the whole input, then read it again to
    write (standard input is spooled to a temporary file for that)."""
    from cqia_cli.dedup.run import Spool

    spool = None
    records = job.records()
    if any(is_stdio(f) for f in job.files):
        spool = Spool()
        reader = job.reader
        f = spool.f

        def spooled(it):
            for rec in it:
                raw = reader.raw
                f.write(raw if raw.endswith(b"\n") else raw + b"\n")
                yield rec

        records = spooled(records)
    try:
        def reread():
            if spool is not None:
                spool.f.flush()
                paths = [spool.path]
            else:
                paths = job.files
            return iter(RecordReader(paths, encoding=io.encoding, on_error="skip"))

        run(records, reread, write, write_dupe, clusters)
    finally:
        if spool is not None:
            spool.close()
