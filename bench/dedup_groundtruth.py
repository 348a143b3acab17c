"""Ground truth for near-duplicate detection: real CQIA records and realistic edited copies.

    python bench/dedup_groundtruth.py [--originals 8000] [--seed 1] [--out bench/.cache/dedup-gt]

Writes OUT/data.jsonl (records, shuffled) and OUT/truth.jsonl (one line per record, same order:
its group, whether it is the original, and the edits applied). Every generated duplicate
records its original (`group` is the original's number, `of` its line in data.jsonl).

Originals: records of ../shared/data/coig-cqia whose text (instruction, input, output) has at
least 30 characters, with natural near-duplicates removed first (any pair whose exact Jaccard
similarity over character 3-grams of the normalised text is 0.3 or more loses its later record),
so that every duplicate in the data is one we made and knows the original of.

Strata (each record's truth line says which; bench/bench_dedup.py scores each on its own):

- `long`: the originals below and their edited copies (cqia 0.1's ground truth).
- `short`: real short texts (instructions and outputs of at most 30 characters, mostly
  Ruozhiba questions) and copies with edits that keep the meaning: a particle (吗, 呢, 啊, 吧,
  了), punctuation added or changed, a prefix (请问, 请教一下, 我想问一下, 问一下), spaces, full/half
  width; plus false-positive traps, each its own group: the same text with a two-character
  content span replaced by another text's (a different subject), and short questions from a
  few templates that differ only in their subject (帮我写一篇关于X的详细介绍, ...).
- `templated`: posts (a title and a body from real records) rendered with the shipped
  `convert --template` xiaohongshu and douban templates: the same post under two templates is a
  duplicate; different posts under one template are not.
- `finance`: COIG-CQIA finance records, many sharing one long prompt with different inputs and
  answers (records whose inputs are near each other, 3-gram Jaccard >= 0.3, are dropped first),
  none a duplicate of another.

Half of the long originals get 1 to 3 copies. Each copy gets:
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

from harness import CACHE, SHARED, shared_records  # noqa: E402


def subset_records() -> list[dict]:
    """The shared records with the name of their subset in `_subset`."""
    out = []
    for path in sorted(Path(SHARED).rglob("*.jsonl")):
        for line in open(path, encoding="utf-8"):
            r = json.loads(line)
            r["_subset"] = path.parent.name
            out.append(r)
    return out

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


PARTICLES = "吗呢啊吧了"
PREFIXES = ["请问", "请教一下", "我想问一下", "问一下"]
TRAP_TEMPLATES = ["帮我写一篇关于{}的详细介绍", "请介绍一下{}的历史", "{}有什么特点",
                  "如何评价{}", "给我推荐几本关于{}的书", "{}是什么意思"]


def _grams(t: str) -> set:
    return {t[i:i + 3] for i in range(max(0, len(t) - 2))} or {t}


def short_edit(text: str, rng: random.Random) -> tuple[str, str]:
    """A copy of a short text with an edit that keeps its meaning."""
    kind = rng.choice(["particle", "punct", "prefix", "space", "width"])
    body = text.rstrip("？?。.！!")
    end = text[len(body):]
    if kind == "particle":
        return body + rng.choice(PARTICLES) + (end or rng.choice(["？", ""])), kind
    if kind == "punct":
        return body + rng.choice(["？", "?", "。", "！", "？？", "...", "~"]), kind
    if kind == "prefix":
        return rng.choice(PREFIXES) + rng.choice(["，", "", " "]) + text, kind
    if kind == "space":
        chars = list(text)
        for _ in range(rng.randint(1, 3)):
            chars.insert(rng.randrange(len(chars) + 1), " ")
        return "".join(chars), kind
    return swap_width(text) if any(c in text for c in FULL + HALF) else \
        text + rng.choice(["？", "?"]), kind


def short_stratum(records: list[dict], n: int, rng: random.Random):
    """Short originals (<= 30 characters) with meaning-keeping copies, and traps; and the
    positions of the records they come from (kept out of the long stratum)."""
    from cqia_cli.dedup.normalize import normalize

    seen: list[set] = []
    pool = []
    cands = []
    for i, r in enumerate(records):
        for k in ("instruction", "output"):
            t = str(r.get(k) or "").strip()
            if 6 <= len(t) <= 30 and "\n" not in t:
                cands.append((t, i))
    rng.shuffle(cands)
    index: dict = {}
    used = set()
    for t, src in cands:
        g = _grams(normalize(t))
        near = {j for x in g for j in index.get(x, ())}
        if any(len(g & seen[j]) / len(g | seen[j]) >= 0.3 for j in near):
            continue
        for x in g:
            index.setdefault(x, []).append(len(seen))
        seen.append(g)
        pool.append(t)
        used.add(src)
        if len(pool) >= n:
            break
    rows = []
    for t in pool:
        rows.append(({"instruction": t, "input": "", "output": ""}, {"original": True}))
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 2)):
                c, kind = short_edit(t, rng)
                rows.append(({"instruction": c, "input": "", "output": ""},
                             {"original": False, "edits": {"short": kind}}))
    # traps: another subject in the same words (each its own group)
    spans = [t[i:i + 2] for t in pool for i in range(0, len(t) - 1, 3)
             if all("\u4e00" <= c <= "\u9fff" for c in t[i:i + 2])]
    for t in rng.sample(pool, min(len(pool), n // 5)):
        cjk = [i for i in range(len(t) - 1) if all("\u4e00" <= c <= "\u9fff" for c in t[i:i + 2])]
        if not cjk:
            continue
        i = rng.choice(cjk)
        new = t[:i] + rng.choice(spans) + t[i + 2:]
        if normalize(new) != normalize(t):
            rows.append(({"instruction": new, "input": "", "output": ""},
                         {"original": True, "trap": "subject"}))
    subjects = list({s for r in records for s in re.findall(r"《([^》]{2,8})》",
                                                             str(r.get("instruction") or ""))})
    subjects.sort()
    rng.shuffle(subjects)
    for tpl in TRAP_TEMPLATES:
        for x in subjects[: n // 20]:
            rows.append(({"instruction": tpl.format(x), "input": "", "output": ""},
                         {"original": True, "trap": "template"}))
        rng.shuffle(subjects)
    return rows, used


def templated_stratum(records: list[dict], n: int, rng: random.Random) -> list[tuple[dict, dict]]:
    """Posts under the shipped xiaohongshu and douban templates of `convert --template`."""
    from cqia_cli.formats import build

    tpls = {name: build.load_templates(build.template_file(name))
            for name in ("xiaohongshu", "douban")}
    posts = []
    for r in records:
        m = re.search(r"《([^》]{2,20})》", str(r.get("instruction") or ""))
        out = str(r.get("output") or "")
        if not m or len(out) < 20:
            continue
        sents = [p for p in SENT.split(out) if p.strip()]
        body = "".join(sents[: rng.randint(1, 3)])[:200]
        posts.append({"title": m.group(1), "content": body})
    seen_titles = set()
    uniq = []
    for p in posts:
        body = p["content"][:30]
        if p["title"] not in seen_titles and body not in seen_titles and len(p["content"]) >= 15:
            seen_titles.update((p["title"], body))
            uniq.append(p)
    rng.shuffle(uniq)
    rows = []
    for p in uniq[:n]:
        name = rng.choice(sorted(tpls))
        first, second = rng.sample(tpls[name], 2)
        for k, t in enumerate((first, second) if rng.random() < 0.5 else (first,)):
            rec = {"instruction": t.texts["instruction"].render(p, t.label), "input": "",
                   "output": p["content"]}
            rows.append((rec, {"original": k == 0, "template": f"{name}/{t.name}"}))
    return rows


def finance_stratum(records: list[dict]) -> list[tuple[dict, dict]]:
    """Finance records: long shared prompts, different inputs and answers; no duplicates."""
    from cqia_cli.dedup.normalize import normalize

    rows = []
    kept: list[set] = []
    for r in records:
        g = _grams(normalize(str(r.get("input") or "") + str(r.get("output") or "")))
        if any(len(g & o) / len(g | o) >= 0.3 for o in kept):
            continue
        kept.append(g)
        rows.append(({k: v for k, v in r.items() if k != "_subset"}, {"original": True}))
    return rows


def _ident(r: dict) -> tuple:
    return tuple(str(r.get(k) or "") for k in ("instruction", "input", "output"))


def generate(originals: int, seed: int, out: Path, short: int = 1500,
             templated: int = 600) -> tuple[Path, Path]:
    """The strata come from disjoint records, so that no duplicate crosses strata: finance
    records make the finance stratum, douban records the templated posts, short fields of the
    other subsets the short stratum, and the remaining records the long originals."""
    rng = random.Random(seed)
    every = subset_records()
    finance = [r for r in every if r["_subset"] == "finance"]
    douban = [r for r in every if r["_subset"] == "douban"]
    rest = [r for r in every if r["_subset"] not in ("finance", "douban")]
    short_rows, used = short_stratum(rest, short, rng)
    pool = [{k: v for k, v in r.items() if k != "_subset"} for i, r in enumerate(rest)
            if i not in used]
    origs = clean_originals(pool, originals, seed)
    freq = Counter(ch for r in origs[:3000] for ch in text_of(r) if not ch.isspace())
    alphabet, weights = zip(*freq.most_common(3000))
    rows = []  # (record, truth)
    for g, r in enumerate(origs):
        rows.append((r, {"group": g, "original": True, "stratum": "long"}))
        if rng.random() < 0.5:
            for _ in range(rng.randint(1, 3)):
                c, edits = make_copy(r, origs, list(alphabet), list(weights), rng)
                rows.append((c, {"group": g, "original": False, "edits": edits,
                                 "stratum": "long"}))
    group = len(origs)
    for name, part in (("short", short_rows),
                       ("templated", templated_stratum(douban, templated, rng)),
                       ("finance", finance_stratum(finance))):
        for rec, t in part:
            if t["original"]:
                group += 1
            rows.append((rec, {"group": group, **t, "stratum": name}))
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
    strata = Counter()
    for line in open(truth):
        t = json.loads(line)
        strata[(t["stratum"], t["original"])] += 1
    print(f"{data}: {n:,} records; truth in {truth}")
    for (name, orig), c in sorted(strata.items()):
        print(f"  {name:10} {'originals' if orig else 'duplicates'}: {c:,}")


if __name__ == "__main__":
    main()
