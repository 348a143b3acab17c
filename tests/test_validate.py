"""cqia validate: the schema checks, pass-through, --drop-invalid, --invalid, exit statuses."""

from __future__ import annotations

import orjson
import pytest

from cqia_cli.schema import Checker

from conftest import cqia_record, invoke, shell, write_jsonl


@pytest.mark.parametrize("change,expected", [
    ({"instruction": ""}, ("instruction", "empty")),
    ({"instruction": "  \n"}, ("instruction", "only whitespace")),
    ({"output": ""}, ("output", "empty")),
    ({"input": None}, ("input", "must be a string, got null")),
    ({"output": 5}, ("output", "must be a string, got number")),
    ({"task_type": ["问答"]}, ("task_type", "must be an object {major, minor}, got array")),
    ({"task_type": {"major": [], "minor": []}}, ("task_type.major", "must not be empty")),
    ({"task_type": {"major": ["问答"]}}, ("task_type.minor", "missing")),
    ({"task_type": {"major": "问答", "minor": []}},
     ("task_type.major", "must be an array of strings, got string")),
    ({"task_type": {"major": ["问答", 3], "minor": []}},
     ("task_type.major", "item 1 must be a string, got number")),
    ({"domain": []}, ("domain", "must not be empty")),
    ({"domain": [""]}, ("domain", "item 0 is empty")),
    ({"answer_from": "robot"}, ("answer_from", 'must be "human" or "llm" or "expert", got "robot"')),
    ({"answer_from": ""}, ("answer_from", 'must be "human" or "llm" or "expert", got ""')),
    ({"human_verified": "yes"}, ("human_verified", 'must be true or false, got "yes"')),
    ({"metadata": {"a": 1}}, ("metadata", "must be a string, got object")),
])
def test_each_problem(change, expected):
    assert Checker()(cqia_record(**change)) == [expected]


def test_valid_records_and_extra_fields():
    check = Checker()
    assert check(cqia_record()) == []
    assert check(cqia_record(_source={"uri": "x"}, score=9)) == []
    rec = cqia_record()
    del rec["metadata"], rec["copyright"]
    assert check(rec) == []


def test_missing_fields_and_optional():
    rec = cqia_record()
    del rec["domain"], rec["answer_from"]
    assert Checker()(rec) == [("domain", "missing"), ("answer_from", "missing")]
    assert Checker(optional=("domain", "answer_from"))(rec) == []


def _file(tmp_path):
    recs = [cqia_record(0), cqia_record(1, output=""), cqia_record(2),
            cqia_record(3, answer_from="bot", domain=[])]
    return write_jsonl(tmp_path / "d.jsonl", recs), recs


def test_passes_all_records_and_reports_problems(tmp_path):
    path, recs = _file(tmp_path)
    res = invoke(["validate", path])
    assert res.exit_code == 1
    assert res.records() == recs
    lines = res.stderr.splitlines()
    assert f"{path}:2: output: empty" in lines
    assert f'{path}:4: domain: must not be empty' in lines
    assert f'{path}:4: answer_from: must be "human" or "llm" or "expert", got "bot"' in lines
    assert "validate: 4 records, 2 valid, 2 invalid (50.0%)" in lines


def test_drop_invalid_and_invalid_file(tmp_path):
    path, recs = _file(tmp_path)
    bad = tmp_path / "invalid.jsonl"
    res = invoke(["validate", "--drop-invalid", "--invalid", bad, path])
    assert res.exit_code == 0  # dropping was asked for: a filter's status (issue 16)
    assert res.records() == [recs[0], recs[2]]
    kept_aside = [orjson.loads(x) for x in bad.read_bytes().splitlines()]
    assert [dict((k, v) for k, v in r.items() if k != "_invalid") for r in kept_aside] == [
        recs[1], recs[3]]
    assert kept_aside[0]["_invalid"] == ["output: empty"]
    assert len(kept_aside[1]["_invalid"]) == 2


def test_all_valid_exits_zero(tmp_path):
    path = write_jsonl(tmp_path / "ok.jsonl", [cqia_record(i) for i in range(3)])
    res = invoke(["validate", path])
    assert res.exit_code == 0
    assert len(res.records()) == 3
    assert res.stderr == "validate: 3 records, 3 valid, 0 invalid (0.0%)\n"
    assert invoke(["validate", "-q", path]).stderr == ""


def test_answer_from_values_can_be_set(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [cqia_record(answer_from="")])
    assert invoke(["validate", path]).exit_code == 1
    assert invoke(["validate", "--answer-from", "human,llm,expert,", path]).exit_code == 0


def test_max_problems(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [cqia_record(i, output="") for i in range(10)])
    res = invoke(["validate", "--max-problems", "3", path])
    assert sum(": output: empty" in line for line in res.stderr.splitlines()) == 3
    assert "cqia validate: 7 more problems, see --invalid FILE or --max-problems 0" in res.stderr


def test_output_file_and_stdout(tmp_path):
    path = write_jsonl(tmp_path / "ok.jsonl", [cqia_record(i) for i in range(3)])
    out = tmp_path / "out.jsonl"
    res = invoke(["validate", "-o", out, path])
    assert res.exit_code == 0 and res.stdout == ""
    assert [orjson.loads(x) for x in out.read_bytes().splitlines()] == [
        cqia_record(i) for i in range(3)]


def test_problem_lines_are_capped_by_default(tmp_path):
    """A raw dump has problems in every record: 20 lines, then a pointer; the table and the
    summary still count them all (issue 16)."""
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": f"帖子{i}"} for i in range(500)])
    res = invoke(["validate", path])
    assert res.exit_code == 1
    lines = res.stderr.splitlines()
    assert sum(line.startswith(f"{path}:") for line in lines) == 20
    assert "cqia validate: 3,480 more problems, see --invalid FILE or --max-problems 0" in lines
    assert "validate: 500 records, 0 valid, 500 invalid (100.0%)" in lines
    assert len(lines) < 60
    everything = invoke(["validate", "--max-problems", "0", path])
    assert sum(line.startswith(f"{path}:") for line in everything.stderr.splitlines()) == 3500
    bad = tmp_path / "bad.jsonl"
    aside = invoke(["validate", "--invalid", bad, path])
    assert "3,480 more problems, see --max-problems 0" in aside.stderr


def test_drop_invalid_exits_zero_unless_strict(tmp_path):
    path, recs = _file(tmp_path)
    assert invoke(["validate", "-q", "--drop-invalid", path]).exit_code == 0
    res = invoke(["validate", "-q", "--drop-invalid", "--strict", path])
    assert res.exit_code == 1 and res.records() == [recs[0], recs[2]]
    assert invoke(["validate", "-q", path]).exit_code == 1
    assert invoke(["validate", "-q", "--strict", path]).exit_code == 1
    # in a pipefail pipeline
    res = shell(f"set -o pipefail; cqia validate -q --drop-invalid {path} | wc -l")
    assert res.exit_code == 0 and res.stdout.strip() == "2"
