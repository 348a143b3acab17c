"""cqia filter with the default rules against the bare orjson loop, and -j 2 against -j 1.

    python bench/bench_filter.py [--records N] [--repeat R] [--json FILE]

Target (issue 3): at least 20,000 records/s per core with the default rules on the shared
COIG-CQIA data (bench/harness.py repeats it to N records). Every ratio is measured in the same
run, against the baseline, because the machine is shared and absolute numbers are noisy.
"""

import argparse
import os
import subprocess

from harness import BARE_ORJSON_LOOP, big_input, cqia_command, measure, report


def cpu_seconds(cmd: list[str]) -> float:
    """User + system CPU time of one run of `cmd` and its children (the -j workers): a
    per-core figure that other processes on a shared machine do not distort as they do wall
    time."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime


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
    print(f"\n-j 2 / -j 1 (wall): {j2.records_per_s / j1.records_per_s:.2f}x "
          f"({os.cpu_count()} CPUs on this machine, load average "
          f"{os.getloadavg()[0]:.1f})")
    cpu1 = cpu_seconds(filt + [data])
    cpu2 = cpu_seconds(filt + ["-j", "2", data])
    base_cpu = cpu_seconds(BARE_ORJSON_LOOP + [data])
    print(f"per core (records per CPU-second), -j 1: {n / cpu1:,.0f} records/s "
          f"(target 20,000); -j 2 all processes: {n / cpu2:,.0f}; bare loop: "
          f"{n / base_cpu:,.0f}")


if __name__ == "__main__":
    main()
