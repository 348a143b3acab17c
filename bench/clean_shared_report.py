"""What `cqia clean`'s defaults change on the shared COIG-CQIA data: per step, the records and
fields it changed, and a few of its changes (before -> after, the changed stretch only), and
what `cqia filter` drops as garbled before and after cleaning.

    python bench/clean_shared_report.py [--samples N]

docs/clean.md quotes its output.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import subprocess
import tempfile
from pathlib import Path

from harness import SHARED, cqia_command


def run(args: list[str]) -> None:
    subprocess.run(cqia_command() + args, check=True, stderr=subprocess.DEVNULL)


def rejects(path: Path) -> collections.Counter:
    c: collections.Counter = collections.Counter()
    for line in path.read_text("utf-8").splitlines():
        r = json.loads(line)["_reject"]
        detail = r["detail"]
        kind = detail.split(" U+")[0] if r["rule"] == "garbled" else ""
        c[(r["rule"], kind)] += 1
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=3)
    args = ap.parse_args()
    files = sorted(glob.glob(str(SHARED / "*" / "*.jsonl")))
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        data = t / "all.jsonl"
        with open(data, "wb") as out:
            for f in files:
                out.write(Path(f).read_bytes())
        run(["clean", "-q", str(data), "--changes", str(t / "changes.jsonl"), "--report",
             str(t / "report.json"), "-o", str(t / "clean.jsonl")])
        report = json.loads((t / "report.json").read_text("utf-8"))
        print(f"{report['records']:,} records, {report['changed']:,} changed "
              f"({report['changed'] / report['records']:.1%})\n")
        print("| step | records | fields | chars removed | chars replaced |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for s in report["steps"]:
            print(f"| {s['step']} | {s['records']:,} | {s['fields']:,} | {s['removed']:,} | "
                  f"{s['replaced']:,} |")
        by_step = collections.defaultdict(list)
        for line in (t / "changes.jsonl").read_text("utf-8").splitlines():
            e = json.loads(line)
            if len(e["steps"]) == 1:
                by_step[e["steps"][0]].append(e)
        for name, entries in by_step.items():
            step = len(entries) // args.samples or 1
            print(f"\n{name} ({len(entries):,} fields changed by it alone), e.g.:")
            for e in entries[::step][:args.samples]:
                b = json.dumps(e["before"][:90], ensure_ascii=False)
                a = json.dumps(e["after"][:90], ensure_ascii=False)
                print(f"- line {e['line']} {e['field']}: {b} -> {a}")
        run(["filter", "-q", str(data), "--rejects", str(t / "rej0.jsonl"), "-o",
             str(t / "k0.jsonl")])
        run(["filter", "-q", str(t / "clean.jsonl"), "--rejects", str(t / "rej1.jsonl"), "-o",
             str(t / "k1.jsonl")])
        before, after = rejects(t / "rej0.jsonl"), rejects(t / "rej1.jsonl")
        print("\nfilter rejections, before -> after clean:")
        for key in sorted(set(before) | set(after)):
            rule, kind = key
            print(f"- {rule}{' (' + kind + ')' if kind else ''}: {before[key]} -> {after[key]}")
        print(f"- total: {sum(before.values())} -> {sum(after.values())}")


if __name__ == "__main__":
    main()
