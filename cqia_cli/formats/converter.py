"""One record in, one record out: read a format, apply the options, write the target."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from cqia_cli.formats.build import Builder, Placeholders
from cqia_cli.formats.chat import Conv, RecordProblem, apply_sets, cqia_defaults, read_alpaca
from cqia_cli.formats.table import TABLE


_TEXT_SETS = frozenset(("instruction", "input", "output", "system", "history"))


def load_text_template(value: str | None) -> Placeholders | None:
    """--text-template: the template itself, or @FILE to read it from FILE (UTF-8)."""
    if value is None:
        return None
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as f:
                value = f.read()
        except OSError as e:
            raise ValueError(f"{value[1:]}: cannot read: {e.strerror or e}") from None
        except UnicodeDecodeError:
            raise ValueError(f"{value[1:]}: not valid UTF-8") from None
    return Placeholders(value)


def text_context(conv: Conv) -> dict:
    """The fields a --text-template sees: the record in cqia shape, system as '' when absent."""
    ctx = dict(conv.meta)
    ctx.update(instruction=conv.instruction, input=conv.input, output=conv.output,
               system=conv.system or "")
    return ctx


class Converter:
    """`Converter(source, target, ...)(record) -> record`; raises RecordProblem per record.

    source is one of table.SOURCES, or "raw" with a `builder` (--map/--template).
    """

    def __init__(self, source: str, target: str, *, keep_meta: bool = False,
                 system: str | None = None, last_turn: bool = False,
                 text_template: Placeholders | None = None,
                 sets: Sequence[tuple[tuple, Any]] = (), builder: Builder | None = None):
        if target not in TABLE:
            raise ValueError(f"unknown target format {target!r}")
        self.source = source
        self.target = target
        self.builder = builder
        self.read: Callable[[dict], Conv] = read_alpaca if builder else TABLE[source].read
        self.sets = list(sets)
        self.system = system or None
        self.last_turn = last_turn
        self.keep_meta = keep_meta
        self.text_template = text_template
        self.defaults = cqia_defaults(source)
        self.write = self._writer()
        #: records written with more than one exchange, and with a system prompt
        self.multi_turn = 0
        self.with_system = 0

    def _writer(self) -> Callable[[Conv], dict]:
        return TABLE[self.target].writer(self)

    def _write_text(self, conv: Conv) -> dict:
        if self.text_template is None:
            text = "\n".join(t for t in (conv.instruction, conv.input, conv.output) if t)
        else:
            text = self.text_template.render(text_context(conv), "--text-template")
        out = {"text": text}
        if self.keep_meta:
            for k, v in conv.meta.items():
                out.setdefault(k, v)
        return out

    def __call__(self, rec: dict) -> dict:
        if self.builder is not None:
            rec = self.builder(rec)
            # a --set of a text field gives it to every built record (--map output=text
            # --set instruction=写一句): before reading, which needs instruction and output
            for path, value in self.sets:
                if len(path) == 1 and path[0] in _TEXT_SETS:
                    rec[path[0]] = value
        conv = self.read(rec)
        if self.sets:
            apply_sets(conv, self.sets)
        if self.system and not conv.system:
            conv.system = self.system
        if conv.history:
            if self.last_turn:
                conv.history = []
            elif self.target == "text":
                raise RecordProblem(
                    f"a conversation of {len(conv.history) + 1} exchanges cannot be written as "
                    "text, which holds one; give --last-turn to keep only the last exchange")
            else:
                self.multi_turn += 1
        if conv.system:
            self.with_system += 1
        return self.write(conv)
