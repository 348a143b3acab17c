"""Fixed length bins: the same bins in every run, so that partial statistics merge exactly.

A length L (characters or words) falls in bin `bin_index(L)`:

    0 <= L < 256        one bin per value (exact)
    L >= 256            128 bins per power of two: the bin of L holds the values
                        [lo, lo + 2**(e-7)) where e = floor(log2 L) and lo = L rounded down
                        to a multiple of 2**(e-7); e.g. 256-257, 510-511, 512-515, 1024-1031

so a bin is never wider than 1/128 (0.8%) of the values in it. These bins are version 1 of the
scheme (`BINS_VERSION`); a stats JSON names the version it was made with.

Quantiles are nearest-rank: the p-th percentile of n values is the k-th smallest value with
k = ceil(p * n / 100) (at least 1), reported as the lower edge of its bin, and never below the
exact minimum. Below 256 that is the exact value; above, it is exact to the bin (<= 0.8% low).
min, max, sum and mean are exact.
"""

from __future__ import annotations

from typing import Iterable

BINS_VERSION = "cqia-len-1"
EXACT_BELOW = 256
SUB_BINS = 128  # per power of two above EXACT_BELOW
#: exact lengths kept before they are folded into bins (bounds memory per distribution)
RAW_LIMIT = 4096

#: the percentiles every distribution reports (50 is the median)
PERCENTILES = (5, 25, 50, 75, 95)


def bin_index(length: int) -> int:
    if length < EXACT_BELOW:
        return length
    e = length.bit_length() - 1
    return EXACT_BELOW + (e - 8) * SUB_BINS + ((length >> (e - 7)) - SUB_BINS)


def bin_lower(index: int) -> int:
    """The smallest length in bin `index`."""
    if index < EXACT_BELOW:
        return index
    k = index - EXACT_BELOW
    e = 8 + k // SUB_BINS
    return (SUB_BINS + k % SUB_BINS) << (e - 7)


def bin_upper(index: int) -> int:
    """The largest length in bin `index`."""
    return bin_lower(index + 1) - 1


def floor_to_bin(length: int) -> int:
    """`length` rounded down to the lower edge of its bin."""
    return bin_lower(bin_index(length))


class LengthDist:
    """A distribution of non-negative integer lengths: count, exact min/max/sum, fixed bins.

    `add` is the hot path (one dict update); exact lengths are folded into the bins when more
    than RAW_LIMIT distinct ones are pending and before any figure is read.
    """

    __slots__ = ("raw", "bins", "n", "total", "min", "max")

    def __init__(self) -> None:
        self.raw: dict[int, int] = {}
        self.bins: dict[int, int] = {}
        self.n = 0
        self.total = 0
        self.min: int | None = None
        self.max: int | None = None

    def add(self, length: int) -> None:
        raw = self.raw
        raw[length] = raw.get(length, 0) + 1
        if len(raw) > RAW_LIMIT:
            self.fold()

    def fold(self) -> None:
        if not self.raw:
            return
        bins = self.bins
        n = total = 0
        for length, c in self.raw.items():
            i = bin_index(length)
            bins[i] = bins.get(i, 0) + c
            n += c
            total += length * c
        lo, hi = min(self.raw), max(self.raw)
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = hi if self.max is None else max(self.max, hi)
        self.n += n
        self.total += total
        self.raw.clear()  # the same dict: callers may hold it

    def merge(self, other: "LengthDist") -> None:
        self.fold()
        other.fold()
        for i, c in other.bins.items():
            self.bins[i] = self.bins.get(i, 0) + c
        self.n += other.n
        self.total += other.total
        if other.min is not None:
            self.min = other.min if self.min is None else min(self.min, other.min)
            self.max = other.max if self.max is None else max(self.max, other.max)

    def percentile(self, p: int) -> int | None:
        """Nearest-rank p-th percentile (see the module docstring)."""
        self.fold()
        if not self.n:
            return None
        k = max(1, (p * self.n + 99) // 100)
        seen = 0
        for i in sorted(self.bins):
            seen += self.bins[i]
            if seen >= k:
                return max(bin_lower(i), self.min)
        return self.max  # not reached

    def summary(self) -> dict:
        """min, p5, p25, median, p75, p95, max, mean (None when empty)."""
        self.fold()
        out: dict = {"count": self.n, "min": self.min}
        for p in PERCENTILES:
            out["median" if p == 50 else f"p{p}"] = self.percentile(p)
        out["max"] = self.max
        out["mean"] = round(self.total / self.n, 2) if self.n else None
        out["sum"] = self.total
        return out

    def histogram(self, edges: Iterable[int]) -> list[tuple[int, int | None, int]]:
        """Counts between display `edges` [(lo, hi or None, count)]: a bin counts where its lower
        edge falls."""
        self.fold()
        edges = list(edges)
        counts = [0] * len(edges)
        import bisect

        for i, c in self.bins.items():
            j = bisect.bisect_right(edges, bin_lower(i)) - 1
            counts[max(j, 0)] += c
        return [(edges[j], edges[j + 1] - 1 if j + 1 < len(edges) else None, counts[j])
                for j in range(len(edges))]

    def to_json(self) -> dict:
        self.fold()
        return {
            "count": self.n, "sum": self.total, "min": self.min, "max": self.max,
            "bins": [[bin_lower(i), self.bins[i]] for i in sorted(self.bins)],
        }

    @classmethod
    def from_json(cls, data: dict) -> "LengthDist":
        d = cls()
        d.n = int(data["count"])
        d.total = int(data["sum"])
        d.min = data["min"]
        d.max = data["max"]
        for lower, c in data["bins"]:
            i = bin_index(int(lower))
            if bin_lower(i) != lower:
                raise ValueError(f"{lower} is not the lower edge of a bin ({BINS_VERSION})")
            d.bins[i] = d.bins.get(i, 0) + int(c)
        if sum(d.bins.values()) != d.n:
            raise ValueError("bin counts do not add up to count")
        return d


#: display edges of the terminal and HTML histograms (1-2-5 steps); trimmed to the data
DISPLAY_EDGES = (0, 1, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000,
                 100_000, 200_000, 500_000, 1_000_000)


def display_edges(dist: LengthDist) -> list[int]:
    """The DISPLAY_EDGES that cover [min, max] of `dist`."""
    dist.fold()
    if dist.min is None:
        return []
    edges = [e for e in DISPLAY_EDGES if e <= dist.min] [-1:]
    edges += [e for e in DISPLAY_EDGES if dist.min < e <= dist.max]
    return edges
