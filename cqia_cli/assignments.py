"""`NAME=VALUE` option values, repeated or comma-separated (`--ratios train=0.9,test=0.1`).

One parser for every command; no click here, so domain packages (splitting, filtering) use it
too and wrap its ValueError in their own error.
"""

from __future__ import annotations

from typing import Sequence


def assignment_pairs(values: Sequence[str], option: str, *, name_required: bool = True,
                     value_required: bool = False, unique: bool = False
                     ) -> list[tuple[str | None, str]]:
    """(name, value) pairs in the order given; a name is None when optional and absent.

    Raises ValueError with a message naming the option and the bad part."""
    form = "NAME=VALUE" if name_required else "[NAME=]VALUE"
    pairs: list[tuple[str | None, str]] = []
    seen: set = set()
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, raw = part.partition("=")
            if not sep:
                if name_required:
                    raise ValueError(f"{option}: expected {form}, got {part!r}")
                name, raw = "", part
            name, raw = name.strip(), raw.strip()
            if (sep and not name) or (value_required and not raw):
                raise ValueError(f"{option}: expected {form}, got {part!r}")
            if unique and name:
                if name in seen:
                    raise ValueError(f"{option}: {name} is given twice")
                seen.add(name)
            pairs.append((name or None, raw))
    return pairs
