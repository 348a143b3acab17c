"""The index in Redis (`--storage redis://HOST:PORT/DB`), shared by processes and machines.

Schema, under a namespace NS (`--namespace`, default cqia:dedup):

    NS:params        JSON of the shingle settings and of how texts are kept (TEXTS); a process
                     with other settings, or an older cqia's namespace, is refused
    NS:stop          the stop-shingles (packed uint64), learned by the process that created NS
    NS:n             entry counter (INCRBY allocates a batch of entry ids)
    NS:x:<key>       exact key (8 bytes) -> packed little-endian uint32 entry ids (APPEND)
    NS:b:<hash>      band hash (8 bytes) -> packed entry ids (APPEND)
    NS:s             hash: entry id -> signature (num_perm x uint16)
    NS:o             hash: entry id -> JSON [source, record number, id, rank, run]
    NS:t             hash: entry id -> shingle count (uint32), where its first field ends
                     (int32, -1: no per-field rule) and, for a short text, its units (uint32)
    NS:published     with --shards: how many shards have published their survivors

Entry ids grow in the order entries are added, so one process on its own decides exactly as the
in-memory index does (the same survivors, the same `_dup_of`).

Processes that run at the same time (`--shards N`): each first deduplicates its own part
(first wins, as always), publishes its survivors, and waits until all N parts have published.
Then the rule across parts is: a survivor is removed when a record of another part is a
duplicate of it (verified, as always) and has a smaller *key*; it names the most similar such
record (ties: the smaller key). The key of a record is (the --id-field value as JSON text, or
the 64-bit hash of its normalised text; then the hash of the record's JSON; then its part name
and line, which only decide between byte-identical records). Nothing in the rule depends on
which process got there first.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from typing import Any
from urllib.parse import urlparse

import numpy as np

from cqia_cli.dedup.minhash import Params
from cqia_cli.status import CqiaError, ExitStatus

CURRENT = "\x00current"
_CHUNK = 8192
#: how NS:t keeps a short text (2: its units and where its first field ends); a namespace made
#: by an older cqia is refused with what to do
TEXTS = 2


def open_storage(url: str, namespace: str, params: Params, *, keep_ids: bool = False):
    try:
        import redis
    except ImportError:
        raise CqiaError("--storage needs the redis package: pip install 'cqia[redis]'",
                        ExitStatus.USAGE) from None
    parsed = urlparse(url)
    if parsed.scheme != "redis" or not parsed.hostname:
        raise CqiaError(f"--storage {url!r}: expected redis://HOST:PORT/DB", ExitStatus.USAGE)
    try:
        db = int((parsed.path or "/0").strip("/") or 0)
    except ValueError:
        raise CqiaError(f"--storage {url!r}: the database must be a number",
                        ExitStatus.USAGE) from None
    client = redis.Redis(host=parsed.hostname, port=parsed.port or 6379, db=db,
                         password=parsed.password, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as e:
        raise CqiaError(f"--storage {url}: cannot connect: {e}", ExitStatus.IO) from None
    return RedisIndex(client, namespace, params, keep_ids=keep_ids)


def _packed(values: list[bytes | None]) -> list[np.ndarray]:
    return [np.frombuffer(v, dtype="<u4") if v else np.empty(0, "<u4") for v in values]


class RedisIndex:
    """The index interface of MemoryIndex, kept in Redis."""

    def __init__(self, client, namespace: str, params: Params, *, keep_ids: bool = False):
        self.r = client
        self.ns = namespace
        self.params = params
        self.keep_ids = keep_ids
        self.run = uuid.uuid4().hex
        self.labels = [CURRENT]
        self.stream_name = "<stdin>"
        self._origins: dict[int, list] = {}
        self.fresh = False
        self._check_params()
        stop = self.r.get(self.key("stop"))
        self._stop = np.frombuffer(stop, dtype="<u8").astype(np.uint64) if stop else \
            np.empty(0, np.uint64)

    @property
    def stop(self) -> np.ndarray:
        """The stop-shingles (templates.py) of this index: learned by the process that created
        the namespace (not with --shards), used by every later one."""
        return self._stop

    @stop.setter
    def stop(self, value: np.ndarray) -> None:
        self._stop = np.asarray(value, dtype=np.uint64)
        self.r.set(self.key("stop"), self._stop.astype("<u8").tobytes())

    def key(self, *parts: bytes | str) -> bytes:
        return b":".join([self.ns.encode()] + [p.encode() if isinstance(p, str) else p
                                                 for p in parts])

    def _check_params(self) -> None:
        want = json.dumps({**self.params.to_dict(), "texts": TEXTS}, sort_keys=True)
        self.fresh = bool(self.r.set(self.key("params"), want, nx=True))
        have = self.r.get(self.key("params"))
        if have is not None and json.loads(have).get("texts") != TEXTS:
            raise CqiaError(f"the Redis index {self.ns} was built by an earlier cqia, which "
                            "kept short texts otherwise: build it again with this version "
                            "under another --namespace (or delete the keys under this one)",
                            ExitStatus.USAGE)
        if have is not None and have.decode() != want:
            raise CqiaError(f"the Redis index {self.ns} was built with other settings ({have.decode()}); "
                            "use the same --ngram/--num-perm/--bands/--rows/--tokenizer/--t2s or "
                            "another --namespace", ExitStatus.USAGE)

    # -- the MemoryIndex interface ----------------------------------------------------------

    def __len__(self) -> int:
        return int(self.r.get(self.key("n")) or 0)

    def label(self, name: str) -> int:
        if name not in self.labels:
            self.labels.append(name)
        return self.labels.index(name)

    def exact_lookup(self, keys: np.ndarray) -> np.ndarray:
        vals = self._mget([self.key("x", int(k).to_bytes(8, "little")) for k in keys.tolist()])
        return np.array([int(v.min()) if v.size else -1 for v in _packed(vals)], dtype=np.int64)

    def exact_lists(self, keys: np.ndarray) -> list[list[int]]:
        vals = self._mget([self.key("x", int(k).to_bytes(8, "little")) for k in keys.tolist()])
        return [v.astype(np.int64).tolist() for v in _packed(vals)]

    def band_lookup(self, hashes: np.ndarray, limit: int | None = None):
        nb = hashes.shape[1]
        flat = hashes.reshape(-1).tolist()
        vals = _packed(self._mget([self.key("b", int(h).to_bytes(8, "little")) for h in flat]))
        if limit is not None:
            # the oldest `limit` entries of a bucket, as in memory
            vals = [np.sort(v)[:limit] if v.size > limit else v for v in vals]
        counts = np.fromiter((v.size for v in vals), dtype=np.int64, count=len(vals))
        if not counts.any():
            return np.empty(0, np.int64), np.empty(0, np.int64)
        qi = np.repeat(np.arange(len(vals)) // nb, counts)
        return qi, np.concatenate(vals).astype(np.int64)

    def signatures(self, entries: np.ndarray) -> np.ndarray:
        ids = [int(e) for e in np.asarray(entries).tolist()]
        out = np.empty((len(ids), self.params.num_perm), dtype=np.uint16)
        for a in range(0, len(ids), _CHUNK):
            vals = self.r.hmget(self.key("s"), ids[a:a + _CHUNK])
            for i, v in enumerate(vals, a):
                out[i] = np.frombuffer(v, dtype="<u2")
        return out

    def _texts(self, entries: np.ndarray) -> list:
        ids = [int(e) for e in np.asarray(entries).tolist()]
        out: list = []
        for a in range(0, len(ids), _CHUNK):
            out.extend(self.r.hmget(self.key("t"), ids[a:a + _CHUNK]))
        return out

    def nsh(self, entries: np.ndarray) -> np.ndarray:
        """Shingles of each entry (verify.py); entries without (older runs) count as long."""
        return np.array([int.from_bytes(v[:4], "little") if v else 1 << 30
                         for v in self._texts(entries)], dtype=np.int64)

    def short_units(self, entries: np.ndarray):
        """The `verify.Sides` of entries: the units of their short texts, and the shingle
        values made again from them (as the in-memory index does)."""
        from cqia_cli.dedup.verify import Ragged, Sides, offsets, set_values

        us, heads = [], []
        for v in self._texts(entries):
            us.append(np.frombuffer(v[8:], dtype="<u4") if v else np.empty(0, "<u4"))
            heads.append(int.from_bytes(v[4:8], "little", signed=True) if v else -1)
        ul = np.fromiter((x.size for x in us), dtype=np.int64, count=len(us))
        units = np.concatenate(us).astype(np.uint32) if us else np.empty(0, np.uint32)
        kept = ul > 0
        vals = np.empty(0, np.uint64)
        vl = np.zeros(ul.size, np.int64)
        if kept.any():
            vals, vk = set_values(units, ul[kept], np.asarray(heads, np.int64)[kept],
                                  self.params, self._stop)
            vl[kept] = vk
        return Sides(kept & (vl > 0), vals, vl, Ragged(units, offsets(ul)),
                     np.arange(ul.size, dtype=np.int64))

    def origins(self, entries) -> None:
        """Fetch the origins of many entries at once (used before origin())."""
        need = sorted({int(e) for e in entries} - self._origins.keys())
        if len(self._origins) > 200_000:
            self._origins.clear()
        for a in range(0, len(need), _CHUNK):
            part = need[a:a + _CHUNK]
            for e, v in zip(part, self.r.hmget(self.key("o"), part)):
                self._origins[e] = json.loads(v)

    def _origin(self, entry: int) -> list:
        entry = int(entry)
        if entry not in self._origins:
            self.origins([entry])
        return self._origins[entry]

    def origin(self, entry: int) -> tuple[str, int, Any]:
        source, num, ident, _rank, run = self._origin(entry)[:5]
        return (CURRENT if run == self.run else source), num, ident

    def is_current(self, entry: int, label: int) -> bool:
        return self._origin(entry)[4] == self.run

    def rank(self, entry: int) -> list:
        return self._origin(entry)[3]

    def add(self, keys: np.ndarray, sigs: np.ndarray | None, bands: np.ndarray,
            near: np.ndarray, label: int, nums: np.ndarray, ids: list | None = None,
            rows: np.ndarray | None = None, ranks: list | None = None,
            texts=None) -> np.ndarray:
        if rows is not None:
            raise CqiaError("--storage works with --keep first only", ExitStatus.USAGE)
        n = keys.size
        last = self.r.incrby(self.key("n"), n)
        entries = np.arange(last - n, last, dtype=np.int64)
        source = self.stream_name if self.labels[label] == CURRENT else self.labels[label]
        pipe = self.r.pipeline(transaction=False)
        t_nsh, u_flat, u_lens, t_heads = texts
        u_off = np.concatenate([[0], np.cumsum(u_lens)]).astype(np.int64)
        for i, (e, k) in enumerate(zip(entries.tolist(), keys.tolist())):
            pipe.hset(self.key("t"), e, int(t_nsh[i]).to_bytes(4, "little")
                      + int(t_heads[i] if u_lens[i] else -1).to_bytes(4, "little", signed=True)
                      + u_flat[u_off[i]:u_off[i + 1]].astype("<u4").tobytes())
            packed = int(e).to_bytes(4, "little")
            pipe.append(self.key("x", int(k).to_bytes(8, "little")), packed)
            if near[i]:
                for h in bands[i].tolist():
                    pipe.append(self.key("b", int(h).to_bytes(8, "little")), packed)
            pipe.hset(self.key("s"), e, sigs[i].astype("<u2").tobytes())
            origin = [source, int(nums[i]), ids[i] if ids is not None else None,
                      ranks[i] if ranks is not None else None, self.run]
            pipe.hset(self.key("o"), e, json.dumps(origin, ensure_ascii=False))
            self._origins[e] = origin
            if len(pipe) >= _CHUNK:
                pipe.execute()
        pipe.execute()
        return entries

    def _mget(self, keys: list[bytes]) -> list:
        out: list = []
        for a in range(0, len(keys), _CHUNK):
            out.extend(self.r.mget(keys[a:a + _CHUNK]))
        return out

    # -- --shards: the barrier ----------------------------------------------------------------

    def check_fresh(self, shards: int) -> None:
        done = int(self.r.get(self.key("published")) or 0)
        if done >= shards:
            raise CqiaError(f"the Redis namespace {self.ns} already holds a finished run of "
                            f"{done} shards; give each sharded run its own --namespace",
                            ExitStatus.USAGE)

    def publish_done(self) -> int:
        return int(self.r.incr(self.key("published")))

    def wait_for(self, shards: int, note, poll: float = 0.05) -> None:
        said = False
        while True:
            done = int(self.r.get(self.key("published")) or 0)
            if done >= shards:
                return
            if not said:
                note(f"waiting for {shards - done} of {shards} shards to publish their survivors")
                said = True
            time.sleep(poll)


def record_rank(record: dict, key: int, ident: Any, use_id: bool, shard: str, line: int) -> list:
    """The key of the cross-shard rule, as a JSON-able list that compares the same in Python."""
    import orjson

    primary = orjson.dumps(ident).decode() if use_id else f"{key:016x}"
    body = hashlib.blake2b(orjson.dumps(record), digest_size=8).hexdigest()
    return [primary, body, shard, line]


__all__ = ["open_storage", "RedisIndex", "record_rank", "os"]
