"""--keep first on the core's `Job.map_lines` (any -j): workers (or this process with -j 1)
get the parsed records, build the texts, sketch and serialise; this process only looks up and
inserts in the index, in input order, and writes bytes. Bad lines are the core's to report.

`sketch_records(records)` returns a `LineBatch`: the run's `Sketch`, the records' output bytes
(what `Output.write` would write for each, in one buffer: orjson's own results hold several
times their size) and their --id-field values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from cqia_cli.dedup.sketch import (Prepared, Sketch, finish_batch, init_worker as init_sketch,
                                    prepare_batch, warm_up)
from cqia_cli.parallel import Staged

_worker: dict = {}
#: -j: deciding a batch here takes ~40% of sketching one, so this process is still busy when
#: the workers end: one batch waiting at each worker and none of the input's last batches kept
#: for this process (map_batches' defaults are 2 and 2). Measured on 100k shared records,
#: `-j 2`, 4-5 runs each: the workers' idle time 0.36-0.38 s -> 0.24 s, this process's time
#: after the last worker result 0.17-0.20 s -> 0.04-0.10 s.
SCHEDULE = {"queued": 1, "reserve": 0}
#: -j: batches read past the sample and given to each worker to prepare while this process
#: learns the stop-shingles (it would wait 0.10-0.19 s for them otherwise, measured: 0-0.05 s
#: with 2). 30 paired runs of -j 2 on 100k shared records: faster in 20, median 3.30 -> 3.26 s.
#: On a slower day the worker still waited 0.04-0.30 s with 2 (median 0.065-0.084 s, 14 runs);
#: with 4: none in 17 runs of 25 (0.02-0.12 s in the others), the worker's idle time over the
#: run 0.27-0.38 -> 0.20-0.22 s (medians of 6-8 runs), its peak RSS 165 -> 182 MB.
EARLY_MORE = 4


@dataclass
class LineBatch:
    sketch: Sketch           # the run's records' sketch
    out: "np.ndarray"        # uint8: the records' bytes (orjson, each with its newline), one
                             # buffer (an array: it crosses from a -j worker out of band)
    offs: list               # record i is out[offs[i]:offs[i + 1]]
    plain: bytes             # per record: keys can be appended to its bytes (`with_keys`)
    ids: list | None         # --id-field value per record
    empty: int               # records whose compared text is empty

    def __len__(self) -> int:
        return len(self.offs) - 1


def init_worker(verifier, get_text, id_path) -> None:
    init_sketch(verifier)
    _worker.update(verifier=verifier, params=verifier.params, get_text=get_text,
                   id_path=id_path)


def warm_worker(params, get_text, id_path) -> None:
    """A -j worker as it starts, before the stop-shingles are learned: what `prepare_records`
    needs, and what --tokenizer jieba and --t2s load."""
    warm_up(params)
    _worker.update(params=params, get_text=get_text, id_path=id_path)


@dataclass
class _Prepared:
    """`prepare_records`' half of a LineBatch."""
    sketch: Prepared
    out: "np.ndarray"
    offs: list
    plain: bytes
    ids: list | None
    empty: int


def prepare_records(records) -> _Prepared:
    """The stop-independent half of `sketch_records`: the records written, their texts
    normalised and hashed. A record nested too deep to write raises orjson.JSONEncodeError,
    which the core turns into that record's bad line."""
    from cqia_cli import fields as F

    w = _worker
    get_text = w["get_text"]
    id_path = w["id_path"]
    dumps = orjson.dumps
    nl = orjson.OPT_APPEND_NEWLINE
    texts: list[str] = []
    out = bytearray()
    offs = [0]
    plain = bytearray()
    ids: list | None = [] if id_path is not None else None
    for rec in records:
        out += dumps(rec, option=nl)
        offs.append(len(out))
        texts.append(get_text(rec))
        # keys can be appended to the bytes when the record has keys and lacks those added
        plain.append(bool(rec) and "_dup_of" not in rec and "_cluster" not in rec)
        if ids is not None:
            ids.append(F.get(rec, id_path))
    return _Prepared(prepare_batch(texts, w["params"]), np.frombuffer(out, dtype=np.uint8),
                     offs, bytes(plain), ids, texts.count(""))


def finish_records(p: _Prepared) -> LineBatch:
    """The rest of `sketch_records`: what depends on the stop-shingles."""
    return LineBatch(finish_batch(p.sketch, _worker["verifier"]), p.out, p.offs, p.plain,
                     p.ids, p.empty)


#: one run of records (`Job.map_lines` calls it) -> LineBatch; in two stages, so that -j
#: workers started early prepare the first batches while this process learns the
#: stop-shingles from them (`Job.peek(workers=...)`)
sketch_records = Staged(prepare_records, finish_records)


def with_keys(data: bytes, plain: int, extra: dict) -> bytes:
    """`dumps({**record, **extra})` from the record's bytes `data`: appended to the bytes when
    `plain` (the record has keys and none of `extra`'s), else through a parse."""
    data = bytes(data)
    if plain:
        return data[:-2] + b"," + orjson.dumps(extra)[1:] + b"\n"
    return orjson.dumps({**orjson.loads(data), **extra}, option=orjson.OPT_APPEND_NEWLINE)


def run_first_lines(runner, job, write, write_dupe, clusters) -> None:
    """--keep first over `job.map_lines` (any -j): `write` and `write_dupe` (None: no --dupes)
    take bytes. The first records are read ahead (`Job.peek`) to learn the stop-shingles; the
    -j workers are started before that (`Job.line_workers`), so that the heap it leaves
    behind is this process's alone; meanwhile they load what --tokenizer jieba and --t2s
    need, and prepare the batches peeked at (`sketch_records`' first stage)."""
    o = runner.o
    want = runner.sample_size
    with job.line_workers(sketch_records, o.jobs, lazy=True, warm_up=warm_worker,
                          warm_args=(o.params, runner.get_text, runner.id_path)) as workers:
        if want:
            sample = job.peek(want, batch=o.batch, workers=workers, extra=EARLY_MORE)
            runner.start([runner.get_text(r) for r in sample])
        else:
            runner.start([])
        results = job.map_lines(sketch_records, o.jobs, batch=o.batch, lazy=True,
                                initializer=init_worker,
                                initargs=(runner.verifier, runner.get_text, runner.id_path),
                                workers=workers, schedule=SCHEDULE)
        try:
            _write_batches(runner, results, write, write_dupe, clusters)
        finally:
            results.close()


def _write_batches(runner, results, write, write_dupe, clusters) -> None:
    import numpy as np

    mark = runner.o.mark
    ref = runner.ref
    prefetch = getattr(runner.index, "origins", None)
    line = 0
    for lb in results:
        n = len(lb)
        runner.stats.empty += lb.empty
        nums = np.arange(line + 1, line + n + 1, dtype=np.int64)
        d = runner.deduper.decide(lb.sketch, nums, lb.ids)
        if prefetch is not None:
            prefetch(d.entry[d.entry >= 0].tolist())
        runner.count(d, lb.sketch.prefix)
        entries = d.entry.tolist()
        sims = d.sim.tolist()
        kinds = d.kind.tolist()
        blob = memoryview(lb.out)
        offs = lb.offs
        plain = lb.plain
        if clusters is not None:
            new = d.new_entry.tolist()
            for i, e in enumerate(entries):
                if e < 0:
                    clusters.add(line + i + 1, new[i], 1.0)
                else:
                    clusters.add(line + i + 1, e, sims[i])
        survived_np = d.entry < 0
        if mark:
            chunk = []
            for i in range(n):
                ln = line + i + 1
                e = entries[i]
                if e < 0:
                    chunk.append(with_keys(blob[offs[i]:offs[i + 1]], plain[i],
                                           {"_cluster": ln}))
                else:
                    chunk.append(with_keys(blob[offs[i]:offs[i + 1]], plain[i], {
                        "_cluster": runner.cluster_id(e, ln),
                        "_dup_of": ref(e, sims[i], kinds[i])}))
            write(b"".join(chunk))
        else:
            # the survivors' bytes, run by run, without copying them
            view = blob
            m = np.diff(np.r_[0, survived_np.view(np.int8), 0])
            starts = np.flatnonzero(m == 1).tolist()
            ends = np.flatnonzero(m == -1).tolist()
            write(b"".join([view[offs[s]:offs[e]] for s, e in zip(starts, ends)]))
            if write_dupe is not None and not survived_np.all():
                survived = survived_np.tolist()
                chunk = [with_keys(blob[offs[i]:offs[i + 1]], plain[i],
                                   {"_dup_of": ref(entries[i], sims[i], kinds[i])})
                         for i in range(n) if not survived[i]]
                write_dupe(b"".join(chunk))
        line += n
