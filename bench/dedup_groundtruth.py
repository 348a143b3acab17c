"""Ground truth for near-duplicate detection: real CQIA records and realistic edited copies.

    python bench/dedup_groundtruth.py [--originals 8000] [--seed 1] [--out bench/.cache/dedup-gt]

Writes OUT/data.jsonl (records, shuffled) and OUT/truth.jsonl (one line per record, same order:
its group, whether it is the original, and the edits applied). Every generated duplicate
records its original (`group` is the original's number, `of` its line in data.jsonl).

Originals: records of ../shared/data/coig-cqia whose text (instruction, input, output) has at
least 30 characters, with natural near-duplicates removed first (any pair whose exact Jaccard
similarity over character 3-grams of the normalised text is 0.3 or more loses its later record),
so that every duplicate in the data is one we made and knows the original of.

Half of the originals get 1 to 3 copies. Each copy gets:
- character edits: 1-10% of its characters (uniform) inserted, deleted or replaced, with
  characters drawn from the corpus's own character distribution (so the edits look like typos,
  rewording and OCR noise, not random CJK);
- with probability 0.5, punctuation width swapped (，。？！：；（） <-> ,.?!:;()) throughout;
- with probability 0.3, two adjacent sentences of the output swapped;
- with probability 0.3, one sentence from another record appended to the output.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from harness import CACHE, shared_records  # noqa: E402

FULL = "，。？！：；（）“”"
HALF = ",.?!:;()\"\""
SENT = re.compile(r"(?<=[。！？!?；;\n])")


def text_of(r: dict) -> str:
    return "\n".join(str(r.get(k) or "") for k in ("instruction", "input", "output") if r.get(k))


def clean_originals(records: list[dict], limit: int, seed: int) -> list[dict]:
    from cqia_cli.dedup.normalize import normalize
    from datasketch import MinHash, MinHashLSH

    rng = random.Random(seed)
    pool = [r for r in records if len(text_of(r)) >= 30]
    rng.shuffle(pool)
    pool = pool[: int(limit * 1.6)]
    lsh = MinHashLSH(threshold=0.3, num_perm=64)
    sets = []
    kept = []
    for i, r in enumerate(pool):
        t = normalize(text_of(r))
        s = {t[j:j + 3] for j in range(max(0, len(t) - 2))} or {t}
        m = MinHash(num_perm=64, seed=7)
        m.update_batch([x.encode("utf-8") for x in s])
        near = False
        for j in lsh.query(m):
            o = sets[j]
            if len(s & o) / len(s | o) >= 0.3:
                near = True
                break
        sets.append(s)
        if near:
            continue
        lsh.insert(i, m)
        kept.append(r)
        if len(kept) >= limit:
            break
    return kept


def edit_chars(text: str, rate: float, alphabet: list[str], weights: list[int],
               rng: random.Random) -> tuple[str, int]:
    chars = list(text)
    n = max(1, round(len(chars) * rate))
    for _ in range(n):
        op = rng.random()
        i = rng.randrange(len(chars) + (1 if op >= 0.66 else 0)) if chars else 0
        if op < 0.33 and chars:
            chars[i] = rng.choices(alphabet, weights)[0]
        elif op < 0.66 and chars:
            del chars[i]
        else:
            chars.insert(i, rng.choices(alphabet, weights)[0])
    return "".join(chars), n


def swap_width(text: str) -> str:
    if any(c in text for c in FULL):
        return text.translate(str.maketrans(FULL, HALF))
    return text.translate(str.maketrans(HALF[:-2], FULL[:-2]))


def make_copy(r: dict, donors: list[dict], alphabet, weights, rng: random.Random) -> tuple[dict, dict]:
    c = dict(r)
    edits: dict = {}
    out = str(c.get("output") or "")
    if rng.random() < 0.3:
        parts = [p for p in SENT.split(out) if p]
        if len(parts) >= 2:
            k = rng.randrange(len(parts) - 1)
            parts[k], parts[k + 1] = parts[k + 1], parts[k]
            out = "".join(parts)
            edits["reorder"] = True
    if rng.random() < 0.3:
        donor = [p for p in SENT.split(str(rng.choice(donors).get("output") or "")) if p.strip()]
        if donor:
            out = out + rng.choice(donor)
            edits["append"] = True
    c["output"] = out
    rate = rng.uniform(0.01, 0.10)
    # spread the character edits over the fields in proportion to their length
    total = sum(len(str(c.get(k) or "")) for k in ("instruction", "input", "output"))
    count = 0
    for k in ("instruction", "input", "output"):
        v = str(c.get(k) or "")
        if v and total:
            c[k], n = edit_chars(v, rate, alphabet, weights, rng)
            count += n
    edits["char_rate"] = round(rate, 4)
    edits["char_edits"] = count
    if rng.random() < 0.5:
        for k in ("instruction", "input", "output"):
            if c.get(k):
                c[k] = swap_width(str(c[k]))
        edits["width"] = True
    return c, edits


def generate(originals: int, seed: int, out: Path) -> tuple[Path, Path]:
    rng = random.Random(seed)
    records = shared_records()
    origs = clean_originals(records, originals, seed)
    freq = Counter(ch for r in origs[:3000] for ch in text_of(r) if not ch.isspace())
    alphabet, weights = zip(*freq.most_common(3000))
    rows = []  # (record, truth)
    for g, r in enumerate(origs):
        rows.append((r, {"group": g, "original": True}))
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 3)):
                c, edits = make_copy(r, origs, list(alphabet), list(weights), rng)
                rows.append((c, {"group": g, "original": False, "edits": edits}))
    rng.shuffle(rows)
    out.mkdir(parents=True, exist_ok=True)
    line_of_original = {t["group"]: i for i, (_, t) in enumerate(rows, 1) if t["original"]}
    data, truth = out / "data.jsonl", out / "truth.jsonl"
    with open(data, "w", encoding="utf-8") as fd, open(truth, "w", encoding="utf-8") as ft:
        for i, (r, t) in enumerate(rows, 1):
            fd.write(json.dumps(r, ensure_ascii=False) + "\n")
            t = {"line": i, **t}
            if not t["original"]:
                t["of"] = line_of_original[t["group"]]
            ft.write(json.dumps(t, ensure_ascii=False) + "\n")
    return data, truth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--originals", type=int, default=8000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=str(CACHE / "dedup-gt"))
    args = ap.parse_args()
    data, truth = generate(args.originals, args.seed, Path(args.out))
    n = sum(1 for _ in open(truth))
    dups = sum(1 for line in open(truth) if '"original": false' in line)
    print(f"{data}: {n:,} records, {dups:,} generated duplicates; truth in {truth}")


if __name__ == "__main__":
    main()
