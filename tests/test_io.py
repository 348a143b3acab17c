"""The I/O core: reading, errors with file:line, --on-error, compression, encodings, outputs."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma

import orjson
import pytest

from cqia_cli import fields
from cqia_cli.io import (Output, RecordReader, check_encoding, parse_line, read_records,
                         write_records)
from cqia_cli.status import DataError, InputError, OutputError

from conftest import invoke, write_jsonl

RECS = [{"instruction": "你好", "n": 1}, {"instruction": "再见", "n": 2, "emoji": "😀"}]


def _lines(recs) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in recs)


# -- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix,opener", [
    ("", open), (".gz", gzip.open), (".bz2", bz2.open), (".xz", lzma.open),
])
def test_same_records_from_every_compression(tmp_path, suffix, opener):
    path = tmp_path / f"data.jsonl{suffix}"
    with opener(path, "wb") as f:
        f.write(_lines(RECS))
    assert list(read_records([str(path)])) == RECS
    res = invoke(["validate", "--optional", "input", str(path)])
    assert res.records() == RECS  # passes through, even though invalid (status 1)


def test_zstd_when_installed(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    path = tmp_path / "data.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(_lines(RECS)))
    assert list(read_records([str(path)])) == RECS


def test_bom_blank_lines_crlf_and_no_final_newline(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"a": 1}\r\n\r\n   \n{"a": 2}\r\n\n{"a": 3}')
    reader = RecordReader([str(path)])
    got = []
    for rec in reader:
        got.append((rec["a"], reader.lineno))
    assert got == [(1, 1), (2, 4), (3, 6)]


def test_several_files_are_one_stream_with_their_own_line_numbers(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"x": 1}, {"x": 2}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"x": 3}])
    reader = RecordReader([str(a), str(b)])
    assert [(r["x"], reader.where()) for r in reader] == [
        (1, f"{a}:1"), (2, f"{a}:2"), (3, f"{b}:1")]


def test_invalid_json_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": \n{"a": 4}\n')
    with pytest.raises(DataError) as e:
        list(read_records([str(path)]))
    assert e.value.message.startswith(f"{path}:3: invalid JSON: ")


@pytest.mark.parametrize("line,problem", [
    (b"[1, 2]", "not a JSON object (a JSON array)"),
    (b'"text"', "not a JSON object (a JSON string)"),
    (b"42", "not a JSON object (a JSON number)"),
    (b"null", "not a JSON object (a JSON null)"),
    (b'{"a": 1} {"b": 2}', "invalid JSON"),
    (b'{"a": NaN}', "invalid JSON"),
])
def test_lines_that_are_not_objects(tmp_path, line, problem):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"ok": 1}\n' + line + b"\n")
    with pytest.raises(DataError) as e:
        list(read_records([str(path)]))
    assert e.value.message.startswith(f"{path}:2: {problem}")


def test_undecodable_bytes_suggest_encoding(tmp_path):
    path = tmp_path / "gb.jsonl"
    path.write_bytes('{"instruction": "中文"}\n'.encode("gb18030"))
    with pytest.raises(DataError) as e:
        list(read_records([str(path)]))
    assert e.value.message.startswith(f"{path}:1: not valid UTF-8")
    assert "--encoding" in e.value.message
    assert list(read_records([str(path)], encoding="gb18030")) == [{"instruction": "中文"}]


def test_wrong_encoding_names_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "\xff\xff"}\n')
    with pytest.raises(DataError) as e:
        list(read_records([str(path)], encoding="gb18030"))
    assert e.value.message.startswith(f"{path}:2: cannot decode as gb18030")


def test_encoding_must_be_ascii_compatible():
    assert check_encoding("GB18030") == "gb18030"
    with pytest.raises(ValueError, match="not ASCII-compatible"):
        check_encoding("utf-16")
    with pytest.raises(ValueError, match="unknown encoding"):
        check_encoding("klingon")


def test_skip_counts_and_keeps_bad_lines_verbatim(tmp_path):
    errors = tmp_path / "errors.jsonl"
    out = Output(str(errors))
    bad = [b'{"a": \r\n', b"[1]\n", b"\xff\xfe\n", b'{"z": 1'  # last: no final newline
           ]
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a": 1}\n' + bad[0] + bad[1] + b'{"a": 2}\n' + bad[2] + bad[3])
    reader = RecordReader([str(path)], on_error="skip", errors_out=out)
    assert list(reader) == [{"a": 1}, {"a": 2}]
    out.commit()
    assert reader.skipped == 4
    assert errors.read_bytes() == bad[0] + bad[1] + bad[2] + bad[3] + b"\n"


def test_raw_batches_and_parse_line_agree_with_iteration(tmp_path):
    """raw_batches gives every line (BOM removed, blank ones kept) by input and number, never a
    batch across inputs; parse_line and bad_line(path=) then say what iteration says."""
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    a.write_bytes(codecs_bom() + b'{"a": 1}\n\n[1]\n{"a": 2}\n')
    b.write_bytes(b'{"b": \n{"b": 1}\n\xff\n')
    reader = RecordReader([str(a), str(b)])
    batches = list(reader.raw_batches(2))
    assert batches == [
        (str(a), 1, [b'{"a": 1}\n', b"\n"]), (str(a), 3, [b"[1]\n", b'{"a": 2}\n']),
        (str(b), 1, [b'{"b": \n', b'{"b": 1}\n']), (str(b), 3, [b"\xff\n"]),
    ]
    twice = list(RecordReader([str(b), str(b)]).raw_batches(5))
    assert [(n, first, len(lines)) for n, first, lines in twice] == [(str(b), 1, 3),
                                                                     (str(b), 1, 3)]
    found = [(name, n, parse_line(line)) for name, first, batch in batches
             for n, line in enumerate(batch, first)]
    assert [r for _, _, r in found if isinstance(r, dict)] == [{"a": 1}, {"a": 2}, {"b": 1}]
    assert found[1][2] is None  # blank
    assert found[2][2] == "not a JSON object (a JSON array)"
    errors = tmp_path / "errors.jsonl"
    out = Output(str(errors))
    skipping = RecordReader([str(a), str(b)], on_error="skip", errors_out=out)
    assert list(skipping) == [{"a": 1}, {"a": 2}, {"b": 1}]
    out.commit()
    expected = errors.read_bytes()
    errors2 = tmp_path / "errors2.jsonl"
    out2 = Output(str(errors2))
    parent = RecordReader([str(a), str(b)], on_error="skip", errors_out=out2)
    for name, first, batch in batches:
        for n, line in enumerate(batch, first):
            problem = parse_line(line)
            if isinstance(problem, str):
                parent.bad_line(line, n, problem, path=name)
    out2.commit()
    assert errors2.read_bytes() == expected
    assert parent.skipped == skipping.skipped == 3
    with pytest.raises(DataError) as serial:
        list(RecordReader([str(a), str(b)]))
    with pytest.raises(DataError) as reported:
        RecordReader([str(a), str(b)]).bad_line(b"[1]\n", 3, found[2][2], path=str(a))
    assert str(serial.value) == str(reported.value) == f"{a}:3: not a JSON object (a JSON array)"


def codecs_bom() -> bytes:
    return b"\xef\xbb\xbf"


def test_raw_batches_of_a_regular_file_say_where_their_lines_are(tmp_path):
    """A regular file's batches also say where their lines are in it (a -j worker reads them
    there): the bytes at that place are the lines, after the BOM, with carriage returns kept and
    a last line without its newline. A compressed file's batches and a FIFO's do not."""
    import os
    import threading

    from cqia_cli.io import FileLines

    data = codecs_bom() + b'{"a": 1}\r\n\n{"b": "x"}\r{"c": 3}\n[1]\n{"d": 4}'
    path = tmp_path / "a.jsonl"
    path.write_bytes(data)
    batches = list(RecordReader([str(path)]).raw_batches(2))
    assert [lines for _, _, lines in batches] == [
        [b'{"a": 1}\r\n', b"\n"], [b'{"b": "x"}\r{"c": 3}\n', b"[1]\n"], [b'{"d": 4}']]
    st = os.stat(path)
    for _, _, lines in batches:
        assert type(lines) is FileLines
        name, dev, ino, pid, fd, offset, size = lines.where
        assert (name, dev, ino, pid) == (os.path.abspath(path), st.st_dev, st.st_ino, os.getpid())
        assert data[offset:offset + size] == b"".join(lines)
    assert batches[0][2].where[5] == len(codecs_bom())
    packed = tmp_path / "a.jsonl.gz"
    packed.write_bytes(gzip.compress(data))
    gz = list(RecordReader([str(packed)]).raw_batches(2))
    assert [lines for _, _, lines in gz] == [lines for _, _, lines in batches]
    assert all(type(lines) is list for _, _, lines in gz)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(data,))
    writer.start()
    try:
        piped = list(RecordReader([str(fifo)]).raw_batches(2))
    finally:
        writer.join()
    assert [lines for _, _, lines in piped] == [lines for _, _, lines in batches]
    assert all(type(lines) is list for _, _, lines in piped)


def test_raw_batches_give_the_lines_before_a_reading_error_first(tmp_path):
    path = tmp_path / "t.jsonl.gz"
    data = gzip.compress(_lines(RECS * 2000))
    path.write_bytes(data[: len(data) // 2])
    serial = []
    with pytest.raises(DataError) as plain:
        for rec in RecordReader([str(path)]):
            serial.append(rec)
    got = []
    with pytest.raises(DataError) as batched:
        for name, first, lines in RecordReader([str(path)]).raw_batches(1000):
            assert first == len(got) + 1
            got.extend(lines)
    assert str(batched.value) == str(plain.value)
    assert [parse_line(line) for line in got if line.endswith(b"\n")] == serial


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError):
        list(read_records([str(tmp_path / "nope.jsonl")]))


def test_truncated_gzip_is_a_data_error(tmp_path):
    path = tmp_path / "t.jsonl.gz"
    data = gzip.compress(_lines(RECS * 200))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="corrupt or truncated compressed data"):
        list(read_records([str(path)]))


# -- writing ---------------------------------------------------------------------------------


def test_output_is_compact_utf8_in_key_order(tmp_path):
    path = tmp_path / "out.jsonl"
    write_records(str(path), [{"b": "中文 😀", "a": [1, {"c": None}]}])
    assert path.read_bytes() == '{"b":"中文 😀","a":[1,{"c":null}]}\n'.encode()


@pytest.mark.parametrize("suffix,opener", [(".gz", gzip.open), (".bz2", bz2.open),
                                           (".xz", lzma.open)])
def test_compressed_output_by_suffix(tmp_path, suffix, opener):
    path = tmp_path / f"out.jsonl{suffix}"
    write_records(str(path), RECS)
    with opener(path, "rb") as f:
        assert [orjson.loads(line) for line in f] == RECS


def test_gzip_output_is_byte_identical_across_runs(tmp_path):
    a, b = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    write_records(str(a), RECS)
    write_records(str(b), RECS)
    assert a.read_bytes() == b.read_bytes()


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "out.jsonl"

    def gen():
        yield {"a": 1}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_records(str(path), gen())
    assert list(tmp_path.iterdir()) == []


def test_output_over_an_input_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", RECS)
    with pytest.raises(OutputError, match="refusing to write over an input"):
        Output(str(path), inputs=[str(path)])
    assert path.read_bytes() == _lines(RECS)


def test_output_into_missing_directories_creates_them(tmp_path):
    path = tmp_path / "a" / "b" / "out.jsonl"
    write_records(str(path), RECS)
    assert list(read_records([str(path)])) == RECS


def test_aborted_output_removes_the_directories_it_made(tmp_path):
    (tmp_path / "a").mkdir()
    out = Output(str(tmp_path / "a" / "b" / "c" / "out.jsonl"))
    assert (tmp_path / "a" / "b" / "c").is_dir()
    out.abort()
    assert list(tmp_path.iterdir()) == [tmp_path / "a"] and not any((tmp_path / "a").iterdir())


def test_output_below_a_file_is_an_output_error(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(OutputError, match="cannot"):
        Output(str(tmp_path / "f" / "sub" / "out.jsonl"))


# -- fields ----------------------------------------------------------------------------------


def test_dotted_paths_get_and_set():
    rec = {"task_type": {"major": ["问答"], "minor": []}, "conv": [{"v": "a"}, {"v": "b"}]}
    assert fields.get(rec, "task_type.major") == ["问答"]
    assert fields.get(rec, "task_type.missing", "d") == "d"
    assert fields.get(rec, "conv.1.v") == "b"
    assert fields.get(rec, "conv.5.v") is None
    assert fields.get(rec, "task_type.major.0") == "问答"
    fields.set(rec, "meta.source.name", "zhihu")
    assert rec["meta"] == {"source": {"name": "zhihu"}}
    fields.set(rec, "task_type.minor", ["x"])
    assert rec["task_type"]["minor"] == ["x"]
    with pytest.raises(ValueError):
        fields.compile_path("a..b")


def test_default_text_joins_instruction_input_output():
    rec = {"instruction": "问", "input": "", "output": "答", "other": "x"}
    assert fields.record_text(rec) == "问\n答"
    rec["input"] = "上下文"
    assert fields.record_text(rec) == "问\n上下文\n答"
    assert fields.record_text(rec, ["output", "other"]) == "答\nx"
    assert fields.TextGetter(["task_type.major"])({"task_type": {"major": ["a", "b"]}}) == "a\nb"
    assert fields.record_text({}) == ""


def _deep_input(tmp_path):
    deep: object = "x"
    for _ in range(500):  # orjson reads 1024 levels but writes 254
        deep = [deep]
    good = {"instruction": "问题", "input": "", "output": "一个足够长的回答，说明了原因。"}
    return write_jsonl(tmp_path / "deep.jsonl", [good, {**good, "deep": deep}, good])


@pytest.mark.parametrize("args", [["dedup", "-j", "1"], ["dedup", "-j", "2"]])
def test_a_record_too_deep_to_write_is_a_bad_line_at_its_file_and_line(tmp_path, args):
    path = _deep_input(tmp_path)
    args = [a.replace("{tmp}", str(tmp_path)).replace("{{", "{").replace("}}", "}") for a in args]
    res = invoke(args + [str(path)])
    assert res.exit_code == 65, res
    assert res.stderr.endswith(
        f"cqia {args[0]}: {path}:2: cannot write a record as JSON: Recursion limit reached\n"), res
    errors = tmp_path / "errors.jsonl"
    res = invoke(args + ["--on-error", "skip", "--errors", str(errors), str(path)])
    assert res.exit_code == 0, res
    assert errors.read_bytes() == path.read_bytes().splitlines(keepends=True)[1]
