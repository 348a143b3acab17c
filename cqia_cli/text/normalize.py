"""Character classes and translation tables for normalising Chinese text.

Only what is safe on real text is here: full-width ASCII letters and digits and the ideographic
space map to ASCII, half-width katakana and Latin ligatures to their NFKC forms; full-width
Chinese punctuation (，。！？：；（）), circled numbers (①), superscripts (x²), units (㎡) and
Roman numerals (Ⅻ), which NFKC would also rewrite, are left as they are.
"""

from __future__ import annotations

import unicodedata

#: Han ideographs (CJK Unified Ideographs, extension A, compatibility ideographs), as a regex
#: class body
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
#: Han and the extensions beyond the BMP
HAN_ALL = HAN + "\U00020000-\U0003134f"

#: full-width letters and digits (Ａ-Ｚ ａ-ｚ ０-９)
FULLWIDTH_ALNUM = "\uff10-\uff19\uff21-\uff3a\uff41-\uff5a"
#: the ideographic space U+3000
IDEOGRAPHIC_SPACE = "\u3000"
#: half-width katakana and its marks
HALFWIDTH_KATAKANA = "\uff65-\uff9f"
#: Latin ligatures ﬀ ﬁ ﬂ ﬃ ﬄ ﬅ ﬆ
LIGATURES = "\ufb00-\ufb06"


def _width_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for lo, hi in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A)):
        for cp in range(lo, hi + 1):
            table[cp] = chr(cp - 0xFEE0)
    for cp in range(0xFF65, 0xFFA0):
        table[cp] = unicodedata.normalize("NFKC", chr(cp))
    for cp in range(0xFB00, 0xFB07):
        table[cp] = unicodedata.normalize("NFKC", chr(cp))
    return table


#: str.translate table of the `width` normalisation (without the ideographic space)
WIDTH_TABLE = _width_table()

#: zero-width and invisible formatting characters that carry nothing in Chinese text: zero
#: width space, word joiner, BOM (inside text), soft hyphen, Mongolian vowel separator
INVISIBLE = "\u200b\u2060\ufeff\u00ad\u180e"
#: zero-width (non-)joiners: meaningful in emoji sequences and in Indic and Arabic scripts
JOINERS = "\u200c\u200d"
#: characters next to which a joiner is meaningful (Arabic to Sinhala, Khmer, emoji and
#: symbols, variation selectors, skin tones)
JOINABLE = ("\u0600-\u0dff\u1780-\u17ff\u2600-\u27bf\ufe00-\ufe0f"
            "\U0001f000-\U0001faff")
#: spaces other than U+0020 and U+3000: no-break, en/em and the like, narrow no-break, maths
UNICODE_SPACES = "\u00a0\u2000-\u200a\u202f\u205f"
#: line and paragraph separators, NEL
LINE_BREAKS = "\u0085\u2028\u2029"
#: C0 and C1 controls but tab, newline and carriage return
CONTROLS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f"
