#!/usr/bin/env python3
"""Write out/manifest.json: how this curated set was made, so it can be traced and reproduced.

    python3 manifest.py OUT_DIR COMMANDS_FILE SOURCE...

It records the cqia version, every command line the Makefile ran (COMMANDS_FILE, from
`make -Bn`), the sha256 of every input, and the record counts of every stage per source, and
checks that they add up: for each source, fetched + unreadable = lines in the source;
fetched = valid + invalid; cleaned = valid (clean drops nothing; `changed` is how many records it
repaired); cleaned = kept + rejected; then merged = the kept records of all
sources, merged = survivors + duplicates, survivors = train + valid + test = converted.
It exits with status 1 (and says which) when a count does not add up.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path


def lines(path: Path) -> int:
    """Records in a JSON Lines file (non-blank lines); 0 when the file does not exist."""
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(1 for line in f if line.strip())


def changed(report: Path) -> int:
    """How many records `cqia clean` changed, from its --report; 0 when there is none."""
    if not report.exists():
        return 0
    return json.loads(report.read_text("utf-8"))["changed"]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main() -> int:
    out = Path(sys.argv[1])
    commands_file = Path(sys.argv[2])
    sources = [Path(p) for p in sys.argv[3:]]
    version = subprocess.run([os.environ.get("CQIA", "cqia"), "--version"], capture_output=True,
                             text=True, check=True).stdout.strip()
    commands = []
    for line in commands_file.read_text("utf-8").replace("\\\n", " ").splitlines():
        line = " ".join(line.split())
        if line and not line.startswith(("make", "#", "mkdir ")):
            commands.append(line)
    problems: list[str] = []
    stages: dict[str, dict] = {}
    for src in sources:
        name = src.stem
        s = {
            "source_lines": lines(src),
            "fetched": lines(out / "fetched" / f"{name}.jsonl"),
            "unreadable": lines(out / "fetched" / f"{name}.errors.jsonl"),
            "valid": lines(out / "valid" / f"{name}.jsonl"),
            "invalid": lines(out / "valid" / f"{name}.invalid.jsonl"),
            "cleaned": lines(out / "cleaned" / f"{name}.jsonl"),
            "changed": changed(out / "cleaned" / f"{name}.report.json"),
            "kept": lines(out / "filtered" / f"{name}.jsonl"),
            "rejected": lines(out / "filtered" / f"{name}.rejects.jsonl"),
        }
        stages[name] = s
        if s["fetched"] + s["unreadable"] != s["source_lines"]:
            problems.append(f"{name}: fetched {s['fetched']} + unreadable {s['unreadable']} "
                            f"!= {s['source_lines']} lines in {src}")
        if s["valid"] + s["invalid"] != s["fetched"]:
            problems.append(f"{name}: valid {s['valid']} + invalid {s['invalid']} "
                            f"!= fetched {s['fetched']}")
        if s["cleaned"] != s["valid"]:
            problems.append(f"{name}: cleaned {s['cleaned']} != valid {s['valid']}")
        if s["kept"] + s["rejected"] != s["cleaned"]:
            problems.append(f"{name}: kept {s['kept']} + rejected {s['rejected']} "
                            f"!= cleaned {s['cleaned']}")
    total = {
        "merged": lines(out / "merged.jsonl"),
        "survivors": lines(out / "deduped.jsonl"),
        "duplicates": lines(out / "dupes.jsonl"),
        "clustered": lines(out / "clustered.jsonl"),
        "split": {p.stem: lines(p) for p in sorted((out / "split").glob("*.jsonl"))},
        "converted": {p.stem.removeprefix("cqia_"): lines(p)
                      for p in sorted((out / "llamafactory").glob("cqia_*.jsonl"))},
    }
    kept = sum(s["kept"] for s in stages.values())
    if total["merged"] != kept:
        problems.append(f"merged {total['merged']} != kept {kept} over all sources")
    if total["survivors"] + total["duplicates"] != total["merged"]:
        problems.append(f"survivors {total['survivors']} + duplicates {total['duplicates']} "
                        f"!= merged {total['merged']}")
    if total["clustered"] != total["survivors"]:
        problems.append(f"clustered {total['clustered']} != survivors {total['survivors']}")
    if sum(total["split"].values()) != total["survivors"]:
        problems.append(f"split {sum(total['split'].values())} != survivors "
                        f"{total['survivors']}")
    if total["converted"] != total["split"]:
        problems.append(f"converted {total['converted']} != split {total['split']}")
    fetched = sum(s["fetched"] + s["unreadable"] for s in stages.values())
    accounted = (total["survivors"] + total["duplicates"]
                 + sum(s["rejected"] + s["invalid"] + s["unreadable"] for s in stages.values()))
    if fetched != accounted:
        problems.append(f"fetched {fetched} != survivors + duplicates + rejected + invalid "
                        f"+ unreadable = {accounted}")
    manifest = {
        "cqia": version,
        "inputs": {str(p): sha256(p) for p in sources + [Path("recipe.toml")] if p.exists()},
        "commands": commands,
        "sources": stages,
        "totals": total,
        "balance": {"fetched": fetched, "accounted": accounted, "ok": not problems},
        "problems": problems,
    }
    tmp = out / "manifest.json.part"
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", "utf-8")
    os.replace(tmp, out / "manifest.json")
    for p in problems:
        print(f"manifest: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
