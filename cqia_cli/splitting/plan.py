"""What to split into: the named parts, their weights, and exact integer targets.

Weights are exact fractions (`0.05` is 1/20, `1/3` is a third), so rounding never drifts:

- `largest_remainder(n, weights)`: counts that add up to n, each the floor or the ceiling of
  n * weight (the largest fractional parts get the extra records; ties go to the earlier part).
- `stratified_targets(sizes, weights, totals)`: one row of counts per stratum, each row the
  floor or ceiling of its own quotas *and* the column sums equal to `totals` (controlled
  rounding, solved as a small transportation problem), so every stratum keeps the ratios within
  one record while the whole split stays exact.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

#: The part that --counts (or ratios adding up to less than 1) leave over goes here by default.
DEFAULT_REST = "train"


class PlanError(ValueError):
    """A split specification that cannot work; the message names the option."""


@dataclass(frozen=True)
class Plan:
    """The parts of a split, in output order, and how big each should be.

    Either `ratios` (fractions, one per part, adding up to 1) or `counts` (records, one per
    part; the part named `rest` has count None and takes whatever is left).
    """

    names: tuple[str, ...]
    ratios: tuple[Fraction, ...] | None = None
    counts: tuple[int | None, ...] | None = None
    numbered: bool = False  # --shards N: parts are numbers, written through {shard}
    whole: bool = False  # --shard-size alone: one part, the whole input cut in order

    def weights(self, n: int) -> list[Fraction]:
        """The share of each part in an input of n records."""
        if self.ratios is not None:
            return list(self.ratios)
        asked = sum(c for c in self.counts if c is not None)
        if asked > n:
            raise PlanError(f"--counts asks for {asked:,} records but the input has {n:,}")
        if n == 0:
            return [Fraction(0)] * len(self.names)
        return [Fraction(n - asked if c is None else c, n) for c in self.counts]

    def totals(self, n: int) -> list[int]:
        return largest_remainder(n, self.weights(n))


def _check_name(name: str, option: str) -> None:
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise PlanError(f"{option}: {name!r} is not a usable split name (it becomes part of a "
                        "file name)")


def parse_fraction(raw: str, name: str) -> Fraction:
    try:
        value = Fraction(raw.strip())
    except (ValueError, ZeroDivisionError):
        raise PlanError(f"--ratios: {name}={raw}: not a number (use 0.05 or 1/20)") from None
    if value < 0 or value > 1:
        raise PlanError(f"--ratios: {name}={raw}: a ratio is between 0 and 1")
    return value


def _pairs(values: Sequence[str], option: str) -> list[tuple[str, str]]:
    from cqia_cli.assignments import assignment_pairs

    try:
        pairs = assignment_pairs(values, option, value_required=True, unique=True)
    except ValueError as e:
        raise PlanError(str(e)) from None
    for name, _ in pairs:
        _check_name(name, option)
    return pairs


def make_plan(ratios: Sequence[str] = (), counts: Sequence[str] = (), rest: str | None = None,
              shards: int | None = None) -> Plan:
    """Build a Plan from the option values; PlanError says what is wrong."""
    given = [o for o, v in (("--ratios", ratios), ("--counts", counts), ("--shards", shards))
             if v]
    if len(given) > 1:
        raise PlanError(f"give only one of {' and '.join(given)}")
    if shards is not None:
        if rest is not None:
            raise PlanError("--rest goes with --ratios or --counts, not --shards")
        if shards < 1:
            raise PlanError("--shards: give at least 1")
        return Plan(tuple(str(i) for i in range(shards)), ratios=(Fraction(1, shards),) * shards,
                    numbered=True)
    if ratios:
        pairs = [(name, parse_fraction(raw, name)) for name, raw in _pairs(ratios, "--ratios")]
        total = sum(r for _, r in pairs)
        if total > 1:
            raise PlanError(f"--ratios add up to {float(total):g}, more than 1")
        if total < 1:
            rest = rest or DEFAULT_REST
            _check_name(rest, "--rest")
            if any(name == rest for name, _ in pairs):
                raise PlanError(f"--rest {rest}: {rest} is also in --ratios, which add up to "
                                f"{float(total):g}; give it its ratio or leave it out")
            pairs.append((rest, 1 - total))
        elif rest is not None:
            raise PlanError(f"--rest {rest} would get nothing: the ratios already add up to 1")
        return Plan(tuple(n for n, _ in pairs), ratios=tuple(r for _, r in pairs))
    if counts:
        parsed = []
        for name, raw in _pairs(counts, "--counts"):
            if not raw.isdigit():
                raise PlanError(f"--counts: {name}={raw}: a count is a whole number >= 0")
            parsed.append((name, int(raw)))
        rest = rest or DEFAULT_REST
        _check_name(rest, "--rest")
        if any(name == rest for name, _ in parsed):
            raise PlanError(f"--rest {rest}: {rest} is also in --counts; the rest needs a split "
                            "of its own")
        parsed.append((rest, None))
        return Plan(tuple(n for n, _ in parsed), counts=tuple(c for _, c in parsed))
    raise PlanError("say how to split: --ratios train=0.9,test=0.1, --counts test=500 "
                    "(the rest to --rest), or --shards N")


def seeded_rng(seed: int, purpose: str) -> random.Random:
    """A random generator for one use of a seed. Seeding with a string (hashed with SHA-512 by
    Python) keeps -1 and 1 apart, which seeding with the int does not."""
    return random.Random(f"cqia split {purpose} {seed}")


def largest_remainder(total: int, weights: Sequence[Fraction]) -> list[int]:
    """Counts adding up to `total` in proportion to `weights` (which add up to 1): each count
    is the floor or the ceiling of total * weight; the largest remainders get the ceilings,
    ties going to the earlier part."""
    quotas = [total * Fraction(w) for w in weights]
    counts = [q.numerator // q.denominator for q in quotas]
    short = total - sum(counts)
    order = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[:short]:
        counts[i] += 1
    return counts


def stratified_targets(sizes: Sequence[int], weights: Sequence[Fraction],
                       totals: Sequence[int], seed: int = 0) -> list[list[int]]:
    """Counts per stratum (rows) and part (columns).

    Each row adds up to its stratum's size and each entry is the floor or the ceiling of
    size * weight (within one record of exact); the columns add up to `totals` (the
    largest-remainder counts of the whole input). The strata that get the ceilings are found
    by augmenting paths over a bipartite graph (strata x parts), visiting strata in a seeded
    order so the same stratum does not always get the extra record.
    """
    k_parts = len(weights)
    table: list[list[int]] = []
    supply: list[int] = []  # extra records each stratum still has to place
    allowed: list[list[int]] = []  # parts whose quota in this stratum is fractional
    need = list(totals)  # extra records each part still wants
    for size in sizes:
        quotas = [size * Fraction(w) for w in weights]
        floors = [q.numerator // q.denominator for q in quotas]
        table.append(floors)
        for k in range(k_parts):
            need[k] -= floors[k]
        supply.append(size - sum(floors))
        fracs = [quotas[k] - floors[k] for k in range(k_parts)]
        allowed.append(sorted((k for k in range(k_parts) if fracs[k]), key=lambda k: -fracs[k]))
    n = sum(sizes)
    # how far each part's total may go past `totals` and stay within one record of exact
    ceiling_room = [-((-n * Fraction(w).numerator) // Fraction(w).denominator) - t
                    for w, t in zip(weights, totals)]
    extra = [[False] * k_parts for _ in sizes]
    order = list(range(len(sizes)))
    seeded_rng(seed, "strata").shuffle(order)
    # first a greedy pass, then augmenting paths for what the greedy pass could not place
    for s in order:
        for k in allowed[s]:
            if supply[s] and need[k] > 0:
                extra[s][k] = True
                supply[s] -= 1
                need[k] -= 1
    for s in order:
        while supply[s]:
            path = _augmenting_path(s, allowed, extra, need)
            if path is None:
                # The largest-remainder totals cannot be met with every entry within one of
                # exact (e.g. strata of 8 and 10 over 1:2:2:2.5:2.5). Let a part go one past its
                # total as long as it stays within one record of exact (its ceiling): a rounding
                # with rows and columns both within one always exists (controlled rounding).
                path = _augmenting_path(s, allowed, extra,
                                        [left + room for left, room in zip(need, ceiling_room)])
            if path is None:  # not reached; keep the row sum right whatever happens
                k = max((k for k in allowed[s] if not extra[s][k]), key=lambda k: need[k])
                extra[s][k] = True
                need[k] -= 1
            else:
                for row, old, new in path:
                    if old is not None:
                        extra[row][old] = False
                    extra[row][new] = True
                need[path[-1][2]] -= 1
            supply[s] -= 1
    for s, row in enumerate(table):
        for k in range(k_parts):
            row[k] += extra[s][k]
    return table


def _augmenting_path(start: int, allowed, extra, need):
    """Breadth-first search from stratum `start` for a chain of moves that ends on a part that
    still wants a record: start -> part a; some stratum moves its extra from a to part b; ...

    Returns the moves as (stratum, from part or None, to part), or None."""
    prev: dict[int, tuple[int, int | None]] = {}  # part -> (stratum that moves into it, from)
    frontier = []
    for k in allowed[start]:
        if not extra[start][k] and k not in prev:
            prev[k] = (start, None)
            frontier.append(k)
    while frontier:
        nxt = []
        for k in frontier:
            if need[k] > 0:
                moves = []
                while True:
                    row, old = prev[k]
                    moves.append((row, old, k))
                    if old is None:
                        return moves[::-1]
                    k = old
            for row in range(len(extra)):
                if not extra[row][k]:
                    continue
                for k2 in allowed[row]:
                    if not extra[row][k2] and k2 not in prev:
                        prev[k2] = (row, k)
                        nxt.append(k2)
        frontier = nxt
    return None
