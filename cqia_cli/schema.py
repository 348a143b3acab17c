"""The COIG-CQIA record schema and the checks of `cqia validate`.

    instruction     str, not empty          the question or instruction
    input           str (may be "")         extra context
    output          str, not empty          the answer
    task_type       {"major": [str, ...] (at least one), "minor": [str, ...]}
    domain          [str, ...]
    metadata        str                     (optional)
    answer_from     "human" | "llm" | "expert" (--answer-from changes the set)
    human_verified  bool
    copyright       str                     (optional)

Extra fields are allowed and not checked. `check(record)` returns a list of (field, problem).
"""

from __future__ import annotations

from typing import Any

FIELDS = ("instruction", "input", "output", "task_type", "domain", "metadata", "answer_from",
          "human_verified", "copyright")
REQUIRED = ("instruction", "input", "output", "task_type", "domain", "answer_from",
            "human_verified")
OPTIONAL = ("metadata", "copyright")
#: "expert" occurs in the published COIG-CQIA (human_value/100poison)
ANSWER_FROM = ("human", "llm", "expert")


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object"


def _str_list(value: Any, name: str, problems: list, *, non_empty: bool) -> None:
    if not isinstance(value, list):
        problems.append((name, f"must be an array of strings, got {type_name(value)}"))
        return
    if non_empty and not value:
        problems.append((name, "must not be empty"))
    for i, item in enumerate(value):
        if not isinstance(item, str):
            problems.append((name, f"item {i} must be a string, got {type_name(item)}"))
            return
        if not item.strip():
            problems.append((name, f"item {i} is empty"))
            return


def _good_list(value: Any, non_empty: bool) -> bool:
    if type(value) is not list or (non_empty and not value):
        return False
    for item in value:
        if type(item) is not str or not item or item.isspace():
            return False
    return True


class Checker:
    """Checks records against the schema; `optional` names required fields that may be absent."""

    def __init__(self, optional: tuple = (), answer_from: tuple = ANSWER_FROM):
        self.required = tuple(f for f in REQUIRED if f not in optional)
        self.answer_from = frozenset(answer_from)
        self._expected = " or ".join(f'"{v}"' for v in answer_from)

    def __call__(self, rec: dict) -> list[tuple[str, str]]:
        if self._fast_ok(rec):
            return []
        return self.problems(rec)

    def _fast_ok(self, rec: dict) -> bool:
        """True for a record with every field present and well formed (the common case)."""
        try:
            tt = rec["task_type"]
            inst = rec["instruction"]
            out = rec["output"]
            return (
                type(inst) is str and not inst.isspace() and inst != ""
                and type(out) is str and not out.isspace() and out != ""
                and type(rec["input"]) is str
                and type(tt) is dict
                and _good_list(tt["major"], True)
                and _good_list(tt["minor"], False)
                and _good_list(rec["domain"], True)
                and type(rec["answer_from"]) is str and rec["answer_from"] in self.answer_from
                and type(rec["human_verified"]) is bool
                and type(rec.get("metadata", "")) is str
                and type(rec.get("copyright", "")) is str
            )
        except (KeyError, TypeError):
            return False

    def problems(self, rec: dict) -> list[tuple[str, str]]:
        """Every problem of a record, as (field, problem)."""
        problems: list[tuple[str, str]] = []
        get = rec.get
        for name in self.required:
            if name not in rec:
                problems.append((name, "missing"))
        for name in ("instruction", "input", "output", "metadata", "copyright"):
            value = get(name)
            if value is None:
                if name in rec:
                    problems.append((name, "must be a string, got null"))
                continue
            if type(value) is not str:
                problems.append((name, f"must be a string, got {type_name(value)}"))
            elif name in ("instruction", "output") and not value.strip():
                problems.append((name, "empty" if not value else "only whitespace"))
        if "task_type" in rec:
            tt = rec["task_type"]
            if not isinstance(tt, dict):
                problems.append(("task_type", f"must be an object {{major, minor}}, got "
                                              f"{type_name(tt)}"))
            else:
                if "major" not in tt:
                    problems.append(("task_type.major", "missing"))
                else:
                    _str_list(tt["major"], "task_type.major", problems, non_empty=True)
                if "minor" not in tt:
                    problems.append(("task_type.minor", "missing"))
                else:
                    _str_list(tt["minor"], "task_type.minor", problems, non_empty=False)
        if "domain" in rec:
            _str_list(rec["domain"], "domain", problems, non_empty=True)
        if "answer_from" in rec:
            af = rec["answer_from"]
            if type(af) is not str or af not in self.answer_from:
                problems.append(("answer_from", f"must be {self._expected}, got {_short(af)}"))
        if "human_verified" in rec and type(rec["human_verified"]) is not bool:
            problems.append(("human_verified", f"must be true or false, got "
                                               f"{_short(rec['human_verified'])}"))
        return problems


def _short(value: Any) -> str:
    import orjson

    text = orjson.dumps(value).decode()
    return text if len(text) <= 40 else text[:37] + "..."
