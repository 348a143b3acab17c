"""cqia stats: figures checked against independent computations on generated data."""

from __future__ import annotations

import json
import math
import random
import re
import unicodedata
from collections import Counter

import orjson
import pytest

from conftest import cqia_record, invoke, shell, write_jsonl
from cqia_cli.stats import Accumulator, Config
from cqia_cli.stats.bins import bin_index, bin_lower, bin_upper

HAN_POOL = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经"
RARE_HAN = "㐀㒹䶵豈𠀀𪚥"  # extension A, compatibility, extension B
NOT_HAN = "，。！？、abc XYZ 123 ䷀〇ー"  # ䷀ is a Yijing hexagram (U+4DC0), 〇 is not unified
DOMAINS = ["通用", "法律", "医学", "历史", "文学", "数学"]
MAJORS = ["问答", "文本生成", "试题", "分类"]


def make_text(rng: random.Random, n: int) -> str:
    pool = HAN_POOL * 3 + NOT_HAN + RARE_HAN
    return "".join(rng.choice(pool) for _ in range(n))


def generated(n: int = 600, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    recs = []
    for i in range(n):
        length = int(rng.lognormvariate(4.0, 1.2)) if i % 50 else rng.choice([0, 300, 2000, 5000])
        rec = cqia_record(
            i,
            instruction=make_text(rng, rng.randint(1, 40)) if i % 7 else "重复的指令",
            input="" if i % 3 else make_text(rng, rng.randint(0, 300)),
            output=make_text(rng, length) if i % 11 else "重复的回答",
            task_type={"major": rng.sample(MAJORS, rng.randint(1, 2)),
                       "minor": [f"小类{rng.randint(0, 5)}"]},
            domain=rng.sample(DOMAINS, rng.randint(1, 3)),
            answer_from=rng.choice(["human", "llm", "expert"]),
            human_verified=rng.random() < 0.3,
        )
        rec["source"] = rng.choice(["zhihu", "baike", "wiki"])  # auto-detected category
        rec["uid"] = f"id-{i}"  # too many values to be a category
        if i % 5 == 0:
            rec["score"] = rng.choice([1, 2, 3, None])
        if i % 13 == 0:
            del rec["metadata"]
        recs.append(rec)
    return recs


# -- independent computations ----------------------------------------------------------------


def ref_floor(length: int) -> int:
    """The lower edge of a length's bin, computed the other way round from the docs."""
    if length < 256:
        return length
    width = 2 ** (int(math.log2(length)) - 7)
    return length - length % width


def ref_quantiles(values: list[int]) -> dict:
    s = sorted(values)
    out = {"count": len(s), "min": s[0], "max": s[-1], "sum": sum(s),
           "mean": round(sum(s) / len(s), 2)}
    for p in (5, 25, 50, 75, 95):
        k = max(1, math.ceil(p * len(s) / 100))
        out["median" if p == 50 else f"p{p}"] = max(ref_floor(s[k - 1]), s[0])
    return out


def ref_han(text: str) -> int:
    return sum(1 for ch in text
               if unicodedata.name(ch, "").startswith(("CJK UNIFIED IDEOGRAPH",
                                                       "CJK COMPATIBILITY IDEOGRAPH")))


def stats_json(path, *args) -> dict:
    res = invoke(["stats", "--json", *args, path])
    assert res.exit_code == 0, res
    return json.loads(res.stdout)


# -- bins -------------------------------------------------------------------------------------


def test_bins_are_contiguous_and_narrow():
    previous_upper = -1
    for i in range(0, 4000):
        lo, hi = bin_lower(i), bin_upper(i)
        assert lo == previous_upper + 1
        assert bin_index(lo) == i and bin_index(hi) == i
        assert hi - lo + 1 <= max(1, lo / 128)
        previous_upper = hi
    for length in [0, 1, 255, 256, 257, 511, 512, 1000, 4095, 4096, 10**6, 12_345_678]:
        assert bin_lower(bin_index(length)) == ref_floor(length)


# -- the figures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("stats") / "gen.jsonl"
    recs = generated()
    write_jsonl(path, recs)
    return path, recs


def test_counts_fields_and_lengths_are_exact(data):
    path, recs = data
    d = stats_json(path)
    assert d["schema"] == "cqia.stats/1" and d["kind"] == "stats"
    assert d["records"] == len(recs)
    assert d["bytes"] == path.stat().st_size
    assert d["fields"]["metadata"]["present"] == sum("metadata" in r for r in recs)
    assert d["fields"]["score"]["present"] == sum("score" in r for r in recs)
    assert d["fields"]["score"]["empty"] == sum(1 for r in recs if r.get("score", 0) is None)
    assert d["fields"]["score"]["types"] == dict(Counter(
        "null" if r["score"] is None else "number" for r in recs if "score" in r))
    assert d["fields"]["input"]["empty"] == sum(r["input"] == "" for r in recs)
    assert d["fields"]["task_type.major"]["present"] == len(recs)
    for name in ("instruction", "input", "output"):
        texts = [r[name] for r in recs]
        t = d["text"][name]
        assert t["present"] == len(recs) and t["missing"] == 0
        assert t["empty"] == sum(1 for x in texts if not x)
        assert t["length"] == ref_quantiles([len(x) for x in texts]), name
        assert t["han"] == sum(ref_han(x) for x in texts)
        assert t["han_share"] == round(t["han"] / sum(len(x) for x in texts), 4)


def test_breakdowns_are_exact(data):
    path, recs = data
    d = stats_json(path)
    cats = d["categories"]

    def counts(name):
        return {v: n for v, n in cats[name]["values"]}

    assert counts("domain") == Counter(x for r in recs for x in r["domain"])
    assert counts("task_type.major") == Counter(x for r in recs for x in r["task_type"]["major"])
    assert counts("task_type.minor") == Counter(x for r in recs for x in r["task_type"]["minor"])
    assert counts("answer_from") == Counter(r["answer_from"] for r in recs)
    assert counts("human_verified") == {True: sum(r["human_verified"] for r in recs),
                                        False: sum(not r["human_verified"] for r in recs)}
    assert cats["domain"]["records"] == len(recs)
    auto = d["auto_categories"]
    assert {v: n for v, n in auto["source"]["values"]} == Counter(r["source"] for r in recs)
    assert {v: n for v, n in auto["score"]["values"]} == Counter(
        r["score"] for r in recs if r.get("score") is not None)
    assert auto["uid"] is None  # more than 50 distinct values: not a category
    assert auto["metadata"]["values"] == [["暂无元数据信息", sum("metadata" in r for r in recs)]]


def test_duplicates_are_exact(data):
    path, recs = data
    d = stats_json(path)["duplicates"]
    insts = [r["instruction"] for r in recs]
    triples = [(r["instruction"], r["input"], r["output"]) for r in recs]
    assert d["instruction"]["records"] == len(recs)
    assert d["instruction"]["distinct"] == len(set(insts))
    assert d["instruction"]["duplicates"] == len(insts) - len(set(insts)) > 0
    assert d["triple"]["duplicates"] == len(triples) - len(set(triples)) > 0


def test_by_and_extra_text_field(tmp_path):
    recs = [{"instruction": "问" * (i % 9 + 1), "meta": {"src": f"s{i % 4}"},
             "conv": [{"value": "答" * i}]} for i in range(40)]
    path = write_jsonl(tmp_path / "x.jsonl", recs)
    d = stats_json(path, "--by", "meta.src", "--field", "conv.0.value")
    assert {v: n for v, n in d["categories"]["meta.src"]["values"]} == Counter(
        r["meta"]["src"] for r in recs)
    assert d["text"]["conv.0.value"]["length"] == ref_quantiles(list(range(40)))
    assert d["text"]["output"]["missing"] == 40 and d["text"]["output"]["present"] == 0
    assert "meta.src" not in d["auto_categories"]  # reported under --by, not twice


# -- merging ----------------------------------------------------------------------------------


def _shards(recs, cuts):
    bounds = [0, *cuts, len(recs)]
    return [recs[a:b] for a, b in zip(bounds, bounds[1:])]


def _merged_parts(recs, config, cuts):
    merged = Accumulator(config)
    for shard in _shards(recs, cuts):
        acc = Accumulator(config)
        for r in shard:
            acc.add(r, 10)
        merged.merge(Accumulator.from_json(orjson.loads(orjson.dumps(acc.to_json()))))
    return merged


def test_merge_equals_one_run():
    recs = generated(400, seed=3)
    config = Config(group="source")
    whole = Accumulator(config)
    for r in recs:
        whole.add(r, 10)
    rng = random.Random(1)
    for _ in range(5):
        cuts = sorted(rng.sample(range(1, len(recs)), 3))
        assert _merged_parts(recs, config, cuts).to_json() == whole.to_json()


def test_merge_beyond_the_cap_keeps_the_totals():
    """Beyond --max-distinct a merge is approximate (documented) but loses no count."""
    recs = generated(400, seed=4)
    config = Config(max_distinct=3)
    d = _merged_parts(recs, config, [100, 200, 300]).to_json()
    dom = d["categories"]["domain"]
    assert dom["other"] > 0 and len(dom["values"]) == 3
    assert sum(n for _, n in dom["values"]) + dom["other"] == sum(len(r["domain"]) for r in recs)


def test_merge_command_equals_one_run(tmp_path, data):
    _, recs = data
    files = []
    for i, shard in enumerate(_shards(recs, [100, 101, 450])):
        files.append(write_jsonl(tmp_path / f"s{i}.jsonl", shard))
    whole = invoke(["stats", "--json", *files])
    parts = []
    for i, f in enumerate(files):
        res = invoke(["stats", "--json", f, "-o", tmp_path / f"s{i}.json"])
        assert res.exit_code == 0 and res.stdout == ""
        parts.append(tmp_path / f"s{i}.json")
    merged = invoke(["stats", "--merge", "--json", *parts])
    assert merged.exit_code == 0, merged
    assert merged.stdout == whole.stdout
    report_whole = invoke(["stats", *files]).stdout
    report_merged = invoke(["stats", "--merge", *parts]).stdout
    assert report_merged.splitlines()[1:] == report_whole.splitlines()[1:]


def test_merge_refuses_other_options_and_other_files(tmp_path, data):
    path, _ = data
    a = tmp_path / "a.json"
    b = tmp_path / "b.json"
    assert invoke(["stats", "--json", path, "-o", a]).exit_code == 0
    assert invoke(["stats", "--json", "--by", "source", path, "-o", b]).exit_code == 0
    res = invoke(["stats", "--merge", a, b])
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia stats: {b}: cannot merge with {a}: made with different "
                                 "options: by ")
    res = invoke(["stats", "--merge", a, path])
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia stats: {path}: not a cqia stats JSON: invalid JSON")
    res = invoke(["stats", "--merge", "--tokens", a])
    assert res.exit_code == 2 and "drop --tokens" in res.stderr


# -- groups and comparison --------------------------------------------------------------------


def test_group_equals_the_stats_of_each_subset(tmp_path, data):
    path, recs = data
    d = stats_json(path, "--group", "domain")
    groups = dict(d["groups"]["values"])
    assert set(groups) == set(DOMAINS)
    for name in DOMAINS:
        subset = [r for r in recs if name in r["domain"]]
        sub = write_jsonl(tmp_path / "sub.jsonl", subset)
        alone = stats_json(sub)
        for key in ("records", "bytes", "fields", "text", "categories", "duplicates"):
            assert groups[name][key] == alone[key], (name, key)


def test_compare(tmp_path, data):
    path, recs = data
    after = write_jsonl(tmp_path / "after.jsonl", [r for r in recs if r["answer_from"] != "llm"])
    res = invoke(["stats", "--compare", "--json", path, after])
    assert res.exit_code == 0, res
    d = json.loads(res.stdout)
    assert d["kind"] == "compare"
    changes = {(s, m): (b, a) for s, m, b, a in d["changes"]}
    assert changes[("", "records")] == (len(recs), sum(r["answer_from"] != "llm" for r in recs))
    assert changes[("answer_from", "llm")] == (sum(r["answer_from"] == "llm" for r in recs), 0)
    text = invoke(["stats", "--compare", path, after]).stdout
    n_llm = sum(r["answer_from"] == "llm" for r in recs)
    assert re.search(rf"llm\s+{n_llm:,}\s+0\s+-{n_llm:,}\s+-100.0%", text)
    page = tmp_path / "cmp.html"
    assert invoke(["stats", "-q", "--compare", "--html", page, path, after]).exit_code == 0
    html = page.read_text("utf-8")
    assert "<script" not in html and html.count("<svg") >= 10
    assert f"<td>llm</td><td>{n_llm:,}</td><td>0</td><td>-{n_llm:,}</td>" in html
    # a saved stats JSON compares as well as the JSONL it came from
    saved = tmp_path / "before.json"
    invoke(["stats", "--json", path, "-o", saved])
    assert invoke(["stats", "--compare", "--json", saved, after]).stdout == res.stdout


# -- output, errors ---------------------------------------------------------------------------


def test_report_is_plain_text_and_shows_the_figures(data):
    path, recs = data
    res = invoke(["stats", path])
    assert res.exit_code == 0
    assert "\x1b[" not in res.stdout
    assert f"{len(recs):,} records" in res.stdout.splitlines()[0]
    assert res.stderr == f"stats: {len(recs):,} records\n"
    for heading in ("fields", "text length (characters)", "instruction: length histogram",
                    "domain:", "answer_from:", "source:", "exact duplicates"):
        assert heading in res.stdout
    assert max(len(line) for line in res.stdout.splitlines()) <= 100


def test_html_is_self_contained(tmp_path, data):
    path, recs = data
    page = tmp_path / "r.html"
    res = invoke(["stats", "--html", page, "--group", "answer_from", path])
    assert res.exit_code == 0
    html = page.read_text("utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 8
    assert "<script" not in html
    assert not re.search(r"(src|href)=|@import|url\(", html)
    assert re.sub(r'xmlns="http://www.w3.org/2000/svg"', "", html).count("http") == 0
    assert f"{len(recs):,} records" in html


def test_bad_line_and_on_error_skip(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [cqia_record(1)], raw_lines=[b"{oops\n"])
    res = invoke(["stats", path])
    assert res.exit_code == 65 and res.stdout == ""
    assert res.stderr.startswith(f"cqia stats: {path}:2: invalid JSON")
    errors = tmp_path / "errors.txt"
    res = invoke(["stats", "--json", "--on-error", "skip", "--errors", errors, path])
    assert res.exit_code == 0 and json.loads(res.stdout)["records"] == 1
    assert errors.read_bytes() == b"{oops\n"
    assert "skipped 1 bad lines" in res.stderr


def test_usage_and_input_errors(tmp_path, data):
    path, _ = data
    assert invoke(["stats", tmp_path / "nope.jsonl"]).exit_code == 66
    res = invoke(["stats", "--compare", path])
    assert res.exit_code == 2 and "--compare needs two inputs" in res.stderr
    res = invoke(["stats", "--html", path, path])
    assert res.exit_code == 74 and "refusing to write over an input file" in res.stderr
    assert invoke(["stats", "--by", "a..b", path]).exit_code == 2


def test_empty_input():
    res = invoke(["stats", "--json"], input=b"")
    assert res.exit_code == 0 and json.loads(res.stdout)["records"] == 0
    res = invoke(["stats"], input=b"")
    assert res.stdout.startswith("<stdin>: 0 records")


# -- jieba ------------------------------------------------------------------------------------


INSTRUCTIONS = ["写一篇关于春天的作文", "请翻译下面的句子", "解释这个成语的意思", "写一首诗",
                "天气很好", "请问如何学习数学", "总结这段文字的内容", "写一篇关于秋天的作文",
                "天气很好。写一篇日记", "这是什么？"]


def jieba_records(n: int = 40) -> list[dict]:
    return [cqia_record(i, instruction=INSTRUCTIONS[i % len(INSTRUCTIONS)],
                        output="这是一个回答。" * (i % 5 + 1), answer_from=["human", "llm"][i % 2])
            for i in range(n)]


def test_tokens_and_diversity(tmp_path):
    import jieba
    import jieba.posseg

    recs = jieba_records()
    path = write_jsonl(tmp_path / "j.jsonl", recs)
    d = stats_json(path, "--tokens", "--diversity")
    words = [sum(1 for w in jieba.cut(r["output"]) if not w.isspace()) for r in recs]
    assert d["text"]["output"]["words"] == ref_quantiles(words)

    verbs, pairs, no_verb = Counter(), Counter(), 0
    aux = {"请", "请问", "能", "可以", "帮", "麻烦"}
    for r in recs:
        tagged = list(jieba.posseg.cut(re.split("[。？！?!\n]", r["instruction"])[0]))
        idx = next((i for i, p in enumerate(tagged)
                    if p.flag in ("v", "vd", "vi", "vg", "vq") and p.word not in aux
                    and p.word[0] != "请" and p.word != "下列"), None)
        if idx is None:
            no_verb += 1
            continue
        verbs[tagged[idx].word] += 1
        noun = next((p.word for p in tagged[idx + 1:] if p.flag.startswith("n")), None)
        if noun:
            pairs[(tagged[idx].word, noun)] += 1
    div = d["diversity"]
    assert div["no_verb"] == no_verb
    assert {v: n for v, n in div["verbs"]["values"]} == verbs
    assert {(v, n): c for v, n, c in div["pairs"]["values"]} == pairs
    text = invoke(["stats", "--diversity", "--tokens", path]).stdout
    assert "instruction diversity" in text and "写" in text
    assert re.search(r"output\s+40\s+", text.split("jieba words")[1])


# -- through the installed command --------------------------------------------------------------


@pytest.mark.slow
def test_shell_pipe_head_and_determinism(tmp_path, data):
    path, _ = data
    res = shell(f"cat {path} | cqia stats -q | head -1")
    assert res.exit_code == 0 and res.stderr == ""
    assert res.stdout.startswith("<stdin>: 600 records")
    one = shell(f"cqia stats -q {path} --group domain")
    two = shell(f"cqia stats -q {path} --group domain")
    assert one.exit_code == 0 and one.stdout_bytes == two.stdout_bytes and one.stderr == ""


@pytest.mark.slow
def test_shell_jobs_give_the_same_json(tmp_path):
    path = write_jsonl(tmp_path / "j.jsonl", jieba_records(1200))
    opts = "-q --json --tokens --diversity --group answer_from --max-distinct 5"
    one = shell(f"cqia stats {opts} {path}")
    two = shell(f"cqia stats {opts} -j 2 {path}")
    assert one.exit_code == 0 and two.exit_code == 0
    assert one.stdout_bytes == two.stdout_bytes


def test_shell_merge_in_a_pipeline(tmp_path, data):
    path, recs = data
    res = shell(f"head -n 250 {path} | cqia stats --json -q > a.json && "
                f"tail -n +251 {path} | cqia stats --json -q > b.json && "
                f"cqia stats --merge --json -q a.json b.json > m.json && "
                f"cqia stats --json -q {path} > all.json && cmp m.json all.json", cwd=tmp_path)
    assert res.exit_code == 0, res


def test_group_by_input_file(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [cqia_record(i) for i in range(3)])
    sub = tmp_path / "sub"
    sub.mkdir()
    b = write_jsonl(sub / "b.jsonl", [cqia_record(i) for i in range(5)])
    d = json.loads(invoke(["stats", "--json", "--group", "@file", a, b]).stdout)
    assert [(k, v["records"]) for k, v in d["groups"]["values"]] == [(str(a), 3), (str(b), 5)]
    text = invoke(["stats", "--group", "@file", a, b]).stdout
    assert re.search(r"\ba\.jsonl\s+3\s+37\.5%", text)
    assert re.search(r"sub/b\.jsonl\s+5\s+62\.5%", text)


def test_han_count_matches_the_unicode_names():
    from cqia_cli.stats.accumulator import han_count

    rng = random.Random(5)
    for text in ["", "abc", "中文", "䷀䷁〇", "㐀䶵𠀀豈", HAN_POOL + NOT_HAN + RARE_HAN,
                 *(make_text(rng, 50) for _ in range(50))]:
        assert han_count(text) == ref_han(text), text


def test_many_shapes_and_fields_stay_bounded(monkeypatch):
    import cqia_cli.stats.accumulator as acc_mod

    monkeypatch.setattr(acc_mod, "MAX_SHAPES", 7)
    monkeypatch.setattr(acc_mod, "MAX_FIELDS", 20)
    recs = [{"instruction": "问", f"k{i % 30}": i, "meta": {f"m{i}": None, "n": "x"}}
            for i in range(100)]
    acc = Accumulator()
    for r in recs:
        acc.add(r)
        assert len(acc._shapes) <= 7 and len(acc._nested) <= 7
    d = acc.to_json()
    fields = d["fields"]
    assert len(fields) == 20
    assert fields["meta.n"]["present"] == 100 and fields["instruction"]["present"] == 100
    total = sum(len(r) + len(r["meta"]) for r in recs)
    assert sum(f["present"] for f in fields.values()) + d["fields_overflow"] == total


def test_terminal_console_has_colour_and_plain_has_none(data):
    from cqia_cli.stats.render import console_for, render_report, rendered

    path, recs = data
    acc = Accumulator()
    for r in recs:
        acc.add(r)
    tty, plain = console_for(tty=True), console_for(tty=False)
    render_report(acc, tty, title="t")
    render_report(acc, plain, title="t")
    assert "\x1b[" in rendered(tty) and "\x1b[" not in rendered(plain)


def test_compressed_stats_json_and_env_options(tmp_path, data):
    path, recs = data
    gz = tmp_path / "s.json.gz"
    assert invoke(["stats", "--json", path, "-o", gz]).exit_code == 0
    res = invoke(["stats", "--merge", "--json", gz])
    assert res.exit_code == 0 and json.loads(res.stdout)["records"] == len(recs)
    res = invoke(["stats", path], env={"CQIA_STATS_TOP": "2"})
    table = res.stdout.split("domain:")[1].split("\n\n")[0]
    assert len([line for line in table.splitlines() if "%" in line]) == 3  # 2 values + other


def test_no_duplicates_keeps_no_hashes(tmp_path, data):
    path, recs = data
    d = stats_json(path, "--no-duplicates", "--group", "answer_from")
    assert d["duplicates"] is None and d["config"]["duplicates"] is False
    assert all(g["duplicates"] is None for _, g in d["groups"]["values"])
    full = stats_json(path)
    assert d["text"] == full["text"] and d["categories"] == full["categories"]
    res = invoke(["stats", "--no-duplicates", "--group", "answer_from", path])
    assert res.exit_code == 0 and "exact duplicates" not in res.stdout
    saved = tmp_path / "nodup.json"
    invoke(["stats", "--json", "--no-duplicates", path, "-o", saved])
    res = invoke(["stats", "--compare", saved, path])
    assert res.exit_code == 0 and "\nduplicates" not in res.stdout
    assert invoke(["stats", "--merge", saved, saved]).exit_code == 0


@pytest.mark.parametrize("batch", [1, 50, 1 << 16])
def test_han_counted_in_batches_is_exact(monkeypatch, batch):
    import cqia_cli.stats.accumulator as acc_mod

    monkeypatch.setattr(acc_mod, "HAN_BATCH_CHARS", batch)
    rng = random.Random(batch)
    texts = [make_text(rng, rng.randint(0, 80)) if i % 9 == 0 else
             "".join(rng.choice(HAN_POOL + "，。abc") for _ in range(rng.randint(0, 80)))
             for i in range(300)]
    acc = Accumulator()
    for t in texts:
        acc.add({"instruction": t})
    assert acc.text["instruction"].han == sum(ref_han(t) for t in texts)


def test_groups_with_jieba_figures_equal_the_subsets(tmp_path):
    recs = jieba_records(30)
    path = write_jsonl(tmp_path / "j.jsonl", recs)
    d = stats_json(path, "--tokens", "--diversity", "--group", "answer_from")
    for key, group in d["groups"]["values"]:
        sub = write_jsonl(tmp_path / f"{key}.jsonl", [r for r in recs if r["answer_from"] == key])
        alone = stats_json(sub, "--tokens", "--diversity")
        for part in ("text", "diversity", "duplicates", "fields"):
            assert group[part] == alone[part], (key, part)


# -- numeric fields (issue 16) ----------------------------------------------------------------

def _numeric_records(n: int = 80) -> list[dict]:
    rng = random.Random(16)
    return [{"instruction": f"问题{i}", "output": "答案" * (i % 5 + 1),
             "upvotes": rng.randint(0, 900), "rating": rng.randint(1, 5),
             "_source": {"uri": "dump.jsonl", "line": i + 1}} for i in range(n)]


def test_bookkeeping_and_many_valued_numbers_are_summarised_not_tabulated(tmp_path):
    recs = _numeric_records()
    path = write_jsonl(tmp_path / "d.jsonl", recs)
    res = invoke(["stats", path])
    assert res.exit_code == 0
    out = res.stdout
    table = out[out.index("numeric fields"):].split("\n\n")[0]
    ups = [r["upvotes"] for r in recs]
    assert re.search(r"_source\.line\s+80\s+1\s+80\s+40\.5", table), table
    assert re.search(rf"upvotes\s+80\s+{min(ups)}\s+{max(ups)}\s+", table), table
    assert "_source.line:" not in out and "upvotes:" not in out  # no category tables
    assert "rating: 5 values" in out  # few values: still a breakdown
    body = stats_json(path)
    assert body["numbers"]["_source.line"] == {"count": 80, "min": 1, "max": 80, "sum": 3240}
    assert body["numbers"]["upvotes"]["sum"] == sum(ups)
    assert "_source.line" not in body["auto_categories"] or \
        body["auto_categories"]["_source.line"] is None


def test_numbers_merge_exactly_and_compare(tmp_path):
    recs = _numeric_records()
    whole = write_jsonl(tmp_path / "all.jsonl", recs)
    a = write_jsonl(tmp_path / "a.jsonl", recs[:30])
    b = write_jsonl(tmp_path / "b.jsonl", recs[30:])
    ja, jb = tmp_path / "a.json", tmp_path / "b.json"
    assert invoke(["stats", "-q", "--json", a, "-o", ja]).exit_code == 0
    assert invoke(["stats", "-q", "--json", b, "-o", jb]).exit_code == 0
    merged = json.loads(invoke(["stats", "-q", "--merge", "--json", ja, jb]).stdout)
    assert merged["numbers"] == stats_json(whole)["numbers"]
    kept = write_jsonl(tmp_path / "kept.jsonl", [r for r in recs if r["upvotes"] >= 300])
    res = invoke(["stats", "--compare", whole, kept])
    assert res.exit_code == 0
    section = res.stdout[res.stdout.index("upvotes (numbers)"):].split("\n\n")[0]
    assert re.search(r"min\s+\d+\s+\d+", section)
    assert "_source.line (numbers)" in res.stdout
    assert not re.search(r"^_source\.line\n", res.stdout, re.M)  # not a category table


def test_compare_shows_an_empty_value_as_quotes(tmp_path):
    recs = [cqia_record(i, answer_from="" if i % 2 else "human") for i in range(6)]
    a = write_jsonl(tmp_path / "a.jsonl", recs)
    b = write_jsonl(tmp_path / "b.jsonl", recs[:3])
    res = invoke(["stats", "--compare", a, b])
    section = res.stdout[res.stdout.index("\nanswer_from\n"):].split("\n\n")[0]
    assert re.search(r'^""\s+3\s+1\s+-2', section, re.M), section
