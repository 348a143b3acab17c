"""-j work on raw lines for --keep first: workers parse, build the text, sketch and serialise;
the parent only looks up and inserts in the index, in input order, and writes bytes.

`sketch_lines((first, lines))` returns a `LineBatch`: the batch's `Sketch`, the records'
output bytes (what `Output.write` would write for each, in one buffer: orjson's own results
hold several times their size), their --id-field values, and the bad lines
(with the position of the record they come before) for the parent to report through
`RecordReader.bad_line`, in order, as plain iteration would.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from cqia_cli.dedup.sketch import Sketch, init_worker as init_sketch, sketch_batch

_worker: dict = {}


@dataclass
class LineBatch:
    sketch: Sketch | None    # None when the batch has no record (only bad or blank lines)
    out: bytes               # the records' bytes (orjson, each with its newline), one buffer
    offs: list               # record i is out[offs[i]:offs[i + 1]]
    plain: bytes             # per record: keys can be appended to its bytes (`with_keys`)
    ids: list | None         # --id-field value per record
    bad: list                # (record position, lineno, line, problem), in line order
    empty: int               # records whose compared text is empty
    error: str | None = None  # a record that cannot be written as JSON (raise it)

    def __len__(self) -> int:
        return len(self.offs) - 1


def init_worker(verifier, get_text, id_path, encoding: str) -> None:
    init_sketch(verifier)
    _worker.update(verifier=verifier, get_text=get_text, id_path=id_path, encoding=encoding)


def sketch_lines(batch: tuple[int, list[bytes]]) -> LineBatch:
    from cqia_cli import fields as F
    from cqia_cli.io import parse_line

    first, lines = batch
    w = _worker
    get_text = w["get_text"]
    id_path = w["id_path"]
    encoding = w["encoding"]
    utf8 = encoding == "utf-8"
    loads = orjson.loads
    dumps = orjson.dumps
    nl = orjson.OPT_APPEND_NEWLINE
    texts: list[str] = []
    out = bytearray()
    offs = [0]
    plain = bytearray()
    ids: list | None = [] if id_path is not None else None
    bad: list = []
    error = None
    for lineno, line in enumerate(lines, first):
        try:
            rec = loads(line) if utf8 else loads(line.decode(encoding))
        except ValueError:  # JSONDecodeError, UnicodeDecodeError: why, as iteration says it
            problem = parse_line(line, encoding)
            if problem is not None:  # None: a blank line
                bad.append((len(offs) - 1, lineno, line, problem))
            continue
        if type(rec) is not dict:
            bad.append((len(offs) - 1, lineno, line, parse_line(line, encoding)))
            continue
        try:
            out += dumps(rec, option=nl)
        except TypeError as e:  # nested too deep to write: a bad line, at its FILE:LINE
            bad.append((len(offs) - 1, lineno, line, f"cannot write a record as JSON: {e}"))
            continue
        offs.append(len(out))
        texts.append(get_text(rec))
        # keys can be appended to the bytes when the record has keys and lacks those added
        plain.append(bool(rec) and "_dup_of" not in rec and "_cluster" not in rec)
        if ids is not None:
            ids.append(F.get(rec, id_path))
    sk = sketch_batch(texts, w["verifier"]) if texts else None
    return LineBatch(sk, bytes(out), offs, bytes(plain), ids, bad, texts.count(""), error)


def sample_texts(lines: list[bytes], get_text, encoding: str) -> list[str]:
    """The texts of the records among raw lines (bad lines are left to the main pass)."""
    out = []
    for line in lines:
        try:
            rec = orjson.loads(line) if encoding == "utf-8" else orjson.loads(line.decode(encoding))
        except ValueError:
            continue
        if type(rec) is dict:
            out.append(get_text(rec))
    return out


def with_keys(data: bytes, plain: int, extra: dict) -> bytes:
    """`dumps({**record, **extra})` from the record's bytes `data`: appended to the bytes when
    `plain` (the record has keys and none of `extra`'s), else through a parse."""
    if plain:
        return data[:-2] + b"," + orjson.dumps(extra)[1:] + b"\n"
    return orjson.dumps({**orjson.loads(data), **extra}, option=orjson.OPT_APPEND_NEWLINE)


def run_first_lines(runner, job, write, write_dupe, clusters) -> None:
    """--keep first over raw line batches (any -j): `write` and `write_dupe` (None: no
    --dupes) take bytes."""
    import itertools
    from collections import deque

    from cqia_cli.parallel import map_batches
    from cqia_cli.status import CqiaError

    o = runner.o
    reader = job.reader
    names: deque = deque()
    failed: list = []

    stop: list = []
    raw = job.raw_batches(o.batch)
    head: list = []
    want = runner.sample_size
    if want:
        # the first records, read ahead to learn the stop-shingles, then processed as usual
        texts: list[str] = []
        try:
            for item in raw:
                head.append(item)
                texts.extend(sample_texts(item[2], runner.get_text, reader.encoding))
                if len(texts) >= want:
                    break
        except CqiaError as e:
            failed.append(e)
        runner.start(texts[:want])
    else:
        runner.start([])

    def batches():
        try:
            for name, first, lines in itertools.chain(head, () if failed else raw):
                if stop:
                    return
                names.append(name)
                yield first, lines
        except CqiaError as e:
            # a reading error: raised once the batches read before it are written
            failed.append(e)

    bad_line = reader.bad_line
    results = map_batches(sketch_lines, batches(), o.jobs, initializer=init_worker,
                          initargs=(runner.verifier, runner.get_text, runner.id_path,
                                    reader.encoding))
    try:
        _write_batches(runner, results, names, bad_line, write, write_dupe, clusters)
    except Exception:
        # read no further, but take the results in flight so that the pool ends normally:
        # terminating it can wait forever on a worker that is writing a large result
        stop.append(True)
        try:
            for _ in results:
                pass
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        raise
    finally:
        results.close()
    if failed:
        raise failed[0]


def _write_batches(runner, results, names, bad_line, write, write_dupe, clusters) -> None:
    import numpy as np

    from cqia_cli.status import DataError

    mark = runner.o.mark
    ref = runner.ref
    prefetch = getattr(runner.index, "origins", None)
    line = 0
    for lb in results:
        name = names.popleft()
        n = len(lb)
        # segments of the batch's records between its bad lines: [a, b), then bad line k
        cuts = [(pos, k) for k, (pos, *_rest) in enumerate(lb.bad)]
        if n:
            runner.stats.empty += lb.empty
            nums = np.arange(line + 1, line + n + 1, dtype=np.int64)
            d = runner.deduper.decide(lb.sketch, nums, lb.ids)
            if prefetch is not None:
                prefetch(d.entry[d.entry >= 0].tolist())
            runner.count(d, lb.sketch.prefix)
            entries = d.entry.tolist()
            sims = d.sim.tolist()
            kinds = d.kind.tolist()
            blob = lb.out
            view = memoryview(blob)
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
            survived = survived_np.tolist()
            a = 0
            for b, k in cuts + [(n, None)]:
                if b > a:
                    if mark:
                        chunk = []
                        for i in range(a, b):
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
                        m = np.diff(np.r_[0, survived_np[a:b].view(np.int8), 0])
                        starts = (np.flatnonzero(m == 1) + a).tolist()
                        ends = (np.flatnonzero(m == -1) + a).tolist()
                        write(b"".join([view[offs[s]:offs[e]] for s, e in zip(starts, ends)]))
                    if not mark and write_dupe is not None:
                        chunk = [with_keys(blob[offs[i]:offs[i + 1]], plain[i],
                                           {"_dup_of": ref(entries[i], sims[i], kinds[i])})
                                 for i in range(a, b) if not survived[i]]
                        if chunk:
                            write_dupe(b"".join(chunk))
                    a = b
                if k is not None:
                    _, lineno, raw, problem = lb.bad[k]
                    bad_line(raw, lineno, problem, path=name)
            line += n
        else:
            for _, lineno, raw, problem in lb.bad:
                bad_line(raw, lineno, problem, path=name)
        if lb.error is not None:
            raise DataError(lb.error)
