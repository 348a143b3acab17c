"""cqia filter with the default rules against the bare orjson loop, and -j 2 against -j 1.

    python bench/bench_filter.py [--records N] [--repeat R] [--json FILE]

Target (issue 3): at least 20,000 records/s per core with the default rules on the shared
COIG-CQIA data (bench/harness.py repeats it to N records). Every ratio is measured in the same
run, against the baseline, because the machine is shared and absolute numbers are noisy.
"""

import argparse
import os

from harness import BARE_ORJSON_LOOP, big_input, cqia_command, measure, report


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    data = big_input(args.records)
    n = args.records
    cqia = cqia_command()
    filt = cqia + ["filter", "-q"]
    base = measure("bare orjson loop (baseline)", BARE_ORJSON_LOOP + [data], records=n,
                   repeat=args.repeat)
    j1 = measure("cqia filter (default rules)", filt + [data], records=n, repeat=args.repeat)
    j2 = measure("cqia filter -j 2", filt + ["-j", "2", data], records=n, repeat=args.repeat)
    results = [
        base,
        j1,
        j2,
        measure("cqia filter --all-reasons", filt + ["--all-reasons", data], records=n,
                repeat=args.repeat),
        measure("cqia filter --no-defaults (I/O only)", filt + ["--no-defaults", data],
                records=n, repeat=args.repeat),
    ]
    report(results, base, title=f"filter, {n:,} records", json_path=args.json)
    print(f"\n-j 2 / -j 1: {j2.records_per_s / j1.records_per_s:.2f}x "
          f"({os.cpu_count()} CPUs on this machine)")
    print(f"per core, -j 1: {j1.records_per_s:,.0f} records/s (target 20,000)")


if __name__ == "__main__":
    main()
