"""One run of `cqia dedup`: read, sketch (in -j processes), decide, write.

--keep first streams: each record is written as soon as its batch is decided (see lines.py:
workers parse raw lines, sketch and serialise; this process decides and writes bytes). --keep longest
and --keep best need a whole cluster before they can choose, so they read the input twice: the
first pass keeps, per record, its signature (num_perm x 4 bytes), its cluster (8 bytes), its
similarity with the cluster's first record (4) and its score (8), never the record itself; the
second pass re-reads the input (standard input is spooled to a temporary file) and writes.
"""

from __future__ import annotations

from collections import deque
from array import array
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np

from cqia_cli import fields as F
from cqia_cli.dedup import defaults, templates
from cqia_cli.dedup.engine import Deduper
from cqia_cli.dedup.index import MemoryIndex
from cqia_cli.dedup.minhash import Params, sorted_unique
from cqia_cli.dedup.sketch import init_worker, sketch_in_worker
from cqia_cli.dedup.verify import IDENTICAL, MEASURE, MINHASH, REJECTED, Verifier
from cqia_cli.io import RecordReader, dumps
from cqia_cli.parallel import chunked, map_batches

BATCH = defaults.BATCH
HEADS = 4096  # removed records whose starts are kept for the warning
#: glibc malloc: arrays up to this size come from the heap, not from a fresh mmap each time
MMAP_THRESHOLD = 32 << 20
#: and up to this much freed heap is kept for the next batch instead of given back
TRIM_THRESHOLD = 128 << 20
CURRENT = "\x00current"


@dataclass
class Options:
    params: Params
    threshold: float = defaults.THRESHOLD
    keep: str = "first"
    mark: bool = False
    id_field: str | None = None
    against: tuple = ()
    jobs: int = 1
    stream_name: str = "<stdin>"
    batch: int = BATCH
    encoding: str = "utf-8"
    #: stop-shingles (templates.py): learned from the first `sample` records unless share is 0
    #: or the index comes with its own (--index) or lives in Redis (--storage)
    template_share: float = templates.SHARE
    template_min: int = templates.MIN_COUNT
    sample: int = templates.SAMPLE
    learn: bool = True
    #: the per-field rule (parts.py): 0 turns it off
    answer: float = defaults.ANSWER_THRESHOLD


def score_of(keep: str) -> Callable[[dict, str], int]:
    if keep == "longest":
        return lambda rec, text: len(text)

    def best(rec: dict, text: str) -> int:
        out = rec.get("output")
        return ((rec.get("human_verified") is True) << 62) | \
            ((rec.get("answer_from") == "human") << 61) | \
            min(len(F.as_text(out)), (1 << 60) - 1)
    return best


@dataclass
class Stats:
    records: int = 0
    exact: int = 0
    near: int = 0
    external: int = 0
    empty: int = 0  # records whose compared text is empty

    @property
    def removed(self) -> int:
        return self.exact + self.near


def tune_malloc() -> None:
    """Keep the few-MB numpy arrays of each batch in the heap (glibc only; a no-op elsewhere).

    By default glibc serves an allocation over its (adaptive) mmap threshold with a fresh
    mmap and unmaps it when freed: every batch's arrays are then faulted in page by page
    again. Measured on 100k shared records (-j 1): minor page faults 58-177k -> 33k, system
    time 0.2-0.56 s -> 0.11-0.2 s, peak RSS unchanged (191-204 MB). The -j workers fork after
    it and inherit it."""
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    mallopt(m_mmap_threshold, MMAP_THRESHOLD)
    mallopt(m_trim_threshold, TRIM_THRESHOLD)


class Runner:
    def __init__(self, opts: Options, index: MemoryIndex, get_text: Callable[[dict], str]):
        tune_malloc()
        self.o = opts
        self.index = index
        self.get_text = get_text
        self.id_path = F.compile_path(opts.id_field) if opts.id_field else None
        self.label = index.label(CURRENT)
        self.verifier = Verifier(opts.params, opts.threshold, index.stop, answer=opts.answer)
        self.deduper = Deduper(index, self.verifier, self.label)
        self.stats = Stats()
        self.ext_cluster: dict[int, int] = {}  # external entry -> first line that matched it
        self.removed_heads: list[str] = []  # the starts of the first removed records (warning)
        #: how to read an --against file (`Job.open_reader`: the job's encoding, --on-error
        #: and --errors); None: a plain RecordReader that fails at a bad line
        self.open_reader: Callable[[str], Any] | None = None

    def set_stop(self, stop) -> None:
        self.index.stop = stop
        self.verifier = Verifier(self.o.params, self.o.threshold, stop, answer=self.o.answer)
        self.deduper.verifier = self.verifier

    @property
    def sample_size(self) -> int:
        """How many of the first records `start` wants to learn from (0: none)."""
        o = self.o
        return o.sample if o.learn and o.template_share > 0 else 0

    def start(self, sample: list[str]) -> None:
        """Before the first batch: learn the stop-shingles from the first records' texts, then
        index the --against references (with the same shingles)."""
        if self.sample_size and sample:
            self.set_stop(templates.learn_stop(sample, self.o.params, self.o.template_share,
                                               self.o.template_min, jobs=self.o.jobs))
        for path in self.o.against:
            self.add_reference(path, self.o.encoding)

    # -- helpers ------------------------------------------------------------------------------

    def ident(self, rec: dict) -> Any:
        return F.get(rec, self.id_path) if self.id_path is not None else None

    def ref(self, entry: int, sim: float | None = None, kind: int | None = None) -> dict:
        label, num, ident = self.index.origin(entry)
        out: dict = {} if label == CURRENT else {"source": label}
        out["line"] = num
        if self.id_path is not None and ident is not None:
            out["id"] = ident
        if sim is not None:
            out["similarity"] = round(float(sim), 4)
            if kind is not None:
                out["measure"] = MEASURE[int(kind)]
        return out

    def is_current(self, entry: int) -> bool:
        return self.index.is_current(int(entry), self.label)

    def cluster_id(self, entry: int, line: int) -> int:
        """_cluster: the stream position of the cluster's first record (--keep first: the
        survivor; a reference or loaded entry: the first record that duplicates it)."""
        if self.is_current(entry):
            return self.index.origin(entry)[1]
        return self.ext_cluster.setdefault(int(entry), line)

    def sketches(self, batches: Iterator[list[str]]):
        return map_batches(sketch_in_worker, batches, self.o.jobs, initializer=init_worker,
                           initargs=(self.verifier,))

    # -- references and loaded indexes --------------------------------------------------------

    def add_reference(self, path: str, encoding: str) -> int:
        """Index every record of a reference file (no dedup among them); returns the count."""
        reader = self.open_reader(path) if self.open_reader is not None \
            else RecordReader([path], encoding=encoding)
        label = self.index.label(path)
        count = 0
        pending: deque = deque()

        def texts():
            for batch in chunked(iter(reader), self.o.batch):
                pending.append([self.ident(r) for r in batch] if self.id_path else None)
                yield [self.get_text(r) for r in batch]

        for sk in self.sketches(texts()):
            ids = pending.popleft()
            nums = np.arange(count + 1, count + len(sk) + 1, dtype=np.int64)
            self.index.add(sk.keys, sk.sigs, sk.bands, sk.near, label, nums, ids,
                           texts=sk.texts(np.arange(len(sk))))
            count += len(sk)
        return count

    # -- the first pass -----------------------------------------------------------------------

    def decided(self, records: Iterator[dict], keep_rows: bool = False):
        """Yield (batch of records, Decisions, signature rows) in input order."""
        pending: deque = deque()

        def texts():
            for batch in chunked(records, self.o.batch):
                pending.append(batch)
                out = [self.get_text(r) for r in batch]
                self.stats.empty += out.count("")
                yield out

        line = 0
        for sk in self.sketches(texts()):
            batch = pending.popleft()
            self.last_sketch = sk
            nums = np.arange(line + 1, line + len(batch) + 1, dtype=np.int64)
            rows = self.index.add_rows(sk.sigs, sk.texts(np.arange(len(sk)))) \
                if keep_rows else None
            ids = [self.ident(r) for r in batch] if self.id_path is not None else None
            yield batch, self.deduper.decide(sk, nums, ids, rows=rows), rows
            line += len(batch)

    def count(self, d, prefix: list | None = None) -> None:
        self.stats.records += len(d.entry)
        dup = d.entry >= 0
        room = HEADS - len(self.removed_heads)
        if prefix is not None and room > 0 and dup.any():
            self.removed_heads.extend(prefix[i] for i in np.flatnonzero(dup)[:room].tolist())
        exact = dup & d.exact
        self.stats.exact += int(exact.sum())
        self.stats.near += int((dup & ~exact).sum())
        if dup.any():
            src = getattr(self.index, "src", None)
            if isinstance(src, array):  # MemoryIndex: each entry's label, at once
                labels = np.frombuffer(src, dtype=np.int32)[d.entry[dup]]
                self.stats.external += int((labels != self.label).sum())
                del labels
            else:
                self.stats.external += sum(1 for e in d.entry[dup].tolist()
                                           if not self.is_current(e))

    # -- --keep longest|best ------------------------------------------------------------------

    def run_two_pass(self, records: Iterator[dict], reread: Callable[[], Iterator[dict]],
                     write, write_dupe, clusters) -> None:
        score = score_of(self.o.keep)
        n_entries_before = len(self.index)
        entry_of: list[np.ndarray] = []
        sim_of: list[np.ndarray] = []
        kind_of: list[np.ndarray] = []
        key_of: list[np.ndarray] = []
        score_of_rec: list[np.ndarray] = []
        row_of: list[np.ndarray] = []
        for batch, d, rows in self.decided(records, keep_rows=True):
            self.count(d, self.last_sketch.prefix)
            own = np.where(d.entry >= 0, d.entry, d.new_entry)
            entry_of.append(own)
            sim_of.append(np.where(d.entry >= 0, d.sim, 1.0).astype(np.float32))
            kind_of.append(np.where(d.entry >= 0, d.kind, IDENTICAL).astype(np.int8))
            key_of.append(self.last_sketch.keys)
            score_of_rec.append(np.fromiter((score(r, self.get_text(r)) for r in batch),
                                            dtype=np.int64, count=len(batch)))
            row_of.append(rows)
        if not entry_of:
            return
        ent = np.concatenate(entry_of)
        sim_leader = np.concatenate(sim_of)
        kind_leader = np.concatenate(kind_of)
        keys = np.concatenate(key_of)
        scores = np.concatenate(score_of_rec)
        rows = np.concatenate(row_of)
        del entry_of, sim_of, kind_of, key_of, score_of_rec, row_of
        n = ent.size
        lines = np.arange(1, n + 1, dtype=np.int64)
        current = ent >= n_entries_before
        # the survivor of each cluster of this stream: highest score, then earliest
        order = np.lexsort((lines, -scores, ent))
        first = np.ones(n, dtype=bool)
        first[1:] = ent[order][1:] != ent[order][:-1]
        survivor_line = {}
        for e, ln in zip(ent[order][first].tolist(), lines[order][first].tolist()):
            survivor_line[e] = ln
        is_survivor = np.zeros(n, dtype=bool)
        for e, ln in survivor_line.items():
            if e >= n_entries_before:
                is_survivor[ln - 1] = True
        # similarity of each removed record with its survivor (exact for the cluster's first)
        sim = sim_leader.copy()
        kind = kind_leader.copy()
        todo = np.flatnonzero(current & ~is_survivor)
        index = self.index
        for chunk in range(0, todo.size, 65536):
            idx = todo[chunk:chunk + 65536]
            surv = np.fromiter((survivor_line[e] for e in ent[idx].tolist()), dtype=np.int64,
                               count=idx.size) - 1
            ra, rb = rows[idx], rows[surv]
            s, k = self.verifier.similarity(
                index.sigs.get(ra), index.sigs.get(rb), index.row_nsh(ra), index.row_nsh(rb),
                lambda i: index.row_units(ra[i]), lambda i: index.row_units(rb[i]))
            # the similarity with the survivor, as measured; a pair that the short-text rule
            # cannot vouch for on its own (the survivor is not the record the cluster formed
            # around) reports the MinHash estimate, and says so
            bad = k == REJECTED
            est = (index.sigs.get(ra) == index.sigs.get(rb)).mean(axis=1)
            k = np.where(keys[idx] == keys[surv], IDENTICAL, np.where(bad, MINHASH, k))
            sim[idx] = np.where(k == IDENTICAL, 1.0, np.where(bad, est, s))
            kind[idx] = k
        # the index now points at survivors, so that --save-index names them
        for e, ln in survivor_line.items():
            if e >= n_entries_before:
                self.index.renumber(e, ln)
        mark = self.o.mark
        uniq, first_idx = np.unique(ent, return_index=True)
        leader = dict(zip(uniq.tolist(), (first_idx + 1).tolist()))
        for i, rec in enumerate(reread()):
            if i >= n:
                break
            line = i + 1
            e = int(ent[i])
            if self.index.ids is not None and is_survivor[i] and e >= n_entries_before:
                self.index.ids[e] = self.ident(rec)
            cid = self.cluster_id(e, line) if e < n_entries_before else leader[e]
            if clusters is not None:
                clusters.add(line, e, float(sim[i]))
            if is_survivor[i]:
                write({**rec, "_cluster": cid} if mark else rec)
                continue
            if e >= n_entries_before:
                dup_of = {"line": survivor_line[e]}
                if self.id_path is not None:
                    ident = self.index.ids[e] if self.index.ids is not None else None
                    if ident is not None:
                        dup_of["id"] = ident
                dup_of["similarity"] = round(float(sim[i]), 4)
                dup_of["measure"] = MEASURE[int(kind[i])]
            else:
                dup_of = self.ref(e, float(sim[i]), int(kind[i]))
            if mark:
                write({**rec, "_cluster": cid, "_dup_of": dup_of})
            else:
                write_dupe({**rec, "_dup_of": dup_of})


def run_sharded(runner: Runner, redis_index, records: Iterator[dict],
                reread: Callable[[], Iterator[dict]], write, write_dupe, *, shards: int,
                shard: str, note: Callable[[str], None]) -> None:
    """--storage with --shards: dedup this part locally, publish its survivors, wait for every
    part, then apply the cross-part rule (see redis_index) while writing."""
    from cqia_cli.dedup.redis_index import record_rank

    o = runner.o
    local = runner.index
    redis_index.stream_name = shard
    r_label = redis_index.label(CURRENT)
    use_id = runner.id_path is not None
    dup_line = array("q")
    dup_sim = array("f")
    dup_kind = array("b")
    line = 0
    for batch, d, _ in runner.decided(records):
        runner.count(d, runner.last_sketch.prefix)
        surv = np.flatnonzero(d.entry < 0)
        for i, rec in enumerate(batch):
            e = int(d.entry[i])
            dup_line.append(local.origin(e)[1] if e >= 0 else 0)
            dup_sim.append(float(d.sim[i]) if e >= 0 else 1.0)
            dup_kind.append(int(d.kind[i]) if e >= 0 else IDENTICAL)
        if surv.size:
            sk = runner.last_sketch
            ids = [runner.ident(batch[i]) for i in surv.tolist()] if use_id else None
            ranks = [record_rank(batch[i], int(sk.keys[i]), ids[j] if use_id else None, use_id,
                                 shard, line + i + 1) for j, i in enumerate(surv.tolist())]
            redis_index.add(sk.keys[surv], sk.sigs[surv], sk.bands[surv], sk.near[surv],
                            r_label, np.arange(line + 1, line + len(batch) + 1)[surv], ids,
                            ranks=ranks, texts=sk.texts(surv))
        line += len(batch)
    redis_index.publish_done()
    redis_index.wait_for(shards, note)

    lines = np.frombuffer(dup_line, dtype=np.int64)
    sims = np.frombuffer(dup_sim, dtype=np.float32)
    kinds = dup_kind.tolist()
    n = lines.size
    pending: deque = deque()

    def texts():
        for batch in chunked(iter(reread()), o.batch):
            pending.append(batch)
            yield [runner.get_text(r) for r in batch]

    mark = o.mark
    cross = 0
    line = 0
    for sk in runner.sketches(texts()):
        batch = pending.popleft()
        base = line
        line += len(batch)
        todo = [i for i in range(len(batch)) if base + i < n and lines[base + i] == 0]
        best = _cross_shard(redis_index, sk, todo, batch, base, shard, use_id, runner,
                            o.threshold) if todo else {}
        for i, rec in enumerate(batch):
            ln = base + i + 1
            if ln > n:
                break
            if lines[ln - 1] == 0 and i not in best:
                write({**rec, "_cluster": ln} if mark else rec)
                continue
            if lines[ln - 1]:
                dup_of = {"line": int(lines[ln - 1]), "similarity": round(float(sims[ln - 1]), 4),
                          "measure": MEASURE[kinds[ln - 1]]}
                cid = int(lines[ln - 1])
            else:
                cross += 1
                entry, s, k = best[i]
                source, num, ident = redis_index.origin(entry)
                dup_of = {"source": source, "line": num}
                if use_id and ident is not None:
                    dup_of["id"] = ident
                dup_of["similarity"] = round(float(s), 4)
                dup_of["measure"] = MEASURE[k]
                cid = ln
            if mark:
                write({**rec, "_cluster": cid, "_dup_of": dup_of})
            else:
                write_dupe({**rec, "_dup_of": dup_of})
    runner.stats.near += cross
    runner.stats.external += cross


def _cross_shard(index, sk, todo: list[int], batch, base: int, shard: str, use_id: bool,
                 runner: Runner, threshold: float) -> dict[int, tuple[int, float, int]]:
    """For this part's survivors (rows `todo` of the batch): the record of another part that
    removes it under the rule, as {row: (entry, similarity, kind)}."""
    from cqia_cli.dedup.redis_index import record_rank

    rows = np.asarray(todo, dtype=np.int64)
    from cqia_cli.dedup.engine import BUCKET_LIMIT

    pairs: dict[tuple[int, int], tuple[float, int]] = {}
    for r, vals in zip(rows.tolist(), index.exact_lists(sk.keys[rows])):
        for e in vals:
            pairs[(r, e)] = (1.0, IDENTICAL)
    near_rows = rows[sk.near[rows]]
    if near_rows.size:
        qi, ent = index.band_lookup(sk.bands[near_rows], limit=BUCKET_LIMIT)
        if qi.size:
            uniq = sorted_unique((near_rows[qi] << 32) | ent)
            rr, ee = uniq >> 32, uniq & 0xFFFFFFFF
            sims, kinds = runner.verifier.similarity(
                sk.sigs[rr], index.signatures(ee), sk.nsh[rr], index.nsh(ee),
                lambda i: sk.short_units(rr[i]), lambda i: index.short_units(ee[i]))
            for r, e, s, k in zip(rr.tolist(), ee.tolist(), sims.tolist(), kinds.tolist()):
                if s >= threshold and k != REJECTED and (r, e) not in pairs:
                    pairs[(r, e)] = (s, k)
    if not pairs:
        return {}
    index.origins([e for _, e in pairs])
    best: dict[int, tuple[float, list, int]] = {}
    mine = {}
    for (r, e), (s, k) in pairs.items():
        if index.is_current(e, 0):
            continue
        if r not in mine:
            rec = batch[r]
            ident = runner.ident(rec) if use_id else None
            mine[r] = record_rank(rec, int(sk.keys[r]), ident, use_id, shard, base + r + 1)
        other = index.rank(e)
        if other is None or other >= mine[r]:
            continue
        cur = best.get(r)
        if cur is None or s > cur[0] or (s == cur[0] and other < cur[1]):
            best[r] = (s, other, e, k)
    return {r: (e, s, k) for r, (s, _, e, k) in best.items()}


class Clusters:
    """--clusters FILE: (line, entry, similarity) per record, 20 bytes; at the end, one JSON line
    per cluster that has a removed record, in the order of the cluster's first record:

        {"cluster": 3, "survivor": {"line": 3}, "size": 2,
         "members": [{"line": 9, "similarity": 0.83}]}
    """

    def __init__(self) -> None:
        self._line = array("q")
        self._entry = array("q")
        self._sim = array("f")

    def add(self, line: int, entry: int, sim: float) -> None:
        self._line.append(line)
        self._entry.append(int(entry))
        self._sim.append(sim)

    def write(self, out, runner: "Runner") -> int:
        line = np.frombuffer(self._line, dtype=np.int64)
        entry = np.frombuffer(self._entry, dtype=np.int64)
        sim = np.frombuffer(self._sim, dtype=np.float32)
        if line.size == 0:
            return 0
        order = np.lexsort((line, entry))
        line, entry, sim = line[order], entry[order], sim[order]
        bounds = np.flatnonzero(np.r_[True, entry[1:] != entry[:-1], True])
        rows = []
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            e = int(entry[a])
            surv = runner.ref(e)
            current = "source" not in surv
            members = [{"line": ln, "similarity": round(s, 4)}
                       for ln, s in zip(line[a:b].tolist(), sim[a:b].tolist())
                       if not (current and ln == surv["line"])]
            if members:
                rows.append((int(line[a]), {"cluster": int(line[a]), "survivor": surv,
                                            "size": b - a, "members": members}))
        rows.sort(key=lambda r: r[0])
        for _, row in rows:
            out.write_raw(dumps(row))
        return len(rows)
