"""Prompt templates: the shipped rubrics (score) and prompts (generate) under
cqia_cli/data/llm/, the user's own TOML files, and `{field}` rendering.

A template is text with `{field}` placeholders: any dotted path into the record
(`{instruction}`, `{task_type.major}`, `{metadata.upvotes}`), rendered with fields.as_text (lists
joined by newlines). `{{` and `}}` are literal braces (for JSON examples in a rubric). A
placeholder the record lacks is a problem of that record (FILE:LINE, --on-error); `{field?}`
renders a missing field as empty instead.

A template file is TOML:

    name = "cqia"
    description = "..."
    system = "..."            # optional
    user = "... {instruction} ... {output} ..."
    temperature = 0.0         # optional
    max_tokens = 512          # optional
    # rubrics only:
    scale = [1, 10]           # the lowest and highest score
    json = true               # ask for response_format json_object where the server has it
    samples_temperature = 0.7 # the temperature of --samples K > 1
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib import resources

from cqia_cli import fields as F

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_\u4e00-\u9fff][\w.\u4e00-\u9fff]*)(\??)\}")


class TemplateError(ValueError):
    pass


class MissingField(Exception):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class Template:
    """A compiled template: render(record) -> str; raises MissingField."""

    def __init__(self, text: str):
        self.text = text
        self.parts: list = []  # str, or (path tuple, name, optional)
        pos = 0
        for m in PLACEHOLDER.finditer(text):
            self.parts.append(text[pos:m.start()])
            tok = m.group(0)
            if tok == "{{":
                self.parts.append("{")
            elif tok == "}}":
                self.parts.append("}")
            else:
                name = m.group(1)
                try:
                    path = F.compile_path(name)
                except ValueError as e:
                    raise TemplateError(str(e)) from None
                self.parts.append((path, name, bool(m.group(2))))
            pos = m.end()
        self.parts.append(text[pos:])
        self.parts = [p for p in self.parts if p != ""]
        self.fields = [p[1] for p in self.parts if isinstance(p, tuple)]
        #: the text itself when the template has no placeholder (a fixed system message)
        self.static = "".join(self.parts) if not self.fields else None

    def render(self, record: dict) -> str:
        if self.static is not None:
            return self.static
        out = []
        for p in self.parts:
            if isinstance(p, str):
                out.append(p)
                continue
            value = F.get(record, p[0], F.MISSING)
            if value is F.MISSING:
                if p[2]:
                    continue
                raise MissingField(p[1])
            out.append(F.as_text(value))
        return "".join(out)


@dataclass
class PromptSpec:
    name: str
    user: Template
    system: Template | None = None
    description: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    scale: tuple[float, float] = (1, 10)
    json: bool = False
    samples_temperature: float = 0.7
    into: str | None = None  # generate: the field a shipped prompt fills by default
    source: str = ""
    extra: dict = field(default_factory=dict)


def _shipped_dir(kind: str):
    return resources.files("cqia_cli").joinpath("data", "llm", kind)


def shipped(kind: str) -> dict[str, str]:
    """name -> TOML text of the shipped templates of `kind` ("rubrics" or "prompts")."""
    out = {}
    for entry in sorted(_shipped_dir(kind).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            out[entry.name[:-5]] = entry.read_text("utf-8")
    return out


def parse_spec(text: str, source: str) -> PromptSpec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise TemplateError(f"{source}: not valid TOML: {e}") from None
    user = data.get("user")
    if not isinstance(user, str) or not user.strip():
        raise TemplateError(f"{source}: needs a `user` template (a string)")
    system = data.get("system")
    if system is not None and not isinstance(system, str):
        raise TemplateError(f"{source}: `system` must be a string")
    scale = data.get("scale", [1, 10])
    if (not isinstance(scale, list) or len(scale) != 2
            or not all(isinstance(x, (int, float)) for x in scale) or scale[0] >= scale[1]):
        raise TemplateError(f"{source}: `scale` must be [LOWEST, HIGHEST], e.g. [1, 10]")
    try:
        return PromptSpec(
            name=str(data.get("name") or os.path.splitext(os.path.basename(source))[0]),
            user=Template(user),
            system=Template(system) if system else None,
            description=str(data.get("description", "")),
            temperature=_num(data, "temperature", source),
            max_tokens=int(data["max_tokens"]) if "max_tokens" in data else None,
            scale=(scale[0], scale[1]),
            json=bool(data.get("json", False)),
            samples_temperature=_num(data, "samples_temperature", source) or 0.7,
            into=data.get("into"),
            source=source,
        )
    except TemplateError as e:
        raise TemplateError(f"{source}: {e}") from None


def _num(data: dict, key: str, source: str) -> float | None:
    v = data.get(key)
    if v is None:
        return None
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise TemplateError(f"{source}: `{key}` must be a number")
    return float(v)


def load(kind: str, value: str) -> PromptSpec:
    """A shipped template by name, or a TOML file by path."""
    table = shipped(kind)
    if value in table:
        return parse_spec(table[value], f"{value} (shipped)")
    if value.endswith(".toml") or os.path.sep in value or os.path.exists(value):
        try:
            with open(value, "r", encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise TemplateError(f"{value}: cannot read: {e.strerror or e}") from None
        return parse_spec(text, value)
    raise TemplateError(f"{value!r} is neither a shipped one ({', '.join(table)}) nor a file")
