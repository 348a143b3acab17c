"""The HTML page of `cqia stats --html`: one self-contained file (inline CSS and SVG charts, no
script, no network), with the same figures as the terminal report."""

from __future__ import annotations

from html import escape

from cqia_cli.stats.accumulator import Accumulator
from cqia_cli.stats.render import (
    NUMBER_COLUMNS,
    category_tallies,
    number_rows,
    DUPLICATE_COLUMNS,
    compare_rows,
    duplicate_rows,
    field_order,
    group_labels,
    group_rows,
    histogram_rows,
    human_bytes,
    length_cells,
    length_columns,
    num,
    plural,
    share,
    sorted_groups,
    value_label,
)

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","PingFang SC",
"Microsoft YaHei",sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}
th,td{padding:.2em .7em;text-align:right;border-bottom:1px solid #eee;white-space:nowrap}
th{background:#f6f6f6}td:first-child,th:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:1.5em}.chart h3{font-size:.95em;margin:.5em 0}
svg text{font-size:11px;fill:#333}.note{color:#666;font-size:.9em}
.up{color:#16794c}.down{color:#b3261e}
"""

BAR_COLOUR = "#4c78a8"
OTHER_COLOUR = "#b8b8b8"


def svg_bars(rows: list[tuple[str, int]], total: int, *, width: int = 460) -> str:
    """A horizontal bar chart: one labelled bar per (label, count), with count and share."""
    if not rows:
        return ""
    label_w, num_w, row_h = 130, 110, 18
    bar_w = width - label_w - num_w
    biggest = max(c for _, c in rows) or 1
    height = row_h * len(rows) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img">']
    for i, (label, c) in enumerate(rows):
        y = i * row_h + 2
        w = round(bar_w * c / biggest, 1)
        shown = label if len(label) <= 18 else label[:17] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">'
                     f'<title>{escape(label)}</title>{escape(shown)}</text>')
        colour = OTHER_COLOUR if label.startswith("(other") else BAR_COLOUR
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{w}" height="{row_h - 5}" '
                     f'fill="{colour}"/>')
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 12}">{c:,} '
                     f'({share(c, total)})</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> str:
    out = ["<table><tr>", "".join(f"<th>{escape(h)}</th>" for h in header), "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _page(title: str, body: list[str]) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"zh\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n<p class=\"note\">Made by cqia stats.</p></body></html>\n")


def report_html(acc: Accumulator, *, title: str, top: int = 10) -> str:
    acc.finish()
    n = acc.records
    body = [f"<h1>{escape(title)}</h1>",
            f"<p>{n:,} records, {escape(human_bytes(acc.bytes))}</p>"]
    if n:
        body += _sections(acc, top)
    return _page(f"cqia stats: {title}", body)


def _sections(acc: Accumulator, top: int) -> list[str]:
    n = acc.records
    f = acc.fields
    body = ["<h2>Fields</h2>", _table(
        ["field", "present", "fill", "empty", "types"],
        [[p, num(c), share(c, n), num(f.empty[p]),
          ", ".join(f"{t} {v:,}" for t, v in f.types[p].items())]
         for p, c in ((p, f.present[p]) for p in field_order(f.present))])]

    body.append("<h2>Text length (characters)</h2>")
    rows = []
    for name, ts in acc.text.items():
        ts.chars.fold()
        rows.append([name, num(ts.chars.n), num(ts.chars.bins.get(0, 0)),
                     *length_cells(ts.chars), share(ts.han, ts.chars.total)])
    body.append(_table(["field", "records", "empty", *length_columns(), "Han"], rows))
    if acc.config.tokens:
        body.append("<h2>Text length (jieba words)</h2>")
        body.append(_table(["field", "records", *length_columns()],
                           [[name, num(ts.tokens.summary()["count"]),
                             *length_cells(ts.tokens)]
                            for name, ts in acc.text.items()]))
    charts = []
    for name, ts in acc.text.items():
        if ts.chars.n and ts.chars.max:
            charts.append(f'<div class="chart"><h3>{escape(name)}: length (characters)</h3>'
                          f'{svg_bars(histogram_rows(ts.chars), ts.chars.n)}</div>')
    if charts:
        body.append("<h2>Length histograms</h2><div class=\"charts\">" + "".join(charts)
                    + "</div>")

    charts = []
    for name, kind, tally in category_tallies(acc):
        items = tally.top()
        rows = [(value_label(k), c) for k, c in items[:top]]
        rest = sum(c for _, c in items[top:]) + tally.other
        if rest:
            rows.append(("(other)", rest))
        note = " (detected)" if kind == "auto" else ""
        charts.append(f'<div class="chart"><h3>{escape(name)}{note}: '
                      f'{plural(len(items), "value")}</h3>{svg_bars(rows, n)}</div>')
    if charts:
        body.append("<h2>Breakdowns</h2><p class=\"note\">Share of records; a list field "
                    "counts each of its values.</p><div class=\"charts\">" + "".join(charts)
                    + "</div>")

    rows = number_rows(acc)
    if rows:
        body.append("<h2>Numeric fields</h2>")
        body.append(_table(NUMBER_COLUMNS, rows))

    if acc.dup_triple is not None:
        body.append("<h2>Exact duplicates</h2>")
        body.append(_table(DUPLICATE_COLUMNS, duplicate_rows(acc)))

    if acc.diversity is not None:
        div = acc.diversity
        body.append("<h2>Instruction diversity</h2>")
        body.append(f"<p>{div.verbs.records:,} of {div.instructions:,} instructions have a "
                    f"leading verb; {len(div.verbs.counts):,} verbs, "
                    f"{len(div.pairs.counts):,} verb-noun pairs.</p>")
        with_verb = div.instructions - div.no_verb
        rows = [[v, num(c), share(c, with_verb), ", ".join(f"{noun} ({k:,})" for noun, k in ns)]
                for v, c, ns in div.top_pairs(verbs=max(top, 20), nouns=4)]
        body.append(_table(["verb", "records", "share", "top nouns"], rows))
        body.append('<div class="chart">' + svg_bars(
            [(v, c) for v, c, _ in div.top_pairs(verbs=max(top, 20), nouns=0)], with_verb)
            + "</div>")

    if acc.groups is not None:
        groups = sorted_groups(acc)
        labels = group_labels(acc)
        body.append(f"<h2>By {escape(acc.config.group)}</h2>"
                    "<p class=\"note\">Median length of the text fields in characters.</p>")
        body.append(_table([acc.config.group, "records", "share", *acc.text, "Han",
                            "dup instr."], group_rows(acc)))
        body.append('<div class="chart">'
                    + svg_bars([(labels[k], g.records) for k, g in groups], n) + "</div>")
    return body


def compare_html(before: Accumulator, after: Accumulator, *, names: tuple[str, str],
                 top: int = 10) -> str:
    body = [f"<h1>{escape(names[0])} → {escape(names[1])}</h1>"]
    sections: dict[str, list] = {}
    for section, metric, b, a in compare_rows(before, after):
        sections.setdefault(section, []).append((metric, b, a))
    for section, rows in sections.items():
        body.append(f"<h2>{escape(section or 'totals')}</h2>")
        out = []
        for metric, b, a in rows:
            d = "" if b is None or a is None else (f"{a - b:+,.1f}" if isinstance(a - b, float)
                                                   else f"{a - b:+,}")
            out.append([metric, num(b), num(a), d])
        body.append(_table(["", "before", "after", "change"], out))
    body.append("<h2>Before</h2>")
    body += _sections(before, top)
    body.append("<h2>After</h2>")
    body += _sections(after, top)
    return _page(f"cqia stats: {names[0]} → {names[1]}", body)
