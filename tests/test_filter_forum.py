"""cqia filter on raw forum data (issue 16): non-answers, zalgo, contact solicitations, the
false positives seen on curated records, and the options that misbehaved."""

from __future__ import annotations

import json

import orjson
import pytest

from cqia_cli.filtering import Filter, RuleSet
from cqia_cli.filtering.rules import RULES
from conftest import DATA, invoke, write_jsonl

FORUM = DATA / "filter" / "forum.jsonl"


def check(output: str, instruction: str = "求推荐几部好看的悬疑电影"):
    return Filter(RuleSet().build()).check({"instruction": instruction, "input": "",
                                           "output": output})


def rule_of(output: str, instruction: str = "求推荐几部好看的悬疑电影"):
    hit = check(output, instruction)
    return hit[0][0] if hit else None


# -- non-answers -----------------------------------------------------------------------------

@pytest.mark.parametrize("output", ["3", "cy", "。", "😂", "gkd", "插眼", "666", "+1", "1", "码住",
                                    "蹲", "同求", "dd", "前排", "路过", "mark", "顶", "沙发",
                                    "楼上正解", "插个眼+1", "帮顶一下楼主", "？？？", "👍👍👍",
                                    "……", "好看", "23"])
def test_forum_non_answers_to_an_open_question_are_rejected(output):
    assert rule_of(output) == "non-answer", output


@pytest.mark.parametrize("instruction,output", [
    ("下列哪个城市是中国的首都？\nA. 上海\nB. 北京", "B"),
    ("以下哪种动物是哺乳动物？A.鲨鱼 B.鲸鱼", "选B"),
    ("地球是圆的吗？", "是"),
    ("这个说法对不对：水在100℃一定沸腾", "对"),
    ("判断：鲸鱼是鱼类。", "×"),
    ("请判断两句话是否相同（输出“是”或“不是”）：1. 花呗能用吗 2. 花呗可以用吗", "不是"),
    ("1+2等于几？", "3"),
    ("一个数的一半是0.25，这个数是多少？", "0.5"),
    ("中国的首都是哪里？", "北京"),
    ("填空：中国有____个省级行政区", "34"),
    ("Who wrote Hamlet?", "Shakespeare"),
    # labels, words: classification, sentiment, extraction, translation of a word
    ("请对以下新闻进行分类：国足2:0取胜", "体育"),
    ("分析这句话的情感倾向：今天真开心", "正面"),
    ("把“猫”翻译成英文", "cat"),
    ("Classify the sentiment: I love it", "pos"),
    ("给这首小诗起个标题", "秋思"),
    ("这句话有语病吗？回答是或否", "否"),
])
def test_short_right_answers_pass(instruction, output):
    assert check(output, instruction) is None


def test_the_minimum_depends_on_the_kind_of_question():
    from cqia_cli.filtering.answers import question_kinds

    assert question_kinds("感冒了怎么办") == {"open"}
    assert "maths" in question_kinds("1+1=2对吗") and "yesno" in question_kinds("1+1=2对吗")
    assert "maths" not in question_kinds("求推荐几部好看的电影")  # wants titles
    hit = check("多喝水", "感冒了怎么办")
    assert hit == [("non-answer", "output", "3 characters, below 4 for an open question")]
    assert check("多喝热水", "感冒了怎么办") is None
    # measurable and tunable per kind
    flt = Filter(RuleSet().build())
    rs = RuleSet()
    rs.set("non-answer", "min", "2", field="open")
    assert Filter(rs.build()).check({"instruction": "感冒了怎么办", "output": "喝水"}) is None
    assert flt.check({"instruction": "感冒了怎么办", "output": "喝水"}) is not None


def test_non_answer_details_and_shipped_list_is_editable(tmp_path):
    assert check("3")[0][2] == "a filler reply: 3"
    assert check("42")[0][2] == "only a number (42) to an open question"
    assert check("。。。")[0][2] == "only punctuation, symbols or emoji: 。。。"
    own = tmp_path / "mine.txt"
    own.write_text("# ours\n这是水贴\n", encoding="utf-8")
    data = write_jsonl(tmp_path / "in.jsonl", [{"instruction": "说说你的看法",
                                                        "output": "这是水贴！！"}])
    assert invoke(["filter", "-q", data]).records() != []  # 4 characters: not rejected
    res = invoke(["filter", "-q", "--set", f"non-answer.filler={own}", data])
    assert res.exit_code == 0 and res.records() == []


# -- garbled: zalgo and LaTeX escapes ---------------------------------------------------------

def test_zalgo_marks_are_garbled_whatever_the_han_share():
    water = ("水 " + "\u0e34\u0e35\u0e37 ") * 60 + "这是正文，讲的是很正常的事情。" * 3
    assert RULES["garbled"](()).check({"output": water})[1].endswith("(zalgo text)")
    stacked = "好" + "\u0301\u0302\u0303\u0304\u0305" + "的回答，内容很正常，只是被人加了符号。"
    detail = RULES["garbled"](()).check({"output": stacked})[1]
    assert detail.startswith("5 combining marks stacked on one character (zalgo text)")
    arabic = "回复 " + "\u064b\u064c\u064d\u064e" + " 楼主说的这个问题我也遇到过，后来换了电源。"
    assert "(zalgo text)" in RULES["garbled"](()).check({"output": arabic})[1]
    # real Thai, Vietnamese and vowelled Arabic carry at most 2-3 marks per letter
    for ok in ("ภาษาไทยที่ถูกต้องและสวยงาม", "Tiếng Việt có dấu rất đẹp", "كَتَبَ الوَلَدُ الدَّرْسَ"):
        assert RULES["garbled"](()).check({"output": ok}) is None, ok


def test_form_feed_from_frac_is_named_as_repairable():
    text = "根据题意可得 $\x0crac{x-15}{38-x}=\x0crac{1}{3}$, 解得 x=20"
    detail = RULES["garbled"](()).check({"output": text})[1]
    assert detail == ("form feed U+000C where JSON read the LaTeX \\frac as an escape "
                      "(repairable: cqia clean)")
    assert "\\beta" in RULES["garbled"](()).check({"output": "一轮 $\x08eta$-氧化"})[1]


# -- ads: contact solicitations --------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "有需要的可以打我电话 0571-8888 1234 咨询",
    "有需要的朋友可以联系我10912345678",  # a prefix no mobile number has
    "需要的加我 7654321，价格好商量",
    "加我 vx：abcd1234 详聊",
    "有需要的找我，微信号：tieba_fan2024",
])
def test_contact_solicitations_are_ads_whatever_the_number(text):
    assert rule_of(text + "，谢谢大家支持。", "出一台二手相机") == "ads"


# -- false positives seen on curated records --------------------------------------------------

@pytest.mark.parametrize("instruction,output", [
    ("说说你最近的感悟", "公司这次又对预算砍一刀，项目只能缩小规模，先把核心功能做好再说。"),
    ("新手学烘焙要买哪些工具", "烘焙入门清单：烤箱、电子秤、打蛋器、裱花袋、硅胶刮刀。很多人说开烘焙店"
                              "能月入过万，其实没那么容易。"),
    ("分享今天的心情", "今天的晚霞好美～～～～～～～～～～～～心情也跟着变好了～～～～～～～～～～"),
    ("分享今天的心情", "下雨了。。。。。。。。。。。。不想出门。。。。。。。。。。。。"),
    ("有哪些打招呼的常用说法", "Common phrases for beginners:\nHow are you?\nNice to meet you.\n"
                          "See you later.\nThank you very much.\nExcuse me, where is the station?"),
    ("入门深度学习该读什么", "Attention Is All You Need\nDeep Residual Learning for Image "
                             "Recognition\nBERT: Pre-training of Deep Bidirectional Transformers "
                             "for Language Understanding\nGenerative Adversarial Nets"),
    ("《离骚》的这句怎么翻译", "扈江离与辟芷兮，纫秋兰以为佩。\ue36e字今作某，生僻字。"),
])
def test_curated_look_alikes_pass(instruction, output):
    assert check(output, instruction) is None


def test_soliciting_forms_of_the_same_words_are_still_ads():
    assert rule_of("快来帮我砍一刀，谢谢啦", "分享") == "ads"
    assert rule_of("在家轻松月入过万，详情私聊", "兼职") == "ads"


# -- the forum fixture: the benchmark's targets -------------------------------------------------

def test_forum_fixture_targets():
    flt = Filter(RuleSet().build())
    junk = junk_rejected = real = real_kept = 0
    for line in FORUM.read_bytes().splitlines():
        rec = orjson.loads(line)
        rejected = flt.check(rec) is not None
        if rec["_label"] == "junk":
            junk += 1
            junk_rejected += rejected
        else:
            real += 1
            real_kept += not rejected
    assert junk >= 300 and real >= 150
    assert junk_rejected / junk >= 0.95
    assert real_kept / real >= 0.95


# -- options ---------------------------------------------------------------------------------

@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_named_field_missing_from_records_is_reported(tmp_path, jobs):
    recs = [{"instruction": f"问题{i}是什么", "output": f"这是第{i}个答案。"} for i in range(40)]
    for r in recs[:5]:
        r["score"] = 9
    data = write_jsonl(tmp_path / "in.jsonl", recs)
    report = tmp_path / "report.json"
    res = invoke(["filter", "-q", "-j", jobs, "--threshold", "nosuchfield >= 5",
                  "--where", "score > 3", "--report", report, data])
    assert res.exit_code == 0 and res.records() == []
    assert ("cqia filter: warning: threshold: field 'nosuchfield' is missing from every one "
            "of the 40 records") in res.stderr
    assert "where: field 'score' is missing from 35 of 40 records" in res.stderr
    body = json.loads(report.read_text())
    assert body["missing_fields"] == [
        {"rule": "threshold", "field": "nosuchfield", "missing": 40, "records": 40},
        {"rule": "where", "field": "score", "missing": 35, "records": 40}]
    # a field the expression asks exists() of, or a threshold that keeps records without it,
    # is expected to be missing
    quiet = invoke(["filter", "-q", "-j", jobs, "--where", "not exists(_reject)", "--threshold",
                    "nosuchfield >= 5", "--set", "threshold.missing=keep", data])
    assert quiet.exit_code == 0 and "missing" not in quiet.stderr
    assert len(quiet.records()) == 40
    # a field present in most records is no news
    ok = invoke(["filter", "-q", "--threshold", "score >= 5", "--report", report,
                 write_jsonl(tmp_path / "b.jsonl", recs[:5])])
    assert "missing" not in ok.stderr and json.loads(report.read_text())["missing_fields"] == []


def test_required_follows_field(tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", [{"text": "这是一段正常的文字，没有问题。"},
                                               {"text": "  "}])
    res = invoke(["filter", "-q", "-f", "text", "--invert", data])
    assert res.exit_code == 0
    assert [r["_reject"] for r in res.records()] == [
        {"rule": "length", "field": "text", "detail": "only whitespace"}]
    # set explicitly, it holds
    res = invoke(["filter", "-q", "-f", "text", "--set", "length.required=instruction", data])
    assert res.records() == []


@pytest.mark.parametrize("args,option", [
    (["--min-cjk", "output=2"], "--min-cjk"), (["--min-cjk", "output=-1"], "--min-cjk"),
    (["--min-len", "output=-5"], "--min-len"), (["--max-len", "-1"], "--max-len"),
    (["--set", "repetition.max_dup_lines=1.5"], "--set"),
    (["--set", "non-answer.min.open=-2"], "--set"),
    (["--set", "non-answer.min.essay=2"], "essay"),
])
def test_values_out_of_range_are_usage_errors(tmp_path, args, option):
    data = write_jsonl(tmp_path / "in.jsonl", [{"instruction": "问题", "output": "答案是这个"}])
    res = invoke(["filter", *args, data])
    assert res.exit_code == 2
    assert option in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("expr", ["(" * 200 + "x" + ")" * 200, "not " * 5000 + "x",
                                  "len(" * 100 + "x" + ")" * 100, "[" * 100 + "]" * 100])
def test_where_depth_is_limited(tmp_path, expr):
    data = write_jsonl(tmp_path / "in.jsonl", [{"x": 1}])
    res = invoke(["filter", "--no-defaults", "--where", expr, data])
    assert res.exit_code == 2
    assert "nested more than 64 levels deep" in res.stderr
    assert len(res.stderr) < 400
    ok = invoke(["filter", "-q", "--no-defaults", "--where", "(" * 60 + "x == 1" + ")" * 60,
                 data])
    assert ok.exit_code == 0 and ok.records() == [{"x": 1}]
