"""How well clean's mojibake step repairs broken text, and how often it touches good text:
ftfy alone (fix_encoding), our own GBK round trip alone, and the step (both), measured on
the shared COIG-CQIA texts and on the same texts broken the ways real data is broken.

    python bench/mojibake_eval.py [--sample N] [--seed S]

Good text: every instruction, input and output of ../shared/data (a change is a false repair).
Broken text: a sample of those fields, encoded as UTF-8 and decoded as
  latin-1       ISO-8859-1 (every byte decodes)
  cp1252        Windows-1252, the bytes it lacks kept as Latin-1 (ftfy's sloppy-windows-1252)
  gbk           GBK, where the bytes happen to decode (most UTF-8 Chinese does not, whole)
  gbk-part      a GBK-decodable stretch of 4-40 characters broken inside a good sentence
A repair counts when the result equals the original exactly.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import ftfy
import ftfy.bad_codecs  # noqa: F401 - registers sloppy-windows-1252

from harness import shared_records

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
from cqia_cli.cleaning.steps import STEPS, _GBK_RUN, _gbk_repair  # noqa: E402


def own_gbk(text: str) -> str:
    return _GBK_RUN.sub(lambda m: _gbk_repair(m.group(0)) or m.group(0), text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sample", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    texts = [r[f] for r in shared_records() for f in ("instruction", "input", "output")
             if isinstance(r.get(f), str) and r.get(f)]
    step = STEPS["mojibake"]()
    fixers = {
        "ftfy.fix_encoding": ftfy.fix_encoding,
        "own GBK round trip": own_gbk,
        "clean's mojibake step": lambda t: step.fix(t, "output")[0],
    }
    print(f"good texts: {len(texts):,} fields of ../shared/data")
    for name, fn in fixers.items():
        t0 = time.process_time()
        changed = sum(fn(t) != t for t in texts)
        dt = time.process_time() - t0
        print(f"  {name:24s} changed {changed:,} good texts "
              f"({dt * 1e6 / len(texts):.1f} us a text)")

    sample = rng.sample(texts, min(args.sample, len(texts)))
    broken: dict[str, list[tuple[str, str]]] = {"latin-1": [], "cp1252": [], "gbk": [],
                                                "gbk-part": []}
    for t in sample:
        raw = t.encode("utf-8")
        broken["latin-1"].append((t, raw.decode("latin-1")))
        broken["cp1252"].append((t, raw.decode("sloppy-windows-1252")))
        try:
            broken["gbk"].append((t, raw.decode("gbk")))
        except UnicodeDecodeError:
            pass
        # a stretch of the sentence, broken: what a bad join of two sources leaves
        for _ in range(5):
            n = rng.randint(4, min(40, max(4, len(t))))
            i = rng.randint(0, max(0, len(t) - n))
            part = t[i:i + n]
            try:
                bad = part.encode("utf-8").decode("gbk")
            except UnicodeDecodeError:
                continue
            if bad != part:
                broken["gbk-part"].append((t, t[:i] + bad + t[i + n:]))
                break
    print(f"\nbroken texts (a sample of {len(sample):,} fields; exact repairs):")
    print(f"  {'kind':10s} {'texts':>6s}  " + "  ".join(f"{n:>22s}" for n in fixers))
    for kind, pairs in broken.items():
        row = []
        for fn in fixers.values():
            ok = sum(fn(b) == t for t, b in pairs)
            row.append(f"{ok:>6,} ({ok / len(pairs):6.1%})" if pairs else "-")
        print(f"  {kind:10s} {len(pairs):>6,}  " + "  ".join(f"{c:>22s}" for c in row))


if __name__ == "__main__":
    main()
