"""Normalised text for duplicate detection, vectorised over batches of records.

The normalised text of a record is: NFKC (which also folds full-width letters, digits and
punctuation to half-width), then case folding, then every punctuation mark (Chinese and ASCII),
whitespace, control and format character removed (Unicode categories P*, Z*, C*).

`normalize(text)` is the definition (plain Python, slow: NFKC costs ~80 us per CQIA record).
`normalize_batch(texts)` gives the same code points for a whole batch at numpy speed: a table
maps each BMP code point to its normalised form (nothing, one or a few code points: ℃ -> °c,
⑩ -> 10); the few texts with a combining mark, Hangul jamo or a character outside the BMP go
through `normalize` itself, so the result is always identical.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np
import regex

from cqia_cli.dedup.minhash import sorted_unique

_STRIP = regex.compile(r"[\p{P}\p{Z}\p{C}\s]+")


def normalize(text: str) -> str:
    """The normalised text (the reference definition)."""
    return _STRIP.sub("", unicodedata.normalize("NFKC", text).casefold())


_MAX_EXPANSION = 4


TABLE_FILE = Path(__file__).resolve().parent.parent / "data" / "dedup" / "normalize-bmp.npz"


@lru_cache(maxsize=1)
def tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(size, chars, first): see `build_tables`; loaded from the table shipped with cqia when
    it was built with this Python's Unicode version, built (~0.3 s) otherwise."""
    try:
        with np.load(TABLE_FILE) as data:
            if str(data["unicode"]) == unicodedata.unidata_version:
                size, chars = data["size"], data["chars"]
                return size, chars, np.ascontiguousarray(chars[:, 0])
    except (OSError, KeyError, ValueError):
        pass
    size, chars = build_tables()
    return size, chars, np.ascontiguousarray(chars[:, 0])


def save_tables(path: Path = TABLE_FILE) -> None:
    size, chars = build_tables()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, size=size, chars=chars, unicode=unicodedata.unidata_version)


def build_tables() -> tuple[np.ndarray, np.ndarray]:
    """The per-character form of normalisation for the BMP.

    `size[cp]`: how many code points `cp` becomes (0: removed), or 255 when it needs the
    reference path (combining marks and Hangul jamo, which compose with their neighbours; the
    surrogates; and 0xFFFF, which stands for every character outside the BMP).
    `chars[cp, :size]`: those code points.
    """
    size = np.empty(0x10000, dtype=np.uint8)
    chars = np.zeros((0x10000, _MAX_EXPANSION), dtype=np.uint32)
    nfkc = unicodedata.normalize
    for cp in range(0x10000):
        ch = chr(cp)
        if 0xD800 <= cp <= 0xDFFF or cp == 0xFFFF or _composes(ch):
            size[cp] = 255
            continue
        form = nfkc("NFKC", ch)
        out = _STRIP.sub("", form.casefold())
        if len(out) > _MAX_EXPANSION or any(_composes(c) for c in form + out):
            size[cp] = 255
            continue
        size[cp] = len(out)
        chars[cp, : len(out)] = [ord(c) for c in out]
    return size, chars


def _composes(ch: str) -> bool:
    cp = ord(ch)
    return bool(unicodedata.combining(ch)) or unicodedata.category(ch).startswith("M") or \
        0x1100 <= cp <= 0x11FF or 0x3131 <= cp <= 0x318E or 0xA960 <= cp <= 0xA97F or \
        0xD7B0 <= cp <= 0xD7FF or 0xFFA0 <= cp <= 0xFFDC


def encode(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Code points of all texts, concatenated, and each text's length."""
    joined = "".join(texts)
    cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    lens = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    return cps, lens


def normalize_batch(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The normalised code points of a batch of texts, concatenated, and each one's length.

    Identical to `[normalize(t) for t in texts]` encoded as UTF-32 (tests check it).
    """
    size, chars, first = tables()
    cps, lens = encode(texts)
    if cps.size == 0:
        return cps.copy(), lens
    idx = np.minimum(cps, 0xFFFF)
    n = size[idx]
    slow = np.flatnonzero(n == 255)
    slow_recs = None
    if slow.size:
        # the few texts that need the reference path: normalised on their own below and
        # spliced in; here their characters only stand in (one unit each)
        slow_recs = sorted_unique(np.searchsorted(np.cumsum(lens), slow, side="right"),
                                  presorted=True)  # slow is ascending, and so are these
        n[slow] = 1
    out = first[idx]
    ends = np.cumsum(lens)
    multi = np.flatnonzero(n > 1)
    if multi.size:
        # characters that become several: insert their other code points after the first
        extra = n[multi].astype(np.int64) - 1
        at = np.repeat(multi + 1, extra)
        k = np.arange(at.size) - np.repeat(np.cumsum(extra) - extra, extra) + 1
        vals = chars[idx[np.repeat(multi, extra)], k]
        out = np.insert(out, at, vals)
        keep = np.insert(n != 0, at, True)
        grown = np.searchsorted(at, ends, side="right")  # inserted before each end
        ends = ends + grown
        lens = np.diff(ends, prepend=0)
    else:
        keep = n != 0
    gone = np.flatnonzero(~keep)
    removed_before_end = np.searchsorted(gone, ends)
    out, lens = out[keep], lens - np.diff(removed_before_end, prepend=0)
    if slow_recs is not None:
        ends = np.cumsum(lens)
        starts = ends - lens
        pieces = []
        at = 0
        for i in slow_recs.tolist():
            ref, _ = encode([normalize(texts[i])])
            pieces += [out[at:starts[i]], ref]
            at = int(ends[i])
            lens[i] = ref.size
        pieces.append(out[at:])
        out = np.concatenate(pieces)
    return out, lens
