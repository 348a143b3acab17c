"""From record texts to what the index needs: exact keys, signatures and band hashes.

`sketch_batch(texts, params)` is a pure function of its arguments, so `-j N` runs it in worker
processes and the result is the same for any N.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from cqia_cli.dedup.minhash import Params, band_hashes, signatures
from cqia_cli.dedup.normalize import normalize_batch


class MissingDependency(Exception):
    """An optional package an option needs is not installed (the message says how to get it)."""


@dataclass
class Sketch:
    keys: np.ndarray   # uint64[n]: hash of the normalised text (exact duplicates)
    sigs: np.ndarray   # uint16[n, num_perm]: the low 16 bits of each bin (verification)
    bands: np.ndarray  # uint64[n, bands]
    near: np.ndarray   # bool[n]: long enough for at least one shingle
    exact_prev: np.ndarray  # int64[n]: first earlier record of the batch with the same key
    local: tuple       # in-batch near candidates (earlier, later, similarity) >= threshold

    def __len__(self) -> int:
        return self.keys.size


@lru_cache(maxsize=1)
def t2s_converter():
    try:
        import opencc
    except ImportError:
        raise MissingDependency(
            "--t2s needs the optional OpenCC package: pip install 'cqia[t2s]' (or opencc)"
        ) from None
    for config in ("t2s", "t2s.json"):
        try:
            return opencc.OpenCC(config).convert
        except Exception:  # noqa: BLE001 - the two OpenCC bindings name configs differently
            continue
    raise MissingDependency("--t2s: the installed OpenCC package has no t2s configuration")


@lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


def _key(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def exact_keys(units: np.ndarray, lens: np.ndarray, texts: list[str]) -> np.ndarray:
    """64-bit hash of each normalised text; a text that normalises to nothing is keyed by its
    raw text instead, so that records of only punctuation never all collapse into one."""
    buf = units.tobytes()
    ends = np.cumsum(lens) * 4
    starts = ends - lens * 4
    out = np.empty(lens.size, dtype=np.uint64)
    for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist())):
        out[i] = _key(buf[a:b]) if b > a else _key(b"\x00raw\x00" + texts[i].encode("utf-8",
                                                                                   "surrogatepass"))
    return out


def word_units(units: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """jieba words of each normalised text, each as a 32-bit number (CRC-32 of its UTF-8)."""
    jieba = _jieba()
    buf = units.tobytes()
    ends = np.cumsum(lens) * 4
    starts = ends - lens * 4
    words: list[int] = []
    counts = np.empty(lens.size, dtype=np.int64)
    for i, (a, b) in enumerate(zip(starts.tolist(), ends.tolist())):
        text = buf[a:b].decode("utf-32-le", "surrogatepass")
        ws = [zlib.crc32(w.encode("utf-8", "surrogatepass")) for w in jieba.lcut(text, HMM=False)]
        counts[i] = len(ws)
        words.extend(ws)
    return np.asarray(words, dtype=np.uint32), counts


def sketch_batch(texts: list[str], params: Params, threshold: float = 1.0) -> Sketch:
    """Everything about a batch that does not need the index (so -j workers can do it)."""
    from cqia_cli.dedup.engine import earlier_equal, local_pairs

    if params.t2s:
        convert = t2s_converter()
        texts = [convert(t) for t in texts]
    units, lens = normalize_batch(texts)
    keys = exact_keys(units, lens, texts)
    if params.tokenizer == "jieba":
        units, lens = word_units(units, lens)
    sigs32 = signatures(units, lens, params)
    bands = band_hashes(sigs32, params)
    sigs = sigs32.astype(np.uint16)
    near = lens >= params.ngram
    return Sketch(keys, sigs, bands, near, earlier_equal(keys),
                  local_pairs(sigs, bands, near, threshold))


# -- for map_batches: the params travel once per worker, not with every batch -----------------

_params: Params | None = None
_threshold = 1.0


def init_worker(params: Params, threshold: float) -> None:
    global _params, _threshold
    _params, _threshold = params, threshold
    if params.t2s:
        t2s_converter()
    if params.tokenizer == "jieba":
        _jieba()


def sketch_in_worker(texts: list[str]) -> Sketch:
    return sketch_batch(texts, _params, _threshold)
