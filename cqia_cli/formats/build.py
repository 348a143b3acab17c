"""Building COIG-CQIA records from raw ones: --map, --set and --template.

COIG-CQIA built its Douban and Xiaohongshu subsets from forum dumps by pouring each post into
one of a few hand-written instruction templates. `Builder` does that for any layout:

    builder = Builder(mapping=parse_map(["output=content"]), sets=parse_sets(["answer_from=human"]),
                      templates=load_templates("xhs.toml"), seed=42)
    cqia_like = builder(raw_record)          # raises RecordProblem for a placeholder it lacks

A template file (TOML) holds one or more `[[template]]` tables. `instruction`, `input`, `output`
and `system` are templates with `{field}` placeholders (dotted paths; `{{` and `}}` for braces);
every other key is a constant (task_type, domain, answer_from, ...). Keys at the top level apply
to every template that does not set them. Each record gets one template, chosen by a seeded hash
of its content: the same record gets the same template in every run, on any machine, in any shard.
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

import orjson

from cqia_cli import fields as F
from cqia_cli.formats.chat import RecordProblem, set_path

#: the fields a template renders from the record; every other key of a template is a constant
TEXT_KEYS = ("instruction", "input", "output", "system")
_STRING_FIELDS = frozenset(("instruction", "input", "output", "system", "metadata", "copyright",
                            "answer_from"))
_LIST_FIELDS = frozenset((("domain",), ("task_type", "major"), ("task_type", "minor")))


# -- values -----------------------------------------------------------------------------------


def coerce(path: tuple, value: Any) -> Any:
    """A value made to fit the COIG-CQIA field at `path`: text for text fields, a list for
    domain and task_type.major/minor, {major, minor} for task_type, a boolean for human_verified.
    Other fields take the value as it is. Raises ValueError when it cannot fit."""
    if len(path) == 1 and path[0] in _STRING_FIELDS:
        return value if type(value) is str else F.as_text(value)
    if path in _LIST_FIELDS:
        items = value if isinstance(value, list) else [value]
        return [v if type(v) is str else F.as_text(v) for v in items]
    if path == ("task_type",):
        # minor, when not given, repeats major: never an empty list, which Hugging Face
        # `datasets` types as a list of nulls that real COIG-CQIA records then fail to fit
        if isinstance(value, dict):
            major = coerce(("task_type", "major"), value.get("major", []))
            return {"major": major,
                    "minor": coerce(("task_type", "minor"), value.get("minor", [])) or major}
        major = coerce(("task_type", "major"), value)
        return {"major": major, "minor": list(major)}
    if path == ("human_verified",):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no", ""):
            return False
        raise ValueError(f"human_verified must be true or false, got {value!r}")
    return value


def parse_sets(values: Sequence[str]) -> list[tuple[tuple, Any]]:
    """`--set NAME=VALUE` (one per option; the value may hold commas). A value that starts with
    `[` or `{` is read as JSON. Raises ValueError with the offending option."""
    out = []
    for item in values:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"expected NAME=VALUE, got {item!r}")
        path = F.compile_path(name)
        value: Any = raw
        if raw[:1] in ("[", "{"):
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                raise ValueError(f"{item!r}: the value is not valid JSON ({e})") from None
        try:
            out.append((path, coerce(path, value)))
        except ValueError as e:
            raise ValueError(f"{item!r}: {e}") from None
    return out


def parse_map(assignments: dict) -> list[tuple[tuple, str, tuple, str]]:
    """`--map target=source,...` as (target path, target name, source path, source name)."""
    out = []
    for target, source in assignments.items():
        out.append((F.compile_path(target), target, F.compile_path(source), source))
    return out


# -- placeholders -----------------------------------------------------------------------------

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class Placeholders:
    """A `{field}` template compiled once: literal text and dotted paths, rendered per record."""

    __slots__ = ("source", "parts", "names")

    def __init__(self, source: str):
        self.source = source
        parts: list = []
        names: list[str] = []
        text: list[str] = []
        pos = 0
        for m in _TOKEN.finditer(source):
            text.append(source[pos:m.start()])
            pos = m.end()
            tok = m.group(0)
            if tok in ("{{", "}}"):
                text.append(tok[0])
            elif m.group(1) is None:
                raise ValueError(f"unmatched {tok!r} at column {m.start() + 1} in {source!r} "
                                 "(write {{ or }} for a literal brace)")
            else:
                name = m.group(1).strip()
                try:
                    path = F.compile_path(name)
                except ValueError:
                    raise ValueError(f"bad placeholder {{{m.group(1)}}} in {source!r}") from None
                parts.append("".join(text))
                text = []
                parts.append((path, name))
                names.append(name)
        text.append(source[pos:])
        parts.append("".join(text))
        self.parts = [p for p in parts if p != ""]
        self.names = names

    def render(self, record: dict, label: str) -> str:
        out = []
        for part in self.parts:
            if type(part) is str:
                out.append(part)
                continue
            path, name = part
            value = record.get(path[0]) if len(path) == 1 and type(path[0]) is str \
                else F.get(record, path)
            if value is None:
                raise RecordProblem(f"{label}: the record has no field {name!r} for {{{name}}}")
            out.append(value if type(value) is str else F.as_text(value))
        return "".join(out)


# -- templates --------------------------------------------------------------------------------


@dataclass
class Template:
    """One hand-written template: text fields with placeholders and constant fields."""

    number: int
    name: str
    texts: dict  # field -> Placeholders
    constants: list = field(default_factory=list)  # [(path, value)]

    @property
    def label(self) -> str:
        return f"template {self.number} ({self.name})" if self.name else f"template {self.number}"


def _toml():
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    return tomllib


def builtin_templates() -> list[str]:
    """The names of the template sets shipped in cqia_cli/data/convert."""
    from importlib import resources

    folder = resources.files("cqia_cli") / "data" / "convert"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def template_file(value: str) -> str:
    """--template: a file, or the name of a shipped set. Raises ValueError when it is neither."""
    import os
    from importlib import resources

    if os.path.exists(value) or os.sep in value or value.endswith(".toml"):
        return value
    names = builtin_templates()
    if value in names:
        return str(resources.files("cqia_cli") / "data" / "convert" / f"{value}.toml")
    raise ValueError(f"{value}: no such file, and not a shipped template set "
                     f"({', '.join(names)})")


def load_templates(path: str) -> list[Template]:
    """Read a template file; raises ValueError with what is wrong and where."""
    tomllib = _toml()
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    return templates_from(doc, path)


def templates_from(doc: dict, path: str = "<template>") -> list[Template]:
    tables = doc.get("template")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ValueError(f"{path}: needs one or more [[template]] tables")
    shared = {k: v for k, v in doc.items() if k != "template"}
    out = []
    for i, table in enumerate(tables, 1):
        merged = {**shared, **table}
        name = merged.pop("name", "")
        if not isinstance(name, str):
            raise ValueError(f"{path}: template {i}: name must be a string")
        texts: dict = {}
        constants = []
        for key, value in merged.items():
            where = f"{path}: template {i}: {key}"
            if key in TEXT_KEYS:
                if not isinstance(value, str):
                    raise ValueError(f"{where} must be a string")
                try:
                    texts[key] = Placeholders(value)
                except ValueError as e:
                    raise ValueError(f"{where}: {e}") from None
            else:
                try:
                    cpath = F.compile_path(key)
                    constants.append((cpath, coerce(cpath, value)))
                except ValueError as e:
                    raise ValueError(f"{where}: {e}") from None
        if "instruction" not in texts:
            raise ValueError(f"{path}: template {i} has no instruction")
        out.append(Template(i, name, texts, constants))
    return out


def stable_choice(record: dict, n: int, seed: int, _hashers: dict = {}) -> int:  # noqa: B006
    """An index in range(n) from a seeded hash of the record's content (keys sorted), so the
    choice does not depend on the record's position, the run, the machine or the shard."""
    base = _hashers.get(seed)
    if base is None:
        base = _hashers[seed] = hashlib.blake2b(digest_size=8, key=str(seed).encode())
    h = base.copy()
    h.update(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
    return int.from_bytes(h.digest(), "big") % n


# -- the builder ------------------------------------------------------------------------------


class Builder:
    """Make a cqia-shaped record (instruction, input, output, constants) from a raw record."""

    def __init__(self, mapping=(), templates: Sequence[Template] = (), seed: int = 42,
                 keep_meta: bool = False):
        self.mapping = list(mapping)
        self.templates = list(templates)
        self.seed = seed
        self.keep_meta = keep_meta
        self.used = {src[0] for _, _, src, _ in self.mapping}
        for t in self.templates:
            for ph in t.texts.values():
                self.used.update(F.compile_path(n)[0] for n in ph.names)
        mapped = {t[0] for t, _, _, _ in self.mapping}
        for t in self.templates:
            both = mapped & set(t.texts)
            if both:
                raise ValueError(f"{t.label} and --map both give {', '.join(sorted(both))}; "
                                 "keep one")
        self._plan_list = self._plans()

    def provides(self, name: str) -> bool:
        """Whether every record gets `name` from --map or from every template."""
        if any(t == (name,) for t, _, _, _ in self.mapping):
            return True
        return bool(self.templates) and all(
            name in t.texts or any(p == (name,) for p, _ in t.constants) for t in self.templates)

    def _plans(self) -> list:
        """Per template, what to do per record, worked out once: (texts to render with their
        error labels, top-level constants, nested constants)."""
        plans = []
        for t in self.templates:
            texts = [(key, t.texts[key], f"{t.label}, {key}") for key in TEXT_KEYS
                     if key in t.texts]
            flat = {p[0]: v for p, v in t.constants if len(p) == 1}
            nested = [(p, v) for p, v in t.constants if len(p) > 1]
            plans.append((texts, flat, nested))
        return plans

    def __call__(self, rec: dict) -> dict:
        out: dict = {}
        plan = None
        if self._plan_list:
            plan = self._plan_list[stable_choice(rec, len(self._plan_list), self.seed)]
            for key, ph, label in plan[0]:
                out[key] = ph.render(rec, label)
        for tpath, tname, spath, sname in self.mapping:
            value = rec.get(spath[0]) if len(spath) == 1 and type(spath[0]) is str \
                else F.get(rec, spath)
            if value is None:
                raise RecordProblem(f"the record has no field {sname!r} (--map {tname}={sname})")
            try:
                value = coerce(tpath, value)
            except ValueError as e:
                raise RecordProblem(f"--map {tname}={sname}: {e}") from None
            if len(tpath) == 1:
                out[tpath[0]] = value
            else:
                set_path(out, tpath, value)
        if plan is not None:
            out.update(plan[1])
            for cpath, value in plan[2]:
                set_path(out, cpath, value)
        if self.keep_meta:
            for k, v in rec.items():
                if k not in self.used and k not in out:
                    out[k] = v
        return out
