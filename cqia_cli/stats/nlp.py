"""jieba-based figures of `cqia stats`: word counts (--tokens) and instruction diversity
(--diversity). jieba is imported on first use, quietly (no "Building prefix dict" on stderr).

Word count: the words jieba.cut (default dictionary, HMM on) finds in the text, not counting
whitespace-only tokens.

Diversity, after the verb-noun figure of the COIG-CQIA paper: the first sentence of each
instruction (up to 。？！?! or a line break, at most DIVERSITY_CHARS characters) is tagged with
jieba.posseg; the leading verb is the first word
tagged as a verb (v, vd, vi, vg, vq) that is not a politeness or auxiliary word (AUX_VERBS:
请, 请问, 麻烦, 帮, 能, 可以, ..., and any word that starts with 请, such as 请为 and 请将), nor a
word jieba mistags as a verb (NOT_VERBS: 下列), and its noun is the first word after it
tagged as a noun (n, nr, ns, nt, nz, ng, ...). Instructions without such a verb are counted as
"no verb".
"""

from __future__ import annotations

import re
from typing import Any

from cqia_cli.fields import as_text
from cqia_cli.stats.tally import Tally

DIVERSITY_CHARS = 100
_SENTENCE_END = re.compile(r"[。？！?!\n]")
VERB_FLAGS = frozenset({"v", "vd", "vi", "vg", "vq"})
AUX_VERBS = frozenset({"请", "请问", "麻烦", "帮", "帮忙", "帮我", "能", "能否", "可以", "可否",
                       "会", "想", "要", "需要", "让", "希望"})
NOT_VERBS = frozenset({"下列"})
PAIR_SEP = "\t"

_jieba = None
_posseg = None


def load_jieba():
    """jieba and jieba.posseg, loaded once per process (quietly)."""
    global _jieba, _posseg
    if _jieba is None:
        import logging

        import jieba
        import jieba.posseg

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba, _posseg = jieba, jieba.posseg
    return _jieba, _posseg


def word_count(text: str) -> int:
    jieba, _ = load_jieba()
    return sum(1 for w in jieba.cut(text) if not w.isspace())


def leading_verb_noun(text: str) -> tuple[str | None, str | None]:
    """The leading verb of an instruction and the first noun after it (None when absent)."""
    _, posseg = load_jieba()
    verb = None
    first = _SENTENCE_END.split(text[:DIVERSITY_CHARS], 1)[0]
    for pair in posseg.cut(first):
        word, flag = pair.word, pair.flag
        if verb is None:
            if (flag in VERB_FLAGS and word not in AUX_VERBS and word not in NOT_VERBS
                    and not word.startswith("请")):
                verb = word
        elif flag.startswith("n"):
            return verb, word
    return verb, None


def measure(items: list[tuple]) -> list[tuple]:
    """The jieba figures of a batch of `Accumulator.nlp_inputs` (in a worker process):
    [(word counts of the texts or None, (verb, noun) or None), ...]."""
    out = []
    for texts, inst in items:
        words = None if texts is None else [None if t is None else word_count(t)
                                            for t in texts]
        out.append((words, None if inst is None else leading_verb_noun(inst)))
    return out


class Diversity:
    """Leading verbs and verb-noun pairs of instructions (capped tallies, first seen first)."""

    def __init__(self, cap: int) -> None:
        self.instructions = 0
        self.no_verb = 0
        self.verbs = Tally(cap)
        self.pairs = Tally(cap)

    def add(self, instruction: Any) -> None:
        if instruction is None:
            return
        text = instruction if type(instruction) is str else as_text(instruction)
        self.add_result(*leading_verb_noun(text))

    def add_result(self, verb: str | None, noun: str | None) -> None:
        """Count one instruction whose leading verb and noun are known."""
        self.instructions += 1
        if verb is None:
            self.no_verb += 1
            return
        self.verbs.add_value(verb)
        if noun is not None:
            self.pairs.add_value(verb + PAIR_SEP + noun)

    def merge(self, other: "Diversity") -> None:
        self.instructions += other.instructions
        self.no_verb += other.no_verb
        self.verbs.merge(other.verbs)
        self.pairs.merge(other.pairs)

    def top_pairs(self, verbs: int = 20, nouns: int = 4) -> list[tuple[str, int, list]]:
        """The top verbs, each with its top nouns: [(verb, count, [(noun, count), ...])]."""
        by_verb: dict[str, list] = {}
        for key, n in self.pairs.top():
            verb, _, noun = key.partition(PAIR_SEP)
            by_verb.setdefault(verb, []).append((noun, n))
        return [(v, n, by_verb.get(v, [])[:nouns]) for v, n in self.verbs.top(verbs)]

    def to_json(self) -> dict:
        pairs = self.pairs.to_json()
        pairs["values"] = [k.split(PAIR_SEP, 1) + [n] for k, n in self.pairs.counts.items()]
        return {"instructions": self.instructions, "no_verb": self.no_verb,
                "verbs": self.verbs.to_json(), "pairs": pairs}

    @classmethod
    def from_json(cls, d: dict, cap: int) -> "Diversity":
        div = cls(cap)
        div.instructions = int(d["instructions"])
        div.no_verb = int(d["no_verb"])
        div.verbs = Tally.from_json(d["verbs"], cap)
        pairs = dict(d["pairs"])
        pairs["values"] = [[v + PAIR_SEP + n, c] for v, n, c in d["pairs"]["values"]]
        div.pairs = Tally.from_json(pairs, cap)
        return div
