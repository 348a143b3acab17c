"""Benchmark harness: build a large input and compare a command against a baseline, in one run.

    from harness import big_input, measure, report, BARE_ORJSON_LOOP

    data = big_input(200_000)                      # bench/.cache/big-200000.jsonl
    base = measure("bare orjson loop", BARE_ORJSON_LOOP + [data], records=200_000)
    mine = measure("cqia validate", ["cqia", "validate", "-q", data], records=200_000)
    report([base, mine], baseline=base)

`measure` runs a command as a child process (stdout to /dev/null unless `stdout=` is given),
takes the best wall time of `repeat` runs and the child's peak RSS (from wait4). `report` prints a
table of records/s, peak memory and the ratio to the baseline, and can write it as JSON.

The input is built from ../shared/data/coig-cqia when present (real records, repeated with a
numbered variation so that no two records are identical), generated otherwise.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = HERE / ".cache"
SHARED = ROOT.parent / "shared" / "data" / "coig-cqia"

#: The baseline every command is compared with: read lines, parse with orjson, write them back.
BARE_ORJSON_LOOP = [sys.executable, str(HERE / "bare_orjson_loop.py")]


def arg_parser(description: str | None = None) -> argparse.ArgumentParser:
    """The options every benchmark script takes: --records, --repeat, --json."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--records", type=int, default=200_000, help="size of the input")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each command; the best counts")
    ap.add_argument("--json", default=None, help="also write the results here")
    return ap


def compile_tree(root: Path) -> None:
    """Byte-compile the cqia_cli package under `root`: benchmarks time cqia as an installed
    wheel runs (pip compiles it at install), not recompiling its modules at every start,
    which it does from a source tree when the environment sets PYTHONDONTWRITEBYTECODE
    (~50 ms of each run, measured). Python reads the .pyc files whatever that setting is."""
    import compileall

    compileall.compile_dir(str(Path(root) / "cqia_cli"), quiet=1)


def cqia_command() -> list[str]:
    """The cqia this checkout installs (its bytecode compiled: `compile_tree`)."""
    compile_tree(ROOT)
    exe = shutil.which("cqia", path=os.path.dirname(sys.executable) + os.pathsep
                       + os.environ.get("PATH", ""))
    return [exe] if exe else [sys.executable, "-m", "cqia_cli"]


def shared_records() -> list[dict]:
    """The real COIG-CQIA records of ../shared/data, or generated ones when it is absent."""
    files = sorted(glob.glob(str(SHARED / "*" / "*.jsonl")))
    if files:
        out = []
        for path in files:
            with open(path, "rb") as f:
                out.extend(json.loads(line) for line in f if line.strip())
        return out
    return generated_records(12_725)


_WORDS = ("数据", "模型", "问题", "答案", "中国", "学习", "方法", "时间", "工作", "生活", "文化",
          "历史", "科学", "技术", "经济", "社会", "发展", "研究", "教育", "健康", "环境", "音乐")


def generated_records(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    recs = []
    for i in range(n):
        inst = "".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 30))) + "？"
        out = "。".join("".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 20)))
                       for _ in range(rng.randint(3, 25))) + "。"
        recs.append({
            "instruction": inst, "input": "", "output": out,
            "task_type": {"major": ["问答"], "minor": ["生成"]}, "domain": ["通用"],
            "metadata": "暂无元数据信息", "answer_from": rng.choice(["human", "llm"]),
            "human_verified": rng.random() < 0.3, "copyright": "暂无版权及作者信息",
        })
    return recs


def big_input(n: int = 200_000, name: str | None = None) -> str:
    """A JSONL file of `n` realistic records (cached under bench/.cache).

    Built in a child process: a parent grown large would make every later child report the
    parent's size as its peak RSS (the child starts as a copy of it)."""
    CACHE.mkdir(exist_ok=True)
    source = "shared" if glob.glob(str(SHARED / "*" / "*.jsonl")) else "generated"
    path = CACHE / (name or f"big-{source}-{n}.jsonl")
    if not path.exists():
        subprocess.run([sys.executable, __file__, "--build", str(n), str(path)], check=True)
    return str(path)


def _build(n: int, path: Path) -> None:
    base = shared_records()
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(n):
            rec = dict(base[i % len(base)])
            rep = i // len(base)
            if rep:
                # a numbered variation: no two records are exactly alike
                rec["instruction"] = f"{rec['instruction']}（{rep}）"
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


@dataclass
class Result:
    name: str
    seconds: float
    peak_rss_mb: float
    records: int
    exit_code: int
    cpu_seconds: float = 0.0

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else float("inf")

    @property
    def records_per_cpu_s(self) -> float:
        return self.records / self.cpu_seconds if self.cpu_seconds else float("inf")


def _run_once(cmd: list[str], stdin: str | None, stdout: str | None
              ) -> tuple[float, float, int, float]:
    fin = open(stdin, "rb") if stdin else subprocess.DEVNULL
    fout = open(stdout, "wb") if stdout else subprocess.DEVNULL
    # stderr to a file, not a pipe: a chatty command would fill the pipe and block
    with tempfile.TemporaryFile() as ferr:
        try:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=ferr)
            _, status, usage = os.wait4(proc.pid, 0)
            elapsed = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if stdin:
                fin.close()
            if stdout:
                fout.close()
        ferr.seek(0)
        err = ferr.read().decode("utf-8", "replace")
    if proc.returncode not in (0, 1):
        sys.stderr.write(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}\n")
    return elapsed, usage.ru_maxrss / 1024.0, proc.returncode, usage.ru_utime + usage.ru_stime


def measure(name: str, cmd: list[str], *, records: int, stdin: str | None = None,
            stdout: str | None = None, repeat: int = 3) -> Result:
    """Best wall time and best CPU time (user + system, all threads; children it waited for
    included) of `repeat` runs of `cmd`, and its largest peak RSS.

    CPU time is the steadier figure on a busy machine; wall time is what a user waits."""
    best, best_cpu, peak, code = float("inf"), float("inf"), 0.0, 0
    for _ in range(repeat):
        seconds, rss, code, cpu = _run_once(cmd, stdin, stdout)
        best = min(best, seconds)
        best_cpu = min(best_cpu, cpu)
        peak = max(peak, rss)
    return Result(name, best, peak, records, code, best_cpu)


def _run_two_at_once(cmd: list[str]) -> float:
    """Two copies of `cmd` started together: the wall time until both have ended."""
    start = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for _ in range(2)]
    for proc in procs:
        proc.wait()
    return time.perf_counter() - start


def measure_rounds(commands: list[tuple[str, list[str]]], *, records: int, repeat: int = 3,
                   together: int | None = None) -> tuple[list[Result], list[list[float]]]:
    """`measure` for several commands run in turn, one run of each per round, `repeat`
    rounds: a ratio between them is taken over the same moments of a machine whose speed
    drifts (a VM's neighbours). Returns the results (best of the rounds, as `measure`) and
    each command's wall time per round (for the per-round ratios).

    together: the index of a command also run as two copies at once in each round (after the
    others); their wall time per round comes last in the times. 2 x (one alone) / (two at
    once) is how much of that command's work two cores did at once right then: the ceiling
    of what running it in two processes can gain (below 2.0 when the cores share caches,
    memory bandwidth or a host's other work)."""
    best = [float("inf")] * len(commands)
    best_cpu = [float("inf")] * len(commands)
    peak = [0.0] * len(commands)
    code = [0] * len(commands)
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(repeat):
        for i, (_, cmd) in enumerate(commands):
            seconds, rss, code[i], cpu = _run_once(cmd, None, None)
            times[i].append(seconds)
            best[i] = min(best[i], seconds)
            best_cpu[i] = min(best_cpu[i], cpu)
            peak[i] = max(peak[i], rss)
        if together is not None:
            if len(times) == len(commands):
                times.append([])
            times[-1].append(_run_two_at_once(commands[together][1]))
    results = [Result(name, best[i], peak[i], records, code[i], best_cpu[i])
               for i, (name, _) in enumerate(commands)]
    return results, times


def together_ceiling(alone: list[float], two: list[float]) -> tuple[float, str]:
    """`measure_rounds(together=...)`: 2 x the best time alone / the best time of two at once
    (best of rounds, as the ratios of `measure` results), and each round's, as text (a round
    above 2.0 is a slow moment of the run alone)."""
    per = [2 * a / b for a, b in zip(alone, two)]
    return 2 * min(alone) / min(two), " ".join(f"{x:.2f}" for x in per)


def round_ratios(slower: list[float], faster: list[float]) -> str:
    """The per-round ratios of two commands' wall times (`measure_rounds`), as text."""
    return " ".join(f"{a / b:.2f}" for a, b in zip(slower, faster))


def report(results: list[Result], baseline: Result, *, title: str = "",
           json_path: str | None = None) -> None:
    """Print records/s, peak RSS and the throughput ratios to the baseline (by wall time and by
    CPU time; on an idle machine they agree, on a busy one the CPU ratio is the steadier)."""
    if title:
        print(f"\n## {title}")
    print(f"{'command':44} {'records/s':>12} {'seconds':>8} {'cpu s':>7} {'peak MB':>8} "
          f"{'ratio':>6} {'cpu ratio':>9}")
    for r in results:
        ratio = r.records_per_s / baseline.records_per_s
        cpu_ratio = r.records_per_cpu_s / baseline.records_per_cpu_s
        print(f"{r.name:44} {r.records_per_s:12,.0f} {r.seconds:8.2f} {r.cpu_seconds:7.2f} "
              f"{r.peak_rss_mb:8.1f} {ratio:6.2f} {cpu_ratio:9.2f}")
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        rows = [dict(asdict(r), records_per_s=r.records_per_s,
                     ratio=r.records_per_s / baseline.records_per_s,
                     cpu_ratio=r.records_per_cpu_s / baseline.records_per_cpu_s)
                for r in results]
        Path(json_path).write_text(json.dumps({"title": title, "results": rows}, indent=2))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--build":
        _build(int(sys.argv[2]), Path(sys.argv[3]))
