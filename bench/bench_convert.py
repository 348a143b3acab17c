"""cqia convert against the bare orjson loop, in one run.

    python bench/bench_convert.py [--records N] [--repeat R] [--json FILE]

Target (issue 6): convert throughput >= 0.5 of the bare orjson read-parse-write loop.
The rows: the main conversions of a COIG-CQIA file, --keep-meta, the way back from sharegpt,
a JSON array input, and building records with the shipped xiaohongshu templates.
"""

import os
import subprocess

from harness import arg_parser, BARE_ORJSON_LOOP, CACHE, big_input, cqia_command, measure, report


def derived(cqia: list[str], data: str, name: str, args: list[str]) -> str:
    """A cached input made from the big one by a cqia convert run."""
    path = CACHE / name
    if not path.exists():
        tmp = str(path) + ".part"
        subprocess.run(cqia + ["convert", "-q", *args, data, "-o", tmp], check=True)
        os.replace(tmp, path)
    return str(path)


def forum_dump(data: str, n: int) -> str:
    """The big input reshaped like a forum dump: {id, title, content, author}."""
    import orjson

    path = CACHE / f"convert-{n}.forum.jsonl"
    if not path.exists():
        tmp = str(path) + ".part"
        with open(data, "rb") as src, open(tmp, "wb") as out:
            for i, line in enumerate(src):
                rec = orjson.loads(line)
                out.write(orjson.dumps({"id": i, "title": rec["instruction"][:60],
                                        "content": rec["output"],
                                        "author": {"name": f"user{i % 997}"}}) + b"\n")
        os.replace(tmp, path)
    return str(path)


def main() -> None:
    ap = arg_parser()
    args = ap.parse_args()
    n = args.records
    data = big_input(n)
    cqia = cqia_command()
    sharegpt = derived(cqia, data, f"convert-{n}.sharegpt.jsonl", ["--to", "sharegpt"])
    array = derived(cqia, data, f"convert-{n}.alpaca.json", ["--to", "alpaca", "--array"])
    raw = forum_dump(data, n)

    def run(name, extra, source=data):
        return measure(name, cqia + ["convert", "-q", *extra, source], records=n,
                       repeat=args.repeat)

    base = measure("bare orjson loop (baseline)", BARE_ORJSON_LOOP + [data], records=n,
                   repeat=args.repeat)
    results = [
        base,
        run("cqia convert --to alpaca", ["--to", "alpaca"]),
        run("cqia convert --to sharegpt", ["--to", "sharegpt"]),
        run("cqia convert --to messages --keep-meta", ["--to", "messages", "--keep-meta"]),
        run("cqia convert --to cqia (from sharegpt)", ["--to", "cqia"], sharegpt),
        run("cqia convert --to sharegpt (JSON array in)", ["--to", "sharegpt"], array),
        run("cqia convert --template xiaohongshu", ["--template", "xiaohongshu", "--map",
                                                    "output=content"], raw),
    ]
    report(results, base, title=f"convert, {n:,} records", json_path=args.json)


if __name__ == "__main__":
    main()
