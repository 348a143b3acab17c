"""cqia dedup against datasketch and rensa: quality on a ground truth, speed, memory; one run.

    python bench/bench_dedup.py [--records 200000] [--quality-only] [--speed-only]
                                [--sweep] [--memory 1000000 [--baseline COMMIT]
                                [--memory-only]] [--json FILE]

Quality: bench/dedup_groundtruth.py's data (real CQIA records and edited copies with their
recorded originals). Every tool runs the same greedy protocol over the records in order: a
record is removed when the tool names a kept record as its duplicate. A removal is correct when
the named survivor is in the record's own group (an original and its copies). precision =
correct removals / removals; recall = correct removals / (records - groups). cqia runs with its
defaults; datasketch and rensa at character 5-grams, threshold 0.8, 128 permutations, on the
same normalised text as cqia (generous to them: they get cqia's exact-match normalisation).
`--sweep` also scores cqia over n-gram sizes and thresholds (how the defaults were chosen).

Speed: one input of --records realistic records (bench/harness.py big_input), each tool as a
complete JSONL filter in its own process: `cqia dedup -q` with -j 1 and -j 2, rensa (bulk
digest-matrix API), datasketch (update_batch), and the bare orjson loop as the floor.

Memory: peak RSS of `cqia dedup` over --memory records that are all different (sentences of
real records shuffled together), and its growth per record from a tenth of them.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from harness import (arg_parser, BARE_ORJSON_LOOP, CACHE, big_input, compile_tree, cqia_command, measure,  # noqa: E402
                     measure_rounds, report, round_ratios, shared_records,
                     together_ceiling)

import dedup_peers  # noqa: E402


# -- quality ----------------------------------------------------------------------------------

STRATA = ("long", "short", "templated", "finance")


def load_truth(path: Path) -> tuple[list[int], list[str]]:
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    return [t["group"] for t in rows], [t.get("stratum", "long") for t in rows]


def score(survivor: list[int], group: list[int], stratum: list[str] | None = None) -> dict:
    """survivor[i]: 0-based index of the record named as i's survivor, -1 when kept. With
    `stratum`, also each stratum's own figures (a removal counts in its record's stratum)."""
    def one(idx: list[int]) -> dict:
        removed = sum(1 for i in idx if survivor[i] >= 0)
        correct = sum(1 for i in idx if survivor[i] >= 0 and group[survivor[i]] == group[i])
        expected = len(idx) - len({group[i] for i in idx})
        p = correct / removed if removed else 1.0
        r = correct / expected if expected else float("nan")
        f1 = 2 * p * r / (p + r) if expected and p + r else float("nan")
        return {"removed": removed, "correct": correct, "expected": expected,
                "precision": p, "recall": r, "f1": f1}
    out = one(list(range(len(group))))
    if stratum is not None:
        out["strata"] = {name: one([i for i, s in enumerate(stratum) if s == name])
                         for name in STRATA if name in stratum}
    return out


def cqia_survivors(data: Path, args: list[str]) -> tuple[list[int], float]:
    start = time.perf_counter()
    out = subprocess.run(cqia_command() + ["dedup", "-q", "--mark", *args, str(data)],
                         check=True, capture_output=True).stdout
    secs = time.perf_counter() - start
    surv = []
    for line in out.splitlines():
        rec = json.loads(line)
        d = rec.get("_dup_of")
        surv.append(d["line"] - 1 if d else -1)
    return surv, secs


def quality(sweep: bool, variants: list[str] = ()) -> list[dict]:
    gt = CACHE / "dedup-gt-strata"
    data, truth = gt / "data.jsonl", gt / "truth.jsonl"
    if not data.exists():
        subprocess.run([sys.executable, str(HERE / "dedup_groundtruth.py"), "--out", str(gt)],
                       check=True)
    group, stratum = load_truth(truth)
    rows = []
    surv, secs = cqia_survivors(data, [])
    rows.append({"tool": "cqia dedup (defaults)", **score(surv, group, stratum),
                 "seconds": secs})
    for v in variants:
        surv, secs = cqia_survivors(data, v.split())
        rows.append({"tool": f"cqia dedup {v}", **score(surv, group, stratum), "seconds": secs})
    from cqia_cli.dedup.normalize import normalize

    texts = [normalize(dedup_peers.text_of(json.loads(line))) for line in open(data, "rb")]
    for tool in ("datasketch", "rensa"):
        start = time.perf_counter()
        surv = dedup_peers.greedy(tool, texts, 5, 0.8)
        rows.append({"tool": f"{tool} (5-grams, 0.8)", **score(surv, group, stratum),
                     "seconds": time.perf_counter() - start})
    surv, secs = cqia_survivors(data, ["--ngram", "5", "--threshold", "0.8"])
    rows.append({"tool": "cqia dedup (5-grams, 0.8)", **score(surv, group, stratum),
                 "seconds": secs})
    if sweep:
        for ngram in (2, 3, 4, 5):
            for thr in (0.3, 0.4, 0.5, 0.6, 0.7):
                for perm in (128,):
                    surv, secs = cqia_survivors(data, ["--ngram", str(ngram), "--threshold",
                                                       str(thr), "--num-perm", str(perm)])
                    rows.append({"tool": f"cqia --ngram {ngram} --threshold {thr}",
                                 **score(surv, group, stratum), "seconds": secs})
    print(f"\n## quality: {len(group):,} records, {len(set(group)):,} groups, "
          f"{len(group) - len(set(group)):,} duplicates to find")
    print(f"{'tool':40} {'stratum':10} {'precision':>9} {'recall':>7} {'F1':>6} {'removed':>8} "
          f"{'expected':>8} {'seconds':>8}")
    for r in rows:
        for name, st in [("all", r)] + list(r.get("strata", {}).items()):
            print(f"{r['tool'] if name == 'all' else '':40} {name:10} {st['precision']:9.4f} "
                  f"{st['recall']:7.4f} {st['f1']:6.4f} {st['removed']:8,} {st['expected']:8,} "
                  + (f"{r['seconds']:8.2f}" if name == "all" else ""))
    return rows


# -- speed ------------------------------------------------------------------------------------

def _spin(_=None) -> None:
    x = 0
    for i in range(20_000_000):
        x += i


def parallel_capacity() -> float:
    """How much faster two CPU-bound processes finish than one after the other, right now: 2.0
    on two idle cores, ~1.0 when other work holds a core (the -j 2 ratio cannot beat it)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    start = time.perf_counter()
    _spin()
    _spin()
    serial = time.perf_counter() - start
    start = time.perf_counter()
    procs = [ctx.Process(target=_spin) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return serial / (time.perf_counter() - start)


def jobs_only(n: int, repeat: int) -> list:
    """Just -j 1 against -j 2 (and the machine's capacity around them): a quick check. The
    two run in turn, `repeat` rounds (`measure_rounds`)."""
    data = big_input(n)
    cqia = cqia_command()
    cap_before = parallel_capacity()
    (one, two), (t1, t2, tt) = measure_rounds(
        [("cqia dedup -j 1", cqia + ["dedup", "-q", data]),
         ("cqia dedup -j 2", cqia + ["dedup", "-q", "-j", "2", data])],
        records=n, repeat=repeat, together=0)
    cap_after = parallel_capacity()
    report([one, two], one, title=f"dedup -j, {n:,} records (ratio: to -j 1)")
    _jobs_lines(one, two, t1, t2, tt, cap_before, cap_after)
    return [one, two]


def _jobs_lines(one, two, t1, t2, tt, cap_before, cap_after) -> None:
    ratio = two.records_per_s / one.records_per_s
    ceiling, per = together_ceiling(t1, tt)
    print(f"cqia -j 2 / -j 1: {ratio:.2f}x (target >= 1.7; per round {round_ratios(t1, t2)}); "
          f"the machine's parallel capacity around it: {cap_before:.2f}x before, "
          f"{cap_after:.2f}x after (2.00 on two idle cores)")
    print(f"two cqia dedup -j 1 at once did {ceiling:.2f}x the work of one in the same time "
          f"(per round {per}): the most -j 2 could gain on this machine then; -j 2 reached "
          f"{ratio / ceiling:.0%} of it")


def speed(n: int, repeat: int) -> list:
    """rensa, cqia -j 1 and cqia -j 2 run in turn, `repeat` rounds (`measure_rounds`): the
    ratios are taken over the same moments of the machine; the floor and datasketch (slow:
    one run) before them."""
    data = big_input(n)
    cqia = cqia_command()
    peers = [sys.executable, str(HERE / "dedup_peers.py")]
    base = measure("bare orjson loop (floor)", BARE_ORJSON_LOOP + [data], records=n,
                   repeat=repeat)
    dsk = measure("datasketch 5-grams 0.8 (update_batch)", peers + ["datasketch", data],
                  records=n, repeat=1)
    cap_before = parallel_capacity()
    (rensa, one, two), (tr, t1, t2, tt) = measure_rounds(
        [("rensa 5-grams 0.8 (bulk API)", peers + ["rensa", data]),
         ("cqia dedup -j 1", cqia + ["dedup", "-q", data]),
         ("cqia dedup -j 2", cqia + ["dedup", "-q", "-j", "2", data])],
        records=n, repeat=repeat, together=1)
    cap_after = parallel_capacity()
    results = [base, rensa, dsk, one, two]
    report(results, rensa, title=f"dedup speed, {n:,} records (ratio: to rensa)")
    print(f"\ncqia -j 1 / rensa: {one.records_per_s / rensa.records_per_s:.2f}x (target >= 2, "
          f"issue 14; per round {round_ratios(tr, t1)})")
    print(f"cqia -j 1 / datasketch: {one.records_per_s / dsk.records_per_s:.2f}x (target >= 5)")
    _jobs_lines(one, two, t1, t2, tt, cap_before, cap_after)
    return results


# -- memory -----------------------------------------------------------------------------------

SENT = re.compile(r"(?<=[。！？!?；;\n])")


def unique_input(n: int) -> str:
    """n records that are all different: 3-8 sentences of random real records each."""
    path = CACHE / f"dedup-unique-{n}.jsonl"
    if path.exists():
        return str(path)
    rng = random.Random(3)
    sents = [s for r in shared_records() for s in SENT.split(str(r.get("output") or ""))
             if len(s) >= 8]
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(n):
            out = "".join(rng.choice(sents) for _ in range(rng.randint(3, 8)))
            f.write(json.dumps({"instruction": f"问题{i}：" + rng.choice(sents), "input": "",
                                "output": out}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return str(path)


def baseline_command(commit: str) -> list[str]:
    """`cqia` as of `commit`: its tree exported (git archive) into the cache, run with this
    interpreter and that tree first on PYTHONPATH (its dependencies are this venv's; Python
    3.11+ for -P)."""
    sha = subprocess.run(["git", "rev-parse", "--short", commit], cwd=HERE.parent, check=True,
                         capture_output=True, text=True).stdout.strip()
    tree = CACHE / f"baseline-{sha}"
    if not (tree / "cqia_cli").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=HERE.parent, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    compile_tree(tree)  # as this tree's cqia is (cqia_command)
    # -P: not the working directory first on sys.path (this tree's cqia_cli, when run here)
    return ["env", f"PYTHONPATH={tree}", sys.executable, "-P", "-m", "cqia_cli"]


def memory_of(name: str, cqia: list[str], n: int) -> dict:
    """Peak RSS over n different records, and the growth per record between n/10 and n
    (what the index costs per record, without the interpreter's and numpy's fixed cost)."""
    m = n // 10
    kept_path = CACHE / "dedup-unique-kept.jsonl"
    rows = []
    for size in (m, n):
        r = measure(f"{name}, {size:,} different records",
                    cqia + ["dedup", "-q", unique_input(size)], records=size, repeat=1,
                    stdout=str(kept_path))
        with open(kept_path, "rb") as f:
            kept = sum(1 for _ in f)
        rows.append((r, kept))
    kept_path.unlink()
    (small, kept_small), (big, kept) = rows
    per = (big.peak_rss_mb - small.peak_rss_mb) * 1024 * 1024 / (n - m)
    per_kept = (big.peak_rss_mb - small.peak_rss_mb) * 1024 * 1024 / max(1, kept - kept_small)
    print(f"\n## memory, {name}: {n:,} different records ({kept:,} kept): peak RSS "
          f"{big.peak_rss_mb:,.0f} MB ({big.records_per_s:,.0f} records/s); {m:,} records: "
          f"{small.peak_rss_mb:,.0f} MB; growth {per:,.0f} bytes per record, {per_kept:,.0f} "
          f"per survivor", flush=True)
    return {"tool": name, "records": n, "kept": kept, "peak_mb": big.peak_rss_mb,
            "small_records": m, "small_peak_mb": small.peak_rss_mb,
            "bytes_per_record": per, "bytes_per_survivor": per_kept,
            "records_per_s": big.records_per_s}


def memory(n: int, baseline: str | None = None) -> list[dict]:
    """memory_of HEAD's cqia, and with `baseline` (a commit) that version's on the same
    input, in the same run: their bytes per record compared."""
    rows = [memory_of("cqia dedup (this tree)", cqia_command(), n)]
    if baseline:
        rows.append(memory_of(f"cqia dedup at {baseline}", baseline_command(baseline), n))
        print(f"bytes per record: this tree {rows[0]['bytes_per_record']:,.0f}, "
              f"{baseline} {rows[1]['bytes_per_record']:,.0f} (target: no more); peak "
              f"{rows[0]['peak_mb']:,.0f} MB against {rows[1]['peak_mb']:,.0f} MB")
    return rows


def main() -> None:
    ap = arg_parser()
    ap.add_argument("--quality-only", action="store_true")
    ap.add_argument("--speed-only", action="store_true")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--variant", action="append", default=[], metavar="OPTIONS",
                    help="also score cqia dedup with these options (repeatable)")
    ap.add_argument("--jobs-only", action="store_true", help="only -j 1 against -j 2")
    ap.add_argument("--memory", type=int, default=0, metavar="N",
                    help="also measure peak RSS over N different records (e.g. 1000000)")
    ap.add_argument("--baseline", metavar="COMMIT",
                    help="with --memory: also measure cqia as of COMMIT (e.g. 93d6a26, 0.1) "
                         "on the same input, in the same run")
    ap.add_argument("--memory-only", action="store_true", help="only the memory measurement")
    args = ap.parse_args()
    out: dict = {}
    if args.jobs_only:
        jobs_only(args.records, args.repeat)
        return
    if not args.speed_only and not args.memory_only:
        out["quality"] = quality(args.sweep, args.variant)
    if not args.quality_only and not args.memory_only:
        out["speed"] = [r.__dict__ for r in speed(args.records, args.repeat)]
    if args.memory:
        out["memory"] = memory(args.memory, args.baseline)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
