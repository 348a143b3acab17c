"""--keep first on the core's `Job.map_lines` (any -j): workers (or this process with -j 1)
get the parsed records, build the texts and sketch; this process only looks up and inserts in
the index, in input order, and writes bytes. Bad lines are the core's to report.

`sketch_records(records)` returns a `LineBatch`: the run's `Sketch`, the records themselves and
their --id-field values. A record is written (orjson) only when it is: in this process (-j 1,
and the batches a -j run does here) only the records kept, or asked for by --dupes or
--mark; a batch that crosses from a -j worker takes its records' bytes along instead, in one
buffer (orjson's own results hold several times their size). The core's lazy parse has made
sure that every record can be written (a record nested too deep is its bad line).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import orjson

from cqia_cli.dedup.sketch import Sketch, init_worker as init_sketch, sketch_batch

_worker: dict = {}
_NL = orjson.OPT_APPEND_NEWLINE


@dataclass
class LineBatch:
    sketch: Sketch           # the run's records' sketch
    records: list | None     # the records (in this process), or None: out and offs instead
    plain: bytes             # per record: keys can be appended to its bytes (`with_keys`)
    ids: list | None         # --id-field value per record
    empty: int               # records whose compared text is empty
    out: "np.ndarray | None" = None  # uint8: the records' bytes (orjson, each with its
                             # newline), one buffer (an array: it crosses out of band)
    offs: list | None = None  # record i is out[offs[i]:offs[i + 1]]

    def __len__(self) -> int:
        return len(self.plain)

    def __getstate__(self) -> dict:
        """Pickled (a -j worker's result): the records cross as their bytes."""
        state = self.__dict__.copy()
        if self.records is not None:
            out = bytearray()
            offs = [0]
            dumps = orjson.dumps
            for rec in self.records:
                out += dumps(rec, option=_NL)
                offs.append(len(out))
            state.update(records=None, out=np.frombuffer(out, dtype=np.uint8), offs=offs)
        return state

    def data(self, i: int):
        """Record i's bytes (orjson, with its newline)."""
        if self.records is not None:
            return orjson.dumps(self.records[i], option=_NL)
        return memoryview(self.out)[self.offs[i]:self.offs[i + 1]]

    def runs(self, starts: list, ends: list) -> bytes:
        """The bytes of records [s, e) for each (s, e), joined."""
        if self.records is not None:
            dumps = orjson.dumps
            recs = self.records
            return b"".join([dumps(recs[i], option=_NL)
                             for s, e in zip(starts, ends) for i in range(s, e)])
        view = memoryview(self.out)
        offs = self.offs
        return b"".join([view[offs[s]:offs[e]] for s, e in zip(starts, ends)])

    def with_keys(self, i: int, extra: dict) -> bytes:
        """Record i with `extra`'s keys added (replacing its own)."""
        if self.records is not None:
            return orjson.dumps({**self.records[i], **extra}, option=_NL)
        return with_keys(self.data(i), self.plain[i], extra)


def init_worker(verifier, get_text, id_path) -> None:
    init_sketch(verifier)
    _worker.update(verifier=verifier, get_text=get_text, id_path=id_path)


def sketch_records(records) -> LineBatch:
    """One run of records (`Job.map_lines(lazy=True)` calls it, and has checked that each can
    be written as JSON)."""
    from cqia_cli import fields as F

    w = _worker
    get_text = w["get_text"]
    id_path = w["id_path"]
    recs: list = []
    texts: list[str] = []
    plain = bytearray()
    ids: list | None = [] if id_path is not None else None
    for rec in records:  # one pass, each record as it is parsed
        recs.append(rec)
        texts.append(get_text(rec))
        # keys can be appended to the bytes when the record has keys and lacks those added
        plain.append(bool(rec) and "_dup_of" not in rec and "_cluster" not in rec)
        if ids is not None:
            ids.append(F.get(rec, id_path))
    sk = sketch_batch(texts, w["verifier"])
    return LineBatch(sk, recs, bytes(plain), ids, texts.count(""))


def with_keys(data: bytes, plain: int, extra: dict) -> bytes:
    """`dumps({**record, **extra})` from the record's bytes `data`: appended to the bytes when
    `plain` (the record has keys and none of `extra`'s), else through a parse."""
    data = bytes(data)
    if plain:
        return data[:-2] + b"," + orjson.dumps(extra)[1:] + b"\n"
    return orjson.dumps({**orjson.loads(data), **extra}, option=orjson.OPT_APPEND_NEWLINE)


def run_first_lines(runner, job, write, write_dupe, clusters) -> None:
    """--keep first over `job.map_lines` (any -j): `write` and `write_dupe` (None: no --dupes)
    take bytes. The first records are read ahead (`Job.peek`) to learn the stop-shingles."""
    o = runner.o
    want = runner.sample_size
    if want:
        runner.start([runner.get_text(r) for r in job.peek(want, batch=o.batch)])
    else:
        runner.start([])
    results = job.map_lines(sketch_records, o.jobs, batch=o.batch, lazy=True,
                            initializer=init_worker,
                            initargs=(runner.verifier, runner.get_text, runner.id_path))
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
                    chunk.append(lb.with_keys(i, {"_cluster": ln}))
                else:
                    chunk.append(lb.with_keys(i, {
                        "_cluster": runner.cluster_id(e, ln),
                        "_dup_of": ref(e, sims[i], kinds[i])}))
            write(b"".join(chunk))
        else:
            # the survivors' bytes, run by run (from a worker: without copying them)
            m = np.diff(np.r_[0, survived_np.view(np.int8), 0])
            write(lb.runs(np.flatnonzero(m == 1).tolist(), np.flatnonzero(m == -1).tolist()))
            if write_dupe is not None and not survived_np.all():
                survived = survived_np.tolist()
                chunk = [lb.with_keys(i, {"_dup_of": ref(entries[i], sims[i], kinds[i])})
                         for i in range(n) if not survived[i]]
                write_dupe(b"".join(chunk))
        line += n
