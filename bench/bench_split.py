"""cqia split (exact, stdin, --stream, stratified and grouped) against the bare orjson loop.

    python bench/bench_split.py [--records N]

Every command reads the same file and writes every record once (the baseline to /dev/null,
split to three files in a temporary directory), so the ratio is throughput against the least a
JSONL filter can do. Exact mode reads the input twice (or spools standard input), so it is
expected to sit near half the baseline; --stream reads once.
"""

import argparse
import tempfile

from harness import BARE_ORJSON_LOOP, big_input, cqia_command, measure, report

RATIOS = "train=0.9,valid=0.05,test=0.05"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    data = big_input(args.records)
    n = args.records
    cqia = cqia_command()
    with tempfile.TemporaryDirectory(prefix="bench-split-") as tmp:
        out = ["-o", f"{tmp}/{{split}}.jsonl"]
        split = cqia + ["split", "-q", "--ratios", RATIOS] + out

        def run(name, extra, **kw):
            return measure(name, split + extra, records=n, repeat=args.repeat, **kw)

        base = measure("bare orjson loop (baseline)", BARE_ORJSON_LOOP + [data], records=n,
                       repeat=args.repeat)
        results = [
            base,
            run("cqia split (exact, file read twice)", [data]),
            run("cqia split (exact) < stdin (spooled)", [], stdin=data),
            run("cqia split --stream", ["--stream", data]),
            run("cqia split --stratify task_type.major", ["--stratify", "task_type.major", data]),
            run("cqia split --group-by instruction", ["--group-by", "instruction", data]),
            measure("cqia split --shards 16", cqia + ["split", "-q", "--shards", "16", "-o",
                    f"{tmp}/p-{{shard:02d}}.jsonl", data], records=n, repeat=args.repeat),
        ]
    report(results, base, title=f"split, {n:,} records", json_path=args.json)


if __name__ == "__main__":
    main()
