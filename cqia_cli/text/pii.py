"""Detectors of personal and contact information in Chinese text.

Each detector is a compiled pattern (the `re` module: plain classes scan several times faster
than with `regex`) plus, where the format has one, a checksum, so that random
digit runs (an answer to a maths question, a product code) do not match:

    url        http(s):// and www. links (off by default: curated answers cite documentation)
    email      name@domain.tld, except reserved example domains
    mobile     mainland mobile numbers 1[3-9]x xxxx xxxx, +86 allowed; not inside arithmetic
    landline   0xx(x)-xxxxxxx(x) and (0xx)xxxxxxx, 400/800 service numbers
    qq         a QQ number after QQ/扣扣/企鹅 (号/群)
    wechat     a WeChat id after 微信/vx/wx/weixin (号)
    id-card    18-digit resident identity numbers with a valid date and ISO 7064 checksum
    bank-card  16-19 digit card numbers with an issuer prefix and a valid Luhn checksum
"""

from __future__ import annotations

import re
from typing import Callable, Iterator

KINDS = ("url", "email", "mobile", "landline", "qq", "wechat", "id-card", "bank-card")
DEFAULT_KINDS = ("email", "mobile", "landline", "qq", "wechat", "id-card", "bank-card")

#: an arithmetic neighbour: a number next to one of these is maths, not a phone number
_MATH_BEFORE = r"(?<![\d.,=+\-*/×÷^$%<>])(?<![\d.,=+\-*/×÷^$%<>]\s)"
_MATH_AFTER = r"(?!\s?[\d.,=+\-*/×÷^$%<>])"

URL = re.compile(r"(?i)(?<![A-Za-z0-9])(?:https?://|www\.)[^\s<>\"'）)，。]+")
EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
                      r"\.[A-Za-z]{2,})(?![0-9A-Za-z_-])")
EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net", "example.cn", "localhost",
                   "domain.com", "xxx.com", "xx.com", "test.com", "email.com", "company.com",
                   "yourdomain.com", "mail.com")
MOBILE = re.compile(
    _MATH_BEFORE + r"(?<![0-9A-Za-z_])(?:(?:\+|00)?86[-\s]?)?"
    r"(1(?:3\d|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8\d|9[0-35-9])(?:[-\s]?\d{4}){2})"
    r"(?![0-9A-Za-z_])" + _MATH_AFTER)
LANDLINE = re.compile(
    _MATH_BEFORE + r"(?<![0-9A-Za-z_])(?:(?:\(0\d{2,3}\)|（0\d{2,3}）)\s?|0\d{2,3}-)[2-9]\d{6,7}(?![0-9A-Za-z_-])"
    + _MATH_AFTER
    + r"|(?<![0-9A-Za-z_-])[48]00-?\d{3}-?\d{4}(?![0-9A-Za-z_-])")
QQ = re.compile(r"(?i)(?:qq|扣扣|企鹅)\s*(?:号码|号|群)?\s*[:：是为]?\s*([1-9]\d{4,11})(?!\d)")
WECHAT = re.compile(
    r"(?:微信|威信|薇信|[vV]信)\s*(?:号码|号|[iI][dD])?\s*[:：是为]?\s*([a-zA-Z][-_a-zA-Z0-9]{5,19})"
    r"(?![-_a-zA-Z0-9])"
    r"|(?<![A-Za-z0-9])(?i:vx|wx|weixin|wechat)\s*(?:号码|号|id)?\s*[:：]\s*"
    r"([a-zA-Z][-_a-zA-Z0-9]{5,19})(?![-_a-zA-Z0-9])")
ID_CARD = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}"
    r"[\dXx](?![0-9A-Za-z])")
BANK_CARD = re.compile(_MATH_BEFORE + r"(?<![0-9A-Za-z_-])(?:\d[ -]?){15,18}\d(?![0-9A-Za-z_-])" + _MATH_AFTER)
_CARD_PREFIX = re.compile(r"62|4|5[1-5]|2[2-7]|3[47]|35|60|65")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_checksum_ok(number: str) -> bool:
    """ISO 7064 MOD 11-2, as GB 11643 defines for resident identity numbers."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(number, _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == number[17].upper()


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _find_url(text: str) -> str | None:
    if "http" not in text and "www." not in text and "WWW." not in text:
        return None
    m = URL.search(text)
    return m.group(0) if m else None


def _find_email(text: str) -> str | None:
    if "@" not in text:
        return None
    for m in EMAIL.finditer(text):
        domain = m.group(1).lower()
        if not any(domain == d or domain.endswith("." + d) for d in EXAMPLE_DOMAINS):
            return m.group(0)
    return None


#: the digits each number pattern needs, without its lookarounds: `re` finds these fast (a
#: literal or class prefix), while the full patterns, which open with lookbehinds, are tried at
#: every position. A text without them cannot match the full pattern, so it skips it.
_MOBILE_CORE = re.compile(r"1(?:3\d|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8\d|9[0-35-9])"
                          r"(?:[-\s]?\d{4}){2}")
_LANDLINE_CORE = re.compile(r"[2-9]\d{6}|[48]00-?\d{3}-?\d{4}")
_ID_CORE = re.compile(r"\d{17}[\dXx]")
_CARD_CORE = re.compile(r"(?:\d[ -]?){15,18}\d")


def _find_mobile(text: str) -> str | None:
    if not _MOBILE_CORE.search(text):
        return None
    m = MOBILE.search(text)
    return m.group(0).strip() if m else None


def _find_landline(text: str) -> str | None:
    if not _LANDLINE_CORE.search(text):
        return None
    m = LANDLINE.search(text)
    return m.group(0).strip() if m else None


def _find_qq(text: str) -> str | None:
    m = QQ.search(text)
    return m.group(0) if m else None


_WECHAT_WORD = re.compile(r"[微威薇vV]信|[vVwW][xX]|[wW][eE](?:[iI][xX][iI][nN]|[cC][hH][aA][tT])")


def _find_wechat(text: str) -> str | None:
    if not _WECHAT_WORD.search(text):
        return None
    m = WECHAT.search(text)
    return m.group(0) if m else None


def _find_id(text: str) -> str | None:
    if not _ID_CORE.search(text):
        return None
    for m in ID_CARD.finditer(text):
        if id_checksum_ok(m.group(0)):
            return m.group(0)
    return None


def _find_card(text: str) -> str | None:
    if not _CARD_CORE.search(text):
        return None
    for m in BANK_CARD.finditer(text):
        digits = m.group(0).replace(" ", "").replace("-", "")
        if 16 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn_ok(digits):
            return m.group(0).strip()
    return None


FINDERS: dict[str, Callable[[str], str | None]] = {
    "url": _find_url,
    "email": _find_email,
    "mobile": _find_mobile,
    "landline": _find_landline,
    "qq": _find_qq,
    "wechat": _find_wechat,
    "id-card": _find_id,
    "bank-card": _find_card,
}

#: cheap tests (the `re` module, plain classes) that let most texts skip the detectors: every
#: number the detectors look for has 3 digits, maybe a separator, then 4 more
_NUMBER_LIKE = re.compile(r"[0-9][0-9][0-9][-\s]?[0-9][0-9][0-9][0-9]")
_QQ_WORD = re.compile(r"[qQ][qQ]|扣扣|企鹅")
_DIGITS = b"0123456789"


def _digit_count(text: str) -> int:
    ascii_part = text.encode("ascii", "ignore")
    return len(ascii_part) - len(ascii_part.translate(None, _DIGITS))


def prefilter(kinds: tuple[str, ...]) -> Callable[[str], bool]:
    """A cheap test: False when none of the kinds can be in the text (no '@', no link, no
    run of digits, no QQ or WeChat word). Only texts that pass it are scanned in full."""
    digits = any(k in kinds for k in ("mobile", "landline", "id-card", "bank-card"))
    url = "url" in kinds
    email = "email" in kinds
    qq = "qq" in kinds
    wechat = "wechat" in kinds
    number_like = _NUMBER_LIKE.search

    def may_have(text: str) -> bool:
        if email and "@" in text:
            return True
        if url and ("http" in text or "www." in text or "WWW." in text):
            return True
        if digits and _digit_count(text) >= 7 and number_like(text):
            return True
        if not (qq or wechat):
            return False
        if "扣扣" in text or "企鹅" in text or "微信" in text or "威信" in text or \
                "薇信" in text or "v信" in text or "V信" in text:
            return True
        if text.isascii() or "q" in text or "Q" in text or "x" in text or "X" in text or \
                "we" in text or "We" in text or "WE" in text:
            low = text.lower()
            return "qq" in low or "vx" in low or "wx" in low or "weixin" in low or \
                "wechat" in low
        return False

    return may_have


_TRIGGERS = {
    "url": ("http", "www."),
    "email": ("@",),
    "qq": ("qq", "扣扣", "企鹅"),
    "wechat": ("微信", "威信", "薇信", "v信", "vx", "wx", "weixin", "wechat"),
}


def triggers(kinds: tuple[str, ...]) -> list[str]:
    """Lower-case strings one of which a text needs for the url, email, qq and wechat kinds;
    the digit kinds are pre-checked by `number_prefilter` instead."""
    return [t for k in kinds for t in _TRIGGERS.get(k, ())]


def number_prefilter(kinds: tuple[str, ...]) -> Callable[[str], bool]:
    """False when the text surely holds no mobile, landline, identity or card number."""
    if not any(k in kinds for k in ("mobile", "landline", "id-card", "bank-card")):
        return lambda text: False
    number_like = _NUMBER_LIKE.search

    def may_have_number(text: str) -> bool:
        return _digit_count(text) >= 7 and number_like(text) is not None

    return may_have_number


def finder(kinds: tuple[str, ...]) -> Callable[[str], tuple[str, str] | None]:
    """One function that returns (kind, matched text) of the first kind found, or None."""
    digit_kinds = [(k, FINDERS[k]) for k in kinds if k in ("mobile", "landline", "id-card",
                                                           "bank-card")]
    qq = FINDERS["qq"] if "qq" in kinds else None
    other = [(k, FINDERS[k]) for k in kinds if k in ("url", "email", "wechat")]
    number_like = _NUMBER_LIKE.search
    qq_word = _QQ_WORD.search

    def find(text: str) -> tuple[str, str] | None:
        for kind, fn in other:
            hit = fn(text)
            if hit:
                return kind, hit
        if (digit_kinds and not text.isdigit()
                and _digit_count(text) >= 7 and number_like(text)):
            for kind, fn in digit_kinds:
                hit = fn(text)
                if hit:
                    return kind, hit
        if qq is not None and qq_word(text):
            hit = qq(text)
            if hit:
                return "qq", hit
        return None

    return find


# -- every match, for masking (cqia clean's pii-mask step) ----------------------------------

#: the placeholder each kind is masked with
PLACEHOLDERS = {"url": "<URL>", "email": "<EMAIL>", "mobile": "<PHONE>", "landline": "<PHONE>",
                "qq": "<QQ>", "wechat": "<WECHAT>", "id-card": "<ID_CARD>",
                "bank-card": "<BANK_CARD>"}


def _spans_of(kind: str, text: str) -> Iterator[tuple[int, int]]:
    if kind == "url":
        if "http" in text or "www." in text or "WWW." in text:
            for m in URL.finditer(text):
                yield m.span()
    elif kind == "email":
        if "@" in text:
            for m in EMAIL.finditer(text):
                domain = m.group(1).lower()
                if not any(domain == d or domain.endswith("." + d) for d in EXAMPLE_DOMAINS):
                    yield m.span()
    elif kind == "mobile":
        if _MOBILE_CORE.search(text):
            for m in MOBILE.finditer(text):
                yield m.start(), m.start() + len(m.group(0).rstrip())
    elif kind == "landline":
        if _LANDLINE_CORE.search(text):
            for m in LANDLINE.finditer(text):
                yield m.start(), m.start() + len(m.group(0).rstrip())
    elif kind == "qq":
        if _QQ_WORD.search(text):
            for m in QQ.finditer(text):
                yield m.span(1)
    elif kind == "wechat":
        if _WECHAT_WORD.search(text):
            for m in WECHAT.finditer(text):
                yield m.span(1) if m.group(1) is not None else m.span(2)
    elif kind == "id-card":
        if _ID_CORE.search(text):
            for m in ID_CARD.finditer(text):
                if id_checksum_ok(m.group(0)):
                    yield m.span()
    elif kind == "bank-card":
        if _CARD_CORE.search(text):
            for m in BANK_CARD.finditer(text):
                digits = m.group(0).replace(" ", "").replace("-", "")
                if 16 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn_ok(digits):
                    yield m.start(), m.start() + len(m.group(0).rstrip())


def find_all(text: str, kinds: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """Every (start, end, kind) of the kinds in `text`, in order, none overlapping: where two
    overlap, the one that starts first (then the longer, then the earlier kind) wins. The same
    detectors as `finder`, so what `filter`'s pii rule would reject is what gets masked."""
    found = [(start, -end, i, kind) for i, kind in enumerate(kinds)
             for start, end in _spans_of(kind, text) if end > start]
    if not found:
        return []
    found.sort()
    out: list[tuple[int, int, str]] = []
    last = -1
    for start, neg_end, _, kind in found:
        if start >= last:
            out.append((start, -neg_end, kind))
            last = -neg_end
    return out
