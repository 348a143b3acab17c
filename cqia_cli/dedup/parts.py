"""Per-field evidence: where a record's prompt ends and its input and answer begin.

The compared text is the record's fields joined by newlines (instruction, input, output by
default). A long prompt shared by many records (an extraction task, a sentence-pair task)
makes two records with different inputs and answers look alike, even when the prompt is too
rare for the template rule (templates.py) to see. So, when the text is made of more than one
field, the texts of a batch carry where their first field (the prompt) ends, and the verifier
(verify.py) also asks that the rest (input and answer) be similar.

`PartsGetter` builds the text as `fields.TextGetter` does, as a `Text`: a `str` that also knows
the length of its first field (`head`) when a field between the first and the last (the
input) is not empty: a prompt applied to an input. Without an input (a plain `str`, head -1)
the first field is the question itself, the content of the record (an exam question with two
wordings of its explanation is a duplicate), and the rule does not apply. `normalize_parts`
normalises a batch and says how many normalised units of each text belong to the first field
(-1: the rule does not apply).
"""

from __future__ import annotations

import numpy as np

from cqia_cli.fields import TextGetter, as_text
from cqia_cli.dedup.normalize import normalize_batch


class Text(str):
    """A record's compared text that knows the length of its first field (the prompt): the
    text is that field, a newline, then the other fields (when both are non-empty)."""

    head: int = -1


class PartsGetter(TextGetter):
    """TextGetter whose texts are `Text`s with `head` set (when there are several fields)."""

    __slots__ = ()

    def __call__(self, record: dict):
        if len(self.fields) < 2:
            return super().__call__(record)
        if self._tops is not None:
            parts = [v if type(v) is str else as_text(v)
                     for v in [record.get(k) for k in self._tops]]
        else:
            parts = [as_text(p(record)) for p in self._paths]
        joined = "\n".join([t for t in parts if t])
        if not any(parts[1:-1]):
            return joined  # no input: a plain str (its head is -1), no copy into a Text
        text = Text(joined)  # an input: the first field is a prompt applied to it
        text.head = len(parts[0]) if parts[0] else 0
        return text


def heads_of(texts: list[str]) -> np.ndarray:
    """Each text's `head` (raw characters of its first field), -1 for a plain str."""
    return np.fromiter((getattr(t, "head", -1) for t in texts), dtype=np.int64,
                       count=len(texts))


def normalize_parts(texts: list[str], convert=None) -> tuple[np.ndarray, np.ndarray,
                                                             np.ndarray]:
    """(units, lens, heads) of a batch: as normalize_batch (after `convert`, the --t2s
    conversion), and the normalised units of each text's first field (-1: one field only).

    A text is normalised as its two pieces, first field and the rest, which gives the same
    units as the whole (normalisation is per character, and the newline between the pieces
    is dropped by it: nothing composes across it)."""
    heads = heads_of(texts)
    if not (heads >= 0).any():
        if convert is not None:
            texts = [convert(t) for t in texts]
        units, lens = normalize_batch(texts)
        return units, lens, heads
    pieces: list[str] = []
    for t, h in zip(texts, heads.tolist()):
        a, b = (t[:h], t[h:]) if h >= 0 else (t, "")
        if convert is not None:
            a, b = convert(a), convert(b) if b else b
        pieces.append(a)
        pieces.append(b)
    units, plens = normalize_batch(pieces)
    plens = plens.reshape(-1, 2)
    lens = plens.sum(axis=1)
    return units, lens, np.where(heads >= 0, plens[:, 0], -1)
