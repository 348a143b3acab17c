"""cqia score against a real OpenAI-compatible server on 127.0.0.1 (tests/llm_server.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import orjson
import pytest

from conftest import cqia_executable, invoke, shell, write_jsonl
from llm_fixtures import llm_server_module, rec, server  # noqa: F401 - fixtures
from llm_server import judge_score

FAST = ["--retry-wait", "0.01"]


def score(server, *args, env=None):
    return invoke(["score", "--base-url", server.url, *FAST, *args], env=env)


def expected(r: dict) -> int:
    """What the server's judge answers for a record under the default rubric."""
    from cqia_cli.llm.prompts import load

    return judge_score(load("rubrics", "cqia").user.render(r))


def test_scores_every_record_in_input_order_under_concurrency(server, tmp_path):
    # later records answer sooner: the output must still be in input order
    recs = [rec(i, f"[[delay={0.3 - i * 0.01:.2f}]]") for i in range(30)]
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    res = score(server, "--concurrency", "16", path)
    assert res.exit_code == 0, res
    out = res.records()
    assert [r["instruction"] for r in out] == [r["instruction"] for r in recs]
    assert [r["_score"] for r in out] == [expected(r) for r in recs]
    assert all(isinstance(r["_score"], int) for r in out)
    assert server.max_in_flight > 4  # really concurrent
    assert len(server.log) == 30
    # the other fields are untouched, the score is added last
    assert list(out[0])[:-1] == list(recs[0]) and list(out[0])[-1] == "_score"
    assert "score: 30 records, 30 done, 0 failed; 30 requests answered" in res.stderr


def test_model_is_taken_from_the_server_and_the_request_is_json(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0)])
    res = score(server, path)
    assert res.exit_code == 0, res
    entry = server.log[0]
    assert entry["model"] == "judge"
    assert entry["response_format"] == {"type": "json_object"}
    assert entry["temperature"] == 0.0
    assert "评分" in server.log[0]["user"] or "JSON" in server.log[0]["user"]


def test_a_server_without_json_mode_is_asked_without_it(server, tmp_path):
    server.reject_json = True
    recs = [rec(i) for i in range(20)]
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    res = score(server, "--concurrency", "4", path)
    assert res.exit_code == 0, res
    assert [r["_score"] for r in res.records()] == [expected(r) for r in recs]
    rejected = [e for e in server.log if e["status"] == 400]
    assert 1 <= len(rejected) <= 4  # only the requests sent before the first answer said so
    assert res.stderr.count("the server rejects response_format") == 1
    before = len(server.log)
    assert score(server, "--no-json", path).exit_code == 0
    assert len(server.log) == before  # the same requests as the fallback: all cached


def test_a_rerun_is_served_from_the_cache(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(i) for i in range(20)])
    first = score(server, "--model", "judge", path)
    assert first.exit_code == 0 and len(server.log) == 20
    again = score(server, "--model", "judge", path)
    assert again.exit_code == 0 and len(server.log) == 20  # nothing sent
    assert again.stdout_bytes == first.stdout_bytes
    assert "20 cache hits" in again.stderr
    assert (tmp_path / "xdg" / "cqia" / "llm.sqlite").exists()  # XDG_CACHE_HOME respected
    # another model, or other sampling parameters, is another request
    assert score(server, "--model", "judge2", path).exit_code == 0
    assert len(server.log) == 40
    assert score(server, "--model", "judge", "--temperature", "0.5", path).exit_code == 0
    assert len(server.log) == 60
    # --no-cache reads nothing and writes nothing
    assert score(server, "--model", "judge", "--no-cache", path).exit_code == 0
    assert len(server.log) == 80


def test_cache_path_option(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0), rec(1)])
    db = tmp_path / "c" / "answers.sqlite"
    assert score(server, "--cache", db, path).exit_code == 0
    assert db.exists() and not (tmp_path / "xdg").exists()
    assert score(server, "--cache", db, path).exit_code == 0
    assert len(server.log) == 2
    res = score(server, "--cache", db, "--no-cache", path)
    assert res.exit_code == 2 and "contradict" in res.stderr


def test_server_errors_are_retried_with_backoff(server, tmp_path):
    recs = [rec(0), rec(1, "[[status=500 times=2]]"), rec(2, "[[reset times=1]]"),
            rec(3, "[[status=503 times=1]]")]
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    res = score(server, path)
    assert res.exit_code == 0, res
    assert [r["_score"] for r in res.records()] == [expected(r) for r in recs]
    assert server.requests_for("#1#") == 3
    assert server.requests_for("#2#") == 2
    assert server.requests_for("#3#") == 2
    assert "4 retries" in res.stderr


def test_retries_exhausted_fail_with_69_or_skip_into_errors(server, tmp_path):
    recs = [rec(0), rec(1, "[[status=500]]"), rec(2)]
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    res = score(server, "--retries", "2", path)
    assert res.exit_code == 69, res
    assert res.stderr.startswith(f"cqia score: {path}:2: request failed after 3 attempts: "
                                 "HTTP 500")
    assert "Traceback" not in res.stderr
    assert server.requests_for("#1#") == 3
    errors = tmp_path / "errors.jsonl"
    server.log.clear()
    res = score(server, "--retries", "1", "--on-error", "skip", "--errors", errors, path)
    assert res.exit_code == 0, res
    assert [r["instruction"] for r in res.records()] == [recs[0]["instruction"],
                                                         recs[2]["instruction"]]
    bad = [orjson.loads(line) for line in errors.read_bytes().splitlines()]
    assert len(bad) == 1 and bad[0]["instruction"] == recs[1]["instruction"]
    assert bad[0]["_error"]["where"] == f"{path}:2"
    assert "HTTP 500" in bad[0]["_error"]["reason"] and bad[0]["_error"]["answer"] is None
    assert "1 records failed" in res.stderr and str(errors) in res.stderr
    # records 0 and 2 were cached by the first run: only record 1 was asked again
    assert len(server.log) == 2 and server.requests_for("#1#") == 2


def test_retry_after_is_honoured_and_slows_the_run(server, tmp_path):
    recs = [rec(0, "[[status=429 retry-after=1 times=1]]")] + [rec(i) for i in range(1, 6)]
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    res = score(server, "--concurrency", "1", path)
    assert res.exit_code == 0, res
    times = [e["t"] for e in server.log if "#0#" in e["user"]]
    assert len(times) == 2 and times[1] - times[0] >= 0.95
    assert [e["status"] for e in server.log][:2] == [429, 200]
    assert "1 rate-limited" in res.stderr


@pytest.mark.slow  # two seconds by design; the limiter's arithmetic is in test_llm_core
def test_rpm_limits_the_rate(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(i) for i in range(12)])
    start = time.time()
    res = score(server, "--rpm", "60", path)  # 10 at once, then one a second
    assert res.exit_code == 0, res
    times = sorted(e["t"] - start for e in server.log)
    # measured from before the command (its bucket starts full, after that): the server's
    # arrival times of the first requests are late by whatever a loaded machine adds, so the
    # gap between the first and the 11th can be shorter than the second the bucket gives
    assert times[10] >= 0.98 and times[11] >= 1.98


def test_unparseable_answers_under_both_on_error_modes(server, tmp_path):
    recs = [rec(0), rec(1, "[[content=好的，我来看看]]"), rec(2, "[[score=11]]"),
            rec(3, "[[plain=评分：7]]"), rec(4, "[[content=8/10]]")]
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    res = score(server, path)
    assert res.exit_code == 65, res
    assert res.stderr.startswith(f"cqia score: {path}:2: no score in the answer: "
                                 "'好的，我来看看'")
    assert res.records()[0]["_score"] == expected(recs[0])  # written before the failure
    errors = tmp_path / "errors.jsonl"
    res = score(server, "--on-error", "skip", "--errors", errors, path)
    assert res.exit_code == 0, res
    assert [r["_score"] for r in res.records()] == [expected(recs[0]), 7, 8]
    bad = [orjson.loads(line) for line in errors.read_bytes().splitlines()]
    assert [b["_error"]["reason"] for b in bad] == ["no score in the answer",
                                                    "score 11 is outside the scale 1-10"]
    assert bad[0]["_error"]["answer"] == "好的，我来看看"
    assert json.loads(bad[1]["_error"]["answer"])["score"] == 11
    # the failures were not cached: a second run asks for those two again, only
    before = len(server.log)
    score(server, "--on-error", "skip", path)
    assert len(server.log) - before == 2


def test_fatal_endpoint_errors_stop_at_once(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(i, "[[status=401]]") for i in range(50)])
    res = score(server, "--on-error", "skip", path)
    assert res.exit_code == 69, res
    assert "HTTP 401" in res.stderr and res.stderr.count("\n") == 1
    assert len(server.log) < 50 + 64


def test_nothing_listening_fails_at_once(server, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = write_jsonl(tmp_path / "in.jsonl", [rec(i) for i in range(5)])
    start = time.time()
    res = invoke(["score", "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m", path])
    assert res.exit_code == 69, res
    assert res.stderr.startswith(f"cqia score: http://127.0.0.1:{port}/v1: cannot connect")
    assert res.stderr.count("\n") == 1 and time.time() - start < 5


def test_bad_input_lines_are_reported_as_everywhere(server, tmp_path):
    path = tmp_path / "in.jsonl"
    write_jsonl(path, [rec(0)], raw_lines=[b"{bad\n"])
    res = score(server, path)
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia score: {path}:2: invalid JSON")
    assert len(res.records()) == 1  # the record before the bad line is scored and written
    # a record lacking a field the rubric uses is that record's problem, with FILE:LINE
    r = rec(1)
    del r["output"]
    path2 = write_jsonl(tmp_path / "in2.jsonl", [rec(0), r])
    res = score(server, path2)
    assert res.exit_code == 65
    assert f"{path2}:2: the prompt uses {{output}}, which this record lacks" in res.stderr
    errors = tmp_path / "e.jsonl"
    res = score(server, "--on-error", "skip", "--errors", errors, path2)
    assert res.exit_code == 0 and len(res.records()) == 1
    assert orjson.loads(errors.read_bytes()) == r  # the line itself, as the reader keeps it


def test_errors_keeps_bad_lines_and_failed_records_in_input_order(server, tmp_path):
    """A bad line travels through the window of requests in flight: --errors gets it in its
    place among the records that failed, not when it was read (ahead of the output)."""
    server.latency = 0.05
    missing = rec(3)
    del missing["output"]
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0), rec(1, "[[status=500]]")],
                       raw_lines=[b"{bad\n"])
    with open(path, "ab") as f:
        for r in [missing, rec(4), rec(5, "[[status=500]]")]:
            f.write(orjson.dumps(r) + b"\n")
    errors = tmp_path / "errors.jsonl"
    res = score(server, "--retries", "0", "--on-error", "skip", "--errors", errors, path)
    assert res.exit_code == 0, res
    assert [r["instruction"] for r in res.records()] == [rec(0)["instruction"],
                                                         rec(4)["instruction"]]
    lines = errors.read_bytes().splitlines()
    assert len(lines) == 4
    assert orjson.loads(lines[0])["_error"]["where"] == f"{path}:2"
    assert lines[1] == b"{bad"
    assert orjson.loads(lines[2]) == missing
    assert orjson.loads(lines[3])["_error"]["where"] == f"{path}:6"
    assert "skipped 2 bad lines" in res.stderr


def test_dry_run_sends_nothing(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(i) for i in range(10)])
    assert score(server, "--model", "judge", path.__str__()).exit_code == 0
    more = write_jsonl(tmp_path / "more.jsonl", [rec(i) for i in range(15)])
    server.log.clear()
    out = tmp_path / "out.jsonl"
    res = score(server, "--model", "judge", "--dry-run", "--price-in", "2", "--price-out", "8",
                "-o", out, more)
    assert res.exit_code == 0, res
    assert server.log == [] and res.stdout == "" and not out.exists()
    assert "15 records, 15 requests, 10 in the cache" in res.stderr
    assert "5 to send" in res.stderr and "estimated cost" in res.stderr
    assert "the first request to send:" in res.stderr and "--- system ---" in res.stderr
    assert "#10#" in res.stderr and "#0#" not in res.stderr  # the first not in the cache


def test_samples_give_the_mean_and_the_spread(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0)])
    res = score(server, "--samples", "3", "--reason-into", "_why", path)
    assert res.exit_code == 0, res
    assert len(server.log) == 3
    assert {e["temperature"] for e in server.log} == {0.7}
    out = res.records()[0]
    # the test server answers the same prompt alike: mean == each score, spread 0
    assert out["_why"]["scores"] == [out["_score"]] * 3 and out["_why"]["spread"] == 0
    assert len(out["_why"]["reasons"]) == 3


def test_into_and_reason_into_dotted_paths(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0)])
    res = score(server, "--into", "judge.score", "--reason-into", "judge.reason", path)
    out = res.records()[0]
    assert out["judge"]["score"] == expected(rec(0)) and out["judge"]["reason"].startswith("理由")


def test_truth_agreement_on_a_hand_computed_fixture(server, tmp_path):
    # scores 9, 8, 8, 6, 3, 2 with human labels T, T, F, T, F, F
    data = [(9, True), (8, True), (8, False), (6, True), (3, False), (2, False)]
    recs = [rec(i, f"[[score={s}]]", human_verified=y) for i, (s, y) in enumerate(data)]
    recs.append(rec(6, "[[score=5]]", human_verified=None))  # no label: left out
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    report = tmp_path / "agreement.json"
    res = score(server, "--truth", "human_verified", "--report", report, path)
    assert res.exit_code == 0, res
    rep = json.loads(report.read_text())
    assert rep["records"] == 6 and rep["positives"] == 3 and rep["unlabelled"] == 1
    rows = {r["threshold"]: r for r in rep["thresholds"]}
    # >= 8: kept 3 (9, 8, 8), 2 true: precision 2/3, recall 2/3, F1 2/3
    assert rows[8]["kept"] == 3 and rows[8]["precision"] == pytest.approx(2 / 3)
    assert rows[8]["recall"] == pytest.approx(2 / 3)
    # >= 6: kept 4, 3 true: precision 3/4, recall 1, F1 6/7 -- the best
    assert rows[6]["precision"] == pytest.approx(0.75) and rows[6]["recall"] == 1
    assert rows[6]["f1"] == pytest.approx(6 / 7)
    assert rows[6]["kept_share"] == pytest.approx(4 / 6)
    # >= 10: nothing kept: no precision, recall 0
    assert rows[10]["kept"] == 0 and rows[10]["precision"] is None and rows[10]["recall"] == 0
    # >= 1: all kept, precision 1/2, recall 1, F1 2/3
    assert rows[1]["f1"] == pytest.approx(2 / 3)
    assert rep["best"]["threshold"] == 6
    assert "best F1 0.857 at threshold 6" in res.stderr
    assert "--report needs --truth" in score(server, "--report", report, path).stderr


def test_rubrics_shipped_and_custom(server, tmp_path):
    res = invoke(["score", "--list-rubrics"])
    assert res.exit_code == 0 and "cqia" in res.stdout and "difficulty" in res.stdout
    rubric = tmp_path / "mine.toml"
    rubric.write_text('scale = [0, 5]\njson = false\nsystem = "请评分"\n'
                      'user = "问题：{instruction}\\n领域：{domain}"\n', "utf-8")
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0, "[[plain=得分：4]]"),
                                               rec(1, "[[plain=得分：6]]")])
    res = score(server, "--rubric", rubric, "--on-error", "skip", path)
    assert res.exit_code == 0, res
    assert [r["_score"] for r in res.records()] == [4]  # 6 is outside 0-5
    assert server.log[0]["response_format"] is None
    assert "领域：通用" in server.log[0]["user"]
    bad = tmp_path / "bad.toml"
    bad.write_text('user = "x"\nscale = [5, 1]\n', "utf-8")
    res = score(server, "--rubric", bad, path)
    assert res.exit_code == 2 and "scale" in res.stderr
    res = score(server, "--rubric", "nosuch", path)
    assert res.exit_code == 2 and "neither a shipped one" in res.stderr


def test_needs_an_endpoint(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    res = invoke(["score", "--model", "m"], input=b"")
    assert res.exit_code == 2 and "--base-url" in res.stderr


def test_endpoint_from_the_environment(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0)])
    res = invoke(["score", path], env={"OPENAI_BASE_URL": server.url})
    assert res.exit_code == 0, res
    res = invoke(["score", path], env={"CQIA_SCORE_BASE_URL": server.url,
                                       "CQIA_SCORE_MODEL": "other"})
    assert res.exit_code == 0 and server.log[-1]["model"] == "other"


def test_missing_aiohttp_is_one_clear_line(server, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0)])
    res = score(server, "--model", "judge", path)
    assert res.exit_code == 2
    assert res.stderr == ("cqia score: cqia score needs the optional aiohttp package: "
                          "pip install 'cqia[llm]'\n")


def test_help_imports_no_http_client():
    res = shell("python -c \"import sys; from cqia_cli.cli import cli; "
                "print([m for m in ('aiohttp', 'httpx', 'cqia_cli.llm', 'cqia_cli.aio', 'openai') "
                "if m in sys.modules])\"")
    assert res.stdout.strip() == "[]", res


def test_head_ends_quietly(server, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(i) for i in range(300)])
    res = shell(f"cqia score --base-url {server.url} {path} | head -1")
    assert res.exit_code == 0 and res.stderr == "", res
    assert len(res.stdout_bytes.splitlines()) == 1


# -- processes: kill -9 and a shared cache --------------------------------------------------


def _cqia_env(tmp_path) -> dict:
    env = dict(os.environ)
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env["PATH"] = os.path.dirname(cqia_executable()) + os.pathsep + env.get("PATH", "")
    return env


def test_kill_9_then_rerun_repeats_only_the_requests_in_flight(server, tmp_path):
    server.latency = 0.02
    recs = [rec(i) for i in range(200)]
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    cmd = ["cqia", "score", "--base-url", server.url, "--concurrency", "8", "-q", str(path),
           "-o", str(tmp_path / "out.jsonl")]
    proc = subprocess.Popen(cmd, env=_cqia_env(tmp_path), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while len(server.log) < 60 and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = len(server.log)
    assert 0 < first < 200
    assert not (tmp_path / "out.jsonl").exists()
    res = subprocess.run(cmd, env=_cqia_env(tmp_path), capture_output=True)
    assert res.returncode == 0, res.stderr
    counts = {i: server.requests_for(f"#{i}#") for i in range(200)}
    assert all(n >= 1 for n in counts.values())
    twice = [i for i, n in counts.items() if n > 1]
    assert len(twice) <= 8, twice  # at most the requests in flight at the kill
    assert max(counts.values()) == 2
    out = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert [r["_score"] for r in out] == [expected(r) for r in recs]


def test_two_processes_share_one_cache(server, tmp_path):
    server.latency = 0.01
    recs = [rec(i) for i in range(150)]
    path = write_jsonl(tmp_path / "in.jsonl", recs)
    db = tmp_path / "shared.sqlite"
    procs = [subprocess.Popen(["cqia", "score", "--base-url", server.url, "--cache", str(db),
                               "-q", str(path), "-o", str(tmp_path / f"out{k}.jsonl")],
                              env=_cqia_env(tmp_path), stderr=subprocess.PIPE)
             for k in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    a = (tmp_path / "out0.jsonl").read_bytes()
    assert a == (tmp_path / "out1.jsonl").read_bytes()
    assert len(server.log) <= 300
    server.log.clear()
    res = invoke(["score", "--base-url", server.url, "--cache", db, path])
    assert res.exit_code == 0 and server.log == [] and res.stdout_bytes == a


# -- Redis cache ----------------------------------------------------------------------------

REDIS = shutil.which("redis-server")


@pytest.fixture(scope="module")
def redis_url():
    if REDIS is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    pytest.importorskip("redis")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/3"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_redis_cache_is_shared(server, tmp_path, redis_url):
    path = write_jsonl(tmp_path / "in.jsonl", [rec(i, "[[x=redis]]") for i in range(30)])
    first = score(server, "--cache", redis_url, path)
    assert first.exit_code == 0, first
    assert len(server.log) == 30 and not (tmp_path / "xdg").exists()
    # another machine (here: the same one) with the same Redis sends nothing
    again = score(server, "--cache", redis_url, path)
    assert again.exit_code == 0 and len(server.log) == 30
    assert again.stdout_bytes == first.stdout_bytes and "30 cache hits" in again.stderr
    import redis

    r = redis.Redis.from_url(redis_url)
    assert len(r.keys("cqia:llm:*")) == 30


def test_redis_cache_unreachable_is_one_line(server, tmp_path):
    pytest.importorskip("redis")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = write_jsonl(tmp_path / "in.jsonl", [rec(0)])
    res = score(server, "--cache", f"redis://127.0.0.1:{port}/0", path)
    assert res.exit_code == 74 and res.stderr.startswith("cqia score: cache redis://")
    assert res.stderr.count("\n") == 1 and server.log == []


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_end_quickly_and_leave_no_file(server, tmp_path, sig, status):
    server.latency = 0.5
    path = write_jsonl(tmp_path / "in.jsonl", [rec(i) for i in range(300)])
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(["cqia", "score", "--base-url", server.url, str(path), "-o",
                             str(out / "scored.jsonl")], env=_cqia_env(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 30
    while len(server.log) < 10 and time.time() < deadline:
        time.sleep(0.01)
    start = time.time()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == status, err
    assert time.time() - start < 2
    assert list(out.iterdir()) == []
    assert b"Traceback" not in err


def test_progress_on_a_terminal_keeps_stdout_clean(server, tmp_path):
    import pty
    import select

    server.latency = 0.02
    path = write_jsonl(tmp_path / "in.jsonl", [rec(i) for i in range(400)])
    master, slave = pty.openpty()
    with open(tmp_path / "out.jsonl", "wb") as stdout:
        proc = subprocess.Popen(["cqia", "score", "--base-url", server.url, "--concurrency",
                                 "8", str(path)], env=_cqia_env(tmp_path), stdout=stdout,
                                stderr=slave)
    os.close(slave)
    seen = b""
    deadline = time.time() + 60
    while time.time() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(master)
    out = (tmp_path / "out.jsonl").read_bytes()
    assert proc.returncode == 0
    assert out.count(b"\n") == 400 and b"\x1b" not in out  # data only on standard output
    assert b"requests" in seen and b"cached" in seen and b"req/s" in seen  # the live line
    assert b"score: 400 records, 400 done" in seen
