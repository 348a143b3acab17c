"""Where code, LaTeX maths and links are in a text: spans that text rules and cleaning steps
read around or leave alone.

    prose(text)              the text without code, maths and links (filter's rules read it)
    without_code(text)       the text without code and maths (links stay)
    protected(text, ...)     [(start, end), ...] of code blocks, inline code, maths, links
    outside(text, spans, fn) fn applied to each stretch between the spans, the spans untouched
"""

from __future__ import annotations

import re
from typing import Callable

#: fenced code blocks (to the end of the text when unclosed), inline code, $$..$$, $..$,
#: \[..\], \(..\)
CODE_OR_MATH = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`|\$\$.*?\$\$|\$[^$\n]+\$"
                          r"|\\\[.*?\\\]|\\\(.*?\\\)", re.S)
#: fenced code blocks and inline code only
CODE = re.compile(r"```.*?(?:```|\Z)|`[^`\n]+`", re.S)
#: maths only
MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$|\\\[.*?\\\]|\\\(.*?\\\)", re.S)
#: links as filter reads them: up to the next whitespace
URLS = re.compile(r"(?i)(?<![A-Za-z0-9])(?:https?://|www\.)\S+")
#: links as cleaning protects them: up to whitespace, a Han character or full-width punctuation
#: (a URL may hold commas; `，然后` after it is Chinese text again)
URL = re.compile(r"(?i)(?<![A-Za-z0-9])(?:https?://|www\.)"
                 r"[^\s<>\"'\u3000-\u303f\u3400-\u9fff\uff00-\uffef]+")


def prose(text: str) -> str:
    """The text without code blocks, inline code, LaTeX maths and links."""
    if "`" in text or "$" in text or "\\" in text:
        text = CODE_OR_MATH.sub(" ", text)
    if "http" in text or "www." in text:
        text = URLS.sub(" ", text)
    return text


def without_code(text: str) -> str:
    """The text without code blocks, inline code and LaTeX maths (links stay)."""
    if "`" in text or "$" in text or "\\" in text:
        return CODE_OR_MATH.sub(" ", text)
    return text


def protected(text: str, *, code: bool = True, math: bool = True,
              urls: bool = True) -> list[tuple[int, int]]:
    """The (start, end) spans of code, maths and links in `text`, sorted, not overlapping."""
    spans: list[tuple[int, int]] = []
    if (code or math) and ("`" in text or "$" in text or "\\" in text):
        pattern = CODE_OR_MATH if code and math else CODE if code else MATH
        spans.extend(m.span() for m in pattern.finditer(text))
    if urls and ("http" in text or "www." in text or "WWW." in text):
        spans.extend(m.span() for m in URL.finditer(text))
    return merge(spans)


def merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans sorted, overlapping ones joined."""
    if len(spans) < 2:
        return spans
    spans = sorted(spans)
    merged = [spans[0]]
    for start, end in spans[1:]:
        last_start, last_end = merged[-1]
        if start < last_end:
            if end > last_end:
                merged[-1] = (last_start, end)
        else:
            merged.append((start, end))
    return merged


def outside(text: str, spans: list[tuple[int, int]], fn: Callable[[str], str]) -> str:
    """`fn` applied to each stretch of `text` between `spans`, which stay as they are."""
    if not spans:
        return fn(text)
    parts = []
    pos = 0
    for start, end in spans:
        parts.append(fn(text[pos:start]))
        parts.append(text[start:end])
        pos = end
    parts.append(fn(text[pos:]))
    return "".join(parts)
