"""The record formats trainers read, and the conversions between them.

Every conversion goes through one neutral form, `Conv`: the last exchange (instruction, input,
output), the earlier exchanges (`history`, [[prompt, response], ...] as in alpaca), an optional
system prompt, and `meta`, every other field of the record in its input order.

    format     structure                                              multi-turn
    cqia       instruction, input, output + COIG-CQIA metadata        `history` field
    alpaca     instruction, input, output, system?, history?          `history` field
    sharegpt   conversations [{from: system|human|gpt, value}]        native
    messages   messages [{role: system|user|assistant, content}]      native
    text       text (rendered by a template; output only)             one turn only

In the chat formats the user turn is `instruction + "\\n" + input` (only `instruction` when the
input is empty), as LLaMA-Factory joins alpaca's prompt and query. With --keep-meta a non-empty
`input` is also carried as a field, so that reading the record back splits the user turn into
instruction and input exactly.

Readers raise `RecordProblem` for a record they cannot read (a missing field, a role out of
order); the command reports it with the record's FILE:LINE under --on-error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from cqia_cli import fields as F
from cqia_cli.schema import type_name as _type

#: fields only COIG-CQIA records have; their presence tells cqia from alpaca
CQIA_ONLY = ("task_type", "domain", "answer_from", "human_verified")
#: the COIG-CQIA metadata fields, in the order the published dataset writes them
CQIA_META = ("task_type", "domain", "metadata", "answer_from", "human_verified", "copyright")

_MISSING: Any = object()


class RecordProblem(ValueError):
    """A per-record problem: reported as `FILE:LINE: message` under --on-error."""


@dataclass
class Conv:
    """One record in neutral form: the last exchange, the earlier ones, a system prompt, the rest."""

    instruction: str
    input: str
    output: str
    system: str | None
    history: list
    meta: dict

    def prompt(self) -> str:
        """The last user turn as a trainer sees it: instruction, and input on the next line."""
        return self.instruction + "\n" + self.input if self.input else self.instruction


def _string(value: Any, name: str) -> str:
    if type(value) is not str:
        raise RecordProblem(f"{name} must be a string, got {_type(value)}")
    return value


def _system(value: Any, name: str = "system") -> str | None:
    if value is None:
        return None
    return _string(value, name) or None


def _history(value: Any) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordProblem(f"history must be an array of [prompt, response] pairs, got "
                            f"{_type(value)}")
    for i, pair in enumerate(value):
        if (not isinstance(pair, list) or len(pair) != 2 or type(pair[0]) is not str
                or type(pair[1]) is not str):
            raise RecordProblem(f"history[{i}] must be a [prompt, response] pair of strings")
    return value


# -- readers ----------------------------------------------------------------------------------


def read_alpaca(rec: dict) -> Conv:
    """alpaca and cqia records: instruction, input (may be absent or null), output, system?,
    history?; everything else is meta. Consumes `rec`."""
    pop = rec.pop
    instruction = pop("instruction", _MISSING)
    if instruction is _MISSING:
        raise RecordProblem("no instruction field")
    output = pop("output", _MISSING)
    if output is _MISSING:
        raise RecordProblem("no output field")
    inp = pop("input", None)
    if inp is None:
        inp = ""
    elif type(inp) is not str:
        raise RecordProblem(f"input must be a string, got {_type(inp)}")
    return Conv(_string(instruction, "instruction"), inp, _string(output, "output"),
                _system(pop("system", None)), _history(pop("history", None)), rec)


@dataclass(frozen=True)
class ChatStyle:
    """How one chat format spells its list, its role and content keys and its roles."""

    name: str
    key: str
    role: str
    content: str
    user: str
    assistant: str
    system: str

    def turn(self, role: str, text: str) -> dict:
        return {self.role: role, self.content: text}


SHAREGPT = ChatStyle("sharegpt", "conversations", "from", "value", "human", "gpt", "system")
MESSAGES = ChatStyle("messages", "messages", "role", "content", "user", "assistant", "system")


def _content(turn: dict, style: ChatStyle, where: str) -> str:
    value = turn.get(style.content, _MISSING)
    if type(value) is str:
        return value
    if value is _MISSING:
        raise RecordProblem(f"{where}: no {style.content!r} key")
    if isinstance(value, list) and style is MESSAGES:
        # OpenAI content parts: [{"type": "text", "text": "..."}]
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text" or \
                    type(part.get("text")) is not str:
                raise RecordProblem(f"{where}: content parts other than text are not supported")
            texts.append(part["text"])
        return "".join(texts)
    raise RecordProblem(f"{where}: {style.content} must be a string, got {_type(value)}")


def chat_pairs(turns: Any, style: ChatStyle) -> tuple[str | None, list[list[str]]]:
    """Validate a chat's role order and return (system, [[prompt, response], ...]).

    The order trainers accept: an optional system turn first, then user and assistant turns
    alternating, starting with the user and ending with the assistant.
    """
    key = style.key
    if not isinstance(turns, list):
        raise RecordProblem(f"{key} must be an array of turns, got {_type(turns)}")
    system = None
    pairs: list[list[str]] = []
    prompt = None
    expect = style.user
    for i, turn in enumerate(turns):
        where = f"{key}[{i}]"
        if not isinstance(turn, dict):
            raise RecordProblem(f"{where}: a turn must be an object, got {_type(turn)}")
        role = turn.get(style.role, _MISSING)
        if role is _MISSING:
            raise RecordProblem(f"{where}: no {style.role!r} key")
        text = _content(turn, style, where)
        if role == style.system:
            if i:
                raise RecordProblem(f"{where}: a {style.system!r} turn is allowed only first")
            system = text or None
            continue
        if role not in (style.user, style.assistant):
            raise RecordProblem(
                f"{where}: unknown {style.role} {role!r} (expected {style.system!r}, "
                f"{style.user!r} or {style.assistant!r})")
        if role != expect:
            raise RecordProblem(
                f"{where}: expected {expect!r}, got {role!r} ({style.user} and "
                f"{style.assistant} turns must alternate, starting with {style.user})")
        if role == style.user:
            prompt = text
            expect = style.assistant
        else:
            pairs.append([prompt, text])
            expect = style.user
    if expect == style.assistant:
        raise RecordProblem(f"{key}: ends with a {style.user!r} turn that has no answer")
    if not pairs:
        raise RecordProblem(f"{key}: no {style.user}/{style.assistant} exchange")
    return system, pairs


def _reader(style: ChatStyle) -> Callable[[dict], Conv]:
    key = style.key

    def read(rec: dict) -> Conv:
        turns = rec.pop(key, _MISSING)
        if turns is _MISSING:
            raise RecordProblem(f"no {key} field (reading {style.name})")
        system, pairs = chat_pairs(turns, style)
        top = _system(rec.pop("system", None))
        last = pairs.pop()
        instruction, inp = last[0], ""
        hint = rec.pop("input", None)
        if type(hint) is str and hint and instruction.endswith("\n" + hint):
            instruction, inp = instruction[: -len(hint) - 1], hint
        return Conv(instruction, inp, last[1], system or top, pairs, rec)

    read.__doc__ = f"{style.name} records: {key} [{{{style.role}, {style.content}}}]."
    return read


read_sharegpt = _reader(SHAREGPT)
read_messages = _reader(MESSAGES)



# -- writers ----------------------------------------------------------------------------------


def _add_meta(out: dict, meta: dict) -> dict:
    for k, v in meta.items():
        if k not in out:
            out[k] = v
    return out


def write_alpaca(conv: Conv, keep_meta: bool = False) -> dict:
    out = {"instruction": conv.instruction, "input": conv.input, "output": conv.output}
    if conv.system:
        out["system"] = conv.system
    if conv.history:
        out["history"] = conv.history
    return _add_meta(out, conv.meta) if keep_meta else out


def _chat_writer(style: ChatStyle) -> Callable[[Conv, bool], dict]:
    user, assistant, turn = style.user, style.assistant, style.turn

    def write(conv: Conv, keep_meta: bool = False) -> dict:
        turns = [turn(style.system, conv.system)] if conv.system else []
        for prompt, response in conv.history:
            turns.append(turn(user, prompt))
            turns.append(turn(assistant, response))
        turns.append(turn(user, conv.prompt()))
        turns.append(turn(assistant, conv.output))
        out = {style.key: turns}
        if keep_meta:
            if conv.input:
                out["input"] = conv.input
            _add_meta(out, conv.meta)
        return out

    return write


write_sharegpt = _chat_writer(SHAREGPT)
write_messages = _chat_writer(MESSAGES)


def cqia_defaults(source: str) -> dict:
    """What `--to cqia` fills in for COIG-CQIA fields a record lacks, so it passes validate.

    answer_from is "llm" for alpaca and the chat formats (public sets in those formats are
    mostly model answers) and "human" for cqia records and raw dumps built with --map/--template.
    """
    #: records built from raw layouts (--map, --template); converted ones keep what they have
    #: (a round trip through alpaca or a chat format with --keep-meta is exact)
    made = source == "raw"
    out = {
        # minor never empty: Hugging Face `datasets` types a column of empty lists as a list
        # of nulls, and then cannot load real COIG-CQIA records (lists of strings) with it
        "task_type": {"major": ["问答"], "minor": ["问答"]},
        "domain": ["通用"],
        "metadata": "",
        "answer_from": "llm" if source in ("alpaca", "sharegpt", "messages") else "human",
        "human_verified": False,
        "copyright": "",
    }
    if not made:
        del out["metadata"], out["copyright"]
    # built records get every COIG-CQIA field, so that Hugging Face `datasets` loads them and
    # the published ones in one load_dataset(), in either order (it refuses a file with
    # columns the first file lacks)
    return out


def write_cqia(conv: Conv, defaults: dict) -> dict:
    """A COIG-CQIA record: the three text fields, system and history when present, the
    metadata fields in COIG-CQIA's order (defaults for absent required ones), then the rest."""
    out = {"instruction": conv.instruction, "input": conv.input, "output": conv.output}
    if conv.system:
        out["system"] = conv.system
    if conv.history:
        out["history"] = conv.history
    meta = conv.meta
    for key in CQIA_META:
        if key in meta:
            value = meta[key]
            if key == "task_type":
                if isinstance(value, str):  # from a CSV cell or --map
                    value = {"major": [value], "minor": [value]}
                elif isinstance(value, dict) and ("major" not in value or "minor" not in value):
                    major = value.get("major", defaults["task_type"]["major"])
                    value = {"major": major, "minor": value.get("minor") or list(major),
                             **{k: v for k, v in value.items() if k not in ("major", "minor")}}
            elif key == "domain" and isinstance(value, str):
                value = [value]
            out[key] = value
        elif key in defaults:
            value = defaults[key]
            out[key] = {k: list(v) for k, v in value.items()} if key == "task_type" else value
    return _add_meta(out, meta)


# -- detection --------------------------------------------------------------------------------


def detect_one(rec: dict) -> str | None:
    """The format a record looks like, or None when it looks like none or several."""
    chat = [s.name for s in (SHAREGPT, MESSAGES) if isinstance(rec.get(s.key), list)]
    alpaca = "instruction" in rec and "output" in rec
    if len(chat) + alpaca != 1:
        return None
    if chat:
        return chat[0]
    return "cqia" if any(k in rec for k in CQIA_ONLY) else "alpaca"


class DetectError(ValueError):
    pass


FROM_HINT = ("give --from (cqia, alpaca, sharegpt or messages), or --map/--template to build "
             "records from other fields")


def detect(samples: Iterable[tuple[dict, Any]]) -> str | None:
    """The format of the first records; None when there are none. A sample is (record, where):
    where is "FILE:LINE", or a function that returns it (called only for a message).

    cqia and alpaca read alike: a mix of the two is cqia. Anything else mixed, or a record that
    looks like no format (or like two), is a DetectError that says which options exist.
    """
    found: dict[str, Any] = {}
    for rec, where in samples:
        kind = detect_one(rec)
        if kind is None:
            where = where() if callable(where) else where
            keys = ", ".join(list(rec)[:8]) or "none"
            raise DetectError(f"cannot tell the input format: {where} has the keys {keys}; "
                              f"{FROM_HINT}")
        found.setdefault(kind, where)
    if not found:
        return None
    if len(found) == 1:
        return next(iter(found))
    if set(found) == {"cqia", "alpaca"}:
        return "cqia"
    seen = ", ".join(f"{where() if callable(where) else where} looks like {kind}"
                     for kind, where in found.items())
    raise DetectError(f"the first records are in different formats ({seen}); {FROM_HINT}")


def deep_copy(value: Any) -> Any:
    """A copy of JSON-like lists and objects (cheaper than copy.deepcopy)."""
    if isinstance(value, dict):
        return {k: deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_copy(v) for v in value]
    return value


def set_path(record: dict, path: tuple, value: Any) -> None:
    """fields.set, but a nested path first copies the object it changes: constants (--set,
    template keys) are shared by every record and must never be changed in place."""
    if len(path) > 1 and isinstance(record.get(path[0]), (dict, list)):
        record[path[0]] = deep_copy(record[path[0]])
    F.set(record, path, value)


def apply_sets(conv: Conv, sets: list[tuple[tuple, Any]]) -> None:
    """`--set` constants: text fields, system and history on the Conv, the rest in meta."""
    for path, value in sets:
        if len(path) == 1 and path[0] in ("instruction", "input", "output", "system", "history"):
            setattr(conv, path[0], value)
        else:
            set_path(conv.meta, path, value)
