"""Fixtures shared by the score and generate tests: the local OpenAI-compatible server, a
cache directory inside tmp_path, records that carry server directives."""

from __future__ import annotations

import pytest

from conftest import cqia_record
from llm_server import LLMServer


@pytest.fixture(scope="module")
def llm_server_module():
    with LLMServer() as server:
        yield server


@pytest.fixture
def server(llm_server_module, monkeypatch, tmp_path):
    """The server with an empty request log, and the default cache under tmp_path."""
    llm_server_module.log.clear()
    llm_server_module._counts.clear()
    llm_server_module.latency = 0.0
    llm_server_module.max_in_flight = 0
    llm_server_module.reject_json = False
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "CQIA_LLM_BASE_URL", "CQIA_LLM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    return llm_server_module


def rec(i: int, directive: str = "", **over) -> dict:
    """A valid record whose instruction names it (`#i#`) and carries a server directive."""
    r = cqia_record(i, **over)
    r["instruction"] = f"#{i}# {r['instruction']}{directive}"
    return r
