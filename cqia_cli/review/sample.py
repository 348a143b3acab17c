"""Which records a reviewer reads, and in what order: all in file order, or a seeded sample.

A sample is the first N records of a seeded random permutation of the file (each record's rank
is a splitmix64 hash of its index and the seed, so the same file size, N and seed give the same
sample on every machine and numpy version). It is read in that random order, so that any
prefix of it is itself a random sample: a reviewer who stops after 150 of 400 records still
leaves an unbiased estimate.

With several reviewers (`--reviewers a,b,c`) the sample is dealt out: the first `overlap`
share of it goes to two reviewers each (for Cohen's kappa), the rest to one each, in turn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        return z ^ (z >> np.uint64(31))


def _ranks(n: int, seed: int) -> np.ndarray:
    key = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    return _splitmix64(np.arange(n, dtype=np.uint64) ^ key)


def permutation(n: int, seed: int, first: int | None = None) -> np.ndarray:
    """A seeded permutation of range(n), stable across platforms (splitmix64 is a bijection:
    no two ranks tie); only its `first` elements when given (found in linear time)."""
    ranks = _ranks(n, seed)
    if first is None or first >= n:
        return np.argsort(ranks, kind="stable")
    if first <= 0:
        return np.zeros(0, np.int64)
    top = np.argpartition(ranks, first - 1)[:first]
    return top[np.argsort(ranks[top], kind="stable")]


@dataclass(frozen=True)
class Plan:
    """How the records are chosen and shared: saved in the decisions file at its creation."""

    sample: int | None = None  # None: every record, in file order
    seed: int = 42
    overlap: float = 0.0  # percent of the sample read by two reviewers
    reviewers: tuple = ()  # the team, when the sample is dealt out

    def describe(self) -> str:
        if self.sample is None:
            text = "every record, in file order"
        else:
            text = f"--sample {self.sample} --seed {self.seed}"
        if self.reviewers:
            text += f" --reviewers {','.join(self.reviewers)} --overlap {self.overlap:g}"
        return text

    def as_dict(self) -> dict:
        return {"sample": self.sample, "seed": self.seed, "overlap": self.overlap,
                "reviewers": list(self.reviewers)}

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        return cls(d.get("sample"), int(d.get("seed", 42)), float(d.get("overlap", 0.0)),
                   tuple(d.get("reviewers") or ()))


def sample_order(n_records: int, plan: Plan) -> np.ndarray:
    """The record indexes of the sample, in reading order (all of them without --sample)."""
    if plan.sample is None:
        return np.arange(n_records, dtype=np.int64)
    return permutation(n_records, plan.seed, plan.sample).astype(np.int64)


def overlap_count(size: int, overlap: float) -> int:
    return int(round(size * overlap / 100.0))


def queue_for(n_records: int, plan: Plan, reviewer: str) -> np.ndarray:
    """The record indexes `reviewer` reads, in order."""
    order = sample_order(n_records, plan)
    team = list(plan.reviewers)
    if not team:
        return order
    if reviewer not in team:
        raise ValueError(f"reviewer {reviewer!r} is not one of --reviewers {','.join(team)}")
    k = len(team)
    me = team.index(reviewer)
    both = overlap_count(len(order), plan.overlap) if k > 1 else 0
    pos = np.arange(len(order))
    mine = np.where(pos < both,
                    (pos % k == me) | ((pos + 1) % k == me),
                    (pos % k) == me)
    return order[mine]
