"""cqia split (exact, stdin, --stream, stratified and grouped) against the bare orjson loop.

    python bench/bench_split.py [--records N]

Every command reads the same file and writes every record once (the baseline to /dev/null,
split to three files in a temporary directory), so the ratio is throughput against the least a
JSONL filter can do. Exact mode parses the input twice (files) or spools it as compact JSON
(standard input); --stream reads once. The commands run in interleaved rounds and each keeps
its best round, because the machine is shared.
"""

import resource
import tempfile

from harness import arg_parser, BARE_ORJSON_LOOP, Result, big_input, cqia_command, measure, report

RATIOS = "train=0.9,valid=0.05,test=0.05"


def main() -> None:
    ap = arg_parser()
    args = ap.parse_args()
    data = big_input(args.records)
    n = args.records
    cqia = cqia_command()
    with tempfile.TemporaryDirectory(prefix="bench-split-") as tmp:
        split = cqia + ["split", "-q", "--ratios", RATIOS, "-o", f"{tmp}/{{split}}.jsonl"]
        runs = [
            ("bare orjson loop (baseline)", BARE_ORJSON_LOOP + [data], None),
            ("cqia split (exact, file read twice)", split + [data], None),
            ("cqia split (exact) < stdin (spooled)", split, data),
            ("cqia split --stream", split + ["--stream", data], None),
            ("cqia split --stratify task_type.major",
             split + ["--stratify", "task_type.major", data], None),
            ("cqia split --group-by instruction", split + ["--group-by", "instruction", data],
             None),
            ("cqia split --shards 16", cqia + ["split", "-q", "--shards", "16", "-o",
                                               f"{tmp}/p-{{shard:02d}}.jsonl", data], None),
        ]
        # rounds interleave the commands, so that load from other processes on a shared
        # machine falls on all of them alike; each keeps its best round
        best: dict[str, Result] = {}
        cpu: dict[str, float] = {}
        for _ in range(args.repeat):
            for name, cmd, stdin in runs:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                r = measure(name, cmd, records=n, stdin=stdin, repeat=1)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                cpu[name] = min(cpu.get(name, used), used)
                old = best.get(name)
                if old is None or r.seconds < old.seconds:
                    r.peak_rss_mb = max(r.peak_rss_mb, old.peak_rss_mb if old else 0.0)
                    best[name] = r
                else:
                    old.peak_rss_mb = max(old.peak_rss_mb, r.peak_rss_mb)
        results = [best[name] for name, _, _ in runs]
        base = results[0]
    report(results, base, title=f"split, {n:,} records", json_path=args.json)
    # CPU time is far less disturbed than wall time by other processes on a shared machine
    print(f"\n{'command':44} {'CPU s':>9} {'CPU ratio':>10}")
    for r in results:
        print(f"{r.name:44} {cpu[r.name]:9.2f} {cpu[base.name] / cpu[r.name]:10.2f}")


if __name__ == "__main__":
    main()
