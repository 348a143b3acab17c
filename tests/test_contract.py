"""The command contract (CONVENTIONS.md), checked on every verb that exists.

Each verb is run with the minimal arguments below on the same good and bad inputs: bad JSON,
a non-object line, undecodable bytes, a missing file, an empty input, --on-error skip with
--errors, and its --help must show examples and exit statuses.
"""

from __future__ import annotations

import pytest

from cqia_cli.cli import COMMANDS, available_commands

from conftest import cqia_record, invoke, write_jsonl

#: Extra arguments a verb needs to run at all; "{tmp}" is the test's temporary directory.
ARGS: dict[str, list[str]] = {
    "validate": ["--optional", "input"],
    "split": ["--ratios", "a=0.5,b=0.5", "-o", "{tmp}/{{split}}.jsonl"],
    "convert": ["--from", "cqia", "--to", "alpaca"],
    "review": ["--apply"],
}
#: Verbs whose standard output is not JSON Lines (a report).
REPORTS = {"stats"}
#: Verbs that write no standard output with the ARGS above.
NO_STDOUT = {"split"}

VERBS = available_commands()


def _args(verb: str, tmp_path) -> list[str]:
    return [verb] + [a.replace("{tmp}", str(tmp_path)).replace("{{", "{").replace("}}", "}")
                     for a in ARGS.get(verb, [])]


def test_every_registered_verb_is_listed_in_help():
    res = invoke(["--help"])
    assert res.exit_code == 0
    for verb in VERBS:
        assert verb in res.stdout
    assert set(VERBS) <= set(COMMANDS)


@pytest.mark.parametrize("verb", VERBS)
def test_help_has_examples_and_exit_status(verb):
    res = invoke([verb, "--help"])
    assert res.exit_code == 0
    assert "Examples:" in res.stdout and "Exit status:" in res.stdout
    assert "65" in res.stdout and "66" in res.stdout


@pytest.mark.parametrize("verb", VERBS)
def test_invalid_json_is_65_with_file_and_line(verb, tmp_path):
    path = tmp_path / "bad.jsonl"
    good = write_jsonl(tmp_path / "g.jsonl", [cqia_record(0), cqia_record(1)]).read_bytes()
    path.write_bytes(good + b'{"instruction": "x",\n' + good)
    res = invoke(_args(verb, tmp_path) + [str(path)])
    assert res.exit_code == 65, res
    assert res.stderr.startswith(f"cqia {verb}: {path}:3: invalid JSON: "), res
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_non_object_line_is_65(verb, tmp_path):
    path = tmp_path / "arr.jsonl"
    path.write_bytes(b'["not", "an", "object"]\n')
    res = invoke(_args(verb, tmp_path) + [str(path)])
    assert res.exit_code == 65, res
    assert f"{path}:1: not a JSON object" in res.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_undecodable_bytes_is_65(verb, tmp_path):
    path = tmp_path / "gb.jsonl"
    path.write_bytes('{"instruction": "中文"}\n'.encode("gb18030"))
    res = invoke(_args(verb, tmp_path) + [str(path)])
    assert res.exit_code == 65, res
    assert f"{path}:1: not valid UTF-8" in res.stderr


@pytest.mark.parametrize("verb", [v for v in VERBS if v != "fetch"])
def test_missing_file_is_66(verb, tmp_path):
    res = invoke(_args(verb, tmp_path) + [str(tmp_path / "missing.jsonl")])
    assert res.exit_code == 66, res
    assert res.stderr.strip().startswith(f"cqia {verb}: ")
    assert "missing.jsonl" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_empty_input_is_success(verb, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    res = invoke(_args(verb, tmp_path) + [str(path)])
    assert res.exit_code == 0, res
    if verb not in REPORTS:
        assert res.stdout == ""


@pytest.mark.parametrize("verb", VERBS)
def test_skip_keeps_bad_lines(verb, tmp_path):
    recs = [cqia_record(i) for i in range(3)]
    path = write_jsonl(tmp_path / "in.jsonl", recs[:2], raw_lines=[b"{oops\n"])
    with open(path, "ab") as f:
        f.write(write_jsonl(tmp_path / "tail.jsonl", recs[2:]).read_bytes())
    errors = tmp_path / "errors.jsonl"
    res = invoke(_args(verb, tmp_path) + ["--on-error", "skip", "--errors", str(errors),
                                          str(path)])
    assert res.exit_code == 0, res
    assert errors.read_bytes() == b"{oops\n"
    assert "skipped 1 bad lines" in res.stderr
    if verb not in REPORTS and verb not in NO_STDOUT:
        assert len(res.records()) >= 1


@pytest.mark.parametrize("verb", VERBS)
def test_errors_needs_skip(verb, tmp_path):
    res = invoke(_args(verb, tmp_path) + ["--errors", str(tmp_path / "e.jsonl")],
                 input=b"")
    assert res.exit_code == 2
    assert "--errors needs --on-error skip" in res.stderr


def test_unknown_command_and_option_are_usage_errors():
    assert invoke(["frobnicate"]).exit_code == 2
    res = invoke(["validate", "--no-such-option"])
    assert res.exit_code == 2 and "No such option" in res.stderr


def test_options_from_the_environment(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"instruction": "x"}\n{bad\n')
    res = invoke(["validate", "--optional", "input", str(path)],
                 env={"CQIA_VALIDATE_ON_ERROR": "skip"})
    assert res.exit_code == 1  # the record is invalid, but the bad line was skipped
    assert "skipped 1 bad lines" in res.stderr
