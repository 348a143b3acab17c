"""How a judge's scores agree with people's labels (--truth): for each threshold, the share of
records kept (score >= threshold), precision and recall against the human label, F1; and the
threshold with the best F1 (ties: the higher precision, then the higher threshold)."""

from __future__ import annotations

TRUE = {"true", "yes", "y", "1", "keep", "kept", "accept", "accepted", "approve", "approved",
        "pass", "good", "ok", "是", "好", "保留", "通过"}
FALSE = {"false", "no", "n", "0", "reject", "rejected", "drop", "dropped", "discard", "fail",
         "bad", "否", "差", "删除", "拒绝", "不通过"}


def label(value) -> bool | None:
    """A human label as True/False; None when there is none or it cannot be read."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        v = value.strip().lower()
        if v in TRUE:
            return True
        if v in FALSE:
            return False
        return None
    if isinstance(value, dict):
        for key in ("decision", "verdict", "label", "keep"):
            if key in value:
                return label(value[key])
    return None


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def agreement(pairs: list[tuple[float, bool]], scale: tuple[float, float],
              unlabelled: int = 0) -> dict:
    total = len(pairs)
    positives = sum(1 for _, y in pairs if y)
    points = {float(x) for x in range(int(scale[0]), int(scale[1]) + 1)}
    points |= {float(s) for s, _ in pairs}
    rows = []
    for t in sorted(points):
        kept = tp = 0
        for s, y in pairs:
            if s >= t:
                kept += 1
                tp += y
        p = _ratio(tp, kept)
        r = _ratio(tp, positives)
        f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r else (
            0.0 if total else None)
        rows.append({"threshold": int(t) if t.is_integer() else t, "kept": kept,
                     "kept_share": _ratio(kept, total), "true_positives": tp,
                     "precision": p, "recall": r, "f1": f1})
    best = None
    for row in rows:
        if row["f1"] is None:
            continue
        key = (row["f1"], row["precision"] or 0.0, row["threshold"])
        if best is None or key > best[0]:
            best = (key, row)
    return {"records": total, "positives": positives, "unlabelled": unlabelled,
            "thresholds": rows, "best": None if best is None else best[1]}


def table(report: dict, truth: str, into: str = "_score") -> list[str]:
    def pct(x):
        return "    -" if x is None else f"{100 * x:5.1f}"

    lines = [f"agreement with {truth}: {report['records']:,} labelled records, "
             f"{report['positives']:,} positive"
             + (f", {report['unlabelled']:,} without a label (left out)"
                if report["unlabelled"] else ""),
             "threshold   kept%  precision%  recall%     F1"]
    for row in report["thresholds"]:
        lines.append(f"  >= {row['threshold']!s:<5} {pct(row['kept_share'])}       "
                     f"{pct(row['precision'])}    {pct(row['recall'])}  "
                     + ("    -" if row["f1"] is None else f"{row['f1']:.3f}"))
    best = report["best"]
    if best is not None:
        lines.append(f"best F1 {best['f1']:.3f} at threshold {best['threshold']} "
                     f"(keeps {pct(best['kept_share']).strip()}%: "
                     f"cqia filter --threshold '{into} >= {best['threshold']}')")
    return lines
