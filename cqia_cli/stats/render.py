"""The terminal report of `cqia stats` (rich tables and bar histograms), and the comparison.

Rendered into a string by a Console that is given its width, so the same input gives the same
bytes: colour only when standard output is a terminal (`console_for(tty=True)`), plain text
otherwise (a file, a pipe into `less`).
"""

from __future__ import annotations

import io
import shutil
from typing import Iterable

from cqia_cli.stats.accumulator import (
    CQIA_CATEGORIES,
    OTHER_GROUP,
    Accumulator,
    Tally,
    key_label,
)
from cqia_cli.stats.bins import PERCENTILES, LengthDist, display_edges

PLAIN_WIDTH = 100
BAR_WIDTH = 30
_EIGHTHS = " ▏▎▍▌▋▊▉"


def console_for(tty: bool):
    """A Console writing into a buffer: `tty` gives colour and the terminal's width."""
    from rich.console import Console

    buf = io.StringIO()
    if tty:
        width = shutil.get_terminal_size((PLAIN_WIDTH, 24)).columns
        return Console(file=buf, force_terminal=True, width=width, highlight=False,
                       emoji=False, soft_wrap=False)
    return Console(file=buf, force_terminal=False, color_system=None, no_color=True,
                   width=PLAIN_WIDTH, highlight=False, emoji=False, soft_wrap=False,
                   legacy_windows=False)


def rendered(console) -> str:
    """What was printed; plain text without the trailing blanks that pad table cells."""
    text = console.file.getvalue()
    if console.is_terminal:
        return text
    return "".join(line.rstrip() + "\n" for line in text.splitlines())


# -- formatting -----------------------------------------------------------------------------


def num(n) -> str:
    if n is None:
        return "-"
    if isinstance(n, float):
        return f"{n:,.1f}"
    return f"{n:,}"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def share(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def human_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,} B" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000.0
    return str(n)


def bar(value: int, biggest: int, width: int = BAR_WIDTH) -> str:
    """A horizontal bar in eighths of a character."""
    if biggest <= 0 or value <= 0:
        return ""
    eighths = max(1, round(8 * width * value / biggest))
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def range_label(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"{lo:,}+"
    if hi == lo:
        return f"{lo:,}"
    return f"{lo:,}–{hi:,}"


def _table(title: str | None = None, **kw):
    from rich import box
    from rich.table import Table

    return Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                 show_edge=False, pad_edge=False, **kw)


def histogram_rows(dist: LengthDist) -> list[tuple[str, int]]:
    rows = dist.histogram(display_edges(dist))
    return [(range_label(lo, hi), n) for lo, hi, n in rows]


def category_tallies(acc: Accumulator) -> list[tuple[str, str, Tally]]:
    """(field, kind, tally) of every category to report: CQIA's, --by, auto-detected."""
    out = []
    by = set(acc.config.by)
    for name, tally in acc.categories.items():
        if tally.records or name in by:
            out.append((name, "by" if name in by and name not in CQIA_CATEGORIES else "cqia",
                        tally))
    for name, tally in acc.auto_categories().items():
        out.append((name, "auto", tally))
    return out


def value_label(key) -> str:
    """A category value for display: the empty string shows as \"\"."""
    label = key_label(key)
    return label if label else '""'


def field_order(paths: Iterable[str]) -> list[str]:
    """Field paths in the order first seen, each nested path right after its parent."""
    paths = list(paths)
    first = {p: i for i, p in enumerate(paths)}
    return sorted(paths, key=lambda p: (first.get(p.split(".")[0], first[p]), p.count("."),
                                        first[p]))


def length_columns() -> list[str]:
    return ["min"] + ["median" if p == 50 else f"p{p}" for p in PERCENTILES] + ["max", "mean"]


def length_cells(dist: LengthDist) -> list[str]:
    s = dist.summary()
    return [num(s[c]) for c in length_columns()]


# -- the report -----------------------------------------------------------------------------


def render_report(acc: Accumulator, console, *, title: str, top: int = 10) -> None:
    acc.finish()
    n = acc.records
    console.print(f"[bold]{_esc(title)}[/]: {n:,} records, {human_bytes(acc.bytes)}",
                  soft_wrap=True)
    if not n:
        return
    console.print()
    _fields(acc, console)
    _texts(acc, console)
    _histograms(acc, console)
    _categories(acc, console, top)
    _numbers(acc, console)
    if acc.dup_triple is not None:
        _duplicates(acc, console)
    if acc.diversity is not None:
        _diversity(acc, console, top)
    if acc.groups is not None:
        _groups(acc, console, top)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _fields(acc: Accumulator, console) -> None:
    t = _table("fields")
    for col, j in (("field", "left"), ("present", "right"), ("fill", "right"),
                   ("empty", "right"), ("types", "left")):
        t.add_column(col, justify=j)
    f = acc.fields
    for path in field_order(f.present):
        present = f.present[path]
        types = ", ".join(f"{k} {share(v, present)}" if len(f.types[path]) > 1 else k
                          for k, v in sorted(f.types[path].items(), key=lambda kv: -kv[1]))
        t.add_row(_esc(path), num(present), share(present, acc.records), num(f.empty[path]),
                  types)
    console.print(t)
    if f.overflow:
        console.print(f"  ... and {f.overflow:,} values of further fields (more than "
                      f"{len(f.present):,} field names)")
    console.print()


def _texts(acc: Accumulator, console) -> None:
    t = _table("text length (characters)")
    t.add_column("field")
    t.add_column("records", justify="right")
    t.add_column("empty", justify="right")
    for c in length_columns():
        t.add_column(c, justify="right")
    t.add_column("Han", justify="right")
    for name, ts in acc.text.items():
        d = ts.chars
        d.fold()
        t.add_row(_esc(name), num(d.n), num(d.bins.get(0, 0)), *length_cells(d),
                  share(ts.han, d.total))
    console.print(t)
    console.print()
    if acc.config.tokens:
        t = _table("text length (jieba words)")
        t.add_column("field")
        t.add_column("records", justify="right")
        for c in length_columns():
            t.add_column(c, justify="right")
        for name, ts in acc.text.items():
            ts.tokens.fold()
            t.add_row(_esc(name), num(ts.tokens.n), *length_cells(ts.tokens))
        console.print(t)
        console.print()


def _histograms(acc: Accumulator, console) -> None:
    for name, ts in acc.text.items():
        d = ts.chars
        d.fold()
        if not d.n or d.max == 0:
            continue
        rows = histogram_rows(d)
        biggest = max(c for _, c in rows)
        t = _table(f"{name}: length histogram (characters)")
        t.add_column("length", justify="right")
        t.add_column("", no_wrap=True)
        t.add_column("records", justify="right")
        t.add_column("share", justify="right")
        for label, c in rows:
            t.add_row(label, bar(c, biggest), num(c), share(c, d.n))
        console.print(t)
        console.print()


def _categories(acc: Accumulator, console, top: int) -> None:
    for name, kind, tally in category_tallies(acc):
        items = tally.top()
        note = {"auto": ", detected", "by": "", "cqia": ""}[kind]
        more = "more than " if tally.other else ""
        title = f"{name}: {more}{plural(len(items), 'value')} in {tally.records:,} records{note}"
        t = _table(title)
        t.add_column("value", max_width=40, overflow="ellipsis", no_wrap=True)
        t.add_column("records", justify="right")
        t.add_column("share", justify="right")
        t.add_column("", no_wrap=True)
        shown = items[:top]
        rest = sum(c for _, c in items[top:]) + tally.other
        biggest = max([c for _, c in shown] + [0])
        for key, c in shown:
            t.add_row(_esc(value_label(key)), num(c), share(c, acc.records), bar(c, biggest))
        if rest:
            more = len(items) - len(shown)
            label = f"(other: {more:,} values)" if not tally.other else "(other values)"
            t.add_row(label, num(rest), share(rest, acc.records), "")
        console.print(t)
        console.print()


NUMBER_COLUMNS = ["field", "records", "min", "max", "mean"]


def number_rows(acc: Accumulator) -> list[list[str]]:
    """One row per numeric field (bookkeeping `_` fields, numbers with many values)."""
    rows = []
    for path, n in acc.numeric_fields().items():
        rows.append([path, num(n.count), num(n.min), num(n.max), num(round(n.mean, 2))])
    return rows


def _numbers(acc: Accumulator, console) -> None:
    rows = number_rows(acc)
    if not rows:
        return
    t = _table("numeric fields")
    for c in NUMBER_COLUMNS:
        t.add_column(c, justify="left" if c == "field" else "right")
    for row in rows:
        t.add_row(_esc(row[0]), *row[1:])
    console.print(t)
    console.print()


DUPLICATE_COLUMNS = ["of", "records", "distinct", "duplicates", "share"]


def duplicate_rows(acc: Accumulator) -> list[list[str]]:
    rows = []
    for label, d in (("instruction", acc.dup_instruction),
                     ("instruction + input + output", acc.dup_triple)):
        dups = d.records - len(d.hashes)
        rows.append([label, num(d.records), num(len(d.hashes)), num(dups),
                     share(dups, d.records)])
    return rows


def _duplicates(acc: Accumulator, console) -> None:
    t = _table("exact duplicates")
    t.add_column("of")
    t.add_column("records", justify="right")
    t.add_column("distinct", justify="right")
    t.add_column("duplicates", justify="right")
    t.add_column("share", justify="right")
    for row in duplicate_rows(acc):
        t.add_row(*row)
    console.print(t)
    console.print()


def _diversity(acc: Accumulator, console, top: int) -> None:
    div = acc.diversity
    with_verb = div.instructions - div.no_verb
    t = _table(f"instruction diversity: leading verbs ({div.verbs.records:,} of "
               f"{div.instructions:,} instructions have one; {len(div.verbs.counts):,} verbs, "
               f"{len(div.pairs.counts):,} verb-noun pairs)")
    t.add_column("verb")
    t.add_column("records", justify="right")
    t.add_column("share", justify="right")
    t.add_column("top nouns (records)")
    for verb, c, nouns in div.top_pairs(verbs=max(top, 20), nouns=4):
        t.add_row(_esc(verb), num(c), share(c, with_verb),
                  ", ".join(f"{_esc(noun)} ({n:,})" for noun, n in nouns))
    console.print(t)
    console.print()


def group_labels(acc: Accumulator) -> dict[str, str]:
    """Display names of the groups: input files (--group @file) relative to their common
    directory, field values as they are."""
    keys = list(acc.groups)
    if acc.config.group != "@file":
        return {k: k for k in keys}
    import os

    files = [k for k in keys if k not in ("<stdin>", OTHER_GROUP)]
    try:
        root = os.path.commonpath([os.path.dirname(os.path.abspath(k)) for k in files])
    except ValueError:
        root = ""
    if len(files) < 2:
        root = ""
    return {k: os.path.relpath(os.path.abspath(k), root) if root and k in files else k
            for k in keys}


def sorted_groups(acc: Accumulator) -> list[tuple[str, Accumulator]]:
    return sorted(acc.groups.items(), key=lambda kv: (kv[0] == OTHER_GROUP, -kv[1].records))


def group_rows(acc: Accumulator) -> list[list[str]]:
    """Per group: label, records, share, median length of each text field, Han share, share
    of duplicate instructions."""
    labels = group_labels(acc)
    rows = []
    for key, g in sorted_groups(acc):
        g.finish()
        han = sum(ts.han for ts in g.text.values())
        chars = sum(ts.chars.total for ts in g.text.values())
        d = g.dup_instruction
        rows.append([labels[key], num(g.records), share(g.records, acc.records),
                     *[num(g.text[name].chars.percentile(50)) for name in acc.text],
                     share(han, chars),
                     "-" if d is None else share(d.records - len(d.hashes), d.records)])
    return rows


def _groups(acc: Accumulator, console, top: int) -> None:
    t = _table(f"by {acc.config.group}: {plural(len(acc.groups), 'group')} (median length of "
               "the text fields in characters; dups: duplicate instructions)")
    t.add_column(acc.config.group, max_width=28, overflow="ellipsis", no_wrap=True)
    t.add_column("records", justify="right", min_width=9)
    t.add_column("share", justify="right", min_width=6)
    for name in acc.text:
        t.add_column(name, justify="right", max_width=12, min_width=6, overflow="ellipsis",
                     no_wrap=True)
    t.add_column("Han", justify="right", min_width=6)
    t.add_column("dups", justify="right", min_width=6)
    for label, *cells in group_rows(acc):
        t.add_row(_esc(label), *cells)
    console.print(t)
    console.print()


# -- comparison ----------------------------------------------------------------------------


def _delta(a, b) -> str:
    if a is None or b is None:
        return ""
    d = b - a
    if isinstance(d, float):
        return f"{d:+,.1f}"
    return f"{d:+,}" if d else "0"


def _pct(a, b) -> str:
    if not a or a is None or b is None:
        return ""
    return f"{100.0 * (b - a) / a:+.1f}%"


def compare_rows(before: Accumulator, after: Accumulator) -> Iterable[tuple]:
    """(section, metric, before, after) rows of a comparison (numbers or None)."""
    before.finish()
    after.finish()
    yield ("", "records", before.records, after.records)
    yield ("", "bytes", before.bytes, after.bytes)
    for name in [n for n in before.text if n in after.text]:
        sb, sa = before.text[name].chars.summary(), after.text[name].chars.summary()
        for m in ("count", "median", "mean", "p95", "max"):
            yield (f"{name} length", m if m != "count" else "records", sb[m], sa[m])
        yield (f"{name} length", "Han %", _han_pct(before.text[name]), _han_pct(after.text[name]))
    if before.dup_triple is not None and after.dup_triple is not None:
        yield ("duplicates", "instruction", _dups(before.dup_instruction),
               _dups(after.dup_instruction))
        yield ("duplicates", "instruction + input + output", _dups(before.dup_triple),
               _dups(after.dup_triple))
    fb, fa = before.fields.present, after.fields.present
    for path in field_order(dict.fromkeys([*fb, *fa])):
        yield ("fields present", path, fb.get(path, 0), fa.get(path, 0))
    # a field summarised as numbers on either side is compared as numbers on both
    numeric = list(dict.fromkeys([*before.numeric_fields(), *after.numeric_fields()]))

    def numbers(acc, name):
        n = acc.numeric.get(name)
        return n if n is not None and not n.dropped and n.count else None

    for name in numeric:
        nb, na = numbers(before, name), numbers(after, name)
        yield (f"{name} (numbers)", "records", nb.count if nb else 0, na.count if na else 0)
        for m in ("min", "max", "mean"):
            vb = getattr(nb, m) if nb else None
            va = getattr(na, m) if na else None
            yield (f"{name} (numbers)", m, _round(vb), _round(va))
    cats_b = {name: tally for name, _, tally in category_tallies(before) if name not in numeric}
    cats_a = {name: tally for name, _, tally in category_tallies(after) if name not in numeric}
    for name in dict.fromkeys(list(cats_b) + list(cats_a)):
        tb, ta = cats_b.get(name), cats_a.get(name)
        keys = dict.fromkeys([k for k, _ in (tb.top() if tb else [])]
                             + [k for k, _ in (ta.top() if ta else [])])
        for k in keys:
            yield (name, value_label(k), tb.counts.get(k, 0) if tb else 0,
                   ta.counts.get(k, 0) if ta else 0)


def _round(x):
    return round(x, 2) if isinstance(x, float) else x


def _han_pct(ts) -> float | None:
    ts.chars.fold()
    return round(100.0 * ts.han / ts.chars.total, 1) if ts.chars.total else None


def _dups(d) -> int:
    return d.records - len(d.hashes)


def render_compare(before: Accumulator, after: Accumulator, console, *, names: tuple[str, str],
                   top: int = 10) -> None:
    console.print(f"[bold]before[/]: {_esc(names[0])}: {before.records:,} records, "
                  f"{human_bytes(before.bytes)}", soft_wrap=True)
    console.print(f"[bold]after[/]:  {_esc(names[1])}: {after.records:,} records, "
                  f"{human_bytes(after.bytes)}", soft_wrap=True)
    console.print()
    sections: dict[str, list] = {}
    for section, metric, b, a in compare_rows(before, after):
        sections.setdefault(section, []).append((metric, b, a))
    for section, rows in sections.items():
        t = _table(section or "totals")
        t.add_column("", max_width=40, overflow="ellipsis", no_wrap=True)
        t.add_column("before", justify="right")
        t.add_column("after", justify="right")
        t.add_column("change", justify="right")
        t.add_column("", justify="right")
        if (section not in ("", "duplicates", "fields present")
                and not section.endswith((" length", " (numbers)"))):
            rows = sorted(rows, key=lambda r: -max(r[1], r[2]))
            more = rows[top:]
            rows = rows[:top]
        else:
            more = []
        for metric, b, a in rows:
            t.add_row(_esc(metric), num(b), num(a), _delta(b, a), _pct(b, a))
        if more:
            b = sum(r[1] for r in more)
            a = sum(r[2] for r in more)
            t.add_row(f"(other: {len(more):,} values)", num(b), num(a), _delta(b, a),
                      _pct(b, a))
        console.print(t)
        console.print()
