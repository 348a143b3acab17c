"""Decide, batch by batch, which records are duplicates of what is already indexed.

The rule ("first wins", input order): a record is a duplicate when its normalised text equals
that of an earlier survivor (exact), or when its estimated Jaccard similarity with an earlier
survivor (or a reference / loaded index entry) is at least the threshold (near; LSH finds the
candidates, the signatures verify them). Its survivor is the most similar such entry (ties: the
earliest). Survivors are indexed; duplicates are not, so every removed record is similar to the
survivor it names.

`Deduper.decide(sketch)` applies the rule to one batch with vectorised lookups; only records
that have a candidate are looked at one by one, in input order, so that a record can also be a
duplicate of an earlier record of the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cqia_cli.dedup.minhash import similarity
from cqia_cli.dedup.sketch import Sketch

#: in-batch candidates: each record is compared with the first record of each band bucket and
#: with up to this many earlier records of the bucket
NEIGHBOURS = 8


def local_pairs(sigs: np.ndarray, bands: np.ndarray, near: np.ndarray,
                threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-batch near candidates (earlier, later, similarity) with similarity >= threshold: each
    record against the first record of each of its band buckets and up to NEIGHBOURS earlier
    records of the bucket."""
    empty = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    rows = np.flatnonzero(near)
    if rows.size < 2:
        return empty
    nb = bands.shape[1]
    h = bands[rows].reshape(-1)
    rec = np.repeat(rows, nb)
    order = np.argsort(h, kind="stable")  # rec is ascending already: (hash, record) order
    h, rec = h[order], rec[order]
    pos = np.arange(h.size)
    start = np.ones(h.size, dtype=bool)
    start[1:] = h[1:] != h[:-1]
    gstart = np.maximum.accumulate(np.where(start, pos, 0))
    a = [rec[gstart]]
    b = [rec]
    for s in range(1, NEIGHBOURS + 1):
        same = h[s:] == h[:-s]
        if not same.any():
            break
        a.append(rec[:-s][same])
        b.append(rec[s:][same])
    a = np.concatenate(a)
    b = np.concatenate(b)
    keep = a < b
    if not keep.any():
        return empty
    pair = np.unique((a[keep].astype(np.int64) << 32) | b[keep])
    a, b = pair >> 32, pair & 0xFFFFFFFF
    sims = similarity(sigs[a], sigs[b])
    ok = sims >= threshold
    return a[ok], b[ok], sims[ok]


def earlier_equal(keys: np.ndarray) -> np.ndarray:
    """For each record, the first earlier record of the batch with the same exact key, or -1."""
    _, first_idx, inv = np.unique(keys, return_index=True, return_inverse=True)
    prev = first_idx[inv.reshape(-1)].astype(np.int64)
    prev[prev == np.arange(keys.size)] = -1
    return prev


@dataclass
class Decisions:
    entry: np.ndarray     # int64[n]: the entry each record duplicates, -1 for a survivor
    sim: np.ndarray       # float32[n]: similarity with that entry (1.0 for exact)
    new_entry: np.ndarray  # int64[n]: the entry created for a survivor, -1 otherwise
    exact: np.ndarray     # bool[n]: the duplicate has the same normalised text as its survivor


class Deduper:
    def __init__(self, index, threshold: float, label: int) -> None:
        self.index = index
        self.threshold = threshold
        self.label = label

    def _global(self, sk: Sketch, exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Best verified near candidate in the index for each record (entry, similarity)."""
        n = len(sk)
        g_entry = np.full(n, -1, dtype=np.int64)
        g_sim = np.zeros(n, dtype=np.float32)
        rows = np.flatnonzero(sk.near & (exact < 0))
        if rows.size == 0 or len(self.index) == 0:
            return g_entry, g_sim
        qi, ent = self.index.band_lookup(sk.bands[rows])
        if qi.size == 0:
            return g_entry, g_sim
        pair = np.unique((rows[qi].astype(np.int64) << 32) | ent)
        r = pair >> 32
        ent = pair & 0xFFFFFFFF
        sims = similarity(sk.sigs[r], self.index.signatures(ent)).astype(np.float32)
        ok = sims >= self.threshold
        r, ent, sims = r[ok], ent[ok], sims[ok]
        if r.size:
            order = np.lexsort((ent, -sims, r))
            r, ent, sims = r[order], ent[order], sims[order]
            first = np.ones(r.size, dtype=bool)
            first[1:] = r[1:] != r[:-1]
            g_entry[r[first]] = ent[first]
            g_sim[r[first]] = sims[first]
        return g_entry, g_sim

    def _local(self, sk: Sketch) -> dict[int, list[tuple[int, float]]]:
        """Verified near candidates among earlier records of the same batch (computed with the
        sketch, in the worker): {later: [(earlier, similarity)]}."""
        a, b, sims = sk.local
        ok = sims >= self.threshold
        out: dict[int, list[tuple[int, float]]] = {}
        for j, i, v in zip(a[ok].tolist(), b[ok].tolist(), sims[ok].tolist()):
            out.setdefault(i, []).append((j, v))
        return out

    def decide(self, sk: Sketch, nums: np.ndarray, ids: list | None = None,
               rows: np.ndarray | None = None) -> Decisions:
        """Decide a batch and index its survivors (`nums`: their record numbers)."""
        n = len(sk)
        exact = self.index.exact_lookup(sk.keys) if len(self.index) else np.full(n, -1, np.int64)
        g_entry, g_sim = self._global(sk, exact)
        exact_prev = sk.exact_prev
        local = self._local(sk)

        entry = np.full(n, -1, dtype=np.int64)
        loc = np.full(n, -1, dtype=np.int64)
        sim = np.zeros(n, dtype=np.float32)
        survived = np.ones(n, dtype=bool)
        same = np.zeros(n, dtype=bool)
        # decisions that do not depend on earlier records of the batch, all at once: a match
        # in the index by exact key, or only an index candidate
        ex = exact >= 0
        entry[ex], sim[ex], survived[ex], same[ex] = exact[ex], 1.0, False, True
        has_local = np.zeros(n, dtype=bool)
        if local:
            has_local[list(local)] = True
        only_index = ~ex & (exact_prev < 0) & (g_entry >= 0) & ~has_local
        entry[only_index], sim[only_index] = g_entry[only_index], g_sim[only_index]
        survived[only_index] = False
        # the rest, one by one in input order: they depend on which earlier records survived
        for i in np.flatnonzero(~ex & ~only_index & ((exact_prev >= 0) | has_local)).tolist():
            j = exact_prev[i]
            if j >= 0:
                if survived[j]:
                    loc[i], sim[i], same[i] = j, 1.0, True
                else:
                    entry[i], loc[i], sim[i], same[i] = entry[j], loc[j], sim[j], same[j]
                survived[i] = False
                continue
            best_sim, best_entry, best_loc = -1.0, -1, -1
            if g_entry[i] >= 0:
                best_sim, best_entry = float(g_sim[i]), int(g_entry[i])
            for j, v in local.get(i, ()):
                if survived[j] and v > best_sim:
                    best_sim, best_entry, best_loc = v, -1, j
            if best_sim >= 0:
                entry[i], loc[i], sim[i] = best_entry, best_loc, best_sim
                survived[i] = False
        new_entry = np.full(n, -1, dtype=np.int64)
        if survived.any():
            new_entry[survived] = self.index.add(
                sk.keys[survived], sk.sigs[survived] if rows is None else None,
                sk.bands[survived], sk.near[survived], self.label, nums[survived],
                [ids[i] for i in np.flatnonzero(survived).tolist()] if ids is not None else None,
                rows=None if rows is None else rows[survived])
        has_loc = loc >= 0
        entry[has_loc] = new_entry[loc[has_loc]]
        return Decisions(entry, sim, new_entry, same)
