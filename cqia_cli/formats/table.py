"""convert's formats, one row each: how a record of it is read, how one is written, and the
LLaMA-Factory dataset_info entry of a file of it. `--from`, `--to`, the converter and
`--dataset-info` all take their formats from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from cqia_cli.formats import chat

if TYPE_CHECKING:
    from cqia_cli.formats.converter import Converter


@dataclass(frozen=True)
class Format:
    name: str
    #: a record of this format as a conversation; None: a target only (text)
    read: Callable[[dict], chat.Conv] | None
    #: given the converter (its options), the function that writes a conversation as a record
    writer: Callable[["Converter"], Callable[[chat.Conv], dict]]
    #: LLaMA-Factory: "alpaca" or "sharegpt", the columns, the role tags (sharegpt)
    formatting: str
    columns: dict = field(default_factory=dict)
    tags: dict | None = None
    #: alpaca-style: `system` and `history` columns when some record has them
    optional_columns: bool = False

    def dataset_entry(self, file_name: str, *, system: bool = False,
                      history: bool = False) -> dict:
        """The dataset_info.json entry of a file written in this format."""
        entry: dict[str, Any] = {"file_name": file_name, "formatting": self.formatting}
        columns = dict(self.columns)
        if self.optional_columns:
            if system:
                columns["system"] = "system"
            if history:
                columns["history"] = "history"
        entry["columns"] = columns
        if self.tags is not None:
            entry["tags"] = dict(self.tags)
        return entry


def _cqia(c: "Converter"):
    defaults = c.defaults
    return lambda conv: chat.write_cqia(conv, defaults)


def _keeping(write):
    def bind(c: "Converter"):
        keep = c.keep_meta
        return lambda conv: write(conv, keep)
    return bind


_ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}

TABLE: dict[str, Format] = {f.name: f for f in (
    Format("cqia", chat.read_alpaca, _cqia, "alpaca", _ALPACA_COLUMNS, optional_columns=True),
    Format("alpaca", chat.read_alpaca, _keeping(chat.write_alpaca), "alpaca", _ALPACA_COLUMNS,
           optional_columns=True),
    Format("sharegpt", chat.read_sharegpt, _keeping(chat.write_sharegpt), "sharegpt",
           {"messages": "conversations"},
           {"role_tag": "from", "content_tag": "value", "user_tag": "human",
            "assistant_tag": "gpt", "system_tag": "system"}),
    Format("messages", chat.read_messages, _keeping(chat.write_messages), "sharegpt",
           {"messages": "messages"},
           {"role_tag": "role", "content_tag": "content", "user_tag": "user",
            "assistant_tag": "assistant", "system_tag": "system"}),
    Format("text", None, lambda c: c._write_text, "alpaca", {"prompt": "text"}),
)}

#: the formats convert reads (--from) and writes (--to)
SOURCES = tuple(name for name, f in TABLE.items() if f.read is not None)
TARGETS = tuple(TABLE)
