"""How well the default `cqia filter` rules tell junk from answers, on two sets.

    python bench/filter_quality.py [--data ../shared/data/coig-cqia] [--examples 2]

(a) Curated COIG-CQIA records (../shared/data/coig-cqia, 12,725 records): nearly all should be
    kept (target >= 99.5%), and every kind of drop is listed with examples, so that a curator
    can agree with each.
(b) The forum-scrape fixture tests/data/filter/forum.jsonl (bench/make_forum_fixture.py):
    records labelled junk (filler and slang replies, punctuation or emoji only, bare numbers and
    two-character replies to open questions, zalgo, contact solicitations) or real (short right
    answers to choice, yes/no, maths, fill-in and short-answer questions; ordinary answers).
    Targets: >= 95% of the junk rejected, >= 95% of the real answers kept; given per split
    ("tuned": the rules were shaped on it; "held-out", "held-out-2": written afterwards) and
    per kind.

Prints Markdown; exits 1 when a target is missed. Not a unit test (tests never read
../shared); tests/test_filter.py checks the fixture's targets.
"""

from __future__ import annotations

import argparse
import glob
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

import orjson

from cqia_cli.filtering import Filter, RuleSet

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "coig-cqia"
FORUM = ROOT / "tests" / "data" / "filter" / "forum.jsonl"


def drop_kind(rule: str, detail: str) -> str:
    """A detail without its particulars: what kind of drop it is."""
    d = re.sub(r"'[^']*'|“[^”]*”", "'…'", detail)
    d = re.sub(r": .*$", "", d) if rule in ("pii", "non-answer") else d
    d = re.sub(r"U\+[0-9A-F]{4,6}", "U+…", d)
    d = re.sub(r"[\d,.]+", "N", d)
    if rule == "references-missing-media":
        return f"refers to media it does not carry ({detail.split(': ', 1)[-1]})"
    if rule in ("ads", "llm-boilerplate"):
        return detail
    return d


def curated(data: Path, examples: int) -> bool:
    files = sorted(glob.glob(str(data / "*" / "*.jsonl")))
    if not files:
        print(f"(a) skipped: no data under {data}\n")
        return True
    flt = Filter(RuleSet().build())
    total = kept = 0
    kinds: Counter = Counter()
    shown: dict = defaultdict(list)
    for path in files:
        name = str(Path(path).relative_to(data))
        with open(path, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                rec = orjson.loads(line)
                total += 1
                reasons = flt.check(rec)
                if reasons is None:
                    kept += 1
                    continue
                rule, field, detail = reasons[0]
                key = (rule, drop_kind(rule, detail))
                kinds[key] += 1
                if len(shown[key]) < examples:
                    text = rec.get(field) if isinstance(rec.get(field), str) else ""
                    shown[key].append(f"{name} {field}: "
                                      + text[:60].replace("\n", " ⏎ "))
    share = kept / total
    ok = share >= 0.995
    print(f"## (a) curated COIG-CQIA: {data}\n")
    print(f"kept {kept:,} of {total:,} ({share:.2%}); target >= 99.5%: "
          f"{'met' if ok else 'MISSED'}\n")
    print("| rule | kind of drop | records | example |\n| --- | --- | ---: | --- |")
    for (rule, kind), n in sorted(kinds.items(), key=lambda kv: (kv[0][0], -kv[1])):
        ex = " / ".join(shown[rule, kind]).replace("|", "\\|")
        print(f"| {rule} | {kind} | {n} | {ex} |")
    print()
    return ok


def forum(path: Path) -> bool:
    flt = Filter(RuleSet().build())
    counts: Counter = Counter()
    by_kind: Counter = Counter()
    misses = []
    for line in path.read_bytes().splitlines():
        rec = orjson.loads(line)
        reasons = flt.check(rec)
        label, split, kind = rec["_label"], rec["_split"], rec["_kind"]
        right = (reasons is not None) == (label == "junk")
        counts[split, label, right] += 1
        counts["all", label, right] += 1
        by_kind[label, kind, right] += 1
        if not right:
            misses.append((split, label, kind, rec["instruction"][:24], rec["output"][:30],
                           reasons[0][2] if reasons else "kept"))
    print(f"## (b) forum-scrape fixture: {path.relative_to(ROOT)}\n")
    print("| split | junk rejected | real answers kept |\n| --- | ---: | ---: |")
    ok = True
    for split in ("tuned", "held-out", "held-out-2", "all"):
        jr, jw = counts[split, "junk", True], counts[split, "junk", False]
        rr, rw = counts[split, "real", True], counts[split, "real", False]
        if not jr + jw:
            continue
        print(f"| {split} | {jr}/{jr + jw} ({jr / (jr + jw):.1%}) | "
              f"{rr}/{rr + rw} ({rr / (rr + rw):.1%}) |")
        if split == "all":
            ok = jr / (jr + jw) >= 0.95 and rr / (rr + rw) >= 0.95
    print(f"\ntargets (all): junk rejected >= 95%, real kept >= 95%: "
          f"{'met' if ok else 'MISSED'}\n")
    print("| label | kind | right | of |\n| --- | --- | ---: | ---: |")
    for label, kind in sorted({(lb, k) for lb, k, _ in by_kind}):
        r, w = by_kind[label, kind, True], by_kind[label, kind, False]
        print(f"| {label} | {kind} | {r} | {r + w} |")
    if misses:
        print("\nmisses:\n")
        for m in misses:
            print(f"- {m[0]} {m[1]} ({m[2]}): {m[3]!r} -> {m[4]!r}: {m[5]}")
    print()
    return ok


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SHARED))
    ap.add_argument("--examples", type=int, default=2)
    args = ap.parse_args()
    ok_a = curated(Path(args.data), args.examples)
    ok_b = forum(FORUM)
    return 0 if ok_a and ok_b else 1


if __name__ == "__main__":
    sys.exit(main())
