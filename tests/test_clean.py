"""cqia clean: each step on text it must repair and on good text it must leave alone, the
command's contract (unchanged records as the core writes them, --changes, --mark, the table,
-j, errors), recipes and options."""

from __future__ import annotations

import json
import sys

import orjson
import pytest

from cqia_cli.cleaning import Cleaner, StepSet
from cqia_cli.cleaning.steps import STEPS, parse_sub
from conftest import cqia_record, invoke, shell, write_jsonl


def step(name: str, **values):
    return STEPS[name]((), **values)


def fix(name: str, text: str, **values) -> str:
    return step(name, **values).fix(text, "output")[0]


def clean(text: str, field: str = "output") -> str:
    return Cleaner(StepSet().build()).clean_text(field, text)[0]


# -- latex-escapes ----------------------------------------------------------------------------

@pytest.mark.parametrize("broken, repaired", [
    ("$Q=\x0crac{1}{2}$", "$Q=\\frac{1}{2}$"),
    ("$6 \times 750$", "$6 \\times 750$"),
    ("$\\left(a\right)$", "$\\left(a\\right)$"),
    ("一轮 $\x08eta$-氧化", "一轮 $\\beta$-氧化"),
    ("$\\left\\{\x08egin{array}{l}x\\end{array}\right.$",
     "$\\left\\{\\begin{array}{l}x\\end{array}\\right.$"),
    ("$a \neq b$", "$a \\neq b$"),
    ("$x \to 0$", "$x \\to 0$"),
])
def test_latex_escapes_repairs_commands_a_json_escape_ate(broken, repaired):
    assert fix("latex-escapes", broken) == repaired


@pytest.mark.parametrize("good", [
    "第一行\not a command outside maths",      # newline + "ot": English, not in maths
    "name\tan apple",                          # tab + "an": a TSV column
    "列1\t列2\n第二行",
    "\x0coo is not a command",                 # form feed + a word that is no command
    "$$\n\\frac{1}{2}\n$$",
])
def test_latex_escapes_leaves_text_that_is_not_an_eaten_command(good):
    assert fix("latex-escapes", good) == good


def test_whitespace_leaves_an_eaten_command_to_latex_escapes():
    # without latex-escapes, \f+rac must not become "rac"
    assert fix("whitespace", "$\x0crac{1}{2}$ \x01") == "$\x0crac{1}{2}$"


# -- html -------------------------------------------------------------------------------------

@pytest.mark.parametrize("broken, repaired", [
    ("道路……<BR>&nbsp;&nbsp;十几年后", "道路……\n十几年后"),  # no &nbsp; indentation
    ("<p>第一段</p><p>第二段</p>", "\n第一段\n\n第二段\n"),
    ('见<a href="https://x.cn/a">这篇文章</a>。&amp;', "见这篇文章。&"),
    ("A&amp;amp;B &#8220;引号&#8221;", "A&B “引号”"),
])
def test_html_unescapes_and_strips_markup(broken, repaired):
    assert fix("html", broken) == repaired


@pytest.mark.parametrize("good", [
    "若 a<b 且 b>c，则……",
    "已知 0<p>1 的概率",
    "设 x<b and c>d",
    "为什么<div>不居中？",                               # one tag mentioned in prose
    "我把'n'替换成了<br/>还是不行",                       # the subject of the question
    '模板：<div v-for="x in xs">{{x}}</div>',            # Vue template: code, not markup
    "```html\n<div class=\"a\"><br></div>\n```",        # code block
    "用 `<br>` 换行，&nbsp; 是空格",                     # Markdown code: about HTML
    "AT&T 和 R&D 部门",
    "教程：&lt;div&gt; 是块级元素，&lt;/div&gt; 结束",     # escaped tags stay escaped
])
def test_html_leaves_text_that_is_not_markup(good):
    assert fix("html", good) == good


# -- whitespace -------------------------------------------------------------------------------

@pytest.mark.parametrize("broken, repaired", [
    ("  你好  ", "你好"),
    ("a\r\nb\rc", "a\nb\nc"),
    ("一\n\n\n\n二", "一\n\n二"),
    ("选项A.  甲   B. 乙", "选项A. 甲 B. 乙"),
    ("行尾空格   \n下一行", "行尾空格\n下一行"),
    ("零\u200b宽\ufeff字\u00ad符", "零宽字符"),
    ("不\xa0换行\u2003空格", "不 换行 空格"),
    ("控制\x01字\x7f符\x85", "控制字符"),
])
def test_whitespace_normalises(broken, repaired):
    assert fix("whitespace", broken) == repaired


@pytest.mark.parametrize("good", [
    "👨\u200d👩\u200d👧 一家人",                 # zero-width joiners inside an emoji sequence
    "def f():\n    return 1",                    # indentation
    "```\nx  =  1\n```",                          # aligned code in a block
    "    缩进的代码\n    第二行",                # an indented block keeps its first indent
    "a\tb",
])
def test_whitespace_keeps_meaningful_whitespace(good):
    assert fix("whitespace", good) == good


def test_whitespace_max_blank_lines_is_tunable():
    assert fix("whitespace", "一\n\n\n\n二", max_blank_lines=2) == "一\n\n\n二"
    assert fix("whitespace", "一\n\n\n\n二", max_blank_lines=-1) == "一\n\n\n\n二"


# -- width ------------------------------------------------------------------------------------

def test_width_converts_full_width_letters_digits_and_spaces_only():
    assert fix("width", "阿Ｑ正传，共２４章\u3000完。") == "阿Q正传，共24章 完。"
    good = "（一）①②　x²＋y²，㎡，Ⅻ，！？"
    assert fix("width", good) == good.replace("\u3000", " ").replace("＋", "＋")
    assert fix("width", "ｶﾀｶﾅ ﬁle") == "カタカナ file"


def test_width_keeps_line_indentation_and_code():
    text = "第一段\n\u3000\u3000第二段\n`ｃｏｄｅ`"
    assert fix("width", text) == text


# -- punct ------------------------------------------------------------------------------------

@pytest.mark.parametrize("broken, repaired", [
    ("七十古来稀,八十耄耋", "七十古来稀，八十耄耋"),
    ("离解, 而内界", "离解，而内界"),
    ("你好?我是", "你好？我是"),
    ("是什么? (2)", "是什么？ (2)"),
    ("原因如下:\n(1)", "原因如下：\n(1)"),
    ("鲁迅(原名周树人)生于绍兴", "鲁迅（原名周树人）生于绍兴"),
    ("Hello，world！", "Hello, world!"),
    ("体现出怎样的担当?(5 分)", "体现出怎样的担当？（5 分）"),  # each makes the other's neighbour
    ("中(文),字", "中（文），字"),
    ("print（x）", "print(x)"),
])
def test_punct_normalises_by_script(broken, repaired):
    assert fix("punct", broken) == repaired


@pytest.mark.parametrize("good", [
    "函数f(x)的值",                          # maths in parentheses
    "答案(B)正确",
    "比分3:2，时间12:30",
    "见 https://a.cn/x?a=1,2,3中文",          # a URL with commas
    "公式 $f(x,y)$ 中",
    "```\n# 注释,中文\nprint('你好,世界')\n```",  # code block
    "`a,b`和`c`",
    "他说“Hello，世界”",                      # full-width in a Chinese line stays
    "好?!真的吗",
    "print(\"，\")",                          # a full-width comma as a string in code
])
def test_punct_leaves_code_maths_links_and_chinese(good):
    assert fix("punct", good) == good


# -- mojibake ---------------------------------------------------------------------------------

def test_mojibake_repairs_utf8_read_as_latin1_and_as_gbk():
    good = "北京大学的学生们正在学习机器学习。"
    latin = good.encode("utf-8").decode("latin-1")
    assert fix("mojibake", latin) == good
    for good in ("今天天气很好", "你好世界", "机器学习", "数据清洗"):
        gbk = good.encode("utf-8").decode("gbk")  # 浠婂ぉ澶╂皵寰堝ソ
        assert fix("mojibake", f"他说：{gbk}。") == f"他说：{good}。"


@pytest.mark.parametrize("good", [
    "café, naïve, Ã is a letter", "涓 is a rare character but this is fine", "中文测试。",
    "米娅便被塞巴斯汀身上闪耀的才华", "绯村剑心", "中西合璧绘画风格",  # GBK bytes valid UTF-8
    "Größe und Übermaß", "ＡＢＣ",
])
def test_mojibake_leaves_good_text(good):
    assert fix("mojibake", good) == good


# -- trailers ---------------------------------------------------------------------------------

@pytest.mark.parametrize("broken, repaired", [
    ("正文内容。\n编辑于 2023-01-01 · IP 属地北京", "正文内容。"),
    ("正文。发布于 2022-03-04 12:30", "正文。"),
    ("回答。\n作者：张三\n链接：https://www.zhihu.com/question/1/answer/2\n来源：知乎\n"
     "著作权归作者所有。商业转载请联系作者获得授权，非商业转载请注明出处。", "回答。"),
    ("答案如上。\n——来自百度贴吧客户端\n发自我的iPhone", "答案如上。"),
])
def test_trailers_removed_at_the_end(broken, repaired):
    assert fix("trailers", broken) == repaired


@pytest.mark.parametrize("good", [
    "在发布于4月13日的调查报告中，江苏消保委称",
    "本文发布于2023-01-01",          # part of a sentence, not after a boundary
    "编辑于2023-01-01。之后又补充了内容",
    "这些参数都是来自客户端，所有防护都是浮云",
])
def test_trailers_leave_text(good):
    assert fix("trailers", good) == good


def test_trailers_list_is_editable(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("# mine\n——\\s*本帖最后由\\S+编辑\n", "utf-8")
    assert fix("trailers", "正文\n——本帖最后由小明编辑", files=[str(mine)]) == "正文"
    bad = tmp_path / "bad.txt"
    bad.write_text("(unclosed\n", "utf-8")
    res = invoke(["clean", "--set", f"trailers.files={bad}"], input="{}\n")
    assert res.exit_code == 2 and "bad.txt:1: bad regular expression" in res.stderr
    res = invoke(["clean", "--set", f"trailers.files={tmp_path / 'gone.txt'}"], input="{}\n")
    assert res.exit_code == 2 and "gone.txt: no such file" in res.stderr


# -- pii-mask ---------------------------------------------------------------------------------

def test_pii_mask_masks_with_placeholders():
    text = "联系电话：13812345678，邮箱 zhang.san@163.com，QQ：12345678，微信：abc_12345"
    assert fix("pii-mask", text) == "联系电话：<PHONE>，邮箱 <EMAIL>，QQ：<QQ>，微信：<WECHAT>"
    assert fix("pii-mask", "身份证 11010519491231002X") == "身份证 <ID_CARD>"


@pytest.mark.parametrize("good", [
    "13812345678 + 1 = 13812345679",          # arithmetic
    "写信到 someone@example.com 即可",        # reserved example domain
    "```\ngit config user.email me@163.com\n```",
    "订单号 123456789012345678 已发货",         # no identity checksum
])
def test_pii_mask_leaves_what_is_not_contact_data(good):
    assert fix("pii-mask", good) == good


def test_pii_mask_lets_records_survive_filter(tmp_path):
    rec = cqia_record(1, output="请联系我，电话 13812345678，我会详细解答这个问题。")
    src = write_jsonl(tmp_path / "in.jsonl", [rec])
    assert invoke(["filter", "-q", src]).records() == []
    cleaned = invoke(["clean", "-q", src])
    kept = invoke(["filter", "-q"], input=cleaned.stdout_bytes).records()
    assert kept[0]["output"] == "请联系我，电话 <PHONE>，我会详细解答这个问题。"


# -- sub --------------------------------------------------------------------------------------

def test_parse_sub_splits_at_the_first_and_last_unescaped_colon():
    assert parse_sub("output:(?:评分)：[0-9.]+$:") == ("output", "(?:评分)：[0-9.]+$", "")
    assert parse_sub(":^\\d+\\. :") == ("", "^\\d+\\. ", "")
    assert parse_sub("output:a:b\\:c") == ("output", "a", "b:c")
    with pytest.raises(ValueError):
        parse_sub("output-no-colon")


def test_sub_rewrites_only_its_field_once(tmp_path):
    rec = cqia_record(1, instruction="1. 问题是什么", output="答案。\n评分：3.73")
    res = invoke(["clean", "-q", "--steps", "sub", "--sub", "output:\\n评分：[0-9.]+$:",
                  "--sub", "instruction:^\\d+\\. :"],
                 input=json.dumps(rec, ensure_ascii=False) + "\n")
    out = res.records()[0]
    assert out["output"] == "答案。" and out["instruction"] == "问题是什么"
    # applied once per run: a rewrite that grows is not repeated by the settling rounds
    res = invoke(["clean", "-q", "--steps", "sub", "--sub", ":a:aa"], input='{"output": "a"}\n')
    assert res.records() == [{"output": "aa"}]


def test_sub_catastrophic_pattern_times_out_with_a_usage_error(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"output": "a" * 40 + "!"}])
    res = invoke(["clean", "--steps", "sub", "--sub", "output:(a|aa)+$:", "--set",
                  "sub.timeout=0.2", src])
    assert res.exit_code == 2
    assert res.stderr.startswith(f"cqia clean: {src}:1: --sub 'output:(a|aa)+$:' took more "
                                 "than 0.2s")
    assert res.stdout == ""


@pytest.mark.parametrize("args, message", [
    (["--sub", "output:(:x"], "bad regular expression"),
    (["--sub", "nocolon"], "expected FIELD:PATTERN:REPLACEMENT"),
    (["--sub", "output:(a):\\2"], "bad replacement"),
])
def test_bad_sub_is_a_usage_error(args, message):
    res = invoke(["clean", *args], input="{}\n")
    assert res.exit_code == 2 and message in res.stderr


# -- t2s --------------------------------------------------------------------------------------

def test_t2s_is_opt_in_and_converts(tmp_path):
    rec = {"output": "這是一個測試，請見 https://a.tw/fan-ti"}
    assert invoke(["clean", "-q"], input=json.dumps(rec) + "\n").records() == [rec]
    pytest.importorskip("opencc")
    res = invoke(["clean", "-q", "--steps", "t2s"], input=json.dumps(rec) + "\n")
    assert res.records()[0]["output"] == "这是一个测试，请见 https://a.tw/fan-ti"


def test_t2s_without_opencc_is_a_clear_usage_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "opencc", None)
    res = invoke(["clean", "--steps", "t2s"], input="{}\n")
    assert res.exit_code == 2
    assert res.stderr.startswith("cqia clean: step t2s needs the optional OpenCC package: "
                                 "pip install 'cqia[t2s]'")


# -- the command ------------------------------------------------------------------------------

DIRTY = [
    cqia_record(0),
    cqia_record(1, instruction="  请解释,这个成语  ", output="答案是$\x0crac{1}{2}$<br>&nbsp;完"),
    cqia_record(2, output="正文。\n编辑于 2023-01-01"),
    {"instruction": "无关字段", "output": "不变", "extra": {"nested": [1, 2.5, None]}, "n": 10},
]


def test_unchanged_records_pass_as_the_core_writes_them(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", DIRTY)
    res = invoke(["clean", "-q", src])
    assert res.exit_code == 0, res
    lines = res.stdout_bytes.splitlines(keepends=True)
    assert len(lines) == 4
    assert lines[0] == orjson.dumps(DIRTY[0], option=orjson.OPT_APPEND_NEWLINE)
    assert lines[3] == orjson.dumps(DIRTY[3], option=orjson.OPT_APPEND_NEWLINE)
    changed = orjson.loads(lines[1])
    assert list(changed) == list(DIRTY[1])  # the same record, keys in order
    assert changed["instruction"] == "请解释，这个成语"
    assert changed["output"] == "答案是$\\frac{1}{2}$\n完"
    assert {k: v for k, v in changed.items() if k not in ("instruction", "output")} == \
        {k: v for k, v in DIRTY[1].items() if k not in ("instruction", "output")}


def test_changes_log_and_table(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", DIRTY)
    log = tmp_path / "changes.jsonl"
    res = invoke(["clean", src, "--changes", log])
    assert res.exit_code == 0
    entries = [json.loads(line) for line in log.read_text("utf-8").splitlines()]
    assert [(e["line"], e["field"]) for e in entries] == [(2, "instruction"), (2, "output"),
                                                          (3, "output")]
    assert entries[0]["file"] == str(src)
    assert entries[0]["steps"] == ["whitespace", "punct"]
    assert entries[0]["before"] == "  请解释,这个成语  " and entries[0]["after"] == "请解释，这个成语"
    assert entries[1]["steps"] == ["html", "latex-escapes"]
    assert entries[2]["steps"] == ["trailers"]
    assert entries[2]["before"].endswith("编辑于 2023-01-01") and entries[2]["after"] == "正文。"
    # the table: a row per step with records, characters removed and replaced
    assert "step" in res.stderr and "chars removed" in res.stderr
    row = next(line for line in res.stderr.splitlines() if line.startswith("trailers"))
    assert row.split()[1:] == ["│", "1", "│", "25.0%", "│", "1", "│", "15", "│", "0"]
    assert "clean: changed 2 of 4 records (50.0%)" in res.stderr


def test_compact_before_and_after_keep_context_only():
    from cqia_cli.cleaning.engine import compact

    before = "前" * 100 + "a  b" + "后" * 100
    after = "前" * 100 + "a b" + "后" * 100
    b, a = compact(before, after)
    assert b == "…" + "前" * 22 + "a  b" + "后" * 23 + "…"
    assert a == "…" + "前" * 22 + "a b" + "后" * 23 + "…"


def test_mark_adds_the_steps_to_changed_records_only(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", DIRTY)
    out = invoke(["clean", "-q", "--mark", src]).records()
    assert "_clean" not in out[0] and "_clean" not in out[3]
    assert out[1]["_clean"] == ["html", "latex-escapes", "whitespace", "punct"]
    assert out[2]["_clean"] == ["trailers"]


def test_jobs_give_the_same_output(tmp_path):
    rows = [dict(r, n=i) for i in range(700) for r in DIRTY[i % 4:i % 4 + 1]]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    one = invoke(["clean", "-q", src, "--changes", tmp_path / "c1.jsonl"])
    two = shell(f"cqia clean -q -j 2 {src} --changes {tmp_path / 'c2.jsonl'}")
    assert two.exit_code == 0, two
    assert one.stdout_bytes == two.stdout_bytes
    assert (tmp_path / "c1.jsonl").read_bytes() == (tmp_path / "c2.jsonl").read_bytes()


def test_field_option_and_dotted_paths(tmp_path):
    rec = {"instruction": "  不动  ", "meta": {"note": "  改,动  "}, "output": "  不动  "}
    out = invoke(["clean", "-q", "-f", "meta.note"], input=json.dumps(rec) + "\n").records()
    assert out == [{"instruction": "  不动  ", "meta": {"note": "改，动"}, "output": "  不动  "}]


def test_non_string_values_are_left_alone():
    rec = {"instruction": ["  a  "], "input": None, "output": 3}
    assert invoke(["clean", "-q"], input=json.dumps(rec) + "\n").records() == [rec]


def test_bad_lines_are_reported_with_file_and_line(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [DIRTY[1]], raw_lines=[b"{not json\n", b"[1]\n"])
    res = invoke(["clean", src])
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia clean: {src}:2: invalid JSON: ")
    assert res.stderr.count("\n") == 1
    errors = tmp_path / "errors.jsonl"
    res = invoke(["clean", "-q", "--on-error", "skip", "--errors", errors, src])
    assert res.exit_code == 0 and len(res.records()) == 1
    assert errors.read_bytes() == b"{not json\n[1]\n"


def test_missing_input_and_input_as_output(tmp_path):
    res = invoke(["clean", tmp_path / "nope.jsonl"])
    assert res.exit_code == 66 and "nope.jsonl: no such file" in res.stderr
    src = write_jsonl(tmp_path / "in.jsonl", DIRTY)
    res = invoke(["clean", src, "--changes", src])
    assert res.exit_code == 74 and "refusing to write over an input file" in res.stderr


def test_closed_pipe_ends_quietly(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", DIRTY * 2000)
    res = shell(f"cqia clean {src} | head -1")
    assert res.exit_code == 0, res
    assert res.stderr == "" and len(res.stdout.splitlines()) == 1


# -- selection and recipes --------------------------------------------------------------------

def test_list_steps_shows_state_and_values(tmp_path):
    res = invoke(["clean", "--list-steps", "--skip", "punct", "--set",
                  "whitespace.max_blank_lines=3"])
    assert res.exit_code == 0
    assert "punct [off]" in res.stdout and "t2s [off]" in res.stdout
    assert "whitespace [on]" in res.stdout and "max_blank_lines    3" in res.stdout
    assert list(STEPS) == [line.split(" [")[0] for line in res.stdout.splitlines()
                           if line and not line.startswith(" ")]


def test_steps_and_skip_select(tmp_path):
    rec = {"output": "  你好,世界  "}
    data = json.dumps(rec, ensure_ascii=False) + "\n"
    assert invoke(["clean", "-q", "--steps", "punct"], input=data).records() == \
        [{"output": "  你好，世界  "}]
    assert invoke(["clean", "-q", "--skip", "punct"], input=data).records() == \
        [{"output": "你好,世界"}]


def test_recipe_with_profiles(tmp_path):
    recipe = tmp_path / "clean.toml"
    recipe.write_text(
        'description = "test"\n'
        "[steps.punct]\nenabled = false\n"
        "[steps.whitespace]\nmax_blank_lines = 2\n"
        "[profiles.forum.steps.sub]\nrules = ['output:\\n评分：[0-9.]+$:']\n"
        "[profiles.strict]\nextends = 'forum'\n"
        "[profiles.strict.steps.punct]\nenabled = true\n", "utf-8")
    rec = {"output": "好,的\n\n\n\n结束\n评分：3.5"}
    data = json.dumps(rec, ensure_ascii=False) + "\n"
    out = invoke(["clean", "-q", "--recipe", recipe], input=data).records()
    assert out == [{"output": "好,的\n\n\n结束\n评分：3.5"}]
    out = invoke(["clean", "-q", "--recipe", recipe, "--profile", "forum"], input=data).records()
    assert out == [{"output": "好,的\n\n\n结束"}]
    out = invoke(["clean", "-q", "--recipe", recipe, "--profile", "strict"], input=data).records()
    assert out == [{"output": "好，的\n\n\n结束"}]


@pytest.mark.parametrize("args, message", [
    (["--steps", "nosuch"], "--steps: unknown step 'nosuch' (known: mojibake, html"),
    (["--skip", "nosuch"], "--skip: unknown step 'nosuch'"),
    (["--set", "whitespace.nosuch=1"], "unknown parameter 'nosuch' of step whitespace"),
    (["--set", "whitespace.max_blank_lines=x"], "expected an integer, got 'x'"),
    (["--set", "pii-mask.kinds=phone"], "unknown value 'phone'"),
    (["--set", "nodot"], "expected STEP.PARAM=VALUE"),
    (["--profile", "x"], "--profile needs a recipe"),
    (["--set", "latex-escapes.extra=zeta"], "does not start with b, f, n, r or t"),
])
def test_bad_selection_is_a_usage_error(args, message):
    res = invoke(["clean", *args], input="{}\n")
    assert res.exit_code == 2, res
    assert message in res.stderr and res.stderr.count("\n") == 1


def test_recipe_errors_name_the_problem(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text("[rules.punct]\nenabled = false\n", "utf-8")
    res = invoke(["clean", "--recipe", recipe], input="{}\n")
    assert res.exit_code == 2 and "unknown key 'rules' (known: description, defaults, steps" \
        in res.stderr


def test_options_from_the_environment(tmp_path):
    data = json.dumps({"output": "你好,世界"}, ensure_ascii=False) + "\n"
    res = invoke(["clean", "-q"], input=data, env={"CQIA_CLEAN_SKIP": "punct"})
    assert res.records() == [{"output": "你好,世界"}]


# -- the shared data problem the issue names --------------------------------------------------

def test_clean_then_filter_keeps_latex_records_filter_dropped(tmp_path):
    rec = cqia_record(1, output="因此 $Q=\x0crac{c(\\mathrm{H}^{+})}{c^{\\ominus}}$，选 B。")
    src = write_jsonl(tmp_path / "in.jsonl", [rec])
    rejects = tmp_path / "rejects.jsonl"
    assert invoke(["filter", "-q", src, "--rejects", rejects]).records() == []
    assert ("form feed U+000C where JSON read the LaTeX \\\\frac as an escape (repairable: "
            "cqia clean)") in rejects.read_text("utf-8")
    cleaned = invoke(["clean", "-q", src])
    kept = invoke(["filter", "-q"], input=cleaned.stdout_bytes).records()
    assert kept[0]["output"] == "因此 $Q=\\frac{c(\\mathrm{H}^{+})}{c^{\\ominus}}$，选 B。"


def test_clean_is_idempotent_on_the_dirty_records(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", DIRTY)
    once = invoke(["clean", "-q", src])
    twice = invoke(["clean", "-q"], input=once.stdout_bytes)
    assert once.stdout_bytes == twice.stdout_bytes


def test_defaults_leave_good_hard_text_alone():
    good = [
        "顶", "666", "cy", "A", "对", "插眼", "😂😂😂", "1+1=2", "a<b", "0<x<1",
        "```python\nprint('你好,世界')  # 注释\n```",
        "访问 https://example.com/a,b?x=1&y=2 查看",
        "公式 $\\frac{a}{b}$ 和 $$\\sum_{i=1}^{n} i$$",
        "他说：“你好！”\n\n她答：“好的。”",
        "第一行\n第二行",
        "English text, with commas; and colons: fine.",
        "混合 English 和中文",
    ]
    for text in good:
        assert clean(text) == text, text


def test_text_latex_finds_eaten_commands_for_filter():
    from cqia_cli.text.latex import eaten_command

    assert eaten_command("因此 $Q=\x0crac{1}{2}$").group(0) == "\x0crac"
    assert eaten_command("第一行\nnot maths") is None
    assert eaten_command("$a \neq b$").group(0) == "\neq"


def test_changes_name_the_file_and_line_across_inputs_blank_and_bad_lines(tmp_path):
    a = tmp_path / "a.jsonl"
    a.write_bytes(b'{"output": "ok"}\n\n{"output": "  a  "}\n')
    b = tmp_path / "b.jsonl"
    b.write_bytes(b'\n[1]\n{"output": "x"}\n\n\n{"output": "b,  c"}\n')
    for jobs in ("1", "2"):
        log = tmp_path / f"changes{jobs}.jsonl"
        res = shell(f"cqia clean -q -j {jobs} --on-error skip {a} {b} --changes {log}")
        assert res.exit_code == 0, res
        where = [(e["file"], e["line"]) for e in map(json.loads, log.read_text().splitlines())]
        assert where == [(str(a), 3), (str(b), 6)]


def test_core_map_lines_numbered_gives_line_numbers(tmp_path):
    from cqia_cli.io import Job

    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"n": 1}\n\n{"n": 2}\n{"n": 3}\n')
    with Job([str(src)], quiet=True, output=str(tmp_path / "out.jsonl")) as job:
        got = []
        for result in job.map_lines(lambda recs, lines: [(r["n"], n) for r, n in
                                                         zip(recs, lines)],
                                    1, batch=2, numbered=True):
            got.extend((job.input_name, *pair) for pair in result)
    assert got == [(str(src), 1, 1), (str(src), 2, 3), (str(src), 3, 4)]
