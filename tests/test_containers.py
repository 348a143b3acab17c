"""cqia_cli/containers.py: container detection and the one reader that fetch and convert share.

JSON Lines, a JSON array, CSV/TSV and Parquet; the same records and the same FILE:LINE through
both commands; convert types CSV cells (its row hook), fetch keeps them text.
"""

from __future__ import annotations

import csv
import gzip
import io
import json

import pytest
from hypothesis import given, settings, strategies as st

from conftest import invoke, shell
from cqia_cli.containers import ContainerReader, detect, format_by_name
from cqia_cli.status import DataError


def read(path, fmt="auto", **kwargs):
    return list(ContainerReader([str(path)], container=fmt, **kwargs))


# -- detection --------------------------------------------------------------------------------


@pytest.mark.parametrize("name,fmt", [
    ("a.jsonl", "jsonl"), ("a.JSONL.GZ", "jsonl"), ("a.ndjson.zst", "jsonl"),
    ("a.json", "json"), ("a.csv.bz2", "csv"), ("a.tsv", "tsv"), ("a.tab", "tsv"),
    ("a.parquet", "parquet"), ("a.pq", "parquet"), ("download?id=3", None), ("README.md", None),
])
def test_format_by_name(name, fmt):
    assert format_by_name(name) == fmt


def test_detect_by_content(tmp_path):
    (tmp_path / "x").write_bytes(b"\xef\xbb\xbf  [{}]")
    (tmp_path / "y").write_bytes(b'{"a": 1}\n')
    (tmp_path / "z").write_bytes(b"PAR1....")
    (tmp_path / "w.json").write_bytes(b'{"a": 1}\n{"a": 2}\n')
    (tmp_path / "v.data.gz").write_bytes(gzip.compress(b'\n [{"a": 1}]'))
    assert detect(str(tmp_path / "x"), "x") == "json"
    assert detect(str(tmp_path / "y"), "y") == "jsonl"
    assert detect(str(tmp_path / "z"), "z") == "parquet"
    assert detect(str(tmp_path / "w.json"), "w.json") == "jsonl"
    assert detect(str(tmp_path / "w.json"), "w.json", forced="csv") == "csv"
    assert detect(str(tmp_path / "v.data.gz")) == "json"
    # the name the user knows (a URL) decides before the cache file's own name
    assert detect(str(tmp_path / "y"), "https://e.org/qa.csv?x=1") == "csv"


# -- round trips ------------------------------------------------------------------------------

_cell = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                max_size=20)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(_cell, _cell), min_size=1, max_size=6),
       delimiter=st.sampled_from([",", "\t"]))
def test_csv_round_trip(tmp_path_factory, rows, delimiter):
    buf = io.StringIO(newline="")
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    w.writerow(["instruction", "output"])
    w.writerows(rows)
    path = tmp_path_factory.mktemp("csv") / ("t.csv" if delimiter == "," else "t.tsv")
    path.write_bytes(buf.getvalue().encode("utf-8"))
    assert read(path) == [{"instruction": a, "output": b} for a, b in rows]


@settings(max_examples=40, deadline=None)
@given(items=st.lists(st.dictionaries(
    st.text(max_size=5),
    # orjson (JSON Lines too) reads integers past 64 bits as floats
    st.text(max_size=10) | st.integers(-2**63, 2**64 - 1), max_size=3), max_size=6))
def test_json_array_round_trip(tmp_path_factory, items):
    path = tmp_path_factory.mktemp("json") / "t.json"
    path.write_text(json.dumps(items, ensure_ascii=False, indent=1), encoding="utf-8")
    assert read(path) == items
    assert read(path, "json") == items


# -- positions and what --errors keeps ---------------------------------------------------------


def test_json_array_item_line_is_found_only_when_asked(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n {"a": 1},\n\n {"a": 2,\n  "b": 3}]', encoding="utf-8")
    reader = ContainerReader([str(path)])
    it = iter(reader)
    next(it)
    assert reader._cur._spans is None  # nothing walked yet
    assert reader.where() == f"{path}:2"
    next(it)
    assert reader.lineno == 4 and reader.raw == b'{"a":2,"b":3}\n'


def test_csv_row_kept_verbatim_in_errors_by_both_commands(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b'instruction,output\r\nq1,a1\r\n"q2\r\nmore",a2,extra\r\nq3,a3\r\n')
    for cmd in (["fetch"], ["convert", "--to", "alpaca"]):
        errors = tmp_path / "e.txt"
        res = invoke(cmd + [path])
        assert res.exit_code == 65
        assert res.stderr == f"cqia {cmd[0]}: {path}:3: row has 3 fields, the header has 2\n"
        res = invoke(cmd + ["--on-error", "skip", "--errors", errors, path])
        assert res.exit_code == 0, res
        assert [r["instruction"] for r in res.records()] == ["q1", "q3"]
        # the row's two lines byte for byte, its third field included: nothing lost
        assert errors.read_bytes() == b'"q2\r\nmore",a2,extra\r\n'


def test_convert_reject_of_a_csv_row_keeps_its_lines(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("instruction,output\nq1,a1\nq2,\n", encoding="utf-8")
    errors = tmp_path / "e.txt"
    res = invoke(["convert", "--to", "alpaca", "--map", "instruction=instruction,output=nope",
                  "--on-error", "skip", "--errors", errors, path])
    assert res.exit_code == 0
    assert errors.read_bytes() == b"q1,a1\nq2,\n"


def test_csv_header_must_name_each_column_once(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("instruction,output,instruction\nq,a,b\n")
    for cmd in ("fetch", "convert"):
        res = invoke([cmd, path])
        assert res.exit_code == 65
        assert res.stderr == f"cqia {cmd}: {path}:1: column 'instruction' appears twice in the header\n"


def test_csv_undecodable_line_is_a_bad_line_at_its_place(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"instruction,output\nq,a\nq2,\xff\xfe\nq3,a3\n")
    errors = tmp_path / "e.txt"
    for cmd in (["fetch"], ["convert", "--to", "alpaca"]):
        res = invoke(cmd + [path])
        assert res.exit_code == 65
        assert res.stderr == (f"cqia {cmd[0]}: {path}:3: cannot decode as utf-8 (byte 0xff at "
                              "column 4); check --encoding\n")
        res = invoke(cmd + ["--on-error", "skip", "--errors", errors, path])
        assert res.exit_code == 0
        assert [r["instruction"] for r in res.records()] == ["q", "q3"]
        assert errors.read_bytes() == b"q2,\xff\xfe\n"


# -- the two commands: one reader, each its own typing ------------------------------------------


def test_fetch_keeps_csv_cells_text_convert_types_them(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('instruction,output,domain,human_verified\nq,a,"[""文学""]",TRUE\n',
                    encoding="utf-8")
    assert invoke(["fetch", path]).records() == [
        {"instruction": "q", "output": "a", "domain": '["文学"]', "human_verified": "TRUE"}]
    rec = invoke(["convert", "--from", "cqia", path]).records()[0]
    assert rec["domain"] == ["文学"] and rec["human_verified"] is True


def test_json_array_same_line_in_fetch_and_convert(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n {"instruction": "q", "output": "a"},\n 3\n]', encoding="utf-8")
    for cmd in ("fetch", "convert"):
        res = invoke([cmd, path])
        assert res.stderr == f"cqia {cmd}: {path}:3: item 2 is not a JSON object (a JSON number)\n"
    res = invoke(["fetch", "--add-source", "--on-error", "skip", path])
    assert res.records()[0]["_source"] == {"uri": str(path), "line": 2}


def test_fetch_sniffs_standard_input_through_the_shared_stream():
    data = b'\xef\xbb\xbf[{"a": 1},\n {"a": 2}]'
    assert invoke(["fetch"], input=data).records() == [{"a": 1}, {"a": 2}]
    assert invoke(["fetch", "-"], input=b'{"a": 1}\n{"a": 2}\n').records() == [{"a": 1},
                                                                               {"a": 2}]


def test_shell_stdin_sniffed_in_both_commands(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"instruction": f"q{i}", "output": "a"} for i in range(3000)]))
    for cmd in ("fetch", "convert --to alpaca"):
        res = shell(f"cat {path} | cqia {cmd} | head -1")
        assert res.exit_code == 0 and res.stderr == ""
        assert json.loads(res.stdout)["instruction"] == "q0"


def test_parquet_in_convert_too(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "qa.parquet"
    rows = [{"instruction": "q1", "output": "a1"}, {"instruction": "q2", "output": None}]
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert invoke(["fetch", path]).records() == rows
    errors = tmp_path / "e.jsonl"
    res = invoke(["convert", "--to", "alpaca", path])
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia convert: {path}:2: ")
    res = invoke(["convert", "--to", "alpaca", "--on-error", "skip", "--errors", errors, path])
    assert res.records() == [{"instruction": "q1", "input": "", "output": "a1"}]
    assert errors.read_bytes() == b'{"instruction":"q2","output":null}\n'


def test_not_a_json_array_when_forced(tmp_path):
    path = tmp_path / "o.json"
    path.write_text('\n{"a": 1}')
    with pytest.raises(DataError, match=r"o.json:2: not a JSON array"):
        read(path, "json")


def test_parquet_on_standard_input_found_by_its_magic(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "qa.parquet"
    rows = [{"instruction": f"q{i}", "output": f"a{i}"} for i in range(3)]
    pq.write_table(pa.Table.from_pylist(rows), path)
    data = path.read_bytes()
    assert invoke(["fetch"], input=data).records() == rows
    assert [r["instruction"] for r in invoke(["convert", "--to", "alpaca"],
                                             input=data).records()] == ["q0", "q1", "q2"]


def test_csv_lines_ended_by_a_lone_carriage_return(tmp_path):
    path = tmp_path / "mac.csv"
    path.write_bytes(b'instruction,output\rq1,"a\r1"\rq2,a2,x\rq3,a3\r')
    errors = tmp_path / "e.txt"
    for cmd in (["fetch"], ["convert", "--to", "alpaca"]):
        res = invoke(cmd + [path])
        assert res.stderr == f"cqia {cmd[0]}: {path}:4: row has 3 fields, the header has 2\n"
        res = invoke(cmd + ["--on-error", "skip", "--errors", errors, path])
        assert [(r["instruction"], r["output"]) for r in res.records()] == [
            ("q1", "a\r1"), ("q3", "a3")]
        assert errors.read_bytes() == b"q2,a2,x\r\n"  # the core ends each kept line with \n
