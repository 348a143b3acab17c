"""LLaMA-Factory's dataset_info.json: the entry that lets `llamafactory-cli train` load a file.

The keys follow LLaMA-Factory's data/README: `file_name` (relative to the directory of
dataset_info.json, LLaMA-Factory's dataset_dir), `formatting` (alpaca or sharegpt), `columns`
(prompt/query/response/system/history for alpaca, messages for sharegpt, prompt alone for a
pre-training text file) and, for sharegpt-style files, `tags` (role_tag, content_tag, user_tag,
assistant_tag, system_tag).
"""

from __future__ import annotations

import json
import os


def dataset_entry(target: str, file_name: str, *, system: bool = False,
                  history: bool = False) -> dict:
    """The entry for a file written as `target` (formats.table holds each format's);
    `system`/`history`: whether any record has one."""
    from cqia_cli.formats.table import TABLE

    if target not in TABLE:
        raise ValueError(f"no LLaMA-Factory formatting for {target!r}")
    return TABLE[target].dataset_entry(file_name, system=system, history=history)


def file_name_for(output: str, info_path: str) -> str:
    """The output's path as LLaMA-Factory finds it: relative to dataset_info.json's directory."""
    base = os.path.dirname(os.path.abspath(info_path))
    return os.path.relpath(os.path.abspath(output), base).replace(os.sep, "/")


def merged_info(existing: bytes | None, name: str, entry: dict, where: str) -> bytes:
    """dataset_info.json with `name` set to `entry`; the other entries kept as they are, in order.
    Raises ValueError when the existing file is not a JSON object."""
    info: dict = {}
    if existing is not None and existing.strip():
        try:
            info = json.loads(existing.decode("utf-8-sig"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{where}: not valid JSON ({e}); fix or remove it") from None
        if not isinstance(info, dict):
            raise ValueError(f"{where}: not a JSON object of dataset entries")
    info[name] = entry
    return (json.dumps(info, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
