"""--apply: a record with its decision applied.

accepted  -> `human_verified: true`, edited fields replaced, `_review: {decision, reviewer,
             time, original: {field: old text}}` (original only when edited)
rejected  -> unchanged but for `_review: {decision, reason, reviewer, time}` (to --rejects);
             with --mark it stays in the output and also gets `human_verified: false`
undecided -> unchanged
"""

from __future__ import annotations

from cqia_cli import fields as F
from cqia_cli.review.store import Decision


def accepted(record: dict, d: Decision) -> dict:
    rec = dict(record)
    original = {}
    for field, text in d.edits.items():
        old = F.get(rec, field)
        if old != text:
            original[field] = old
            F.set(rec, field, text)
    rec["human_verified"] = True
    note = {"decision": "accept", "reviewer": d.reviewer, "time": d.time}
    if original:
        note["original"] = original
    rec["_review"] = note
    return rec


def rejected(record: dict, d: Decision, *, mark: bool = False) -> dict:
    rec = dict(record)
    if mark:
        rec["human_verified"] = False
    rec["_review"] = {"decision": "reject", "reason": d.reason, "reviewer": d.reviewer,
                      "time": d.time}
    return rec
