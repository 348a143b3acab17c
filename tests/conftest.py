"""Shared test helpers: run cqia in-process (CliRunner) or as the installed command in a shell."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from cqia_cli.cli import cli

DATA = Path(__file__).parent / "data"


class Result:
    def __init__(self, exit_code: int, stdout: bytes, stderr: bytes):
        self.exit_code = exit_code
        self.stdout_bytes = stdout
        self.stderr_bytes = stderr

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8")

    @property
    def stderr(self) -> str:
        return self.stderr_bytes.decode("utf-8")

    def records(self) -> list[dict]:
        return [orjson.loads(line) for line in self.stdout_bytes.splitlines() if line.strip()]

    def __repr__(self) -> str:
        return f"<Result {self.exit_code} stdout={self.stdout_bytes[:200]!r} stderr={self.stderr[:500]!r}>"


def invoke(args: list[str], input: bytes | str | None = None, env: dict | None = None) -> Result:
    """Run `cqia ARGS` in-process; stdout and stderr kept apart."""
    runner = CliRunner()
    if isinstance(input, str):
        input = input.encode("utf-8")
    res = runner.invoke(cli, [str(a) for a in args], input=input, env=env, catch_exceptions=False)
    return Result(res.exit_code, res.stdout_bytes, res.stderr_bytes)


def cqia_executable() -> str:
    exe = shutil.which("cqia", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if not exe:
        pytest.skip("the cqia command is not installed")
    return exe


def shell(command: str, cwd: str | Path | None = None, input: bytes | None = None,
          timeout: float = 120) -> Result:
    """Run a shell command line with the installed `cqia` first on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(cqia_executable()) + os.pathsep + env.get("PATH", "")
    proc = subprocess.run(["bash", "-c", command], cwd=cwd, input=input, capture_output=True,
                          env=env, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def write_jsonl(path: Path, records: list, *, raw_lines: list[bytes] | None = None) -> Path:
    with open(path, "wb") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False).encode("utf-8") + b"\n")
        for line in raw_lines or ():
            f.write(line)
    return path


def cqia_record(i: int = 0, **over) -> dict:
    """A valid COIG-CQIA record."""
    rec = {
        "instruction": f"请解释一下第{i}个成语的意思。",
        "input": "",
        "output": f"这是第{i}个回答，内容充实，说明了成语的出处和用法。",
        "task_type": {"major": ["问答"], "minor": ["成语释义"]},
        "domain": ["通用"],
        "metadata": "暂无元数据信息",
        "answer_from": "human",
        "human_verified": True,
        "copyright": "暂无版权及作者信息",
    }
    rec.update(over)
    return rec


@pytest.fixture
def records() -> list[dict]:
    return [cqia_record(i) for i in range(5)]


@pytest.fixture
def sample_file(tmp_path, records) -> Path:
    return write_jsonl(tmp_path / "sample.jsonl", records)
