"""A score out of a judge's answer, robustly: `8`, `8/10`, `评分：8`, `8分`, `{"score": 8}`
(also inside a ```json fence or after some words), `{"评分": 8.5, "理由": "..."}`; a reasoning
model's `<think>...</think>` block is ignored.

Out of the rubric's scale is a parse failure, as is an answer with no score or with two different
bare numbers and nothing saying which one is the score.
"""

from __future__ import annotations

import re

import orjson

SCORE_KEYS = ("score", "rating", "评分", "分数", "得分", "打分", "quality")
REASON_KEYS = ("reason", "explanation", "rationale", "理由", "原因", "评语", "解释")
NUM = r"(-?\d+(?:\.\d+)?)"
LABELLED = [
    re.compile(r"(?:评分|分数|得分|打分|总分|score|rating)\s*(?:为|是|:|：|=|\s)\s*\**\s*" + NUM,
               re.IGNORECASE),
    re.compile(NUM + r"\s*/\s*\d+(?:\.\d+)?"),
    re.compile(NUM + r"\s*分(?!之)"),
]
BARE = re.compile(r"^\s*\**\s*" + NUM + r"\s*\**\s*[。.]?\s*$")
OBJECT = re.compile(r"\{.*\}", re.DOTALL)


class ParseError(ValueError):
    pass


THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)


def strip_thinking(text: str) -> str:
    """The answer without a reasoning model's `<think>...</think>` block (DeepSeek-R1, Qwen3
    served without a reasoning parser put it in the content), whose numbers are not the score."""
    return THINK.sub("", text) if "<think>" in text else text


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*" + NUM + r"\s*(?:/\s*\d+(?:\.\d+)?|分)?\s*", value)
        if m:
            return float(m.group(1))
    return None


def _from_json(text: str):
    try:  # the usual case, JSON mode: the whole answer is the object
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        m = OBJECT.search(text)
        if not m:
            return None
        try:
            data = orjson.loads(m.group(0))
        except orjson.JSONDecodeError:
            return None
    if not isinstance(data, dict):
        return None
    if "score" in data:  # the usual key, as asked
        lower = data
    else:
        lower = {str(k).lower(): v for k, v in data.items()}
    for key in SCORE_KEYS:
        if key in lower:
            score = _number(lower[key])
            if score is None:
                raise ParseError(f"the score {lower[key]!r} is not a number")
            reason = next((lower[k] for k in REASON_KEYS if k in lower), None)
            return score, (None if reason is None else str(reason))
    return None


def parse_score(text: str, scale: tuple[float, float]) -> tuple[float, str | None]:
    """(score, reason or None); raises ParseError saying why not."""
    text = strip_thinking(text or "")
    if not text.strip():
        raise ParseError("empty answer")
    found = _from_json(text) if "{" in text else None
    if found is None:
        score = None
        m = BARE.match(text)
        if m:
            score = float(m.group(1))
        else:
            for pattern in LABELLED:
                m = pattern.search(text)
                if m:
                    score = float(m.group(1))
                    break
        if score is None:
            raise ParseError("no score in the answer")
        found = (score, text.strip())
    score, reason = found
    lo, hi = scale
    if not lo <= score <= hi:
        raise ParseError(f"score {score:g} is outside the scale {lo:g}-{hi:g}")
    return score, reason


def as_number(score: float):
    """8.0 -> 8 (an int in the output), 8.5 stays."""
    return int(score) if float(score).is_integer() else score
