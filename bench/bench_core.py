"""filter and dedup at -j 1 and -j 2: this tree against an older commit, in one run.

    python bench/bench_core.py --baseline 7ec2993 [--new HEAD] [--records N] [--rounds R]

Both commits are extracted (git archive) under bench/.cache/ (so that editing the work tree
while it runs changes nothing) and both trees run through
the same launcher and Python; each round runs every command of both trees once, alternating
which goes first, so that the load of a shared machine falls on both alike. Reported per
command: records/s of each tree (best, median, worst round) and the ratio new/old of each
round (its range, and the ratio of the medians), then the same by CPU time (user + system,
the -j workers included), the steadier figure when other processes share the machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tarfile
import io

from harness import CACHE, ROOT, big_input, compile_tree, measure

LAUNCH = ("import sys; sys.path.insert(0, {src!r}); sys.argv[0] = 'cqia'; "
          "from cqia_cli.cli import main; main()")

COMMANDS = {
    "filter -j 1": ["filter", "-q", "-j", "1"],
    "filter -j 2": ["filter", "-q", "-j", "2"],
    "dedup -j 1": ["dedup", "-q", "-j", "1"],
    "dedup -j 2": ["dedup", "-q", "-j", "2"],
}


def extract(rev: str) -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    dest = CACHE / f"baseline-{sha}"
    if not (dest / "cqia_cli").is_dir():
        data = subprocess.run(["git", "archive", sha, "cqia_cli"], cwd=ROOT, check=True,
                              capture_output=True).stdout
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest)
    compile_tree(dest)
    return str(dest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", required=True, help="the commit to compare with")
    ap.add_argument("--new", default="HEAD", help="the commit measured against it")
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=None, help="only the commands whose name has this")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    data = big_input(args.records)
    trees = {"old": extract(args.baseline), "new": extract(args.new)}
    runs: dict = {(c, t): [] for c in COMMANDS for t in trees}
    cpu: dict = {(c, t): [] for c in COMMANDS for t in trees}
    for r in range(args.rounds):
        order = list(trees) if r % 2 == 0 else list(reversed(trees))
        for cmd, argv in COMMANDS.items():
            if args.only and args.only not in cmd:
                continue
            for tree in order:
                launch = [sys.executable, "-c", LAUNCH.format(src=trees[tree])]
                res = measure(f"{tree} {cmd}", launch + argv + [data], records=args.records,
                              repeat=1)
                if res.exit_code != 0:
                    sys.exit(f"{tree} {cmd} failed with status {res.exit_code}")
                runs[(cmd, tree)].append(res.records_per_s)
                cpu[(cmd, tree)].append(res.records_per_cpu_s)
                print(f"round {r + 1} {tree} {cmd:<12} {res.records_per_s:>10,.0f} records/s "
                      f"{res.records_per_cpu_s:>10,.0f} records/cpu-s", file=sys.stderr)
    print(f"\n## filter and dedup, {args.records:,} records, {args.rounds} rounds "
          f"(new = {args.new}, old = {args.baseline})")
    print(f"{'command':<12} {'old records/s (best/median/worst)':>36} "
          f"{'new records/s (best/median/worst)':>36} {'new/old per round':>20} {'median':>7}")
    out = {}
    for cmd in COMMANDS:
        old, new = runs[(cmd, "old")], runs[(cmd, "new")]
        if not old:
            continue
        ratios = [n / o for n, o in zip(new, old)]
        med = statistics.median(new) / statistics.median(old)

        def fmt(xs):
            return f"{max(xs):>10,.0f} {statistics.median(xs):>10,.0f} {min(xs):>10,.0f}"

        print(f"{cmd:<12} {fmt(old):>36} {fmt(new):>36} "
              f"{min(ratios):>8.2f}–{max(ratios):<8.2f}   {med:>6.2f}")
        out[cmd] = {"old": old, "new": new, "ratios": ratios, "median_ratio": med,
                    "old_cpu": cpu[(cmd, "old")], "new_cpu": cpu[(cmd, "new")]}
    print("\nrecords per CPU-second (user + system, workers included; steadier on a busy "
          "machine)")
    for cmd in COMMANDS:
        old, new = cpu[(cmd, "old")], cpu[(cmd, "new")]
        if not old:
            continue
        ratios = [n / o for n, o in zip(new, old)]
        print(f"{cmd:<12} old median {statistics.median(old):>10,.0f}  new median "
              f"{statistics.median(new):>10,.0f}  new/old per round {min(ratios):.2f}–"
              f"{max(ratios):.2f}  of medians {statistics.median(new) / statistics.median(old):.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
