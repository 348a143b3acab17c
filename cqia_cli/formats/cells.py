"""Typing CSV/TSV cells for `cqia convert`: a table holds text, the formats hold structure.

The columns that hold structure in some format (conversations, messages, history, task_type,
domain) are read as JSON when a cell holds a JSON array or object; human_verified cells
`true`/`false` (any case) become booleans. Everything else stays text, as `cqia fetch` gives it.
"""

from __future__ import annotations

import orjson

JSON_COLUMNS = frozenset(("conversations", "messages", "history", "task_type", "domain"))
_loads = orjson.loads


def type_cells(rec: dict) -> None:
    """Type the cells of one CSV row in place (the row hook of cqia_cli.containers)."""
    for name in JSON_COLUMNS.intersection(rec):
        cell = rec[name]
        if cell[:1] in ("[", "{"):
            try:
                rec[name] = _loads(cell)
            except orjson.JSONDecodeError:
                pass
    verified = rec.get("human_verified")
    if verified is not None:
        lower = verified.lower()
        if lower in ("true", "false"):
            rec["human_verified"] = lower == "true"
