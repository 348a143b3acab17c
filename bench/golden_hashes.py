"""Golden output hashes: every verb, on the shared COIG-CQIA data, for a set of option combinations.

    python bench/golden_hashes.py            # record: write bench/golden_hashes.json
    python bench/golden_hashes.py --check    # compare with it; status 1 on any difference

A refactoring of the core must not change a byte of any command's output. This runs each case
(command line + the files it writes) as a child process, and records the exit status and the
sha256 of standard output and of every output file. The input is the real records of
../shared/data/coig-cqia (a user's clone lacks it: the script then says so and exits 2).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "data" / "coig-cqia"
GOLDEN = HERE / "golden_hashes.json"

# Each case: name -> argv after `cqia` ({data} = every shared file, {d} = the temporary
# directory, whose files are hashed afterwards by name).
CASES: dict[str, list[str]] = {
    "validate": ["validate", "-q", "{data}"],
    "validate --drop-invalid --invalid": ["validate", "-q", "--drop-invalid", "--invalid",
                                          "{d}/invalid.jsonl", "{data}"],
    "filter": ["filter", "-q", "{data}"],
    "filter -j 2": ["filter", "-q", "-j", "2", "{data}"],
    "filter --rejects --report": ["filter", "-q", "--rejects", "{d}/rejects.jsonl",
                                  "--report", "{d}/report.json", "{data}"],
    "filter -j 2 --rejects": ["filter", "-q", "-j", "2", "--rejects", "{d}/rejects.jsonl",
                              "{data}"],
    "filter --invert --all-reasons": ["filter", "-q", "--invert", "--all-reasons", "{data}"],
    "filter -j 2 --invert --all-reasons": ["filter", "-q", "-j", "2", "--invert",
                                           "--all-reasons", "{data}"],
    "filter --field output --min-len output=20": ["filter", "-q", "--field", "output",
                                                  "--min-len", "output=20", "{data}"],
    "dedup": ["dedup", "-q", "{data}"],
    "dedup -j 2": ["dedup", "-q", "-j", "2", "{data}"],
    "dedup --dupes --clusters": ["dedup", "-q", "--dupes", "{d}/dupes.jsonl", "--clusters",
                                 "{d}/clusters.jsonl", "{data}"],
    "dedup -j 2 --dupes": ["dedup", "-q", "-j", "2", "--dupes", "{d}/dupes.jsonl", "{data}"],
    "dedup --keep longest --dupes": ["dedup", "-q", "--keep", "longest", "--dupes",
                                     "{d}/dupes.jsonl", "{data}"],
    "dedup -j 2 --keep longest": ["dedup", "-q", "-j", "2", "--keep", "longest", "{data}"],
    "dedup --keep best --mark": ["dedup", "-q", "--keep", "best", "--mark", "{data}"],
    "dedup --mark": ["dedup", "-q", "--mark", "{data}"],
    "stats --json": ["stats", "-q", "--json", "{data}"],
    "stats": ["stats", "-q", "{data}"],
    "split exact": ["split", "-q", "--ratios", "train=0.8,valid=0.1,test=0.1", "-o", "{d}/{{split}}.jsonl", "{data}"],
    "split stream": ["split", "-q", "--stream", "--ratios", "train=0.9,test=0.1", "-o", "{d}/{{split}}.jsonl", "{data}"],
    "split stratify": ["split", "-q", "--ratios", "train=0.9,test=0.1", "--stratify",
                       "task_type.major", "-o",
                       "{d}/{{split}}.jsonl", "{data}"],
    "split shards": ["split", "-q", "--shards", "4", "-o", "{d}/{{shard}}.jsonl", "{data}"],
    "split counts": ["split", "-q", "--counts", "test=500,valid=500", "-o",
                     "{d}/{{split}}.jsonl", "{data}"],
    "convert --to alpaca": ["convert", "-q", "--to", "alpaca", "{data}"],
    "convert --to sharegpt": ["convert", "-q", "--to", "sharegpt", "{data}"],
    "convert --to messages": ["convert", "-q", "--to", "messages", "{data}"],
    "convert --to text": ["convert", "-q", "--to", "text", "{data}"],
    "convert --to cqia": ["convert", "-q", "--to", "cqia", "{data}"],
    "convert --to alpaca --array": ["convert", "-q", "--to", "alpaca", "--array", "{data}"],
    "convert --to messages --keep-meta --system": ["convert", "-q", "--to", "messages",
                                                   "--keep-meta", "--system", "你是助手",
                                                   "{data}"],
    "filter stdin": ["filter", "-q", "-", "<{data}"],
    "dedup --keep longest stdin": ["dedup", "-q", "--keep", "longest", "-", "<{data}"],
    "filter -j 2 bad lines skip": ["filter", "-q", "-j", "2", "--on-error", "skip", "--errors",
                                   "{d}/errors.jsonl", "--rejects", "{d}/rejects.jsonl",
                                   "{bad}", "{data}"],
    "filter bad lines skip": ["filter", "-q", "--on-error", "skip", "--errors",
                              "{d}/errors.jsonl", "--rejects", "{d}/rejects.jsonl", "{bad}",
                              "{data}"],
    "filter -j 2 bad lines fail": ["filter", "-q", "-j", "2", "{data}", "{bad}"],
    "filter bad lines fail": ["filter", "-q", "{data}", "{bad}"],
    "dedup -j 2 bad lines skip": ["dedup", "-q", "-j", "2", "--on-error", "skip", "--errors",
                                  "{d}/errors.jsonl", "--dupes", "{d}/dupes.jsonl", "{bad}",
                                  "{data}"],
    "dedup bad lines skip": ["dedup", "-q", "--on-error", "skip", "--errors",
                             "{d}/errors.jsonl", "{bad}", "{data}"],
    "dedup -j 2 bad lines fail": ["dedup", "-q", "-j", "2", "{data}", "{bad}"],
    "stats --json bad lines skip": ["stats", "-q", "--json", "--on-error", "skip", "{bad}",
                                    "{data}"],
    "split bad lines skip": ["split", "-q", "--on-error", "skip", "--ratios",
                             "train=0.9,test=0.1", "-o", "{d}/{{split}}.jsonl", "{bad}",
                             "{data}"],
    "fetch local files": ["fetch", "-q", "{data}"],
    "fetch --add-source --limit": ["fetch", "-q", "--add-source", "--limit", "5000", "{data}"],
}


SRC: str | None = None  # --src: run the cqia_cli of another tree (e.g. an extracted commit)


def cqia() -> list[str]:
    if SRC is not None:
        return [sys.executable, "-c", f"import sys; sys.path.insert(0, {SRC!r}); "
                "sys.argv[0] = 'cqia'; from cqia_cli.cli import main; main()"]
    exe = Path(sys.executable).parent / "cqia"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "cqia_cli"]


BAD = HERE / ".cache" / "golden-bad-lines.jsonl"
#: bad lines between good records (for the --on-error paths, serial and -j)
BAD_LINES = (b'{"instruction": "a", "input": "", "output": "good one with enough text"}\n'
             b'{"instruction": broken\n'
             b'\n'
             b'[1, 2, 3]\n'
             b'{"instruction": "b", "input": "", "output": "\xff\xfe not utf-8"}\n'
             b'"a string"\n'
             b'{"instruction": "c", "input": "", "output": "good two with enough text"}\n')


def run_case(argv: list[str], data: list[str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="cqia-golden-") as d:
        args: list[str] = []
        stdin = None
        for a in argv:
            if a == "{data}":
                args.extend(data)
            elif a == "{bad}":
                args.append(os.path.relpath(BAD, ROOT))
            elif a == "<{data}":
                stdin = b"".join(Path(p).read_bytes() for p in data)
            else:
                args.append(a.replace("{d}", d).replace("{{split}}", "{split}").replace("{{shard}}", "{shard}"))
        proc = subprocess.run(cqia() + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              input=stdin if stdin is not None else b"")
        result = {"status": proc.returncode,
                  "stdout": hashlib.sha256(proc.stdout).hexdigest(),
                  "files": {}}
        for name in sorted(os.listdir(d)):
            with open(os.path.join(d, name), "rb") as f:
                result["files"][name] = hashlib.sha256(f.read()).hexdigest()
        if proc.returncode != 0:
            result["stderr"] = proc.stderr.decode("utf-8", "replace").strip()[-300:]
        return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the recorded hashes")
    ap.add_argument("--golden", default=str(GOLDEN), help="the JSON file of hashes")
    ap.add_argument("-k", dest="only", default=None, help="only the cases whose name has this")
    ap.add_argument("--src", default=None,
                    help="run the cqia_cli package under this directory instead of the "
                         "installed one (record another commit's hashes: git archive it there)")
    args = ap.parse_args()
    global SRC
    SRC = os.path.abspath(args.src) if args.src else None
    data = sorted(glob.glob(str(SHARED / "*" / "*.jsonl")))
    if not data:
        print(f"golden_hashes: no data under {SHARED}", file=sys.stderr)
        return 2
    data = [os.path.relpath(p, ROOT) for p in data]  # names in messages stay the same
    os.chdir(ROOT)
    BAD.parent.mkdir(exist_ok=True)
    BAD.write_bytes(BAD_LINES)
    cases = {k: v for k, v in CASES.items() if args.only is None or args.only in k}
    results = {}
    for name, argv in cases.items():
        results[name] = run_case(argv, data)
        print(f"{name:<48} {results[name]['status']:>3} {results[name]['stdout'][:12]}",
              file=sys.stderr)
    if not args.check:
        if args.only is not None and os.path.exists(args.golden):  # update those cases only
            with open(args.golden) as f:
                results = {**json.load(f), **results}
        with open(args.golden, "w") as f:
            json.dump(results, f, indent=2, ensure_ascii=False, sort_keys=True)
            f.write("\n")
        print(f"golden_hashes: {len(results)} cases written to {args.golden}", file=sys.stderr)
        return 0
    with open(args.golden) as f:
        golden = json.load(f)
    bad = 0
    for name, got in results.items():
        want = golden.get(name)
        if want is None:
            print(f"NEW   {name}", file=sys.stderr)
            continue
        if got != want:
            bad += 1
            print(f"DIFF  {name}: want {want} got {got}", file=sys.stderr)
    print(f"golden_hashes: {len(results) - bad} of {len(results)} cases identical",
          file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
