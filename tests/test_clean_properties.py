"""Properties of cqia clean over generated text: every step, and the defaults, are idempotent
(clean(clean(x)) == clean(x)) on Chinese, emoji, code, LaTeX, HTML and the characters the steps
look for; the counts agree with the text; the command's -j output is the serial one."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqia_cli.cleaning import Cleaner, StepSet
from cqia_cli.cleaning.steps import STEPS
from conftest import invoke

PIECES = [
    # Chinese, forum slang, short answers
    "你好", "世界", "这是一个句子。", "顶", "666", "cy", "插眼", "A", "对", "答案是", "鲁迅",
    "問題", "繁體字", "，", "。", "！", "？", "：", "（", "）", "“", "”", "《", "》", "、",
    # emoji, joiners, invisible and control characters, odd spaces
    "😀", "👨\u200d👩\u200d👧", "\u200b", "\u200d", "\ufeff", "\u00ad", "\x01", "\x7f", "\x85",
    "\xa0", "\u3000", "\u2003", "\u2028",
    # whitespace
    " ", "  ", "\t", "\n", "\n\n\n", "\r\n", "\r",
    # ASCII punctuation and Latin text
    ",", ";", ":", "?", "!", "(", ")", "Hello", "world", "a", "1", "2023", ".", "(5 分)",
    "(中文)", "担当?", "(a)", "f(x)",
    # full width
    "Ａ", "１", "ｶ", "ﬁ",
    # code
    "```", "```python\nprint('你好,世界')\n```", "`x,y`", "def f():\n    return 1",
    "{{item}}", ' v-if="a"',
    # LaTeX, and LaTeX whose backslash JSON ate
    "$", "$$", "$x^2$", "\\frac{1}{2}", "\x0crac{1}{2}", "\times", "\x08eta", "\right)",
    "\neq", "\\(", "\\)", "\\begin{array}",
    # HTML and not-HTML
    "<br>", "<BR>", "<p>", "</p>", "<div class=\"a\">", "</div>", "<b>", "</b>", "<a href=\"x\">",
    "</a>", "&nbsp;", "&amp;", "&amp;lt;", "&lt;div&gt;", "&#8220;", "a<b", "c>d", "<script>",
    "</script>",
    # links, contact data, trailers
    "https://a.cn/x?a=1,2", "www.example.com", "13812345678", "138 1234 5678", "a@163.com",
    "QQ：12345678", "微信：abc_12345", "11010519491231002X", "6222021234567890123",
    "编辑于 2023-01-01", "IP 属地北京", "著作权归作者所有。", "——来自百度贴吧客户端",
    "发自我的iPhone",
    # mojibake
    "ä¸\xadæ–‡", "浠婂ぉ澶╂皵寰堝ソ", "涓",
]

text = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

_DEFAULTS = Cleaner(StepSet().build())
_SINGLE = {name: STEPS[name]() for name in STEPS if name not in ("t2s", "sub")}


@SETTINGS
@given(text)
def test_defaults_are_idempotent(s):
    once, applied = _DEFAULTS.clean_text("output", s)
    twice, again = _DEFAULTS.clean_text("output", once)
    assert twice == once, (s, once, twice, again)
    assert not again
    assert bool(applied) == (once != s)


@pytest.mark.parametrize("name", list(_SINGLE))
def test_each_step_is_idempotent(name):
    step = _SINGLE[name]

    @SETTINGS
    @given(text)
    def check(s):
        once, removed, replaced = step.fix(s, "output")
        twice, r2, p2 = step.fix(once, "output")
        assert twice == once, (name, s, once, twice)
        assert (r2, p2) == (0, 0)
        if once == s:
            assert (removed, replaced) == (0, 0)
        else:
            assert removed + replaced > 0
            assert removed >= len(s) - len(once) or name == "latex-escapes"

    check()


def test_t2s_is_idempotent():
    pytest.importorskip("opencc")
    step = STEPS["t2s"]()

    @SETTINGS
    @given(text)
    def check(s):
        once = step.fix(s, "output")[0]
        assert step.fix(once, "output")[0] == once

    check()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(text, text), min_size=1, max_size=30))
def test_command_output_is_idempotent_and_keeps_every_record(pairs):
    data = "".join(json.dumps({"instruction": i, "output": o, "n": k}, ensure_ascii=False) + "\n"
                   for k, (i, o) in enumerate(pairs))
    once = invoke(["clean", "-q"], input=data)
    assert once.exit_code == 0, once
    assert [r["n"] for r in once.records()] == list(range(len(pairs)))
    twice = invoke(["clean", "-q"], input=once.stdout_bytes)
    assert twice.stdout_bytes == once.stdout_bytes
