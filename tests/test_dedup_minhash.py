"""minhash.py's vectorised kernels against plain Python references (the speed work rewrote
them: the stop-shingle lookup, the runs of stop-shingles, the n-gram starts, densification)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cqia_cli.dedup import minhash as M
from cqia_cli.dedup.sketch import prefixes


def _ref_ngrams(units, lens, n):
    """(start, record) of every n-gram that ends inside its record, in order."""
    out, pos = [], 0
    for r, length in enumerate(lens.tolist()):
        out += [(pos + i, r) for i in range(length - n + 1)]
        pos += length
    return out


@pytest.mark.parametrize("size", [1, 7, 1000, 40_000])
def test_in_sorted_agrees_with_isin(size):
    rng = np.random.default_rng(size)
    table = np.unique(rng.integers(0, 2**64 - 1, size, dtype=np.uint64, endpoint=True))
    for extra in ([], [0, 2**64 - 1]):
        t = np.unique(np.r_[table, np.array(extra, np.uint64)])
        q = np.r_[rng.choice(t, 3000), rng.integers(0, 2**64 - 1, 3000, dtype=np.uint64),
                  np.array([0, 0, 2**64 - 1], np.uint64), t]
        assert (M.in_sorted(q, t) == np.isin(q, t)).all()
        assert (M.in_sorted(q[:100], t) == np.isin(q[:100], t)).all()  # the small path


def test_in_sorted_badly_mixed_tables():
    # values that share their top bits (one long cluster of slots) and values all in the low
    # bits (all in the first slot's cluster)
    for t in (np.arange(1, 5000, dtype=np.uint64),
              np.arange(1, 5000, dtype=np.uint64) << np.uint64(50)):
        q = np.r_[t, t + np.uint64(1), t - np.uint64(1), np.zeros(2000, np.uint64)]
        assert (M.in_sorted(q, t) == np.isin(q, t)).all()


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64, np.int64])
def test_sorted_member_and_sorted_unique_agree_with_numpy(dtype):
    rng = np.random.default_rng(5)
    top = 1000 if dtype is not np.uint64 else 2**64 - 1
    for size in (0, 1, 2, 50, 3000):
        table = np.sort(rng.integers(0, top, size, dtype=dtype, endpoint=True))
        table = np.r_[table, table[: size // 3]].astype(dtype)  # repeats too
        table.sort()
        q = np.r_[rng.integers(0, top, 2000, dtype=dtype, endpoint=True), table,
                  np.array([0, top], dtype)].astype(dtype)
        assert (M.sorted_member(q, table) == np.isin(q, table)).all()
        assert M.sorted_member(q, table).shape == q.shape
        assert (M.sorted_unique(table, presorted=True) == np.unique(table)).all()
        assert (M.sorted_unique(q) == np.unique(q)).all()


def test_dedup_does_not_load_numpy_ma(tmp_path):
    """np.isin and np.unique without its optional outputs import numpy.ma at their first call
    (7-10 ms, in each -j worker again): dedup uses sorted_member and sorted_unique instead."""
    import subprocess
    import sys

    from conftest import write_jsonl

    # a combining mark (the reference path of normalize_batch), and short near duplicates
    # that differ by a particle (Verifier.substituted)
    mark = "e\u0301"
    recs = [{"instruction": f"问题{i}：什么是{mark if i % 7 == 0 else '水'}的第{i}种用法？",
             "output": "答案" * (i % 5 + 1)} for i in range(300)]
    near = [dict(r, instruction=r["instruction"] + "呢") for r in recs[:40]]
    data = write_jsonl(tmp_path / "in.jsonl", recs + recs[:40] + near)
    code = ("import sys; from cqia_cli.cli import main\n"
            "try:\n main()\nexcept SystemExit as e:\n code = e.code\n"
            "print('numpy.ma' in sys.modules, code)")
    kept = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}.jsonl"
        proc = subprocess.run([sys.executable, "-c", code, "dedup", "-q", "-j", jobs,
                               "--template-sample", "100", "-o", str(out), str(data)],
                              capture_output=True, text=True, timeout=120)
        assert proc.stdout.split() == ["False", "0"], proc.stderr
        kept.append(out.read_bytes())
    assert kept[0] == kept[1] and 0 < kept[0].count(b"\n") < 300


def test_stop_mask_is_runs_of_stop_shingles_within_a_record():
    rng = np.random.default_rng(3)
    for _ in range(200):
        lens = rng.integers(0, 14, rng.integers(1, 20))
        units = rng.integers(1, 5, int(lens.sum())).astype(np.uint32)
        h, rec = M._ngram_hashes(units, lens, 2, 1)
        if h.size == 0:
            continue
        stop = np.unique(rng.choice(h, max(1, h.size // 2)))
        for run in (1, 2, 3, 5):
            m = np.isin(h, stop)
            want = np.zeros(h.size, bool)
            i = 0
            while i < h.size:
                j = i
                while j < h.size and m[j] == m[i] and rec[j] == rec[i]:
                    j += 1
                want[i:j] = m[i] and j - i >= run
                i = j
            assert (M.stop_mask(h, rec, stop, run) == want).all()


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_ngrams_end_inside_their_record(n):
    rng = np.random.default_rng(n)
    for _ in range(100):
        lens = rng.integers(0, 9, rng.integers(1, 12))
        units = rng.integers(1, 1000, int(lens.sum())).astype(np.uint32)
        ref = _ref_ngrams(units, lens, n)
        params = M.Params(ngram=n)
        v, rec = M.shingle_values(units, lens, params)
        assert rec.tolist() == [r for _, r in ref]
        if n <= 3:
            assert v.tolist() == [sum(int(units[s + j]) << (21 * (n - 1 - j)) for j in range(n))
                                  for s, _ in ref]
        h, rec2 = M._ngram_hashes(units, lens, n, 1)
        assert rec2.tolist() == rec.tolist() and h.size == len(ref)
        # the hash of an n-gram depends on its units only
        first = {}
        for (s, _), x in zip(ref, h.tolist()):
            assert first.setdefault(tuple(units[s:s + n].tolist()), x) == x


def test_densify_fills_from_the_next_bin_to_the_right():
    rng = np.random.default_rng(5)
    k = 16
    sig = rng.integers(0, 2**32 - 1, (50, k), dtype=np.uint32)
    sig[rng.random((50, k)) < 0.6] = M.EMPTY
    sig[0] = M.EMPTY  # no shingle: stays empty
    want = sig.copy()
    for r in range(50):
        row = sig[r]
        full = [i for i in range(k) if row[i] != M.EMPTY]
        if not full or len(full) == k:
            continue
        for i in range(k):
            if row[i] == M.EMPTY:
                d = next(d for d in range(1, k) if row[(i + d) % k] != M.EMPTY)
                v = (int(row[(i + d) % k]) + d * 0x9E3779B1) & 0xFFFFFFFF
                want[r, i] = v - 1 if v == 0xFFFFFFFF else v
    assert (M.densify(sig.copy()) == want).all()


def test_prefixes_decode_the_first_characters():
    texts = ["一二三四五六七八九十" * 5, "", "ab"]
    cps = [np.frombuffer(t.encode("utf-32-le"), np.uint32) for t in texts]
    p = prefixes(np.concatenate(cps), np.array([len(t) for t in texts]))
    assert [p[i] for i in range(len(p))] == [texts[0][:32], "", "ab"]


def test_exact_jaccard_of_pairs_sorted_or_not():
    from cqia_cli.dedup.verify import jaccard

    rng = np.random.default_rng(7)
    for _ in range(100):
        k = int(rng.integers(1, 30))
        sa = [set(rng.integers(0, 60, rng.integers(0, 25)).tolist()) for _ in range(k)]
        sb = [set(rng.integers(0, 60, rng.integers(0, 25)).tolist()) for _ in range(k)]
        # one side in sorted runs (as _distinct gives them), the other shuffled
        va = np.array([x for s in sa for x in sorted(s)], np.uint64)
        vb = np.array([x for s in sb for x in rng.permutation(sorted(s)).tolist()], np.uint64)
        got = jaccard(va, np.array([len(s) for s in sa]), vb, np.array([len(s) for s in sb]))
        want = [len(a & b) / len(a | b) if a | b else 0.0 for a, b in zip(sa, sb)]
        assert np.allclose(got, want)


def _stop_by_sets(texts, params, share, min_count):
    """learn_stop's definition, the slow way: each text's distinct shingles, counted."""
    import math
    from collections import Counter

    from cqia_cli.dedup.minhash import shingle_hashes
    from cqia_cli.dedup.normalize import normalize_batch
    from cqia_cli.dedup.sketch import word_units
    from cqia_cli.dedup.templates import HEAD

    need = max(min_count, math.ceil(share * len(texts)))
    counts = Counter()
    for t in texts:
        units, lens = normalize_batch([t[:HEAD]])
        if params.tokenizer == "jieba":
            units, lens = word_units(units, lens)
        counts.update(set(shingle_hashes(units, lens, params)[0].tolist()))
    return sorted(h for h, c in counts.items() if c >= need)


@pytest.mark.parametrize("tokenizer,jobs,chunk", [("char", 1, None), ("char", 1, 64),
                                                  ("jieba", 1, None), ("jieba", 2, None)])
def test_learn_stop_counts_texts_not_occurrences(tokenizer, jobs, chunk, monkeypatch):
    """A shingle repeated within texts (哈哈哈哈..., a forum laugh) is not a stop-shingle unless
    it is in enough texts; a template sentence in most texts is; the result is the same for
    every jobs (jieba's words are made in jobs processes) and whether the texts are counted
    in one chunk or in many (chunk: a stop-shingle's texts then span chunks), and sorted."""
    import random

    from cqia_cli.dedup import templates
    from cqia_cli.dedup.minhash import Params, shingle_hashes
    from cqia_cli.dedup.normalize import normalize_batch
    from cqia_cli.dedup.templates import learn_stop

    if chunk is not None:
        monkeypatch.setattr(templates, "_CHUNK", chunk)

    rng = random.Random(7)
    words = ["数据", "分析", "模型", "训练", "问题", "答案", "中文", "指令"]
    texts = []
    for i in range(600):
        body = "".join(rng.choice(words) for _ in range(rng.randint(1, 12)))
        if i % 3 == 0:
            body = "请根据以下标题写一篇小红书风格的帖子：" + body
        if i < 4:
            body += "哈" * 400  # occurs over a thousand times, in four texts
        texts.append(body)
    params = Params(tokenizer=tokenizer, ngram=3 if tokenizer == "char" else 2)
    got = learn_stop(texts, params, share=0.01, min_count=10, jobs=jobs)
    want = _stop_by_sets(texts, params, 0.01, 10)
    assert got.dtype == np.uint64 and got.tolist() == want
    if tokenizer == "char":
        haha = normalize_batch(["哈哈哈"])
        assert not np.isin(shingle_hashes(*haha, params)[0], got).any()
    assert len(want) > 10  # the template's shingles, at least
    # nothing common enough: none, and no error
    assert learn_stop(["甲乙丙丁", "戊己庚辛"] * 3, params, share=0.5, min_count=10).size == 0
    assert learn_stop(["", ""], params, share=0.5, min_count=1).size == 0


def test_order32_is_a_stable_argsort_and_group_order_keeps_equal_values_in_input_order():
    rng = np.random.default_rng(5)
    for size, top in ((0, 10), (1, 10), (5000, 2 ** 32), (5000, 300), (70000, 2 ** 20)):
        key = rng.integers(0, top, size=size, dtype=np.uint64)
        assert M.order32(key).tolist() == np.argsort(key, kind="stable").tolist()
    # values whose low halves collide (and do not), repeated, in a random order
    low = rng.integers(0, 2 ** 32, size=50, dtype=np.uint64)
    h = low[rng.integers(0, 50, size=4000)] | (rng.integers(0, 3, size=4000, dtype=np.uint64)
                                              << np.uint64(33))
    order = M.group_order(h)
    assert sorted(order.tolist()) == list(range(h.size))
    hs = h[order]
    runs = np.flatnonzero(np.r_[True, hs[1:] != hs[:-1], True])
    assert len(runs) - 1 == np.unique(h).size  # each value in one run
    for a, b in zip(runs[:-1], runs[1:]):
        assert np.all(np.diff(order[a:b]) > 0)  # in input order within it


def _shared_words_by_counting(heads, n):
    """shared_words' definition, the slow way: every longer string counted afresh (the first
    n-gram met among the most common: a Counter keeps the order it met them in)."""
    from collections import Counter

    def df(size):
        c = Counter()
        for h in heads:
            c.update(list(dict.fromkeys(h[i:i + size] for i in range(len(h) - size + 1))))
        return c

    counts = df(n)
    if not counts:
        return "", 0
    best, count = counts.most_common(1)[0]
    while True:
        longer = [w for w in df(len(best) + 1).items() if best in w[0] and w[1] >= count]
        if not longer:
            return best, count
        best = max(longer, key=lambda w: (w[1], w[0]))[0]


def test_shared_words_grows_the_common_string_as_counting_afresh_would():
    """The warning's likeliest cause: grown only from the heads that have it, the same result
    as recounting every longer string (random heads over a small alphabet: many ties)."""
    import random

    from cqia_cli.dedup.templates import shared_words

    rng = random.Random(3)
    for _ in range(300):
        heads = ["".join(rng.choice("ab的是哈") for _ in range(rng.randint(0, 20)))
                 for _ in range(rng.randint(0, 30))]
        n = rng.randint(1, 4)
        assert shared_words(heads, n) == _shared_words_by_counting(heads, n), (heads, n)
    posts = [f"请写一段简短且吸引人的小红书文案：{t}" for t in ("猫", "狗", "春天的早晨")]
    assert shared_words(posts) == ("请写一段简短且吸引人的小红书文案：", 3)


def test_shared_words_counts_strings_when_two_ngrams_share_a_hash(monkeypatch):
    """The n-grams are counted by hash; the count of the one found is checked against the
    heads, and on a mismatch they are counted as strings. A multiplier of 0 hashes an n-gram
    by its last character only: the n-grams ending in 好 share a hash found in four heads,
    and the first of them, 我又好, is in one; the answer is still 又好又, in two."""
    from cqia_cli.dedup import templates

    heads = ["我又好又快", "他又好又慢", "来了好又到", "去了好又走"]
    assert templates.shared_words(heads, 3) == _shared_words_by_counting(heads, 3)
    monkeypatch.setattr(templates, "_GRAM_MULT", 0)
    assert templates._most_common_gram(heads, 3) == ("又好又", 2)
    assert templates.shared_words(heads, 3) == _shared_words_by_counting(heads, 3)


def test_shared_words_is_the_same_whatever_the_string_hash_seed():
    """Among n-grams in as many heads, the first met is chosen: not the first of a set, whose
    order changes from run to run with PYTHONHASHSEED."""
    import subprocess
    import sys

    code = ("from cqia_cli.dedup.templates import shared_words\n"
            "print(shared_words(['甲乙丙丁戊', '丙丁戊己庚', '甲乙丙辛壬'], 2))")
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout
            for seed in range(8)}
    assert seen == {"('甲乙丙', 2)\n"}


def test_short_texts_make_each_set_when_asked_as_the_eager_sets_were():
    """A batch keeps its short texts' units, first fields and stop bits; the sets made from
    them for any selection (repeats, texts that are not kept, a template's stop-shingles, a
    prompt with an input) equal the sets made for the whole batch at once."""
    from cqia_cli.dedup.minhash import Params, ngram_counts, ngram_hashes
    from cqia_cli.dedup.parts import PartsGetter, normalize_parts
    from cqia_cli.dedup.templates import learn_stop
    from cqia_cli.dedup.verify import Verifier, set_values

    get = PartsGetter(("instruction", "input", "output"))
    recs = [{"instruction": "请根据以下标题写一篇小红书风格的帖子",
             "output": f"第{i}篇：春天的早晨去公园"} for i in range(40)]
    recs += [{"instruction": "判断两句话意思是否相同", "input": f"句子{i}：今天天气很好",
              "output": "相同" if i % 2 else "不同"} for i in range(20)]
    recs += [{"instruction": "解释" + "很长的一段话" * 60, "output": "好"}]  # long: not kept
    texts = [get(r) for r in recs]
    params = Params()
    stop = learn_stop(texts, params, share=0.2, min_count=5)
    verifier = Verifier(params, 0.4, stop)
    units, lens, heads = normalize_parts(texts)
    ngrams = ngram_hashes(units, lens, params, stop)
    nsh = np.bincount(ngrams[1][~ngrams[2]] if ngrams[2] is not None else ngrams[1],
                      minlength=lens.size).astype(np.int32)
    short = verifier.sets(units, lens, nsh, heads, drop=ngrams[2])
    assert short.kept[:-1].all() and not short.kept[-1] and short.stopped is not None
    # the eager way: every kept text's set at once
    kept = np.flatnonzero(short.kept)
    starts = np.cumsum(lens) - lens
    ku = np.concatenate([units[starts[i]:starts[i] + lens[i]] for i in kept])
    stopped = ngrams[2][np.repeat(short.kept, ngram_counts(lens, params.ngram))]
    v, vl = set_values(ku, lens[kept], heads[kept], params, np.empty(0, np.uint64), stopped)
    want = dict(zip(kept.tolist(), np.split(v, np.cumsum(vl)[:-1])))
    for idx in ([0, 1, 2], [5, 5, 45, 60, 3], [60], list(range(61))[::-1]):
        sides = short.sides(np.array(idx))
        got = np.split(sides.vals, np.cumsum(sides.vlens)[:-1])
        for i, k, g in zip(idx, sides.kept.tolist(), got):
            assert k == bool(short.kept[i])
            assert g.tolist() == (want[i].tolist() if k else [])


def test_exact_keys_are_blake2b_of_utf32_as_saved_in_an_index():
    """The exact-duplicate key is the format an --index keeps: BLAKE2b-64 (little-endian) of the
    normalised text's UTF-32-LE; a text that normalises to nothing is keyed by its raw UTF-8."""
    import hashlib

    from cqia_cli.dedup.normalize import normalize_batch
    from cqia_cli.dedup.sketch import exact_keys

    def key(data: bytes) -> int:
        return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")

    texts = ["你好，世界！", "", "！！！", "Hello  World", "九进制应该是1m7", "\ud800 lone", "？"]
    units, lens = normalize_batch(texts)
    got = exact_keys(units, lens, texts).tolist()
    at = 0
    for text, n, k in zip(texts, lens.tolist(), got):
        if n:
            assert k == key(units[at:at + n].astype("<u4").tobytes())
        else:
            assert k == key(b"\x00raw\x00" + text.encode("utf-8", "surrogatepass"))
        at += n
    assert got[1] != got[2] != got[6]  # nothing left after normalising: the raw text decides
    assert exact_keys(units[:0], lens[:0], []).size == 0


@pytest.mark.parametrize("tokenizer", ["char", "jieba"])
def test_sketch_is_the_same_whatever_the_hashing_chunk(tokenizer, monkeypatch):
    """finish_batch hashes a batch's shingles HASH_CHUNK records at a time: the signatures,
    band keys, shingle counts, stop masks (in some chunks only) and short texts' sets are those
    of the whole batch at once; empty texts, texts shorter than an n-gram and a last, partial
    chunk included."""
    import random

    from cqia_cli.dedup import sketch as S
    from cqia_cli.dedup.minhash import Params
    from cqia_cli.dedup.templates import learn_stop
    from cqia_cli.dedup.verify import Verifier

    rng = random.Random(3)
    words = ["数据", "分析", "模型", "训练", "问题", "答案", "中文", "指令", "的", "了"]
    template = "请根据以下标题写一篇小红书风格的帖子，要求语气活泼："
    texts = []
    for i in range(97):
        body = "".join(rng.choice(words) for _ in range(rng.randint(0, 40)))
        texts.append((template + body) if 20 <= i < 40 else body)
    texts[5] = ""
    texts[6] = "好"
    params = Params(tokenizer=tokenizer, ngram=3 if tokenizer == "char" else 2)
    stop = learn_stop(texts, params, share=0.1, min_count=5)
    assert stop.size  # the template's shingles: dropped in the chunks that hold it only
    verifier = Verifier(params, 0.4, stop)
    prepared = S.prepare_batch(texts, params)

    def sketch(chunk):
        monkeypatch.setattr(S, "HASH_CHUNK", chunk)
        return S.finish_batch(prepared, verifier)

    whole = sketch(4096)
    assert whole.short.stopped is not None
    for chunk in (1, 7, 32, 96):
        sk = sketch(chunk)
        assert np.array_equal(sk.sigs, whole.sigs) and np.array_equal(sk.bands, whole.bands)
        assert np.array_equal(sk.nsh, whole.nsh) and np.array_equal(sk.near, whole.near)
        for a, b in zip(sk.local, whole.local):
            assert np.array_equal(a, b)
        idx = np.arange(len(texts))
        assert np.array_equal(sk.short.kept, whole.short.kept)
        assert np.array_equal(sk.short.stopped.flat, whole.short.stopped.flat)
        assert np.array_equal(sk.short.stopped.off, whole.short.stopped.off)
        got, want = sk.short_units(idx), whole.short_units(idx)
        for name in ("kept", "vals", "vlens", "at"):
            assert np.array_equal(getattr(got, name), getattr(want, name))
