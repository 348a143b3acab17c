"""The default `cqia filter` rules on the curated COIG-CQIA data in ../shared/data/coig-cqia.

    python bench/filter_shared_report.py [--examples N] [--markdown] [--min-kept 0.97]

COIG-CQIA is already curated, so nearly everything should pass: issue 3 asks for at least 97%
kept. This prints the per-rule table, the rejections per source file, and examples of what each
rule dropped (the text around the match), so that a curator can judge every kind of drop. It
exits with status 1 when less than --min-kept is kept. Not a unit test: tests must not read
../shared.
"""

from __future__ import annotations

import argparse
import glob
import sys
from collections import Counter, defaultdict
from pathlib import Path

import orjson

from cqia_cli.filtering import Filter, RuleSet

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "coig-cqia"


def snippet(text: str, detail: str, width: int = 70) -> str:
    """The text around the matched part of `detail` (after ': ' or between quotes)."""
    key = ""
    if "'" in detail:
        key = detail.split("'")[1]
    elif ": " in detail:
        key = detail.split(": ", 1)[1]
    i = text.find(key) if key else -1
    start = max(0, i - width // 2) if i >= 0 else 0
    return text[start:start + width].replace("\n", " ⏎ ")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SHARED))
    ap.add_argument("--examples", type=int, default=5)
    ap.add_argument("--min-kept", type=float, default=0.97)
    args = ap.parse_args()
    files = sorted(glob.glob(str(Path(args.data) / "*" / "*.jsonl")))
    if not files:
        print(f"no data under {args.data}", file=sys.stderr)
        return 2
    flt = Filter(RuleSet().build())
    total = kept = 0
    by_rule: Counter = Counter()
    by_file: Counter = Counter()
    size_by_file: Counter = Counter()
    examples: dict[str, list] = defaultdict(list)
    for path in files:
        name = str(Path(path).relative_to(args.data))
        with open(path, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                rec = orjson.loads(line)
                total += 1
                size_by_file[name] += 1
                reasons = flt.check(rec)
                if reasons is None:
                    kept += 1
                    continue
                rule, field, detail = reasons[0]
                by_rule[rule] += 1
                by_file[name] += 1
                if len(examples[rule]) < args.examples:
                    text = rec.get(field) if isinstance(rec.get(field), str) else ""
                    examples[rule].append((name, field, detail, snippet(text, detail)))
    share = kept / total
    print(f"## cqia filter (default rules) on {args.data}\n")
    print(f"kept {kept:,} of {total:,} ({share:.1%}), rejected {total - kept:,}\n")
    print("| rule | rejected | share |\n| --- | ---: | ---: |")
    for r in flt.rules:
        print(f"| {r.name} | {by_rule[r.name]:,} | {by_rule[r.name] / total:.2%} |")
    print(f"| **kept** | {kept:,} | {share:.2%} |\n")
    print("| source file | rejected | of |\n| --- | ---: | ---: |")
    for name, n in by_file.most_common():
        print(f"| {name} | {n:,} | {size_by_file[name]:,} |")
    print("\n### examples of what each rule dropped\n")
    for r in flt.rules:
        if not examples[r.name]:
            continue
        print(f"**{r.name}**\n")
        for name, field, detail, text in examples[r.name]:
            print(f"- `{name}` {field}: {detail} — “{text}”")
        print()
    if share < args.min_kept:
        print(f"FAILED: kept {share:.1%} < {args.min_kept:.0%}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
