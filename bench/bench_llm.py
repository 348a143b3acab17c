"""cqia score against a local OpenAI-compatible server with 200 ms latency and a capacity of 64
concurrent requests (tests/llm_server.py in a separate process), in one run:

    python bench/bench_llm.py [--records 5000] [--memory-records 100000]

1. cqia score, 5,000 records, nothing cached: requests/s, against the server's capacity
   (64 / 0.2 s = 320 requests/s; target >= 90%), and against
2. a plain sequential loop with the openai client (what a notebook does; on --seq records and
   extrapolated; target: cqia >= 20x), and
   and cqia with 128 in flight (the server's queue never empties: what the server itself
   delivers on this machine at the moment, the fair ceiling on a loaded machine);
3. the openai package's AsyncOpenAI with the same 64 requests in flight (the client cqia could
   have used: its CPU per request is the figure that decided for httpx);
4. a cached re-run, 100,000 records (the cache filled beforehand through cqia's own cache API
   with the answers the server gives): records/s (target >= 20,000) and peak memory;
5. peak memory of uncached runs at 5,000 and --uncached-memory records (flat: the window, not
   the input, bounds it).

The machine may be shared: wall times are noisy, CPU seconds steadier.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import arg_parser, big_input, cqia_command, measure

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVER = ROOT / "tests" / "llm_server.py"


def start_server(latency: float, capacity: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(SERVER), "--latency", str(latency),
                             "--capacity", str(capacity)], stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    return proc, url


def _task():
    sys.path.insert(0, str(ROOT))
    from cqia_cli.commands.score import ScoreTask
    from cqia_cli.llm.prompts import load
    from cqia_cli.llm.run import Settings

    return ScoreTask(load("rubrics", "cqia"), Settings("score", model="judge"), into="_score",
                     reason_into=None, samples=1, temperature=None, max_tokens=None,
                     json_mode=None)


def _records(path: str, n: int):
    import orjson

    with open(path, "rb") as f:
        for i, line in enumerate(f):
            if i >= n:
                return
            yield orjson.loads(line)


def openai_loop(url: str, path: str, n: int) -> None:
    """The notebook way: one request after the other with the openai client."""
    from openai import OpenAI

    task = _task()
    client = OpenAI(base_url=url, api_key="none", max_retries=0)
    for rec in _records(path, n):
        body = task.bodies(rec)[0]
        client.chat.completions.create(**body)


def openai_async(url: str, path: str, n: int, concurrency: int) -> None:
    """The other client cqia could have used: AsyncOpenAI, `concurrency` in flight."""
    from openai import AsyncOpenAI

    task = _task()
    bodies = [task.bodies(rec)[0] for rec in _records(path, n)]

    async def go():
        client = AsyncOpenAI(base_url=url, api_key="none", max_retries=0)
        sem = asyncio.Semaphore(concurrency)

        async def one(body):
            async with sem:
                resp = await client.chat.completions.create(**body)
                return resp.choices[0].message.content

        await asyncio.gather(*(one(b) for b in bodies))
        await client.close()

    asyncio.run(go())


def prefill(db: str, path: str, n: int) -> None:
    """Fill an answer cache for the first n records as a run against the server would."""
    sys.path.insert(0, str(ROOT / "tests"))
    import orjson
    from llm_server import judge_score

    from cqia_cli.llm.cache import SQLiteCache, request_key

    task = _task()
    cache = SQLiteCache(db)
    cache.db.execute("BEGIN")
    for rec in _records(path, n):
        body = task.bodies(rec)[0]
        user = body["messages"][-1]["content"]
        content = orjson.dumps({"score": judge_score(user), "reason": "理由"}).decode()
        key = request_key(body)
        cache.db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (key, content, 100, 10, "stop", "judge", 0.0))
        cache.db.execute("INSERT OR REPLACE INTO requests VALUES (?, ?)",
                         (key, orjson.dumps(body)))
    cache.db.execute("COMMIT")
    cache.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--openai-loop":
        return openai_loop(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    if len(sys.argv) > 1 and sys.argv[1] == "--openai-async":
        return openai_async(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    if len(sys.argv) > 1 and sys.argv[1] == "--prefill":
        return prefill(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    ap = arg_parser(__doc__.splitlines()[0])
    ap.set_defaults(records=5000, repeat=1)
    ap.add_argument("--memory-records", type=int, default=100_000)
    ap.add_argument("--uncached-memory", type=int, default=20_000)
    ap.add_argument("--seq", type=int, default=50, help="records for the sequential loop")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--capacity", type=int, default=64)
    args = ap.parse_args()
    n = args.records
    data = big_input(args.memory_records)
    small = big_input(n)
    cqia = cqia_command()
    capacity_rps = args.capacity / args.latency
    server, url = start_server(args.latency, args.capacity)
    rows = []
    try:
        time.sleep(0.5)
        score = measure("cqia score (--concurrency 64, no cache)",
                        cqia + ["score", "-q", "--no-cache", "--base-url", url, "--model",
                                "judge", small], records=n, repeat=args.repeat)
        rows.append(score)
        ceiling = measure("cqia score --concurrency 128 (server saturated)",
                          cqia + ["score", "-q", "--no-cache", "--concurrency", "128",
                                  "--base-url", url, "--model", "judge", small],
                          records=n, repeat=args.repeat)
        rows.append(ceiling)
        seq = measure(f"sequential openai loop ({args.seq} records)",
                      [sys.executable, __file__, "--openai-loop", url, small, str(args.seq)],
                      records=args.seq, repeat=1)
        rows.append(seq)
        oai = measure("AsyncOpenAI, 64 in flight",
                      [sys.executable, __file__, "--openai-async", url, small, str(n), "64"],
                      records=n, repeat=1)
        rows.append(oai)
    finally:
        server.terminate()
        server.wait()
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "cache.sqlite")
        subprocess.run([sys.executable, __file__, "--prefill", db, data,
                        str(args.memory_records)], check=True)
        cached = measure(f"cqia score, cached re-run ({args.memory_records:,})",
                         cqia + ["score", "-q", "--cache", db, "--base-url",
                                 "http://127.0.0.1:9/v1", "--model", "judge", data],
                         records=args.memory_records, repeat=args.repeat)
        rows.append(cached)
    server, url = start_server(0.0, 1000)
    try:
        for m in (n, args.uncached_memory):
            rows.append(measure(f"cqia score, no latency, no cache ({m:,})",
                                cqia + ["score", "-q", "--no-cache", "--base-url", url,
                                        "--model", "judge", big_input(m)], records=m, repeat=1))
    finally:
        server.terminate()
        server.wait()

    print(f"\n## cqia score against a local server: {args.latency * 1000:.0f} ms latency, "
          f"capacity {args.capacity} ({capacity_rps:.0f} requests/s)")
    print(f"{'run':48} {'records/s':>10} {'seconds':>8} {'cpu s':>7} {'peak MB':>8} "
          f"{'cpu ms/req':>10}")
    for r in rows:
        print(f"{r.name:48} {r.records_per_s:10,.1f} {r.seconds:8.2f} {r.cpu_seconds:7.2f} "
              f"{r.peak_rss_mb:8.1f} {1000 * r.cpu_seconds / r.records:10.2f}")
    print(f"\ncqia score: {score.records_per_s:,.0f} requests/s = "
          f"{100 * score.records_per_s / capacity_rps:.0f}% of capacity (target >= 90%); "
          f"{score.records_per_s / seq.records_per_s:.0f}x the sequential openai loop "
          f"(target >= 20x); AsyncOpenAI {oai.records_per_s:,.0f} requests/s with "
          f"{1000 * oai.cpu_seconds / oai.records:.2f} CPU ms per request against cqia's "
          f"{1000 * score.cpu_seconds / score.records:.2f}")
    print(f"with 128 in flight the server's queue never empties: {ceiling.records_per_s:,.0f} "
          f"requests/s is what this server delivers on this machine now; cqia at 64 reaches "
          f"{100 * score.records_per_s / ceiling.records_per_s:.0f}% of it")
    print(f"cached re-run: {cached.records_per_s:,.0f} records/s, "
          f"{cached.records_per_cpu_s:,.0f} records per CPU-second (target >= 20,000), peak "
          f"{cached.peak_rss_mb:.0f} MB at {args.memory_records:,} records")


if __name__ == "__main__":
    main()
