"""cqia dedup on real-looking data: short texts (exact Jaccard, the substitution guard),
templated records (stop-shingles), shared long prompts, the warning, bounded buckets."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from conftest import DATA, invoke, shell, write_jsonl

RECORDS = DATA / "dedup" / "records.jsonl"


def base_records() -> list[dict]:
    return [json.loads(line) for line in RECORDS.read_text("utf-8").splitlines()]


def dup_of(res) -> list:
    return [r.get("_dup_of") for r in res.records()]


def shingles(text: str, n: int = 3) -> set:
    from cqia_cli.dedup.normalize import normalize

    t = normalize(text)
    return {t[i:i + n] for i in range(len(t) - n + 1)}


# -- short texts --------------------------------------------------------------------------------

def test_forum_outputs_sharing_one_shingle_are_not_duplicates(tmp_path):
    # 0.1 removed one "at similarity 0.4609": true 3-gram Jaccard 1/14
    path = write_jsonl(tmp_path / "f.jsonl", [{"instruction": "问", "output": "九进制应该是1m7"},
                                               {"instruction": "答", "output": "应该是用山药送走了山"}])
    res = invoke(["dedup", "-f", "output", "--mark", path])
    assert res.exit_code == 0, res
    assert dup_of(res) == [None, None]
    assert "kept 2 of 2" in res.stderr


def test_short_duplicates_report_their_exact_jaccard(tmp_path):
    a, b = "请问天为什么是蓝的", "天为什么是蓝的呢？"
    path = write_jsonl(tmp_path / "s.jsonl", [{"instruction": a}, {"instruction": b}])
    res = invoke(["dedup", "-q", "--mark", "-f", "instruction", path])
    sa, sb = shingles(a), shingles(b)
    want = round(len(sa & sb) / len(sa | sb), 4)
    assert dup_of(res) == [None, {"line": 1, "similarity": want, "measure": "jaccard"}]


def test_reported_short_similarity_is_never_above_the_true_one(tmp_path):
    """Random short texts and edits: every removal's similarity is the exact Jaccard, at least
    the threshold; and every pair the exact rule accepts is found."""
    rng = random.Random(3)
    pool = [line.strip() for r in base_records() for line in r["output"].split("。")
            if 8 <= len(line.strip()) <= 30]
    texts = []
    for t in pool:
        texts.append(t)
        for _ in range(rng.randint(0, 2)):
            chars = list(t)
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(chars))
                if rng.random() < 0.5:
                    del chars[i]
                else:
                    chars.insert(i, rng.choice("的了吗呢请问是在有"))
            texts.append("".join(chars))
    path = write_jsonl(tmp_path / "r.jsonl", [{"output": t} for t in texts])
    res = invoke(["dedup", "-q", "--mark", "-f", "output", "--template-share", "0", path])
    out = res.records()
    assert len(out) == len(texts)
    removed = 0
    for i, r in enumerate(out):
        d = r.get("_dup_of")
        if d is None:
            continue
        removed += 1
        sa, sb = shingles(texts[i]), shingles(texts[d["line"] - 1])
        if d["measure"] == "identical":
            assert sa == sb
            continue
        assert d["measure"] == "jaccard"
        assert d["similarity"] == round(len(sa & sb) / len(sa | sb), 4)
        assert d["similarity"] >= 0.4
    assert removed > 10


def test_one_template_with_another_subject_is_another_question(tmp_path):
    subjects = ["北京", "上海", "量子力学", "长城", "熊猫"]
    recs = [{"instruction": f"帮我写一篇关于{x}的详细介绍"} for x in subjects]
    recs += [{"instruction": "请问，帮我写一篇关于北京的详细介绍吗"},   # a prefix and a particle
             {"instruction": "帮我写一篇关于 北京 的详细介绍！"}]      # spacing, punctuation
    res = invoke(["dedup", "-q", "--mark", "-f", "instruction",
                  write_jsonl(tmp_path / "t.jsonl", recs)])
    d = dup_of(res)
    assert d[:5] == [None] * 5
    assert d[5]["line"] == 1 and d[5]["measure"] == "jaccard"
    assert d[6] == {"line": 1, "similarity": 1.0, "measure": "identical"}


# -- templates ----------------------------------------------------------------------------------

def posts(n: int) -> list[dict]:
    """n different posts: a title and a body each, from the test records' sentences."""
    sents = [s.strip() for r in base_records() for s in r["output"].split("。")
             if len(s.strip()) >= 12]
    rng = random.Random(1)
    rng.shuffle(sents)
    taken: list[set] = []
    taken_text: list[str] = []
    for s in sents:  # sentences that share no more than a few shingles with each other
        sh = shingles(s)
        if all(len(sh & o) / len(sh | o) < 0.1 for o in taken):
            taken.append(sh)
            taken_text.append(s)
    return [{"title": taken_text[2 * i][:10], "content": taken_text[2 * i + 1][:60] + "。"}
            for i in range(n)]


def render(post: dict, template: str) -> dict:
    from cqia_cli.formats import build

    for t in build.load_templates(build.template_file("xiaohongshu")):
        if t.name == template:
            return {"instruction": t.texts["instruction"].render(post, t.label), "input": "",
                    "output": post["content"]}
    raise KeyError(template)


@pytest.fixture
def templated(tmp_path):
    """60 posts converted with `cqia convert --template xiaohongshu`, then the first post
    again under another template."""
    ps = posts(60)
    raw = write_jsonl(tmp_path / "posts.jsonl", ps)
    conv = shell(f"cqia convert -q --template xiaohongshu --map output=content {raw}")
    assert conv.exit_code == 0, conv
    recs = [json.loads(line) for line in conv.stdout.splitlines()]
    first = recs[0]["instruction"]
    other = "share" if not first.startswith("以「") else "style"
    again = render(ps[0], other)
    assert again["instruction"] != first
    return write_jsonl(tmp_path / "xhs.jsonl", recs + [again]), recs


def test_posts_under_one_template_are_not_duplicates_the_same_post_under_two_is(templated):
    path, recs = templated
    res = invoke(["dedup", "-q", "--mark", path])
    d = dup_of(res)
    assert d[:60] == [None] * 60
    assert d[60]["line"] == 1


def test_without_stop_shingles_the_template_dominates_short_posts(tmp_path):
    # the same short posts, bodies of a few characters: the template is most of the text
    ps = [{"title": p["title"], "content": p["content"][:6]} for p in posts(40)]
    recs = [render(p, "share") for p in ps]
    path = write_jsonl(tmp_path / "short-posts.jsonl", recs)
    off = invoke(["dedup", "-q", "--template-share", "0", path])
    on = invoke(["dedup", "-q", path])
    assert len(off.records()) < 20
    assert len(on.records()) == 40


def test_shared_long_prompt_with_different_answers(tmp_path):
    prompt = ("请判断下面这段来自电子银行的口语文本,对文本的意图进行分类. 文本以text:<>的格式给出,"
              "意图一共有14种,分别是\"BUSINESS LOAN\",\"FREEZE\",\"ABROAD\",\"APP ERROR\","
              "\"DIRECT DEBIT\",\"CARD ISSUES\",\"JOINT ACCOUNT\",\"REFUND\",\"LOST OR STOLEN\","
              "\"PASSCODE\",\"TRANSFER\",\"TOP UP\",\"STATEMENT\",\"BALANCE\"")
    sents = [s for r in base_records() for s in r["instruction"].split("，") if len(s) >= 6]
    labels = ["FREEZE", "ABROAD", "REFUND", "TRANSFER"]
    recs = [{"instruction": prompt, "input": f"text:<{s}>", "output": labels[i % 4]}
            for i, s in enumerate(sents[:40])]
    path = write_jsonl(tmp_path / "fin.jsonl", recs)
    res = invoke(["dedup", "-q", path])
    assert res.records() == recs
    # the prompt alone is most of each text: without stop-shingles they collapse
    off = invoke(["dedup", "-q", "--template-share", "0", path])
    assert len(off.records()) < 10


PAIR_PROMPT = ("请判断下面两个金融领域的对话文本语义是否相同或相近,文本以sent1:<>,sent2:<>的格式给出,"
               "请以{\"PREDICTION\": 0或1}的格式作答")


def pair(a: str, b: str, label: str) -> dict:
    return {"instruction": PAIR_PROMPT, "input": f"sent1:<{a}> sent2:<{b}>",
            "output": f'{{"PREDICTION": "{label}"}}'}


def test_a_rare_shared_prompt_with_other_inputs_and_answers_is_not_a_duplicate(tmp_path):
    # two records: far too few for the template rule, and the prompt is most of each text
    # (exact Jaccard 0.53); without the instruction they share 0.26
    recs = [pair("密付能有对方的花呗付款吗", "密付可以是用花呗付吗", "1"),
            pair("可以帮我看看我的花呗怎么用捕了", "我用花呗买了东西了", "0")]
    path = write_jsonl(tmp_path / "p.jsonl", recs)
    res = invoke(["dedup", "--mark", path])
    assert res.exit_code == 0, res
    assert dup_of(res) == [None, None]
    off = invoke(["dedup", "-q", "--mark", "--answer-threshold", "0", path])
    assert dup_of(off)[1]["measure"] == "jaccard" and dup_of(off)[1]["similarity"] >= 0.4
    # 0 of each is what a same-label pair looks like too
    recs[1]["output"] = recs[0]["output"]
    path = write_jsonl(tmp_path / "q.jsonl", recs)
    assert dup_of(invoke(["dedup", "-q", "--mark", path])) == [None, None]


def test_a_shared_prompt_with_a_lightly_edited_input_is_a_duplicate(tmp_path):
    a = pair("密付能有对方的花呗付款吗", "密付可以是用花呗付吗", "1")
    b = pair("密付能用对方的花呗付款吗", "密付可以是用花呗付吗", "1")  # one character
    path = write_jsonl(tmp_path / "p.jsonl", [a, b])
    got = dup_of(invoke(["dedup", "-q", "--mark", path]))
    assert got[0] is None and got[1]["line"] == 1 and got[1]["measure"] == "jaccard"
    # the similarity reported is the whole text's (the rule only decides)
    want = shingles("\n".join(b.values())) , shingles("\n".join(a.values()))
    assert got[1]["similarity"] == round(len(want[0] & want[1]) / len(want[0] | want[1]), 4)


def test_without_an_input_the_instruction_is_the_content(tmp_path):
    # an exam question with two wordings of its explanation: the rule does not apply
    q = "拍电影时常用的杀青来表示拍摄完成，杀青原指什么？A.制作竹简的一道工序 B.加工新茶的一种方法"
    recs = [{"instruction": q, "input": "", "output": "经过火烤处理的竹简刻字方便，故本题选择A"},
            {"instruction": q + "？", "input": "", "output": "火烤竹简叫做杀青。故本题选A。"}]
    path = write_jsonl(tmp_path / "e.jsonl", recs)
    got = dup_of(invoke(["dedup", "-q", "--mark", path]))
    assert got[1] is not None and got[1]["line"] == 1
    # with the answers in an input field instead, they are not the same record
    recs = [dict(r, input=r.pop("output"), output="A") for r in recs]
    path = write_jsonl(tmp_path / "f.jsonl", recs)
    assert dup_of(invoke(["dedup", "-q", "--mark", path])) == [None, None]


def test_one_field_or_two_turns_the_prompt_rule_off(tmp_path):
    recs = [pair("密付能有对方的花呗付款吗", "密付可以是用花呗付吗", "1"),
            pair("可以帮我看看我的花呗怎么用捕了", "我用花呗买了东西了", "0")]
    recs = [{"q": r["instruction"] + r["input"], "a": r["output"]} for r in recs]
    path = write_jsonl(tmp_path / "p.jsonl", recs)
    got = dup_of(invoke(["dedup", "-q", "--mark", "-f", "q", "-f", "a", path]))
    assert got[1] is not None  # no input: the whole text decides


def test_jobs_byte_identical_with_shared_prompts(tmp_path):
    rng = random.Random(5)
    alphabet = sorted({ch for r in base_records() for ch in r["output"] if "\u4e00" <= ch})

    def sentence() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(8, 14)))

    recs, copies = [], []
    for i in range(2600):  # more than one batch
        a, b = sentence(), sentence()
        recs.append(pair(a, b, str(i % 2)))
        if rng.random() < 0.2:  # a light edit of the input: a duplicate
            copies.append(len(recs))
            recs.append(pair(a + "吗", b, str(i % 2)))
    path = write_jsonl(tmp_path / "p.jsonl", recs)
    cmd = f"cqia dedup -q --template-share 0 --dupes {{d}} {path} | md5sum; md5sum < {{d}}"
    one = shell(cmd.format(d=tmp_path / "d1"))
    two = shell(cmd.replace("dedup", "dedup -j 2").format(d=tmp_path / "d2"))
    assert one.exit_code == 0 and two.exit_code == 0, two
    assert one.stdout == two.stdout
    dupes = [json.loads(line) for line in open(tmp_path / "d1", encoding="utf-8")]
    removed = {d["input"] for d in dupes}
    assert all(recs[i]["input"] in removed for i in copies)
    # the prompt alone makes no duplicates
    assert len(dupes) == len(copies)


def test_stop_shingles_travel_with_a_saved_index(templated, tmp_path):
    path, recs = templated
    idx = tmp_path / "i.npz"
    first = write_jsonl(tmp_path / "a.jsonl", recs[:50])
    assert invoke(["dedup", "-q", "--save-index", idx, first]).exit_code == 0
    # the next batch is too small to learn from: the index's stop-shingles apply
    rest = write_jsonl(tmp_path / "b.jsonl", recs[50:])
    res = invoke(["dedup", "-q", "--index", idx, rest])
    assert res.records() == recs[50:]


# -- the warning, buckets, -j -------------------------------------------------------------------

def test_warning_names_the_shared_start_and_the_option(tmp_path):
    ps = [{"title": p["title"], "content": p["content"][:6]} for p in posts(40)]
    path = write_jsonl(tmp_path / "w.jsonl", [render(p, "share") for p in ps])
    res = invoke(["dedup", "--template-share", "0", path])
    assert res.exit_code == 0
    warn = [line for line in res.stderr.splitlines() if "warning: removed" in line]
    assert len(warn) == 1, res.stderr
    assert "39 of 39 removed records looked at share \"为题写一篇分享个人经验的小红书笔记" in warn[0]
    assert "--field output" in warn[0] and "--template-share 0.001" in warn[0]
    quiet = invoke(["dedup", path])
    assert "warning" not in quiet.stderr


def test_a_bucket_gives_at_most_its_oldest_entries():
    from cqia_cli.dedup.index import PackedRuns

    runs = PackedRuns()
    runs.add(np.full(500, 7, np.uint64), np.arange(500, dtype=np.int64))
    runs.add(np.array([8], np.uint64), np.array([900]))
    qi, vals = runs.lookup(np.array([7, 8], np.uint64), limit=64)
    assert vals[qi == 0].tolist() == list(range(64))
    assert vals[qi == 1].tolist() == [900]


def test_jobs_byte_identical_with_templates_and_short_texts(templated, tmp_path):
    path, recs = templated
    rng = random.Random(2)
    short = [{"instruction": f"帮我写一篇关于{x}的详细介绍" + rng.choice(["", "吗", "呢"])}
             for x in ["北京", "上海", "长城"] * 300]
    big = write_jsonl(tmp_path / "big.jsonl", (recs * 40) + short + recs)
    cmd = f"cqia dedup -q --template-sample 3000 --dupes {{d}} {big} | md5sum; md5sum < {{d}}"
    one = shell(cmd.format(d=tmp_path / "d1"))
    two = shell(cmd.replace("dedup", "dedup -j 2").format(d=tmp_path / "d2"))
    assert one.exit_code == 0 and two.exit_code == 0, two
    assert one.stdout == two.stdout


# -- the domain package ---------------------------------------------------------------------------

def test_the_domain_package_imports_no_click():
    code = ("import sys, pkgutil, importlib, cqia_cli.dedup as d\n"
            "for m in pkgutil.iter_modules(d.__path__):\n"
            "    importlib.import_module('cqia_cli.dedup.' + m.name)\n"
            "print('click' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_minhash_estimates_agree_with_datasketch():
    """datasketch (test extra) as the oracle: on the same shingle sets, our one-permutation
    estimate is as close to the exact Jaccard as datasketch's 128-permutation MinHash."""
    datasketch = pytest.importorskip("datasketch")
    from cqia_cli.dedup.minhash import Params, signatures, similarity
    from cqia_cli.dedup.normalize import normalize, normalize_batch

    rng = random.Random(4)
    texts = [r["output"] for r in base_records() if len(r["output"]) > 200]
    edited = []
    for t in texts:
        chars = list(t)
        for _ in range(len(chars) // 12):
            chars[rng.randrange(len(chars))] = rng.choice("的了是在有和")
        edited.append("".join(chars))
    p = Params(ngram=3, num_perm=128)
    ua, la = normalize_batch(texts)
    ub, lb = normalize_batch(edited)
    ours = similarity(signatures(ua, la, p), signatures(ub, lb, p))
    theirs, exact = [], []
    for a, b in zip(texts, edited):
        sa, sb = shingles(a), shingles(b)
        ma, mb = datasketch.MinHash(num_perm=128, seed=1), datasketch.MinHash(num_perm=128, seed=1)
        ma.update_batch([s.encode() for s in sa])
        mb.update_batch([s.encode() for s in sb])
        theirs.append(ma.jaccard(mb))
        exact.append(len(sa & sb) / len(sa | sb))
    exact, theirs = np.array(exact), np.array(theirs)
    assert abs(float((ours - exact).mean())) < 0.03
    assert float(np.abs(ours - exact).mean()) <= float(np.abs(theirs - exact).mean()) + 0.02


def test_a_short_pair_the_signatures_rule_out_is_rejected_without_its_sets():
    """Verifier.similarity: a short pair whose texts both have SKIP_MIN shingles or more and
    whose signatures agree in fewer than threshold / SKIP_DIVISOR of the bins is rejected
    without its sets being gathered; a pair with fewer shingles, or more agreement, is checked
    exactly; a long pair keeps its estimate."""
    from types import SimpleNamespace

    from cqia_cli.dedup import defaults
    from cqia_cli.dedup.minhash import Params
    from cqia_cli.dedup.verify import MINHASH, REJECTED, Verifier

    v = Verifier(Params(), 0.4)
    k = v.params.num_perm
    rng = np.random.default_rng(0)
    sig_a = rng.integers(0, 1 << 16, (4, k)).astype(np.uint16)
    sig_b = sig_a + np.uint16(1)  # no bin agrees
    sig_b[0, :2] = sig_a[0, :2]  # 2 of 128 agree: 0.016, under 0.4 / 8
    sig_b[1, :2] = sig_a[1, :2]
    sig_b[2, :64] = sig_a[2, :64]  # half agree
    lo = defaults.SKIP_MIN
    nsh_a = np.array([lo, lo - 1, lo, 10 * k])
    nsh_b = np.array([40, 40, 40, 10 * k])
    asked = []

    def sets(pos):
        asked.append(pos.tolist())
        return SimpleNamespace(kept=np.zeros(pos.size, dtype=bool))

    sim, kind = v.similarity(sig_a, sig_b, nsh_a, nsh_b, sets, sets)
    assert asked == [[1, 2], [1, 2]]  # a side, b side: pair 0 was not looked at
    assert kind[0] == REJECTED and sim[0] < 0.05
    assert kind[1] == kind[2] == REJECTED  # checked (here: no sets kept on either side)
    assert kind[3] == MINHASH and sim[3] == 0.0
