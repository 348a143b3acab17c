"""The review report: how good the whole file is, estimated from the decided sample.

- acceptance rate of the decided records (accepted / (accepted + rejected)) with a 95% Wilson
  score interval, and that interval as a number of good records in the whole file;
- rejection reasons with counts; decisions per reviewer;
- Cohen's kappa between two reviewers on the records both decided (the --overlap share);
- agreement of the people with earlier stages: a record's `_score` (kept when >= --score-threshold)
  and `_reject` (rejected by a rule), each as a 2x2 table, the share that agree and kappa.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Iterable

from cqia_cli.review.store import Decision, resolve

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion; None for n == 0."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def cohen_kappa(pairs: list[tuple[bool, bool]]) -> float | None:
    """Cohen's kappa of two raters' yes/no labels; None when undefined (no pairs, or both
    raters constant and equal, so that chance agreement is 1)."""
    n = len(pairs)
    if n == 0:
        return None
    agree = sum(1 for a, b in pairs if a == b)
    po = agree / n
    pa = sum(1 for a, _ in pairs if a) / n
    pb = sum(1 for _, b in pairs if b) / n
    pe = pa * pb + (1 - pa) * (1 - pb)
    if pe >= 1.0:
        return None
    return (po - pe) / (1 - pe)


def _table(pairs: list[tuple[bool, bool]]) -> dict:
    """2x2 counts of (machine keeps?, person accepts?) with agreement and kappa."""
    t = Counter(pairs)
    n = len(pairs)
    agree = t[(True, True)] + t[(False, False)]
    return {
        "records": n,
        "machine_keep_person_accept": t[(True, True)],
        "machine_keep_person_reject": t[(True, False)],
        "machine_drop_person_accept": t[(False, True)],
        "machine_drop_person_reject": t[(False, False)],
        "agreement": agree / n if n else None,
        "kappa": cohen_kappa(pairs),
    }


def _number(v) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def build(decisions: Iterable[Decision], *, records: int, plan_text: str, sampled: bool,
          threshold: float = 8.0, input_name: str = "") -> dict:
    """The report as a dict (what --json prints)."""
    all_decisions = list(decisions)
    final = resolve(all_decisions)
    statuses = Counter()
    lines_status: dict[int, set] = defaultdict(set)
    for d in all_decisions:
        lines_status[d.line].add(d.status)
    for line, st in lines_status.items():
        if line in final:
            statuses[final[line].status] += 1
        elif "skip" in st:
            statuses["skip"] += 1
        else:
            statuses["edit"] += 1
    accepted = statuses["accept"]
    rejected = statuses["reject"]
    n = accepted + rejected
    ci = wilson(accepted, n)
    estimate = None
    if ci is not None:
        rate = accepted / n
        if n >= records:  # every record decided: no estimate needed
            good = (accepted, accepted)
        else:
            good = (math.floor(records * ci[0]), math.ceil(records * ci[1]))
        estimate = {"rate": rate, "low": ci[0], "high": ci[1], "good_records_low": good[0],
                    "good_records_high": good[1]}
    reasons = Counter((d.reason or "(no reason)") for d in final.values()
                      if d.status == "reject")
    per_reviewer: dict[str, Counter] = defaultdict(Counter)
    for d in all_decisions:
        per_reviewer[d.reviewer][d.status] += 1

    # two reviewers on one record: the first two by name, as raters A and B
    by_line: dict[int, dict[str, bool]] = defaultdict(dict)
    for d in all_decisions:
        if d.status in ("accept", "reject"):
            by_line[d.line][d.reviewer] = d.status == "accept"
    overlap_pairs = []
    for line in sorted(by_line):
        who = by_line[line]
        if len(who) >= 2:
            a, b = sorted(who)[:2]
            overlap_pairs.append((who[a], who[b]))
    overlap = None
    if overlap_pairs:
        overlap = {"records": len(overlap_pairs),
                   "agree": sum(1 for a, b in overlap_pairs if a == b),
                   "kappa": cohen_kappa(overlap_pairs)}

    score_pairs, score_acc, score_rej = [], [], []
    reject_pairs = []
    for d in final.values():
        accept = d.status == "accept"
        s = _number(d.snapshot.get("_score"))
        if s is not None:
            score_pairs.append((s >= threshold, accept))
            (score_acc if accept else score_rej).append(s)
        if "_reject" in d.snapshot:
            reject_pairs.append((not d.snapshot["_reject"], accept))
    score = None
    if score_pairs:
        score = {"threshold": threshold, **_table(score_pairs),
                 "mean_score_accepted": sum(score_acc) / len(score_acc) if score_acc else None,
                 "mean_score_rejected": sum(score_rej) / len(score_rej) if score_rej else None}
    reject = {**_table(reject_pairs)} if reject_pairs else None
    return {
        "input": input_name,
        "records": records,
        "plan": plan_text,
        "sampled": sampled,
        "decided": n,
        "accepted": accepted,
        "rejected": rejected,
        "skipped": statuses["skip"],
        "edits_pending": statuses["edit"],
        "acceptance": estimate,
        "reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "reviewers": {r: dict(sorted(c.items())) for r, c in sorted(per_reviewer.items())},
        "overlap": overlap,
        "score_agreement": score,
        "reject_agreement": reject,
    }


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _kappa(x: float | None) -> str:
    return "undefined" if x is None else f"{x:.3f}"


def render(rep: dict) -> str:
    """The report for people."""
    out = [f"cqia review report: {rep['input']} ({rep['records']:,} records; {rep['plan']})"]
    out.append(f"decided       {rep['decided']:,} (accepted {rep['accepted']:,}, rejected "
               f"{rep['rejected']:,}); skipped {rep['skipped']:,}; edits awaiting a decision "
               f"{rep['edits_pending']:,}")
    acc = rep["acceptance"]
    if acc is None:
        out.append("acceptance    n/a (no record accepted or rejected yet)")
    else:
        line = (f"acceptance    {_pct(acc['rate'])} of the decided records; 95% interval "
                f"(Wilson) {_pct(acc['low'])} to {_pct(acc['high'])}")
        out.append(line)
        if rep["decided"] >= rep["records"]:
            out.append(f"whole file    every record decided: {acc['good_records_low']:,} good")
        else:
            out.append(f"whole file    about {acc['good_records_low']:,} to "
                       f"{acc['good_records_high']:,} of {rep['records']:,} records good")
            if not rep["sampled"]:
                out.append("              (records read in file order, not a random sample: "
                           "the interval holds only if they are typical; use --sample)")
    if rep["reasons"]:
        out.append("rejections    " + ", ".join(f"{r} {c:,}" for r, c in rep["reasons"].items()))
    if rep["reviewers"]:
        parts = []
        for r, c in rep["reviewers"].items():
            parts.append(f"{r} " + " ".join(f"{k} {v:,}" for k, v in c.items()))
        out.append("reviewers     " + "; ".join(parts))
    ov = rep["overlap"]
    if ov:
        out.append(f"overlap       {ov['records']:,} records read by two reviewers: agree on "
                   f"{ov['agree']:,}, Cohen's kappa {_kappa(ov['kappa'])}")
    sc = rep["score_agreement"]
    if sc:
        out.append(f"_score        on {sc['records']:,} records: _score >= {sc['threshold']:g} "
                   f"agrees with the people on {_pct(sc['agreement'])}, kappa "
                   f"{_kappa(sc['kappa'])}; mean _score accepted "
                   f"{_num(sc['mean_score_accepted'])}, rejected {_num(sc['mean_score_rejected'])}")
        out.append(f"              kept by score: accepted {sc['machine_keep_person_accept']:,}, "
                   f"rejected {sc['machine_keep_person_reject']:,}; below: accepted "
                   f"{sc['machine_drop_person_accept']:,}, rejected "
                   f"{sc['machine_drop_person_reject']:,}")
    rj = rep["reject_agreement"]
    if rj:
        out.append(f"_reject       on {rj['records']:,} records: the rules agree with the people "
                   f"on {_pct(rj['agreement'])}, kappa {_kappa(rj['kappa'])}; rules kept: "
                   f"accepted {rj['machine_keep_person_accept']:,}, rejected "
                   f"{rj['machine_keep_person_reject']:,}; rules rejected: accepted "
                   f"{rj['machine_drop_person_accept']:,}, rejected "
                   f"{rj['machine_drop_person_reject']:,}")
    return "\n".join(out) + "\n"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"
