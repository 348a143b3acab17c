"""cqia filter: every rule with positives, negatives and false-positive traps; the command's
options, errors and the nothing-lost guarantee."""

from __future__ import annotations

import json

import orjson
import pytest

from cqia_cli.filtering import Filter, RuleSet
from cqia_cli.filtering.expr import ExprError, Expression
from cqia_cli.filtering.pii import id_checksum_ok, luhn_ok
from cqia_cli.filtering.rules import RULES, dup_ngram_share
from conftest import DATA, invoke, shell, write_jsonl

FIX = DATA / "filter"


def rec(output: str, instruction: str = "请回答这个问题。", **over) -> dict:
    r = {"instruction": instruction, "input": "", "output": output}
    r.update(over)
    return r


def run(rule: str, record: dict, **params):
    return RULES[rule]((), **params).check(record)


def default_check(record: dict):
    return Filter(RuleSet().build()).check(record)


# -- fixtures: the dirty set and the clean traps ------------------------------------------------

def test_defaults_reject_at_least_95_percent_of_the_dirty_set():
    res = invoke(["filter", "-q", FIX / "dirty.jsonl"])
    assert res.exit_code == 0
    total = sum(1 for _ in (FIX / "dirty.jsonl").read_text("utf-8").splitlines())
    assert total >= 60
    assert len(res.records()) <= total * 0.05


def test_defaults_keep_every_clean_trap():
    """Maths with a phone-like number, 可靠, a URL in code, the answer 'A', 是, a famous
    couplet with 朝 eight times, 犹如图画, a question that asks the AI about itself, 去死胡同."""
    src = [json.loads(line) for line in (FIX / "clean.jsonl").read_text("utf-8").splitlines()]
    res = invoke(["filter", "--invert", FIX / "clean.jsonl"])
    assert res.exit_code == 0
    assert res.records() == [], res.records()
    assert len(invoke(["filter", "-q", FIX / "clean.jsonl"]).records()) == len(src)


def test_kept_plus_rejected_is_the_input_in_order(tmp_path):
    src = [json.loads(line) for name in ("dirty.jsonl", "clean.jsonl")
           for line in (FIX / name).read_text("utf-8").splitlines()]
    for i, r in enumerate(src):
        r["id"] = i
    data = write_jsonl(tmp_path / "in.jsonl", src)
    rej = tmp_path / "rej.jsonl"
    res = invoke(["filter", "-q", "--rejects", rej, data])
    kept = res.records()
    rejected = [orjson.loads(line) for line in rej.read_bytes().splitlines()]
    assert len(kept) + len(rejected) == len(src)
    for r in rejected:
        note = r.pop("_reject")
        assert set(note) == {"rule", "field", "detail"} and note["rule"] in RULES
    merged = sorted(kept + rejected, key=lambda r: r["id"])
    assert merged == src
    assert [r["id"] for r in kept] == sorted(r["id"] for r in kept)
    assert [r["id"] for r in rejected] == sorted(r["id"] for r in rejected)
    # every rule of the default set rejected something in the dirty set
    rules = {orjson.loads(line)["_reject"]["rule"] for line in rej.read_bytes().splitlines()}
    assert {"length", "echo", "garbled", "repetition", "cjk-ratio", "llm-boilerplate", "ads",
            "pii", "references-missing-media"} <= rules


# -- rules -----------------------------------------------------------------------------------

def test_length_short_answers_pass_fillers_and_empty_fields_do_not():
    assert run("length", rec("A")) is None
    assert run("length", rec("是")) is None
    assert run("length", rec("顶！")) is None  # the non-answer rule's (knows the question)
    assert run("length", rec("顶！"), filler=["shipped:filler.txt"]) == (
        "output", "a filler reply: 顶！")
    assert run("length", rec("   ")) == ("output", "only whitespace")
    assert run("length", rec("答案", instruction="")) == ("instruction", "empty")
    assert run("length", {"instruction": "问题是什么？"}) == ("output", "missing")
    assert run("length", rec("一二三"), min={"output": 5}) == ("output", "3 characters, below 5")
    assert run("length", rec("字" * 30), max={"output": 20})[1] == "30 characters, above 20"


def test_length_words_use_jieba():
    assert run("length", rec("我爱北京天安门"), min_words={"output": 5}) is not None
    assert run("length", rec("我爱北京天安门"), min_words={"output": 2}) is None


def test_cjk_ratio_ignores_code_and_rejects_english_prose():
    code = "```js\nconst data = items.filter(x => x.enabled).map(x => x.name)\n```\n用 filter 再 map。"
    assert run("cjk-ratio", rec(code)) is None
    english = rec("Just give the baby some water and wait, it usually goes away in a day or two.")
    field, detail = run("cjk-ratio", english)
    assert field == "output" and detail.startswith("Han share 0.00")
    assert run("cjk-ratio", rec("OK")) is None  # too few letters to judge
    assert run("cjk-ratio", rec("这是中文 with some English words mixed in"), min={"output": 0.8})


@pytest.mark.parametrize("text,kind", [
    ("有事打我电话13812345678", "mobile"),
    ("联系：139-1234-5678", "mobile"),
    ("邮箱 zhangsan1988@163.com", "email"),
    ("座机 010-62751234", "landline"),
    ("加我QQ：384756291", "qq"),
    ("微信号：xiaoming_2020", "wechat"),
    ("身份证号11010519491231002X", "id-card"),
    ("卡号 4111 1111 1111 1111", "bank-card"),
])
def test_pii_finds_contact_data(text, kind):
    field, detail = run("pii", rec(text))
    assert detail.startswith(kind + ":")


@pytest.mark.parametrize("text", [
    "13579246801 × 2 = 27158493602",            # a phone-like number in a maths answer
    "x = 13812345678 + 1",
    "编号110105194912310021的零件",              # 18 digits, wrong checksum
    "订单号 1234567890123456",                  # 16 digits, fails Luhn
    "```\ngit config user.email dev@company.org\n```",  # e-mail inside code
    "示例地址 user@example.com",
    "参考 https://developer.mozilla.org/zh-CN/docs/Web",  # url is off by default
    "WeChat reading 的数据显示",
])
def test_pii_false_positive_traps(text):
    assert run("pii", rec(text)) is None


def test_pii_url_kind_and_checksums():
    assert run("pii", rec("看 https://example.org/a"), kinds=["url"])[1].startswith("url:")
    assert id_checksum_ok("11010519491231002X") and not id_checksum_ok("110105194912310021")
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


def test_ads_solicitations_and_legal_text():
    assert run("ads", rec("想减肥的加微信 abc12345"))[1] == "ad '加微信'"
    assert run("ads", rec("兼职日结，+V：job8888")) is not None
    assert run("ads", rec("复制这条信息￥AbCd1234Ef￥打开手机淘宝")) is not None
    # law exam and news wording that mentions the same things without soliciting
    assert run("ads", rec("朋友乙委托其代购三块名表，回国时被海关查扣。")) is None
    assert run("ads", rec("扫码点餐、在线挂号等智能化生活日益普及。")) is None
    assert run("ads", rec("```\nreturn \"'\" + v + \"'\"\n```")) is None


def test_llm_boilerplate_unless_the_question_asks_the_ai():
    assert run("llm-boilerplate", rec("作为一个AI语言模型，我无法提供医疗建议。")) is not None
    assert run("llm-boilerplate", rec("I'm sorry, but as an AI I cannot help.")) is not None
    asked = rec("作为人工智能，我可以快速处理信息。", instruction="作为人工智能，你有什么优势？")
    assert run("llm-boilerplate", asked) is None
    assert run("llm-boilerplate", rec("作为一名人工智能技术的研究者，我认为……")) is None


def test_repetition_runs_lines_and_ngrams():
    assert run("repetition", rec("哈" * 14))[1] == "a run of 14 × '哈'"
    assert run("repetition", rec("云朝朝朝朝朝朝朝朝散，潮长长长长长长长长消")) is None
    assert run("repetition", rec("推荐。\n" * 5)) is not None
    assert run("repetition", rec("买它" * 13))[1].endswith("10-grams repeat an earlier one")
    assert run("repetition", rec("```\n}\n}\n}\n}\n}\n```\n代码如上，括号很多。")) is None
    assert run("repetition", rec("分隔线 ------------------------------ 下一节")) is None
    assert dup_ngram_share("abcabcabc", 3) == pytest.approx(1 - 3 / 7)


def test_garbled():
    assert run("garbled", rec("锟斤拷烫烫烫"))[1] == "mojibake '锟斤拷'"
    assert run("garbled", rec("æ˜¯çš„ï¼Œæˆ‘"))[1].startswith("mojibake")
    assert run("garbled", rec("坏了\ufffd"))[1] == "replacement character U+FFFD"
    # a private-use character beside Han in the range GBK decoders give rare characters is one
    assert run("garbled", rec("穴\ue36e中")) is None
    assert run("garbled", rec("持股5\uf8ff以上"))[1] == "private-use character U+F8FF"
    assert run("garbled", rec("abc \ue36e def"))[1] == "private-use character U+E36E"
    assert run("garbled", rec("持股5\uf8ff以上"), private_use=False) is None
    assert run("garbled", rec("设 $y=\x0crac{1}{2}$"))[1] == (
        "form feed U+000C where JSON read the LaTeX \\frac as an escape (repairable: cqia clean)")
    assert run("garbled", rec("控制\x0c字符"))[1] == "control character U+000C"
    assert run("garbled", rec("😂😂😂🔥🔥🔥👍👍👍💯"))[1].startswith("symbols and emoji")
    assert run("garbled", rec("按规律排列：○●●●○●●●○●●●○……第19个是什么颜色？")) is None
    assert run("garbled", rec("今天天气很好😊，我们去公园散步吧，顺便买点水果。")) is None


def test_references_missing_media():
    assert run("references-missing-media", rec("如图所示，点这里就行"))[1].endswith("如图")
    assert run("references-missing-media", rec("[图片]"))
    assert run("references-missing-media", rec("云海犹如图画一般。")) is None
    assert run("references-missing-media", rec("如图所示", images=["a.png"])) is None
    assert run("references-missing-media", rec("如下图：![架构](arch.png)")) is None


def test_echo():
    assert run("echo", rec("北京哪里的烤鸭好吃？", instruction="北京哪里的烤鸭好吃？"))[1] \
        == "repeats the instruction"
    assert run("echo", rec("请问这个手机值得买吗有没有人用过",
                           instruction="请问这个手机值得买吗？有没有人用过，说说体验"))
    assert run("echo", rec("A", instruction="选哪个？A. 属地原则 B. 属人原则")) is None
    long_passage = "甲方：宿州市人民政府。乙方：安徽水利开发股份有限公司。" * 5
    assert run("echo", rec("安徽水利开发股份有限公司", instruction=long_passage)) is None


def test_blocklist_with_allowlist(tmp_path):
    block = tmp_path / "block.txt"
    block.write_text("# words\n靠\n去死\nBadWord\n", encoding="utf-8")
    allow = tmp_path / "allow.txt"
    allow.write_text("可靠\n靠谱\n去死胡同\n", encoding="utf-8")
    rule = RULES["blocklist"]((), terms=[str(block)], allow=[str(allow)])
    assert rule.check(rec("这个很可靠，也很靠谱")) is None
    assert rule.check(rec("走进去死胡同")) is None
    assert rule.check(rec("靠，又输了")) == ("output", "blocked term '靠'")
    assert rule.check(rec("可靠吗？靠！")) == ("output", "blocked term '靠'")
    assert rule.check(rec("this is a badword")) == ("output", "blocked term 'badword'")


def test_blocklist_with_50000_terms(tmp_path):
    terms = [f"词{i:05d}号" for i in range(50_000)]
    block = tmp_path / "big.txt"
    block.write_text("\n".join(terms), encoding="utf-8")
    rule = RULES["blocklist"]((), terms=[str(block)])
    assert rule.check(rec("这里有词49999号")) == ("output", "blocked term '词49999号'")
    assert rule.check(rec("词5000号不在表里")) is None


def test_threshold_conditions():
    rule = RULES["threshold"]((), conditions=["upvotes >= 5", 'answer_from == "human"'])
    assert rule.check({"upvotes": 7, "answer_from": "human"}) is None
    assert rule.check({"upvotes": "12", "answer_from": "human"}) is None
    assert rule.check({"upvotes": 3, "answer_from": "human"}) == ("upvotes", "3, needs >= 5")
    assert rule.check({"answer_from": "human"}) == ("upvotes", "missing, needs >= 5")
    assert rule.check({"upvotes": 9, "answer_from": "llm"}) == \
        ("answer_from", '"llm", needs == "human"')
    keep = RULES["threshold"]((), conditions=["score >= 8"], missing="keep")
    assert keep.check({}) is None
    with pytest.raises(ValueError, match="FIELD OP VALUE"):
        RULES["threshold"]((), conditions=["len(output) > 3"])


@pytest.mark.parametrize("expr,expected", [
    ('score >= 8 and answer_from == "human"', True),
    ("len(output) >= 20", False),
    ('not output =~ "^(是|否)$"', True),
    ('"问答" in task_type.major', True),
    ("exists(upvotes) or score > 100", False),
    ('answer_from not in ["llm", "expert"]', True),
    ('score > "8"', False),  # a number and a string do not compare
    ("(score < 5 or score > 8) and human_verified == true", True),
    ("num(meta.votes) >= 10", True),
    ('lower(tag) == "sft"', True),
])
def test_where_language(expr, expected):
    record = {"score": 9, "answer_from": "human", "output": "是的", "human_verified": True,
              "task_type": {"major": ["问答"]}, "meta": {"votes": "12"}, "tag": "SFT"}
    assert Expression(expr)(record) is expected


@pytest.mark.parametrize("expr,message", [
    ("score >=", "at column 9: expected a field, a value or '('"),
    ("score >= 8 8", "at column 12: expected an operator or the end"),
    ("__import__('os')", "unknown function __import__()"),
    ("a =~ b", "expected a quoted regular expression"),
    ("a & b", "at column 3: unexpected '&'"),
    ("", "empty expression"),
])
def test_where_errors(expr, message):
    with pytest.raises(ExprError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Expression(expr)


# -- the command ------------------------------------------------------------------------------

def test_table_and_summary_on_stderr():
    res = invoke(["filter", FIX / "dirty.jsonl"])
    assert "references-missing-media" in res.stderr
    assert "filter: kept 0 of 66 (0.0%), rejected 66" in res.stderr
    assert "kept" in res.stderr.splitlines()[-2]


def test_report_json(tmp_path):
    report = tmp_path / "report.json"
    res = invoke(["filter", "-q", "--report", report, FIX / "dirty.jsonl", FIX / "clean.jsonl"])
    assert res.exit_code == 0
    body = json.loads(report.read_text())
    assert body["records"] == 79 and body["kept"] == 13 and body["rejected"] == 66
    assert sum(r["rejected"] for r in body["rules"]) == 66
    assert {s["rule"] for s in body["settings"]} >= {"length", "pii"}


def test_all_reasons_and_invert():
    line = rec("加微信 abc12345 哈哈哈哈哈哈哈哈哈哈哈哈")
    res = invoke(["filter", "-q", "--invert", "--all-reasons"], input=json.dumps(line))
    [out] = res.records()
    assert [r["rule"] for r in out["_reject"]] == ["repetition", "ads", "pii"]
    res = invoke(["filter", "-q", "--invert"], input=json.dumps(line))
    assert res.records()[0]["_reject"]["rule"] == "repetition"
    res = invoke(["filter", "--invert", "--rejects", "x.jsonl"], input="")
    assert res.exit_code == 2


def test_flags_override_defaults(tmp_path):
    data = json.dumps(rec("短答案", instruction="这个字叫什么？")) + "\n"
    assert invoke(["filter", "-q"], input=data).records()
    rejects = tmp_path / "rejects.jsonl"
    res = invoke(["filter", "-q", "--min-len", "output=20", "--rejects", str(rejects)], input=data)
    assert res.records() == []
    assert len(rejects.read_text().splitlines()) == 1
    res = invoke(["filter", "-q", "--invert", "--set", "length.min.output=5"], input=data)
    assert res.records()[0]["_reject"]["detail"] == "3 characters, below 5"
    # an explicit --disable wins over the flags that tune the rule
    assert invoke(["filter", "-q", "--disable", "length", "--min-len", "output=20"],
                  input=data).records() == [json.loads(data)]
    res = invoke(["filter", "-q", "--no-defaults", "--where", "len(output) > 2"], input=data)
    assert len(res.records()) == 1


def test_environment_options():
    data = json.dumps(rec("短答案")) + "\n"
    res = invoke(["filter", "-q"], input=data, env={"CQIA_FILTER_MIN_LEN": "output=20"})
    assert res.records() == []
    res = invoke(["filter", "-q"], input=data, env={"CQIA_FILTER_WHERE": "len(output) > 5"})
    assert res.records() == []
    res = invoke(["filter", "-q"], input=data,
                 env={"CQIA_FILTER_THRESHOLD": "score >= 1\nscore <= 9"})
    assert res.records() == []  # one condition a line; the record has no score


def test_recipe_with_profiles(tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("""
description = "test recipe"
[rules.length]
min = { output = 4 }
[rules.ads]
enabled = false
[profiles.strict]
extends = "base"
[profiles.strict.rules.threshold]
conditions = ["score >= 8"]
[profiles.base.rules.cjk-ratio]
min = { output = 0.9 }
""", encoding="utf-8")
    rows = [rec("短答"), rec("加微信 abc12345 了解一下", score=9), rec("一个不错的回答", score=5),
            rec("一个不错的回答", score=9)]
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    res = invoke(["filter", "-q", "--rules", recipe, "--invert"], input=data)
    assert [r["_reject"]["rule"] for r in res.records()] == ["length", "pii"]
    res = invoke(["filter", "-q", "--rules", recipe, "--profile", "strict"], input=data)
    assert res.records() == [rows[3]]
    listing = invoke(["filter", "--list-rules", "--rules", recipe, "--profile", "strict"]).stdout
    assert "threshold [on]" in listing and "ads [off]" in listing and "output=4" in listing


@pytest.mark.parametrize("args,message", [
    (["--set", "lenght.min=3"], "unknown rule 'lenght'"),
    (["--set", "length.mn=3"], "unknown parameter 'mn' of rule length"),
    (["--set", "length.min.output=abc"], "length.min: expected an integer, got 'abc'"),
    (["--disable", "nope"], "unknown rule 'nope'"),
    (["--set", "pii.kinds=phone"], "unknown value 'phone'"),
    (["--where", "score >="], "expected a field"),
    (["--threshold", "score ~ 3"], "unexpected '~'"),
    (["--profile", "x"], "--profile needs a recipe"),
    (["--blocklist", "/nonexistent/words.txt"], "no such file"),
    (["--enable", "blocklist"], "rule blocklist needs term files"),
])
def test_usage_errors_name_the_problem(args, message):
    res = invoke(["filter", *args], input="{}\n")
    assert res.exit_code == 2, res
    assert message in res.stderr


def test_recipe_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[rules.lenght]\nmin = 3\n", encoding="utf-8")
    res = invoke(["filter", "--rules", bad], input="")
    assert res.exit_code == 2 and f"{bad}: [rules.lenght]: unknown rule 'lenght'" in res.stderr
    bad.write_text("[rules.length]\nminimum = 3\n", encoding="utf-8")
    res = invoke(["filter", "--rules", bad], input="")
    assert res.exit_code == 2 and "unknown parameter 'minimum' of rule length" in res.stderr
    bad.write_text("[profiles.a]\n", encoding="utf-8")
    res = invoke(["filter", "--rules", bad, "--profile", "b"], input="")
    assert res.exit_code == 2 and "no profile 'b' (profiles: a)" in res.stderr
    bad.write_text("rules = [", encoding="utf-8")
    assert invoke(["filter", "--rules", bad], input="").exit_code == 2


def test_bad_json_line_reports_file_and_line(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text(json.dumps(rec("一个不错的回答")) + "\n{oops\n", encoding="utf-8")
    res = invoke(["filter", "-q", data])
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia filter: {data}:2: invalid JSON")


def test_list_rules_names_every_rule():
    out = invoke(["filter", "--list-rules"]).stdout
    for name in RULES:
        assert f"{name} [" in out
    assert "min                instruction=2, output=1" in out


@pytest.mark.slow
def test_shell_pipe_head_parallel_and_determinism(tmp_path):
    src = FIX / "clean.jsonl"
    big = tmp_path / "big.jsonl"
    with open(big, "wb") as f:
        for _ in range(120):
            f.write((FIX / "dirty.jsonl").read_bytes())
            f.write(src.read_bytes())
    one = shell(f"cqia filter -q --rejects {tmp_path}/r1.jsonl {big}")
    two = shell(f"cqia filter -q -j 2 --rejects {tmp_path}/r2.jsonl {big}")
    assert one.exit_code == two.exit_code == 0
    assert one.stdout_bytes == two.stdout_bytes and len(one.stdout_bytes) > 0
    assert (tmp_path / "r1.jsonl").read_bytes() == (tmp_path / "r2.jsonl").read_bytes()
    again = shell(f"cqia filter -q -j 2 {big}")
    assert again.stdout_bytes == one.stdout_bytes
    head = shell(f"cat {big} | cqia filter | head -1")
    assert head.exit_code == 0 and head.stderr == "" and len(head.records()) == 1
    gz = shell(f"gzip -c {src} > {tmp_path}/c.jsonl.gz && cqia filter -q {tmp_path}/c.jsonl.gz "
               f"| wc -l")
    assert gz.stdout.strip() == "13"


def test_shared_trigger_scan_gives_the_same_answers_as_each_rule_alone(tmp_path):
    """The Filter scans each field once for every rule's trigger words and lets rules skip
    fields without them; that must never change a verdict."""
    from cqia_cli.filtering.config import build_rules

    block = tmp_path / "block.txt"
    block.write_text("靠\n去死\n", encoding="utf-8")
    specs = RuleSet().specs()
    specs.append(("blocklist", (), {"terms": [str(block)]}))
    gated = Filter(build_rules(specs), all_reasons=True)
    alone = build_rules(specs)
    records = [json.loads(line) for name in ("dirty.jsonl", "clean.jsonl")
               for line in (FIX / name).read_text("utf-8").splitlines()]
    records += [rec("靠，又是这样"), rec("这很可靠"), rec("Email: A.B@QQ.COM"), rec("加V：abc123"),
                rec("私用区\U000f0001的字"), rec("ⒶⒷⒸⒹⒺⒻⒼⒽⒾⒿ"), rec("正常\x85文本"),
                rec("表情🤖🤖🤖🤖🤖🤖"), rec("ÃƒÂ¤ mojibake")]
    for r in records:
        expected = [(rule.name, *hit) for rule in alone if (hit := rule.check(r))] or None
        assert gated.check(r) == expected, r


def test_cjk_ratio_ignores_structured_and_unfenced_code_answers():
    assert run("cjk-ratio", rec('{"PREDICTION": "LATEST_TRANSACTIONS"}')) is None
    assert run("cjk-ratio", rec('[{"reason_type": "猪瘟", "reason_product": "", '
                                '"reason_region": "", "result_region": ""}]')) is None
    html = '<template>\n  <div class="test">\n  <a href="javascript:void(0)" @click="go">x</a>'
    assert run("cjk-ratio", rec(html)) is None


def test_cjk_ratio_excuses_answers_the_instruction_asks_for_in_another_language():
    english = "Dear Professor Bruce, I am writing this letter to invite you to our contest."
    assert run("cjk-ratio", rec(english, instruction="Write an email to a professor.")) is None
    assert run("cjk-ratio", rec(english, instruction="请用英文写一封邀请信。")) is None
    assert run("cjk-ratio", rec(english, instruction="请写一封邀请信。")) is not None
    assert run("cjk-ratio", rec(english, instruction="Write an email."), unless_asked=[])


def _bad_inputs(tmp_path):
    """Two inputs of several -j batches each, with bad lines in different batches, blank
    lines and a BOM."""
    good = [json.dumps(r, ensure_ascii=False).encode() + b"\n"
            for name in ("dirty.jsonl", "clean.jsonl")
            for r in map(json.loads, (FIX / name).read_text("utf-8").splitlines())]
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_bytes(b"\xef\xbb\xbf" + b"".join(good * 10) + b"\n   \n[1, 2]\n" + b"".join(good * 5)
                  + b'"text"\n')
    b.write_bytes(b"".join(good * 8) + b'{"instruction": \n' + b"".join(good * 3)
                  + b"\xff\xfe{}\n" + b"".join(good * 2) + b'{"instruction": "x"}')
    return a, b


@pytest.mark.parametrize("extra", [[], ["--invert", "--all-reasons"], ["--encoding", "gb18030"]])
def test_parallel_bad_lines_are_skipped_and_kept_as_in_serial(tmp_path, extra):
    a, b = _bad_inputs(tmp_path)
    runs = []
    for jobs in ("1", "2"):
        args = ["filter", "-j", jobs, "--on-error", "skip", "--errors", tmp_path / "e.jsonl",
                "--report", tmp_path / "rep.json", *extra, a, b]
        if "--invert" not in extra:
            args[1:1] = ["--rejects", tmp_path / "r.jsonl"]
        res = invoke(args)
        side = [(tmp_path / n).read_bytes() for n in ("e.jsonl", "rep.json")]
        if "--invert" not in extra:
            side.append((tmp_path / "r.jsonl").read_bytes())
        runs.append((res.exit_code, res.stdout_bytes, res.stderr, side))
    assert runs[0] == runs[1]
    assert runs[0][0] == 0 and "skipped" in runs[0][2]
    errors = runs[0][3][0].splitlines()
    if extra[:1] != ["--encoding"]:
        assert errors == [b"[1, 2]", b'"text"', b'{"instruction": ', b"\xff\xfe{}"]


def test_parallel_bad_line_fails_at_the_same_line_as_serial(tmp_path):
    a, b = _bad_inputs(tmp_path)
    a.write_bytes(a.read_bytes().replace(b"[1, 2]\n", b"").replace(b'"text"\n', b""))
    one = invoke(["filter", "-q", "-j", "1", a, b])
    two = invoke(["filter", "-q", "-j", "2", a, b])
    assert one.exit_code == two.exit_code == 65
    assert one.stderr == two.stderr == f"cqia filter: {b}:633: invalid JSON: unexpected end of " \
                                        "data at column 1\n"
    assert one.stdout_bytes == two.stdout_bytes
    shelled = shell(f"cqia filter -q -j 2 {a} {b} | wc -l")
    assert shelled.stdout.strip() == str(len(one.stdout_bytes.splitlines()))
    assert shelled.stderr.strip() == one.stderr.strip()


def test_worker_builds_its_own_filter_when_not_inherited():
    """A spawned worker (no fork) gets FilterWork pickled, without its Filter: it builds the
    rules from their specs and gives the bytes and counts that the parent's Filter gives."""
    import pickle

    from cqia_cli.filtering.config import RuleSet as RS
    from cqia_cli.filtering.engine import FilterWork
    from cqia_cli.io import parse_lines

    rs = RS()
    specs = rs.specs(())
    lines = (FIX / "dirty.jsonl").read_bytes().splitlines(keepends=True)[:5]
    lines += [b"\n", b"[1]\n"] + (FIX / "clean.jsonl").read_bytes().splitlines(keepends=True)[:3]
    flt = Filter(rs.build(()))
    work = FilterWork(flt, specs, rejects=True)
    copy = pickle.loads(pickle.dumps(work))
    assert copy.filter is None  # not pickled: built from the specs on first use
    runs = parse_lines(lines, 7, "utf-8")
    assert [bad for _, bad in runs] == [(13, b"[1]\n", "not a JSON object (a JSON array)"), None]
    results = [copy(records) for records, _ in runs]
    assert results == [work(records) for records, _ in runs]
    recs = [json.loads(x) for x in lines if x.strip() and x != b"[1]\n"]
    kept = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in recs
                    if flt.check(r) is None)
    assert b"".join(out for out, _, _ in results) == kept
    counts = [sum(c[0] for _, _, c in results), sum(c[1] for _, _, c in results)]
    assert counts[0] == 8 and counts[1] == len(kept.splitlines())
    assert len(b"".join(side for _, side, _ in results).splitlines()) == 8 - counts[1]


def test_parallel_reads_a_file_as_serial_does_whatever_its_line_ends(tmp_path):
    """-j workers read a regular file's lines themselves: with a BOM, CRLF, carriage returns
    inside lines, blank and bad lines and no last newline, -j 2 writes, keeps aside and says
    what -j 1 does."""
    recs = [json.loads(line) for line in (FIX / "clean.jsonl").read_text().splitlines()]
    lines = []
    for i in range(600):
        rec = dict(recs[i % len(recs)], n=i)
        line = orjson.dumps(rec)
        if i % 7 == 0:
            line = line.replace(b'","', b'",\r"', 1)  # whitespace JSON allows
        lines.append(line + (b"\r\n" if i % 5 == 0 else b"\n"))
        if i % 97 == 0:
            lines.append(b"\n" if i % 2 else b'{"broken": \n')
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(lines).rstrip(b"\n"))
    runs = {}
    for j in ("1", "2"):
        res = invoke(["filter", "-j", j, "--on-error", "skip", "--errors", tmp_path / f"e{j}",
                      path])
        assert res.exit_code == 0, res.stderr
        runs[j] = (res.stdout_bytes, res.stderr.replace(f"/e{j}", "/E"),
                   (tmp_path / f"e{j}").read_bytes())
    assert runs["1"] == runs["2"]
    assert runs["1"][0] and runs["1"][2].count(b"broken") == 4


def test_parallel_corrupt_input_writes_what_serial_writes_before_failing(tmp_path):
    import gzip

    data = (FIX / "clean.jsonl").read_bytes() * 300
    packed = gzip.compress(data)
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    one = invoke(["filter", "-q", "-j", "1", path])
    two = invoke(["filter", "-q", "-j", "2", path])
    assert one.exit_code == two.exit_code == 65
    assert one.stderr == two.stderr and "corrupt or truncated compressed data" in one.stderr
    assert one.stdout_bytes == two.stdout_bytes and one.stdout_bytes
