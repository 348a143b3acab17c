"""cqia generate against the local OpenAI-compatible server (tests/llm_server.py)."""

from __future__ import annotations

import orjson

from conftest import invoke, write_jsonl
from llm_fixtures import llm_server_module, rec, server  # noqa: F401 - fixtures
from llm_server import plain_answer


def generate(server, *args):
    return invoke(["generate", "--base-url", server.url, "--retry-wait", "0.01", *args])


def test_inline_prompt_into_a_new_field(server, tmp_path):
    recs = [rec(i) for i in range(12)]
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    res = generate(server, "--prompt", "翻译成英文：{instruction}", "--into", "en",
                   "--concurrency", "4", path)
    assert res.exit_code == 0, res
    out = res.records()
    assert [r["en"] for r in out] == [plain_answer(f"翻译成英文：{r['instruction']}")
                                      for r in recs]
    assert [{k: v for k, v in r.items() if k != "en"} for r in out] == recs
    assert server.log[0]["temperature"] == 0.7 and server.log[0]["response_format"] is None
    assert "generate: 12 records, 12 done" in res.stderr


def test_only_missing_set_and_model_into(server, tmp_path):
    recs = [rec(0), rec(1, output=""), rec(2), rec(3, output="")]
    del recs[2]["output"]
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    res = generate(server, "--prompt", "answer", "--only-missing", "--set", "answer_from=llm",
                   "--set", "human_verified=false", "--model-into", "meta.model",
                   "--model", "qwen-test", path)
    assert res.exit_code == 0, res
    out = res.records()
    assert out[0] == recs[0]  # had an answer: untouched, no request
    assert len(server.log) == 3
    for r in (out[1], out[2], out[3]):
        assert r["output"].startswith("模型回答：")
        assert r["answer_from"] == "llm" and r["human_verified"] is False
        assert r["meta"] == {"model": "qwen-test"}
    # the shipped prompt has a system message and the question as the user message
    assert sorted(e["user"][:4] for e in server.log) == ["#1# ", "#2# ", "#3# "]


def test_shipped_prompts_and_their_default_fields(server, tmp_path):
    res = invoke(["generate", "--list-prompts"])
    assert res.exit_code == 0
    for name in ("answer", "rewrite", "explain"):
        assert name in res.stdout
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0)])
    res = generate(server, "--prompt", "rewrite", path)
    assert res.exit_code == 0, res
    assert res.records()[0]["instruction"].startswith("模型回答：")
    res = generate(server, "--prompt", "explain", path)
    assert "【标准答案】" in server.log[-1]["user"]
    assert res.records()[0]["output"].startswith("模型回答：")


def test_prompt_file_and_system(server, tmp_path):
    toml = tmp_path / "p.toml"
    toml.write_text('system = "你是{domain}专家"\nuser = "问：{instruction}"\n'
                    'temperature = 0.2\nmax_tokens = 99\n', "utf-8")
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0)])
    res = generate(server, "--prompt", toml, "--into", "x", path)
    assert res.exit_code == 0, res
    assert server.log[-1]["temperature"] == 0.2
    res = generate(server, "--prompt", toml, "--into", "x", "--system", "别的系统",
                   "--temperature", "0", path)
    assert res.exit_code == 0 and server.log[-1]["temperature"] == 0.0
    assert len(server.log) == 2


def test_failures_empty_and_truncated_answers(server, tmp_path):
    recs = [rec(0), rec(1, "[[content=]]"), rec(2, "[[length]]")]
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    res = generate(server, "--prompt", "{instruction}", "--into", "o2", path)
    assert res.exit_code == 65 and f"{path}:2: empty answer" in res.stderr
    errors = tmp_path / "e.jsonl"
    res = generate(server, "--prompt", "{instruction}", "--into", "o2", "--on-error", "skip",
                   "--errors", errors, path)
    assert res.exit_code == 0 and len(res.records()) == 1
    bad = [orjson.loads(line) for line in errors.read_bytes().splitlines()]
    assert bad[0]["_error"]["reason"] == "empty answer"
    assert "cut off at max_tokens 1024" in bad[1]["_error"]["reason"]
    assert bad[1]["_error"]["answer"].startswith("模型回答：")


def test_usage_errors(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0)])
    res = generate(server, path)
    assert res.exit_code == 2 and "--prompt" in res.stderr
    res = generate(server, "--prompt", "{instruction}", path)
    assert res.exit_code == 2 and "--into" in res.stderr
    res = generate(server, "--prompt", "{a..b}", "--into", "x", path)
    assert res.exit_code == 2
    res = generate(server, "--prompt", "nosuch.toml", "--into", "x", path)
    assert res.exit_code == 2 and "cannot read" in res.stderr
    res = generate(server, "--prompt", "{instruction}", "--into", "x", "--set", "novalue", path)
    assert res.exit_code == 2
    assert server.log == []


def test_missing_placeholder_is_the_records_problem(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0), rec(1, title="t")])
    res = generate(server, "--prompt", "{title}", "--into", "x", path)
    assert res.exit_code == 65
    assert f"{path}:1: the prompt uses {{title}}, which this record lacks" in res.stderr
    res = generate(server, "--prompt", "{title?}{instruction}", "--into", "x", path)
    assert res.exit_code == 0 and len(res.records()) == 2


def test_dry_run_and_cache(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(i) for i in range(5)])
    res = generate(server, "--prompt", "answer", "--model", "m", "--dry-run", path)
    assert res.exit_code == 0 and server.log == [] and res.stdout == ""
    assert "5 to send" in res.stderr
    first = generate(server, "--prompt", "answer", "--model", "m", path)
    again = generate(server, "--prompt", "answer", "--model", "m", path)
    assert again.stdout_bytes == first.stdout_bytes and len(server.log) == 5
