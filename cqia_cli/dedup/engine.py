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

# an LSH bucket gives at most its oldest BUCKET_LIMIT entries as candidates (a template
# bucket): candidate lists, time and memory stay bounded
from cqia_cli.dedup.defaults import BUCKET_LIMIT
from cqia_cli.dedup.minhash import sorted_unique
from cqia_cli.dedup.sketch import Sketch
from cqia_cli.dedup.verify import IDENTICAL, REJECTED, Verifier


@dataclass
class Decisions:
    entry: np.ndarray     # int64[n]: the entry each record duplicates, -1 for a survivor
    sim: np.ndarray       # float32[n]: similarity with that entry (1.0 for exact)
    new_entry: np.ndarray  # int64[n]: the entry created for a survivor, -1 otherwise
    exact: np.ndarray     # bool[n]: the duplicate has the same normalised text as its survivor
    kind: np.ndarray = None  # int8[n]: how sim was measured (verify.IDENTICAL, JACCARD, MINHASH)


class Deduper:
    def __init__(self, index, verifier: Verifier, label: int) -> None:
        self.index = index
        self.verifier = verifier
        self.threshold = verifier.threshold
        self.label = label

    def _global(self, sk: Sketch, exact: np.ndarray):
        """Best verified near candidate in the index for each record (entry, similarity,
        kind)."""
        n = len(sk)
        g_entry = np.full(n, -1, dtype=np.int64)
        g_sim = np.zeros(n, dtype=np.float32)
        g_kind = np.zeros(n, dtype=np.int8)
        rows = np.flatnonzero(sk.near & (exact < 0))
        if rows.size == 0 or len(self.index) == 0:
            return g_entry, g_sim, g_kind
        qi, ent = self.index.band_lookup(sk.bands[rows], limit=BUCKET_LIMIT)
        if qi.size == 0:
            return g_entry, g_sim, g_kind
        pair = sorted_unique((rows[qi].astype(np.int64) << 32) | ent)
        r = pair >> 32
        ent = pair & 0xFFFFFFFF
        index = self.index
        sims, kinds = self.verifier.similarity(
            sk.sigs[r], index.signatures(ent), sk.nsh[r], index.nsh(ent),
            lambda i: sk.short_units(r[i]), lambda i: index.short_units(ent[i]))
        ok = (sims >= self.threshold) & (kinds != REJECTED)
        r, ent, sims, kinds = r[ok], ent[ok], sims[ok], kinds[ok]
        if r.size:
            order = np.lexsort((ent, -sims, r))
            r, ent, sims, kinds = r[order], ent[order], sims[order], kinds[order]
            first = np.ones(r.size, dtype=bool)
            first[1:] = r[1:] != r[:-1]
            g_entry[r[first]] = ent[first]
            g_sim[r[first]] = sims[first]
            g_kind[r[first]] = kinds[first]
        return g_entry, g_sim, g_kind

    def _local(self, sk: Sketch) -> dict[int, list[tuple[int, float]]]:
        """Verified near candidates among earlier records of the same batch (computed with the
        sketch, in the worker): {later: [(earlier, similarity)]}."""
        a, b, sims, kinds = sk.local
        out: dict[int, list[tuple[int, float, int]]] = {}
        for j, i, v, k in zip(a.tolist(), b.tolist(), sims.tolist(), kinds.tolist()):
            out.setdefault(i, []).append((j, v, k))
        return out

    def decide(self, sk: Sketch, nums: np.ndarray, ids: list | None = None,
               rows: np.ndarray | None = None) -> Decisions:
        """Decide a batch and index its survivors (`nums`: their record numbers)."""
        n = len(sk)
        exact = self.index.exact_lookup(sk.keys) if len(self.index) else np.full(n, -1, np.int64)
        g_entry, g_sim, g_kind = self._global(sk, exact)
        exact_prev = sk.exact_prev
        local = self._local(sk)

        entry = np.full(n, -1, dtype=np.int64)
        loc = np.full(n, -1, dtype=np.int64)
        sim = np.zeros(n, dtype=np.float32)
        kind = np.full(n, IDENTICAL, dtype=np.int8)
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
        kind[only_index] = g_kind[only_index]
        survived[only_index] = False
        # the rest, one by one in input order: they depend on which earlier records survived
        for i in np.flatnonzero(~ex & ~only_index & ((exact_prev >= 0) | has_local)).tolist():
            j = exact_prev[i]
            if j >= 0:
                if survived[j]:
                    loc[i], sim[i], same[i] = j, 1.0, True
                else:
                    entry[i], loc[i], sim[i], same[i] = entry[j], loc[j], sim[j], same[j]
                    kind[i] = kind[j]
                survived[i] = False
                continue
            best_sim, best_entry, best_loc, best_kind = -1.0, -1, -1, 0
            if g_entry[i] >= 0:
                best_sim, best_entry, best_kind = float(g_sim[i]), int(g_entry[i]), int(g_kind[i])
            for j, v, k in local.get(i, ()):
                if survived[j] and v > best_sim:
                    best_sim, best_entry, best_loc, best_kind = v, -1, j, k
            if best_sim >= 0:
                entry[i], loc[i], sim[i], kind[i] = best_entry, best_loc, best_sim, best_kind
                survived[i] = False
        new_entry = np.full(n, -1, dtype=np.int64)
        if survived.any():
            new_entry[survived] = self.index.add(
                sk.keys[survived], sk.sigs[survived] if rows is None else None,
                sk.bands[survived], sk.near[survived], self.label, nums[survived],
                [ids[i] for i in np.flatnonzero(survived).tolist()] if ids is not None else None,
                rows=None if rows is None else rows[survived],
                texts=sk.texts(survived) if rows is None else None)
        has_loc = loc >= 0
        entry[has_loc] = new_entry[loc[has_loc]]
        return Decisions(entry, sim, new_entry, same, kind)
