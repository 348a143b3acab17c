"""What kind of question a record asks, and whether a short output can answer it.

Used by the `non-answer` rule. A question's kinds are read from its text (instruction and
input) with a few plain patterns:

- `choice`: lettered or numbered options (A. ... B. ..., （A）, ①②), or 选择题, 下列, 哪一项,
  "which of the following";
- `fill`: a blank (____, （ ）) or 填空, 填入;
- `maths`: arithmetic (3+4, x=, LaTeX), 计算, 等于, 多少, 几, 哪一年, "how many";
- `yesno`: 是否, 对吗, A-not-A questions (是不是, 会不会, 能不能), a question ending in 吗,
  判断, "true or false" — unless it also asks how or why (怎么, 为什么, 如何);
- `short`: a wh-question (什么, 谁, 哪里, 何时, who, what, where), or a task whose answer is a
  label or a word (分类, 情感, 抽取, 翻译, classify, extract);
- `open`: none of these (explain, describe, recommend, a forum post's title).

A question may have several kinds (`1+1=2对吗` is maths and yesno); an answer may take the
form of any of them.
"""

from __future__ import annotations

import re

import regex

KINDS = ("open", "short", "choice", "yesno", "fill", "maths")

#: how many characters of the question are read (its end: options and the question itself
#: come last in exam items that quote a long passage first)
QUESTION_TAIL = 3000

_OPTION = re.compile(r"(?:^|(?<=[\s（(【\[:：。，,；;、]))[（(【\[]?([A-Ha-h])[)）】\]]?\s*[\.．、:：)）]"
                     r"|[（(]([A-H])[)）]")
_CIRCLED = re.compile(r"[①②③④⑤⑥⑦⑧⑨⑩]")
_CHOICE_WORDS = re.compile(r"(?i)选择题|单选|多选|单项选择|不定项|选项|下列|以下哪|下面哪|哪一项|哪项|"
                           r"哪个选项|选出|应选|选哪|which of the following|multiple[- ]choice|"
                           r"choose the|select the")
_FILL = re.compile(r"(?i)填空|填入|填写|补全|补充完整|_{2,}|＿{2,}|[（(]\s*[)）]|【\s*】|"
                   r"fill in the blank")
#: arithmetic: a maths question whatever else it asks
_ARITHMETIC = re.compile(r"(?i)\d\s*[+\-×÷*/^=＋－＝]\s*[\d(（a-z]|[a-z]\s*[=＝]\s*[\d?？]|\$[^$]+\$|"
                         r"计算|等于|得数|求值|求解|解方程|方程|算式|百分之|概率|面积|周长|体积|"
                         r"calculate|compute|solve")
#: a question for a quantity (几点, 多少钱, 哪一年), unless it also asks how or why or for a
#: recommendation (求推荐几部电影 wants titles, not a number)
_QUANTITY = re.compile(r"(?i)多少|第几|几|哪一年|哪年|何年|how many|how much|how old|what year")
_OPEN_WORDS = re.compile(r"(?i)怎么|怎样|如何|为什么|为何|为啥|咋|怎么办|什么办法|哪些方法|"
                         r"推荐|介绍|分析|解释|描述|谈谈|说说|讲讲|评价|看法|建议|理由|原因|"
                         r"哪些|有什么|什么样|什么东西|注意什么|"
                         r"\bhow\b|\bwhy\b|explain|describe")
#: a yes/no question whatever else it asks
_YESNO_STRONG = re.compile(r"(?i)是否|判断|对错|正误|真假|是或否|对或错|是/否|true or false|"
                           r"yes or no|yes/no|"
                           r"[“\"'「](?:是|对|正确|yes|true)[”\"'」]\s*(?:或|还是|or|/)")
#: a yes/no question, unless it also asks how or why
_YESNO = re.compile(r"(?i)对吗|对不对|对么|正确吗|错误吗|是吗|是么|行吗|可以吗|能吗|好吗|"
                    r"有没有|(.)不\1|可不可以|能否|"
                    r"\b(?:is|are|does|do|can|should|will)\b[^?\n]*\?")
#: a question that ends in 吗 (吗？, 吗?, 吗。, or 吗 at the end)
_MA_END = re.compile(r"[吗嘛麼么][？?!！。.\s]*$")
#: tasks whose answer is a label, a word or a phrase (classification, extraction, translation
#: of a word), whatever else the question says (情感分析 is a classification)
_LABEL = re.compile(r"(?i)分类|归类|类别|标签|情感|意图|实体|抽取|提取|关键词|属于哪|翻译|译成|"
                    r"一个词|一个字|词性|拼音|反义词|近义词|同义词|标题|起名|取名|命名|"
                    r"label|classif|categor|sentiment|extract|keyword|translat|antonym|synonym")
_SHORT = re.compile(r"(?i)什么|啥|谁|哪|何时|何地|何人|何处|何物|叫什么|名字|"
                    r"\b(?:who|what|when|where|which|whose|name)\b")


def question_kinds(question: str) -> frozenset[str]:
    """The kinds of a question (see the module's docstring); {"open"} when none fits."""
    q = question[-QUESTION_TAIL:] if len(question) > QUESTION_TAIL else question
    kinds = set()
    letters = {(a or b).upper() for a, b in _OPTION.findall(q)}
    if ({"A", "B"} <= letters or len(_CIRCLED.findall(q)) >= 2
            or _CHOICE_WORDS.search(q)):
        kinds.add("choice")
    if _FILL.search(q):
        kinds.add("fill")
    asks_how = _OPEN_WORDS.search(q) is not None
    if _ARITHMETIC.search(q) or not asks_how and _QUANTITY.search(q):
        kinds.add("maths")
    if _YESNO_STRONG.search(q) or not asks_how and (_YESNO.search(q) or _MA_END.search(q)):
        kinds.add("yesno")
    if _SHORT.search(q) and not asks_how or _LABEL.search(q):
        kinds.add("short")
    return frozenset(kinds) if kinds else frozenset(("open",))


#: letters, digits and ideographs: what counts as content in a short answer
_CONTENT = regex.compile(r"[\p{L}\p{N}]")
#: what is stripped before comparing with the filler list and the answer forms
NOISE = regex.compile(r"[\s\p{P}\p{S}\p{M}\p{Cf}]+")
_NUMBER = re.compile(r"^[-+−]?(?:\d+(?:[.,:/]\d+)*|\d*\.\d+)%?$|^[\d\s.,:/%+\-−×÷=~]+$")
_CHOICE_FORM = regex.compile(r"(?i)^(?:选|答案|答|应选|正确答案)?(?:是)?[a-h]{1,8}(?:项|选项)?$"
                             r"|^[①②③④⑤⑥⑦⑧⑨⑩]+$")
YES_NO_WORDS = frozenset((
    "是", "是的", "不是", "对", "对的", "不对", "错", "错的", "错误", "正确", "会", "不会", "能",
    "不能", "可以", "不可以", "有", "没有", "无", "行", "不行", "否", "要", "不要", "需要",
    "不需要", "应该", "不应该", "同意", "不同意", "好", "嗯", "√", "×", "✓", "✗", "yes", "no",
    "true", "false", "t", "f", "y", "n", "对吗",
))


#: yes/no answers made of a symbol
TICKS = frozenset("√×✓✗✔✘")


#: words that join fillers without adding anything: 顶一下, 帮顶一下楼主, 收藏了哈
JOINERS = frozenset(("一下", "一个", "一波", "个", "楼主", "lz", "了", "的", "啊", "呀", "哈",
                     "吧", "呢", "哦", "先", "再", "来", "也", "帮", "我", "看看", "链接"))


def is_filler(key: str, filler: frozenset[str], longest: int = 12) -> bool:
    """True when `key` (without spaces and punctuation, lower-cased) is one filler reply, or
    several run together, maybe with joining words: 插个眼+1, hhh+1, dddd, 帮顶一下楼主."""
    if key in filler:
        return True
    if len(key) > 24:
        return False
    # ok[i]: key[:i] splits into fillers and joiners; 1 without a filler yet, 2 with one
    ok = [1] + [0] * len(key)
    for end in range(1, len(key) + 1):
        for start in range(max(0, end - longest), end):
            if not ok[start]:
                continue
            part = key[start:end]
            if part in filler:
                ok[end] = 2
                break
            if part in JOINERS:
                ok[end] = max(ok[end], ok[start])
    return ok[-1] == 2


def content_length(text: str) -> int:
    """Letters, digits and ideographs in `text` (what a reader counts as the answer)."""
    return len(_CONTENT.findall(text))


def is_number(text: str) -> bool:
    """A bare number: 3, -2.5, 1/2, 3:1, 75%, 1,000 (spaces and a final full stop ignored)."""
    t = text.strip().rstrip("。.").strip()
    return bool(t) and any(c.isdigit() for c in t) and _NUMBER.match(t) is not None


def fits(kinds: frozenset[str], key: str, raw: str) -> bool:
    """True when a short answer (`key`: without spaces and punctuation, lower-cased; `raw`: as
    written) has the form one of the question's kinds expects: a number for maths, fill-in or
    choice questions, an option letter for choice questions, a yes/no word for yes/no ones."""
    if kinds & {"maths", "fill", "choice"} and is_number(raw):
        return True
    if "choice" in kinds and _CHOICE_FORM.match(key):
        return True
    if "yesno" in kinds and key in YES_NO_WORDS:
        return True
    return False
