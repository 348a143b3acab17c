"""fields.FieldPath (one compiled path, with the top-level fast path) and the FIELD_PATH option
type every path option uses."""

from __future__ import annotations

import pickle

import pytest

from cqia_cli import fields as F
from cqia_cli.fields import MISSING, FieldPath

from conftest import invoke


@pytest.mark.parametrize("path,record,expected", [
    ("output", {"output": "x"}, "x"),
    ("2024", {"2024": ""}, ""),                       # a numeric top-level key is a key
    ("task_type.major", {"task_type": {"major": ["问答"]}}, ["问答"]),
    ("conversations.1.value", {"conversations": [{"value": "a"}, {"value": "b"}]}, "b"),
    ("meta.2024", {"meta": {"2024": 5}}, 5),
    ("a.b", {"a": "not an object"}, None),
    ("missing", {}, None),
])
def test_field_path_agrees_with_get(path, record, expected):
    p = FieldPath(path)
    assert p(record) == expected == F.get(record, path)
    assert p(record, MISSING) is (MISSING if F.get(record, path, MISSING) is MISSING
                                  else p(record, MISSING))
    assert pickle.loads(pickle.dumps(p)) == p
    assert (p.top is None) == ("." in path)


@pytest.mark.parametrize("bad", ["", ".a", "a.", "a..b"])
def test_bad_paths_are_refused(bad):
    with pytest.raises(ValueError):
        FieldPath(bad)


def test_numeric_top_level_field_is_empty_not_missing(tmp_path):
    """{"2024": ""} with --field 2024: fields.get says "" and so does the length rule."""
    data = tmp_path / "d.jsonl"
    data.write_text('{"2024": "", "output": "long enough text"}\n', encoding="utf-8")
    r = invoke(["filter", "-q", "--no-defaults", "--set", "length.required=2024", "--invert",
                str(data)])
    assert r.exit_code == 0
    assert '"_reject":{"rule":"length","field":"2024","detail":"empty"}' in r.stdout
    data.write_text('{"2024": "四个汉字", "output": ""}\n', encoding="utf-8")
    r = invoke(["filter", "-q", "--no-defaults", "--set", "length.required=2024", "--field",
                "2024", "--min-len", "2024=5", "--invert", str(data)])
    assert '"field":"2024","detail":"4 characters' in r.stdout, r.stdout


@pytest.mark.parametrize("argv", [
    ["filter", "--field", "a..b"],
    ["split", "--stream", "--ratios", "a=1", "--key", "a."],
    ["split", "--ratios", "a=1", "--stratify", ".a"],
    ["stats", "--by", "a..b"],
    ["stats", "--group", "a..b"],
])
def test_every_path_option_refuses_a_bad_path_as_a_usage_error(argv, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"output": "x"}\n', encoding="utf-8")
    r = invoke(argv + ["-o", str(tmp_path / "{split}.jsonl") if argv[0] == "split" else
                       str(tmp_path / "o"), str(data)])
    assert r.exit_code == 2
    assert "bad field path" in r.stderr
