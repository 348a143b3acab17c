"""cqia stats against the bare orjson loop, and the cost of --tokens and --diversity.

    python bench/bench_stats.py [--records N] [--jieba-records M] [--repeat R] [--json FILE]

Target (issue 5): at least 50,000 records/s without --tokens/--diversity on 200,000 records of
the shared data, reported as a ratio against the bare orjson loop measured in the same run.
jieba is slow, so --tokens and --diversity are measured on the first M records (default
20,000), again with their own bare-loop baseline over the same file.
"""

import argparse
import itertools
import os

from harness import BARE_ORJSON_LOOP, CACHE, big_input, cqia_command, measure, report


def head(path: str, n: int) -> str:
    out = CACHE / f"head-{n}-{os.path.basename(path)}"
    if not out.exists():
        tmp = out.with_suffix(".part")
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            dst.writelines(itertools.islice(src, n))
        os.replace(tmp, out)
    return str(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--jieba-records", type=int, default=20_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    data = big_input(args.records)
    n = args.records
    cqia = cqia_command() + ["stats", "-q"]
    base = measure("bare orjson loop (baseline)", BARE_ORJSON_LOOP + [data], records=n,
                   repeat=args.repeat)
    results = [
        base,
        measure("cqia stats", cqia + [data], records=n, repeat=args.repeat),
        measure("cqia stats --json", cqia + ["--json", data], records=n, repeat=args.repeat),
        measure("cqia stats < stdin", cqia, stdin=data, records=n, repeat=args.repeat),
        measure("cqia stats --group domain", cqia + ["--group", "domain", data], records=n,
                repeat=args.repeat),
    ]
    report(results, base, title=f"stats, {n:,} records", json_path=args.json)

    m = args.jieba_records
    small = head(data, m)
    base = measure("bare orjson loop (baseline)", BARE_ORJSON_LOOP + [small], records=m,
                   repeat=1)
    plain = measure("cqia stats", cqia + [small], records=m, repeat=1)
    results = [base, plain]
    for name, opts in (("--tokens", ["--tokens"]), ("--diversity", ["--diversity"]),
                       ("--tokens --diversity", ["--tokens", "--diversity"]),
                       ("--tokens --diversity -j 2", ["--tokens", "--diversity", "-j", "2"])):
        results.append(measure(f"cqia stats {name}", cqia + opts + [small], records=m,
                               repeat=1))
    jpath = args.json.replace(".json", "-jieba.json") if args.json else None
    report(results, base, title=f"stats with jieba, {m:,} records", json_path=jpath)
    print(f"\n{'cost over plain stats':44} {'x slower':>12}")
    for r in results[2:]:
        print(f"{r.name:44} {r.seconds / plain.seconds:12.1f}")


if __name__ == "__main__":
    main()
