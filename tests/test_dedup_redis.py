"""cqia dedup --storage redis://: against a real redis-server started on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import orjson
import pytest

from conftest import invoke, shell, write_jsonl
from test_dedup import base_records, edit

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed "
                                "(apt-get install redis-server; .ci/run installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url():
    pytest.importorskip("redis")
    port = _free_port()
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def corpus(tmp_path):
    base = base_records()
    recs = []
    for i in range(400):
        r = dict(base[i % len(base)], n=i)
        if i >= len(base):
            r["output"] = edit(r["output"], 0.02 + (i % 9) / 30, seed=i)
        recs.append(r)
    return write_jsonl(tmp_path / "all.jsonl", recs), recs


def _ns(request) -> str:
    return "t:" + request.node.name


def test_sequential_redis_gives_the_same_survivors_as_memory(corpus, tmp_path, redis_url,
                                                             request):
    path, recs = corpus
    mem = invoke(["dedup", "--dupes", tmp_path / "dm", path])
    red = invoke(["dedup", "--storage", redis_url, "--namespace", _ns(request),
                  "--dupes", tmp_path / "dr", path])
    assert red.exit_code == 0, red
    assert red.stdout_bytes == mem.stdout_bytes
    assert (tmp_path / "dr").read_bytes() == (tmp_path / "dm").read_bytes()
    # a second run against the same Redis index removes everything: it has all been seen
    again = invoke(["dedup", "--storage", redis_url, "--namespace", _ns(request), "-q", path])
    assert again.records() == []


def test_settings_must_match_the_redis_index(corpus, redis_url, request):
    path, _ = corpus
    assert invoke(["dedup", "-q", "--storage", redis_url, "--namespace", _ns(request),
                   path]).exit_code == 0
    res = invoke(["dedup", "--storage", redis_url, "--namespace", _ns(request), "--ngram", "5",
                  path])
    assert res.exit_code == 2
    assert "was built with other settings" in res.stderr


def _race(path_a, path_b, url, ns, tmp_path, delay_first: str) -> tuple[bytes, bytes, list, list]:
    a = (f"cqia dedup -q --storage {url} --namespace {ns} --shards 2 --shard-name a "
         f"--dupes {tmp_path}/{ns}-da {path_a} > {tmp_path}/{ns}-oa")
    b = (f"cqia dedup -q --storage {url} --namespace {ns} --shards 2 --shard-name b "
         f"--dupes {tmp_path}/{ns}-db {path_b} > {tmp_path}/{ns}-ob")
    if delay_first == "a":
        a = "sleep 0.5; " + a
    else:
        b = "sleep 0.5; " + b
    res = shell(f"({a}) & ({b}); wait")
    assert res.exit_code == 0, res
    out = [(tmp_path / f"{ns}-o{x}").read_bytes() for x in "ab"]
    dupes = [[orjson.loads(x) for x in (tmp_path / f"{ns}-d{s}").read_bytes().splitlines()]
             for s in "ab"]
    return out[0], out[1], dupes[0], dupes[1]


@pytest.mark.slow
def test_two_concurrent_shards_obey_the_rule_whatever_the_timing(corpus, tmp_path, redis_url,
                                                                 request):
    path, recs = corpus
    half_a = write_jsonl(tmp_path / "a.jsonl", recs[:200])
    half_b = write_jsonl(tmp_path / "b.jsonl", recs[200:])
    ns = _ns(request)
    first = _race(half_a, half_b, redis_url, ns + "1", tmp_path, "a")
    second = _race(half_a, half_b, redis_url, ns + "2", tmp_path, "b")
    assert first == second  # same survivors and dupes, whichever shard ran first
    oa, ob, da, db = first
    kept = [orjson.loads(x) for x in (oa + ob).splitlines()]
    assert len(kept) + len(da) + len(db) == len(recs)
    # within a shard first wins; across shards the survivor has the smaller key
    cross = [d for d in da + db if "source" in d["_dup_of"]]
    assert cross, "the halves share near-duplicates"
    from cqia_cli.dedup.normalize import normalize_batch
    from cqia_cli.dedup.sketch import exact_keys
    from cqia_cli.fields import TextGetter

    def key(rec):
        t = TextGetter()(rec)
        u, n = normalize_batch([t])
        return int(exact_keys(u, n, [t])[0])

    for d in cross:
        src = d["_dup_of"]
        other = (recs[:200] if src["source"] == "a" else recs[200:])[src["line"] - 1]
        mine = {k: v for k, v in d.items() if k != "_dup_of"}
        assert src["source"] != ("a" if mine in recs[:200] else "b")
        assert key(other) <= key(mine)
        assert src["similarity"] >= 0.4


def test_a_finished_sharded_namespace_is_refused(corpus, tmp_path, redis_url, request):
    path, recs = corpus
    ns = _ns(request)
    one = invoke(["dedup", "-q", "--storage", redis_url, "--namespace", ns, "--shards", "1",
                  path])
    assert one.exit_code == 0, one
    # parts that run at the same time learn no stop-shingles (each would learn its own)
    assert one.records() == invoke(["dedup", "-q", "--template-share", "0", path]).records()
    again = invoke(["dedup", "--storage", redis_url, "--namespace", ns, "--shards", "1", path])
    assert again.exit_code == 2
    assert "already holds a finished run of 1 shards" in again.stderr
