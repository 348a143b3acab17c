"""The dedup index's storage: in-place merges of sorted runs, the units (not the values) of
short texts, their stop bits, saved indexes of another format."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import invoke, write_jsonl


@pytest.mark.parametrize("step", [1, 7, 1 << 16])
def test_runs_merge_in_place_as_a_sort_would(monkeypatch, step):
    from cqia_cli.dedup import index as I

    monkeypatch.setattr(I, "_STEP", step)
    rng = np.random.default_rng(1)
    for na, nb, hi in [(0, 5, 100), (5, 0, 100), (1000, 500, 50), (30000, 20000, 1 << 63),
                       (3, 1000, 10), (1000, 3, 10), (5000, 5000, 2)]:
        a = np.sort(rng.integers(0, hi, na, dtype=np.uint64))
        b = np.sort(rng.integers(0, hi, nb, dtype=np.uint64))
        want = np.sort(np.concatenate([a, b]))
        assert np.array_equal(I._merged(a.copy(), b), want)


def test_packed_and_sorted_runs_find_every_item_after_many_merges():
    from cqia_cli.dedup.index import PackedRuns, SortedRuns

    rng = np.random.default_rng(2)
    packed, exact = PackedRuns(), SortedRuns()
    keys = rng.integers(0, 5000, 40 * 700, dtype=np.uint64)
    for i in range(40):
        k = keys[i * 700:(i + 1) * 700]
        v = np.arange(i * 700, (i + 1) * 700)
        packed.add(k, v)
        exact.add(k, v)
    assert len(packed.runs) < 8 and len(packed) == keys.size
    q = np.array([keys[0], keys[12345], 99999], dtype=np.uint64)
    qi, vals = packed.lookup(q)
    for j in range(3):
        want = sorted(np.flatnonzero(keys == q[j]).tolist())
        assert sorted(vals[qi == j].tolist()) == want
    # the first (oldest) value of each key, as before the merges
    assert exact.first(q).tolist() == [0, int(np.flatnonzero(keys == keys[12345])[0]), -1]


def test_packed_runs_skip_the_queries_no_key_can_match_and_find_the_others():
    """The presence bits (a key's top 24 bits) only leave out queries that match nothing:
    against a brute-force multimap, with and without a limit, for keys spread over 32 bits,
    queries that share a key's top bits without being it, and 64-bit band hashes (their low
    32 bits are the key)."""
    from cqia_cli.dedup.index import PackedRuns

    rng = np.random.default_rng(4)
    runs = PackedRuns()
    keys = rng.integers(0, 2 ** 32, 3000, dtype=np.uint64)
    keys[2500:] = keys[:500]  # keys with several values
    keys[10:40] = keys[5]  # and one with 31 in one run
    high = rng.integers(0, 2 ** 32, keys.size, dtype=np.uint64) << np.uint64(32)
    for i in range(0, keys.size, 250):
        runs.add(keys[i:i + 250] | high[i:i + 250], np.arange(i, i + 250))
    near = keys[:300] ^ np.uint64(1)  # the same top bits, another key
    absent = rng.integers(0, 2 ** 32, 3000, dtype=np.uint64)
    q = np.concatenate([absent, keys[2400:2700], near, keys[:50]])
    rng.shuffle(q)
    qi, vals = runs.lookup(q | (np.uint64(7) << np.uint64(40)))
    want = [(j, v) for j, k in enumerate(q.tolist()) for v in np.flatnonzero(keys == k).tolist()]
    assert sorted(zip(qi.tolist(), vals.tolist())) == sorted(want)
    every = PackedRuns()  # the same runs, every presence bit set: nothing left out
    every.runs, every.present = runs.runs, np.full_like(runs.present, 0xFF)
    for limit in (1, 16):  # the limit is per run: as searched without the bits
        got = sorted(zip(*[a.tolist() for a in runs.lookup(q, limit)]))
        assert got == sorted(zip(*[a.tolist() for a in every.lookup(q, limit)]))
        assert len(got) < len(want)
    assert runs.lookup(absent[:0])[0].size == 0
    assert runs.lookup(absent)[0].size == 0


BASE = ["请问天为什么是蓝的", "如何评价这部电影的结局", "帮我写一篇关于长城的详细介绍",
        "𠀋𠀌字怎么读音是什么", "今天的天气怎么样呢"]
SUBJECTS = ["长城", "故宫", "黄河", "泰山", "西湖", "长江", "苏州园林", "敦煌", "兵马俑", "布达拉宫",
            "九寨沟", "桂林山水"]
#: one long shared phrase, so that there are stop-shingles to keep bits of
PHRASE = "以下是一段需要你仔细阅读并回答的材料请认真思考"


def short_records(phrase: bool = False) -> list[dict]:
    if not phrase:
        return [{"instruction": t, "input": "", "output": ""} for t in BASE]
    return [{"instruction": PHRASE + f"介绍一下{t}的历史和{t}的特点", "input": "", "output": ""}
            for t in SUBJECTS]


def test_index_keeps_units_and_makes_the_same_sets(tmp_path):
    """Short texts (BMP and past U+FFFF, with and without stop-shingles) verified against the
    index (--against, --index) give what they give within one batch."""
    recs = short_records()
    copies = [dict(r, instruction=r["instruction"] + "呀") for r in recs]
    both = write_jsonl(tmp_path / "both.jsonl", recs + copies)
    ref = write_jsonl(tmp_path / "ref.jsonl", recs)
    new = write_jsonl(tmp_path / "new.jsonl", copies)
    plain = [r.get("_dup_of") for r in invoke(["dedup", "-q", "--mark", "--template-share", "0",
                                               both]).records()][len(recs):]
    via = [r.get("_dup_of") for r in invoke(["dedup", "-q", "--mark", "--template-share", "0",
                                             "--against", ref, new]).records()]
    assert all(d and d["measure"] == "jaccard" for d in plain)
    assert [d["similarity"] for d in via] == [d["similarity"] for d in plain]
    assert all(d["source"] == str(ref) for d in via)
    # with stop-shingles: an index saved with them, then loaded, verifies the copies alike
    recs = short_records(phrase=True)
    copies = [dict(r, instruction=r["instruction"] + "呀") for r in recs]
    both = write_jsonl(tmp_path / "both2.jsonl", recs + copies)
    ref = write_jsonl(tmp_path / "ref2.jsonl", recs)
    new = write_jsonl(tmp_path / "new2.jsonl", copies)
    idx = tmp_path / "i.npz"
    assert invoke(["dedup", "-q", "--save-index", idx, "--template-sample", "40",
                   ref]).exit_code == 0
    loaded = [r.get("_dup_of") for r in invoke(["dedup", "-q", "--mark", "--index", idx,
                                                new]).records()]
    learned = [r.get("_dup_of") for r in invoke(["dedup", "-q", "--mark", "--template-sample",
                                                 "40", both]).records()][len(recs):]
    assert all(d and d["measure"] == "jaccard" for d in learned)
    assert [d["similarity"] for d in loaded] == [d["similarity"] for d in learned]
    assert all("source" in d for d in loaded)  # an indexed record, not one of this input
    # the phrase is left out: records about other subjects are not duplicates
    first = [r.get("_dup_of") for r in invoke(["dedup", "-q", "--mark", "--template-sample",
                                               "40", ref]).records()]
    assert first == [None] * len(recs)


def test_an_index_of_an_older_format_says_what_to_do(tmp_path):
    recs = short_records()
    path = write_jsonl(tmp_path / "s.jsonl", recs)
    idx = tmp_path / "i.npz"
    assert invoke(["dedup", "-q", "--save-index", idx, path]).exit_code == 0
    data = dict(np.load(idx))
    meta = json.loads(bytes(data["meta"]).decode())
    meta["format"] = "cqia-dedup-index/1"
    data["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    old = tmp_path / "old.npz"
    with open(old, "wb") as f:
        np.savez(f, **data)
    res = invoke(["dedup", "-q", "--index", old, path])
    assert res.exit_code == 66
    assert "saved by an earlier cqia (cqia-dedup-index/1)" in res.stderr
    assert "build it again" in res.stderr and "\n" not in res.stderr.strip()
