"""cqia dedup: exact and near duplicates, survivors, side outputs, indexes, errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import orjson
import pytest

from conftest import DATA, invoke, shell, write_jsonl

RECORDS = DATA / "dedup" / "records.jsonl"


def base_records() -> list[dict]:
    return [json.loads(line) for line in RECORDS.read_text("utf-8").splitlines()]


def edit(text: str, rate: float, seed: int) -> str:
    """Replace, insert or delete about `rate` of the characters (never at the same spot twice)."""
    rng = random.Random(seed)
    chars = list(text)
    for _ in range(max(1, int(len(chars) * rate))):
        i = rng.randrange(len(chars))
        op = rng.random()
        if op < 0.4:
            chars[i] = rng.choice("的了是在有和就不人都一上也很到说要去你会着没看好自己这")
        elif op < 0.7:
            del chars[i]
        else:
            chars.insert(i, rng.choice("的了是在有和就不人都一上也很到说要去你会着没看好自己这"))
    return "".join(chars)


def lines(res) -> list[bytes]:
    return [line for line in res.stdout_bytes.splitlines() if line]


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, list[dict], dict[int, int]]:
    """Unique records with exact and near copies mixed in; returns the file, the records and
    {line of a copy: line of its original}."""
    base = base_records()[:20]
    recs = list(base)
    truth = {}
    for k, i in enumerate(range(0, 20, 3)):
        r = dict(base[i])
        r["output"] = edit(r["output"], 0.03, seed=k)
        recs.append(r)
        truth[len(recs)] = i + 1
    for i in (1, 4):
        r = dict(base[i])  # an exact copy modulo punctuation width, case and spacing
        r["instruction"] = r["instruction"].replace("，", ",").replace("？", "?") + "  "
        recs.append(r)
        truth[len(recs)] = i + 1
    return write_jsonl(tmp_path / "in.jsonl", recs), recs, truth


def test_removes_exact_and_near_copies_and_names_survivors(corpus, tmp_path):
    path, recs, truth = corpus
    res = invoke(["dedup", "--dupes", tmp_path / "d.jsonl", path])
    assert res.exit_code == 0, res
    kept = res.records()
    dupes = [orjson.loads(x) for x in (tmp_path / "d.jsonl").read_bytes().splitlines()]
    assert kept == recs[:20]
    got = {}
    for d in dupes:
        dup_of = d.pop("_dup_of")
        line = recs.index(d) + 1
        got[line] = dup_of["line"]
        assert 0.5 <= dup_of["similarity"] <= 1.0
    assert got == truth
    assert "dedup: kept 20 of 29 (69.0%); removed 9 (2 exact, 7 near)" in res.stderr


def test_kept_plus_dupes_is_the_input_in_order(corpus, tmp_path):
    path, recs, _ = corpus
    res = invoke(["dedup", "--dupes", tmp_path / "d.jsonl", path])
    kept = res.records()
    dupes = [orjson.loads(x) for x in (tmp_path / "d.jsonl").read_bytes().splitlines()]
    lines_of = {}
    for d in dupes:
        d.pop("_dup_of")
    merged = sorted([(recs.index(r), r) for r in kept] + [(recs.index(r), r) for r in dupes],
                    key=lambda x: x[0])
    assert [r for _, r in merged] == recs
    assert len(kept) + len(dupes) == len(recs)
    del lines_of


def test_exact_normalisation_width_case_space_punctuation():
    recs = [{"instruction": "Hello，世界！ ABC", "output": "测试一下"},
            {"instruction": "ｈｅｌｌｏ,世界!abc", "output": "测试 一下。"},
            {"instruction": "goodbye 朋友 xyz", "output": "另一段话"}]
    res = invoke(["dedup", "--mark", "-q"], input="".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                       for r in recs))
    out = res.records()
    assert [r["_cluster"] for r in out] == [1, 1, 3]
    assert out[1]["_dup_of"] == {"line": 1, "similarity": 1.0, "measure": "identical"}
    assert "_dup_of" not in out[0] and "_dup_of" not in out[2]


def test_short_and_punctuation_only_texts_never_collapse():
    recs = [{"instruction": "好"}, {"instruction": "坏"}, {"instruction": "好！"},
            {"instruction": "！！"}, {"instruction": "？？"}, {"instruction": "！！"},
            {"instruction": ""}, {"instruction": "ab"}]
    res = invoke(["dedup", "--mark", "-q"], input="".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                       for r in recs))
    assert [r["_cluster"] for r in res.records()] == [1, 2, 1, 4, 5, 4, 7, 8]


def test_threshold_decides_and_similarity_is_verified(corpus, tmp_path):
    path, recs, truth = corpus
    strict = invoke(["dedup", "--threshold", "0.99", "-q", path]).records()
    # only the exact copies go at 0.99
    assert len(strict) == len(recs) - 2
    loose = invoke(["dedup", "--threshold", "0.2", "-q", path]).records()
    assert loose == recs[:20]  # unrelated records stay apart even at a low threshold


def test_mark_adds_cluster_to_every_record_and_drops_nothing(corpus):
    path, recs, truth = corpus
    res = invoke(["dedup", "--mark", "-q", path])
    out = res.records()
    assert len(out) == len(recs)
    for i, (r, o) in enumerate(zip(recs, out), 1):
        o = dict(o)
        cluster = o.pop("_cluster")
        dup_of = o.pop("_dup_of", None)
        assert o == r
        assert cluster == truth.get(i, i)
        assert (dup_of is not None) == (i in truth)


def test_clusters_file(corpus, tmp_path):
    path, recs, truth = corpus
    res = invoke(["dedup", "-q", "--clusters", tmp_path / "c.jsonl", path])
    assert res.exit_code == 0
    clusters = [orjson.loads(x) for x in (tmp_path / "c.jsonl").read_bytes().splitlines()]
    expect: dict[int, list[int]] = {}
    for copy, orig in truth.items():
        expect.setdefault(orig, []).append(copy)
    assert [c["cluster"] for c in clusters] == sorted(expect)
    for c in clusters:
        assert c["survivor"] == {"line": c["cluster"]}
        assert [m["line"] for m in c["members"]] == sorted(expect[c["cluster"]])
        assert c["size"] == len(c["members"]) + 1


def test_keep_longest_and_best(tmp_path):
    base = base_records()[0]
    a = dict(base, human_verified=False, answer_from="llm")
    b = dict(base, output=base["output"] + "补充一句。", human_verified=False, answer_from="llm")
    c = dict(base, human_verified=True, answer_from="human")
    path = write_jsonl(tmp_path / "in.jsonl", [a, b, c])
    longest = invoke(["dedup", "--keep", "longest", "--dupes", tmp_path / "d.jsonl", path])
    assert longest.records() == [b]
    dupes = [orjson.loads(x) for x in (tmp_path / "d.jsonl").read_bytes().splitlines()]
    assert [d["_dup_of"]["line"] for d in dupes] == [2, 2]
    assert [{k: v for k, v in d.items() if k != "_dup_of"} for d in dupes] == [a, c]
    best = invoke(["dedup", "--keep", "best", "-q", path])
    assert best.records() == [c]
    first = invoke(["dedup", "-q", path])
    assert first.records() == [a]
    # standard input is read twice through a spool
    best_stdin = invoke(["dedup", "--keep", "best", "--mark", "-q"], input=path.read_bytes())
    assert [(r["_cluster"], r.get("_dup_of", {}).get("line")) for r in best_stdin.records()] == \
        [(1, 3), (1, 3), (1, None)]


def test_against_references_removes_and_never_outputs_them(corpus, tmp_path):
    path, recs, truth = corpus
    ref = write_jsonl(tmp_path / "eval.jsonl", [recs[0], recs[6]])
    res = invoke(["dedup", "--against", ref, "--dupes", tmp_path / "d.jsonl", "-q",
                  write_jsonl(tmp_path / "train.jsonl", recs[20:])])
    assert res.exit_code == 0, res
    dupes = [orjson.loads(x) for x in (tmp_path / "d.jsonl").read_bytes().splitlines()]
    # copies of records 1 and 6 are in train: lines 1 and 3 of train (21 and 23 of the corpus)
    assert [(d["_dup_of"]["source"], d["_dup_of"]["line"]) for d in dupes] == \
        [(str(ref), 1), (str(ref), 2)]
    assert len(res.records()) == len(recs) - 20 - 2


def test_save_index_then_deduplicate_a_new_batch_against_it(corpus, tmp_path):
    path, recs, truth = corpus
    first = write_jsonl(tmp_path / "a.jsonl", recs[:20])
    second = write_jsonl(tmp_path / "b.jsonl", recs[20:] + [{"instruction": "全新的问题", "output":
                                                             "全新的回答，与之前的都不一样。"}])
    idx = tmp_path / "seen.npz"
    r1 = invoke(["dedup", "-q", "--save-index", idx, first])
    assert r1.exit_code == 0 and idx.exists()
    r2 = invoke(["dedup", "--index", idx, "--save-index", tmp_path / "seen2.npz",
                 "--dupes", tmp_path / "d.jsonl", second])
    assert r2.exit_code == 0, r2
    assert len(r2.records()) == 1
    dupes = [orjson.loads(x) for x in (tmp_path / "d.jsonl").read_bytes().splitlines()]
    assert all(d["_dup_of"]["source"] == str(first) for d in dupes)
    assert [d["_dup_of"]["line"] for d in dupes] == list(truth.values())
    # the new index holds both batches: the new record is now a duplicate too
    r3 = invoke(["dedup", "-q", "--index", tmp_path / "seen2.npz", second])
    assert r3.records() == []
    # an index is only valid for the settings it was built with
    bad = invoke(["dedup", "--index", idx, "--ngram", "5", second])
    assert bad.exit_code == 2
    assert "--ngram 5 differs from the index" in bad.stderr


def test_id_field_names_the_survivor(corpus, tmp_path):
    path, recs, truth = corpus
    with_ids = [dict(r, id=f"r{i}") for i, r in enumerate(recs, 1)]
    res = invoke(["dedup", "--id-field", "id", "--mark", "-q",
                  write_jsonl(tmp_path / "i.jsonl", with_ids)])
    dup = [r["_dup_of"] for r in res.records() if "_dup_of" in r]
    assert [d["id"] for d in dup] == [f"r{truth[k]}" for k in sorted(truth)]


def test_jieba_tokenizer(corpus):
    path, recs, truth = corpus
    res = invoke(["dedup", "--tokenizer", "jieba", "-q", path])
    assert res.exit_code == 0
    assert res.records() == recs[:20]


def test_t2s_needs_opencc_or_folds_traditional(tmp_path):
    recs = [{"instruction": "這是一個關於電腦軟體的問題，請詳細說明。"},
            {"instruction": "这是一个关于电脑软体的问题，请详细说明。"}]
    res = invoke(["dedup", "--t2s", "-q", write_jsonl(tmp_path / "t.jsonl", recs)])
    try:
        import opencc  # noqa: F401
    except ImportError:
        assert res.exit_code == 2
        assert res.stderr.startswith("cqia dedup: --t2s needs the optional OpenCC package")
        return
    assert res.exit_code == 0
    assert res.records() == recs[:1]


def test_bad_json_reports_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"instruction": "a"}\n{oops\n')
    res = invoke(["dedup", p])
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia dedup: {p}:2: invalid JSON")
    res = invoke(["dedup", "--on-error", "skip", "--keep", "longest", p])
    assert res.exit_code == 0 and res.records() == [{"instruction": "a"}]


def test_usage_errors(tmp_path, corpus):
    path, _, _ = corpus
    res = invoke(["dedup", "--mark", "--dupes", tmp_path / "d.jsonl", path])
    assert res.exit_code == 2 and "--mark removes nothing" in res.stderr
    res = invoke(["dedup", "--threshold", "1.5", path])
    assert res.exit_code == 2
    res = invoke(["dedup", "nope.jsonl"])
    assert res.exit_code == 66 and "cqia dedup: nope.jsonl: no such file" in res.stderr
    res = invoke(["dedup", "--against", "missing.jsonl", path])
    assert res.exit_code == 66
    res = invoke(["dedup", "--against", path, path])
    assert res.exit_code == 2
    res = invoke(["dedup", "--bands", "30", "--rows", "10", path])
    assert res.exit_code == 2 and "exceeds --num-perm" in res.stderr


# -- through the installed command ----------------------------------------------------------


def big_corpus(tmp_path, n=3000) -> Path:
    base = base_records()
    rng = random.Random(5)
    recs = []
    for i in range(n):
        r = dict(base[i % len(base)])
        if i >= len(base):
            r["output"] = edit(r["output"], rng.uniform(0.0, 0.3), seed=i) + str(i // 7)
        recs.append(r)
    return write_jsonl(tmp_path / "big.jsonl", recs)


@pytest.mark.slow
def test_jobs_output_is_byte_identical(tmp_path):
    path = big_corpus(tmp_path)
    one = shell(f"cqia dedup -q --mark {path} | md5sum; cqia dedup -q --dupes {tmp_path}/d1 "
                f"{path} | md5sum; md5sum < {tmp_path}/d1")
    two = shell(f"cqia dedup -q -j 2 --mark {path} | md5sum; cqia dedup -q -j 2 --dupes "
                f"{tmp_path}/d2 {path} | md5sum; md5sum < {tmp_path}/d2")
    assert one.exit_code == 0 and two.exit_code == 0, two
    assert one.stdout == two.stdout
    again = shell(f"cqia dedup -q --mark {path} | md5sum; cqia dedup -q --dupes {tmp_path}/d1 "
                  f"{path} | md5sum; md5sum < {tmp_path}/d1")
    assert again.stdout == one.stdout


def test_pipe_and_head_end_quietly(tmp_path):
    path = big_corpus(tmp_path)
    res = shell(f"cat {path} | cqia dedup | head -1")
    assert res.exit_code == 0
    assert res.stderr == ""
    assert len(res.stdout.splitlines()) == 1


def test_domain_normalize_batch_is_the_definition():
    from cqia_cli.dedup.normalize import normalize, normalize_batch

    texts = ["Ｈｅｌｌｏ，世界！  ㎡ ½ é 한국어 𠀀𠀁 ① ＡＢＣ ℃ ⑩", "", "，。！", "ﬁ ß Σσς",
             "e\u0301 cafe\u0301", "\u3000全角空格\t制表", "abc℃"] + \
        [r["output"] for r in base_records()]
    cps, lens = normalize_batch(texts)
    ends = np.cumsum(lens)
    for t, a, b in zip(texts, ends - lens, ends):
        assert cps[a:b].tobytes().decode("utf-32-le") == normalize(t)


def test_domain_signatures_estimate_jaccard():
    from cqia_cli.dedup.minhash import Params, jaccard, signatures, similarity
    from cqia_cli.dedup.normalize import normalize, normalize_batch

    p = Params(ngram=3, num_perm=256)
    texts = [r["output"] for r in base_records()]
    edited = [edit(t, 0.05, seed=i) for i, t in enumerate(texts)]
    ua, la = normalize_batch(texts)
    ub, lb = normalize_batch(edited)
    est = similarity(signatures(ua, la, p), signatures(ub, lb, p))

    def shingles(t):
        t = normalize(t)
        return {t[i:i + 3] for i in range(len(t) - 2)}

    exact = np.array([jaccard(shingles(a), shingles(b)) for a, b in zip(texts, edited)])
    assert abs(float((est - exact).mean())) < 0.03
    assert float(np.abs(est - exact).max()) < 0.2


def test_t2s_without_opencc_is_a_clear_usage_error(tmp_path, monkeypatch):
    import sys

    from cqia_cli.dedup import sketch

    monkeypatch.setitem(sys.modules, "opencc", None)  # import opencc raises ImportError
    sketch.t2s_converter.cache_clear()
    try:
        res = invoke(["dedup", "--t2s", write_jsonl(tmp_path / "t.jsonl", [{"instruction": "a"}])])
    finally:
        sketch.t2s_converter.cache_clear()
    assert res.exit_code == 2
    assert res.stderr == ("cqia dedup: --t2s needs the optional OpenCC package: "
                          "pip install 'cqia[t2s]' (or opencc)\n")


def test_keep_best_saves_an_index_that_names_the_survivors(tmp_path):
    base = base_records()[0]
    a = dict(base, human_verified=False)
    c = dict(base, human_verified=True)
    idx = tmp_path / "i.npz"
    res = invoke(["dedup", "-q", "--keep", "best", "--save-index", idx,
                  write_jsonl(tmp_path / "a.jsonl", [a, c])])
    assert res.records() == [c]
    again = invoke(["dedup", "-q", "--index", idx, "--mark",
                    write_jsonl(tmp_path / "b.jsonl", [a])])
    assert again.records()[0]["_dup_of"] == {"source": str(tmp_path / "a.jsonl"), "line": 2,
                                             "similarity": 1.0, "measure": "identical"}


def test_storage_options_are_checked_before_connecting(tmp_path, corpus):
    path, _, _ = corpus
    res = invoke(["dedup", "--storage", "redis://127.0.0.1:1/0", "--keep", "best", path])
    assert res.exit_code == 2 and "--storage works with --keep first only" in res.stderr
    res = invoke(["dedup", "--shards", "2", path])
    assert res.exit_code == 2 and "--shards and --shard-name need --storage" in res.stderr
    res = invoke(["dedup", "--storage", "http://x/0", path])
    assert res.exit_code == 2 and "expected redis://HOST:PORT/DB" in res.stderr


@pytest.mark.slow
def test_property_kept_plus_dupes_is_the_input(tmp_path_factory):
    from hypothesis import given, settings, strategies as st

    words = st.sampled_from(["数据", "模型", "问题", "答案", "中国", "学习", "，", "。", "A", "a", " "])
    text = st.lists(words, min_size=0, max_size=40).map("".join)
    recs = st.lists(st.fixed_dictionaries({"instruction": text, "output": text}), max_size=30)

    @settings(max_examples=40, deadline=None)
    @given(recs, st.sampled_from(["first", "longest", "best"]), st.sampled_from([0.3, 0.7, 1.0]))
    def check(records, keep, threshold):
        d = tmp_path_factory.mktemp("p")
        inp = d / "in.jsonl"
        inp.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
        res = invoke(["dedup", "-q", "--keep", keep, "--threshold", threshold,
                      "--dupes", d / "dupes.jsonl", inp])
        assert res.exit_code == 0, res
        kept = res.records()
        dupes = [orjson.loads(x) for x in (d / "dupes.jsonl").read_bytes().splitlines()]
        assert len(kept) + len(dupes) == len(records)
        marked = invoke(["dedup", "-q", "--keep", keep, "--threshold", threshold, "--mark",
                         inp]).records()
        assert [{k: v for k, v in m.items() if k not in ("_cluster", "_dup_of")}
                for m in marked] == records
        survivors = [m for m in marked if "_dup_of" not in m]
        assert [{k: v for k, v in m.items() if k != "_cluster"} for m in survivors] == kept
        lines_kept = {i for i, m in enumerate(marked, 1) if "_dup_of" not in m}
        for m in marked:
            if "_dup_of" in m:
                assert m["_dup_of"]["line"] in lines_kept  # names a survivor
                assert marked[m["_cluster"] - 1]["_cluster"] == m["_cluster"]

    check()


def test_records_without_text_are_counted_in_a_warning():
    res = invoke(["dedup", "--field", "question"],
                 input='{"a": 1}\n{"a": 2}\n{"question": "x"}\n')
    assert res.exit_code == 0
    assert [r.get("a") for r in res.records()] == [1, None]
    assert "cqia dedup: warning: 2 records have no text in question (see --field); they are " \
        "duplicates of each other\n" in res.stderr


# -- -j N: workers parse raw lines; the parent reports their bad lines as the serial run does --

BAD_LINES = [b"{oops\n", b"[1, 2]\n", b'{"instruction": "\xff\xfe"}\n', b'"a string"\n']


def corpus_with_bad_lines(tmp_path, name="bad.jsonl", n=5000, every=997) -> tuple[Path, list]:
    """big_corpus's records (several batches of 2048 lines) with bad and blank lines mixed in;
    returns the file and [(line number, bad line)]."""
    good = big_corpus(tmp_path, n).read_bytes().splitlines(keepends=True)
    out, bad = [], []
    for i, line in enumerate(good):
        if i and i % every == 0:
            b = BAD_LINES[len(bad) % len(BAD_LINES)]
            out.append(b)
            bad.append((len(out), b))
            out.append(b"\n")  # a blank line: skipped silently
        out.append(line)
    path = tmp_path / name
    path.write_bytes(b"".join(out))
    return path, bad


@pytest.mark.slow
def test_jobs_bad_lines_skipped_and_kept_aside_as_serial(tmp_path):
    path, bad = corpus_with_bad_lines(tmp_path)
    runs = {}
    for j in ("1", "2"):
        res = invoke(["dedup", "-j", j, "--on-error", "skip", "--errors", tmp_path / f"e{j}",
                      "--dupes", tmp_path / f"d{j}", path])
        assert res.exit_code == 0, res.stderr
        runs[j] = (res.stdout_bytes, res.stderr.replace(f"/e{j})", "/E)"),
                   (tmp_path / f"e{j}").read_bytes(),
                   (tmp_path / f"d{j}").read_bytes())
    assert runs["1"] == runs["2"]
    assert runs["2"][2] == b"".join(b for _, b in bad)  # the errors file, in order
    kept = len(runs["2"][0].splitlines())
    dupes = len(runs["2"][3].splitlines())
    assert kept + dupes == 5000
    assert runs["2"][1].endswith(f"skipped {len(bad)} bad lines (kept in {tmp_path}/E)\n")


@pytest.mark.slow
def test_jobs_bad_line_fails_at_its_line_with_what_came_before_written(tmp_path):
    path, bad = corpus_with_bad_lines(tmp_path)
    first_line, first_bad = bad[0]
    serial = shell(f"cqia dedup -q {path} | md5sum; echo ${{PIPESTATUS[0]}}")
    for j in ("1", "2"):
        res = invoke(["dedup", "-j", j, path])
        assert res.exit_code == 65
        assert res.stderr.startswith(f"cqia dedup: {path}:{first_line}: invalid JSON"), res.stderr
        # what precedes the bad line is written, as a stream filter does
        before = path.read_bytes().splitlines(keepends=True)[:first_line - 1]
        ok = invoke(["dedup", "-j", j], input=b"".join(before))
        assert res.stdout_bytes == ok.stdout_bytes
    parallel = shell(f"cqia dedup -q -j 2 {path} | md5sum; echo ${{PIPESTATUS[0]}}")
    assert parallel.stdout == serial.stdout and serial.stdout.endswith("65\n")


@pytest.mark.slow
def test_jobs_bad_line_of_a_later_input_is_named_by_it(tmp_path):
    a = big_corpus(tmp_path, 2500)
    b = tmp_path / "b.jsonl"
    b.write_bytes(b'{"instruction": "x"}\n' * 3 + b'{"instruction": 1,\n')
    for j in ("1", "2"):
        res = invoke(["dedup", "-j", j, a, b])
        assert res.exit_code == 65
        assert res.stderr.startswith(f"cqia dedup: {b}:4: invalid JSON"), res.stderr
    res = invoke(["dedup", "-j", "2", "--encoding", "latin-1", "--on-error", "skip", a, b])
    assert res.exit_code == 0 and res.records()[-1] == {"instruction": "x"}


@pytest.mark.slow
def test_jobs_side_outputs_add_keys_last_whatever_the_record(tmp_path):
    """_dup_of and _cluster go last, or replace a key of that name where it is; an empty
    record gets them too; -j 2 writes what -j 1 writes."""
    text = {"instruction": "同一个问题", "output": "同一个回答，长一点的回答"}
    recs = [text, {**text, "_cluster": "old"}, {"_dup_of": 1, **text, "z": [1.5, None]},
            {}, {}, {"a": "é", **text}]
    path = write_jsonl(tmp_path / "in.jsonl", recs * 700)
    out = {}
    for j in ("1", "2"):
        mark = invoke(["dedup", "-j", j, "--mark", path])
        dup = invoke(["dedup", "-j", j, "--dupes", tmp_path / f"d{j}", path])
        assert mark.exit_code == 0 and dup.exit_code == 0
        out[j] = (mark.stdout_bytes, dup.stdout_bytes, (tmp_path / f"d{j}").read_bytes())
    assert out["1"] == out["2"]
    marked = [orjson.loads(x) for x in out["2"][0].splitlines()]
    assert list(marked[0]) == ["instruction", "output", "_cluster"]
    assert list(marked[1]) == ["instruction", "output", "_cluster", "_dup_of"]
    assert marked[1]["_cluster"] == 1
    assert list(marked[2]) == ["_dup_of", "instruction", "output", "z", "_cluster"]
    assert marked[2]["_dup_of"] == {"line": 1, "similarity": 1.0, "measure": "identical"}
    assert marked[3] == {"_cluster": 4} and list(marked[4]) == ["_cluster", "_dup_of"]
    dupes = [orjson.loads(x) for x in out["2"][2].splitlines()]
    assert dupes[0] == {**recs[1], "_dup_of": {"line": 1, "similarity": 1.0, "measure": "identical"}}
    assert list(dupes[1])[0] == "_dup_of" and dupes[1]["z"] == [1.5, None]
    assert dupes[2] == {"_dup_of": {"line": 4, "similarity": 1.0, "measure": "identical"}}


@pytest.mark.slow
def test_jobs_pipe_from_stdin_and_head_end_quietly(tmp_path):
    path = big_corpus(tmp_path)
    res = shell(f"cat {path} | cqia dedup -j 2 | head -1")
    assert res.exit_code == 0 and res.stderr == ""
    assert len(res.stdout.splitlines()) == 1
    same = shell(f"cat {path} | cqia dedup -q -j 2 | md5sum; cqia dedup -q {path} | md5sum")
    first, second = same.stdout.splitlines()
    assert first == second


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_bad_line_in_against_follows_on_error_as_the_input_does(tmp_path, jobs):
    """--against is read by the core (Job.open_reader): FILE:LINE at a bad line (65), or under
    --on-error skip the line kept in --errors and the references around it still used."""
    same = {"instruction": "a", "output": "hello world this is a test of things"}
    other = {"instruction": "b", "output": "something else entirely here"}
    ref = write_jsonl(tmp_path / "ref.jsonl", [], raw_lines=[b"{bad\n"] + [
        orjson.dumps(same) + b"\n"])
    path = write_jsonl(tmp_path / "in.jsonl", [same, other])
    res = invoke(["dedup", "-j", jobs, "--against", ref, path])
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia dedup: {ref}:1: invalid JSON")
    errors = tmp_path / "errors.jsonl"
    res = invoke(["dedup", "-j", jobs, "-q", "--against", ref, "--on-error", "skip",
                  "--errors", errors, path])
    assert res.exit_code == 0 and [json.loads(x) for x in res.stdout.splitlines()] == [other]
    assert errors.read_bytes() == b"{bad\n"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_records_with_many_brackets_are_written_unless_too_deep(tmp_path, jobs):
    """Only a record nested deeper than orjson writes (255 levels) is a bad line: brackets in
    a string, or nesting just within the limit, are written; in another encoding too."""
    good = {"instruction": "问题", "input": "", "output": "一个足够长的回答，说明了原因。"}
    deep_ok: object = "x"
    for _ in range(253):
        deep_ok = [deep_ok]
    too_deep: object = "x"
    for _ in range(300):
        too_deep = {"k": too_deep}
    recs = [good, {"instruction": "括号" + "[{" * 300, "output": "字符串里的括号"},
            {"instruction": "嵌套", "output": "刚好能写出的嵌套", "d": deep_ok},
            {**good, "output": "另一个回答，完全不同的内容。"}]
    path = write_jsonl(tmp_path / "in.jsonl", recs * 1500)  # 3 batches: here and a worker
    res = invoke(["dedup", "-j", jobs, str(path)])
    assert res.exit_code == 0, res
    assert lines(res) == [orjson.dumps(r) for r in recs]
    for encoding in ("utf-8", "gb18030"):
        bad = tmp_path / f"bad-{encoding}.jsonl"
        body = [orjson.dumps(r) for r in recs * 1500]
        body.insert(4000, json.dumps({**good, "deep": too_deep}, ensure_ascii=False).encode())
        bad.write_bytes(b"\n".join(body).decode("utf-8").encode(encoding) + b"\n")
        res = invoke(["dedup", "-j", jobs, "--encoding", encoding, str(bad)])
        assert res.exit_code == 65, res
        assert res.stderr.endswith(f"{bad}:4001: cannot write a record as JSON: "
                                   "Recursion limit reached\n"), res
        errors = tmp_path / "errors.jsonl"
        res = invoke(["dedup", "-j", jobs, "--encoding", encoding, "--on-error", "skip",
                      "--errors", str(errors), str(bad)])
        assert res.exit_code == 0, res
        assert [orjson.loads(x) for x in lines(res)] == recs
        assert errors.read_bytes().rstrip(b"\n") == body[4000].decode().encode(encoding)
