"""cqia clean with the default steps against the bare orjson loop, and -j 2 against -j 1.

    python bench/bench_clean.py [--records N] [--repeat R] [--json FILE]

Target (issue 12): at least 20,000 records/s per core with the default steps on the shared
COIG-CQIA data (bench/harness.py repeats it to N records). Every ratio is measured in the same
run, against the baseline, because the machine is shared and absolute numbers are noisy; the
per-core figure is records per CPU-second, which other processes distort less than wall time.
"""

import os
import subprocess

from harness import BARE_ORJSON_LOOP, arg_parser, big_input, cqia_command, measure, report


def cpu_seconds(cmd: list[str]) -> float:
    """User + system CPU time of one run of `cmd` and its children (the -j workers)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    args = arg_parser(__doc__).parse_args()
    data = big_input(args.records)
    n = args.records
    clean = cqia_command() + ["clean", "-q"]
    changes_log = os.path.join(os.path.dirname(data), "clean-changes.jsonl")
    base = measure("bare orjson loop (baseline)", BARE_ORJSON_LOOP + [data], records=n,
                   repeat=args.repeat)
    j1 = measure("cqia clean (default steps)", clean + [data], records=n, repeat=args.repeat)
    j2 = measure("cqia clean -j 2", clean + ["-j", "2", data], records=n, repeat=args.repeat)
    results = [
        base, j1, j2,
        # a log file in the cache, never a device: a core that renames its outputs into place
        # would replace the machine's /dev/null with a regular file
        measure("cqia clean --changes", clean + ["--changes", changes_log, data], records=n,
                repeat=args.repeat),
        measure("cqia clean --steps whitespace", clean + ["--steps", "whitespace", data],
                records=n, repeat=args.repeat),
    ]
    report(results, base, title=f"clean, {n:,} records", json_path=args.json)
    print(f"\n-j 2 / -j 1 (wall): {j2.records_per_s / j1.records_per_s:.2f}x "
          f"({os.cpu_count()} CPUs on this machine, load average "
          f"{os.getloadavg()[0]:.1f})")
    cpu1 = cpu_seconds(clean + [data])
    base_cpu = cpu_seconds(BARE_ORJSON_LOOP + [data])
    print(f"per core (records per CPU-second), -j 1: {n / cpu1:,.0f} records/s "
          f"(target 20,000); bare loop: {n / base_cpu:,.0f}; ratio {base_cpu / cpu1:.2f}")


if __name__ == "__main__":
    main()
