"""cqia convert: formats, containers, role order, --map/--template, dataset_info, real shells."""

from __future__ import annotations

import json
import shutil

import orjson
import pytest

from conftest import DATA, cqia_record, invoke, shell, write_jsonl

HERE = DATA / "convert"
INPUT = HERE / "input.jsonl"
FORUM = HERE / "forum.jsonl"


def lines(path) -> list[dict]:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


# -- golden files -----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["alpaca", "sharegpt", "messages", "cqia"])
def test_golden_per_target(target):
    res = invoke(["convert", "--to", target, INPUT])
    assert res.exit_code == 0, res
    assert res.stdout_bytes == (HERE / f"expected.{target}.jsonl").read_bytes()
    assert res.stderr == f"convert: 3 records, cqia -> {target}, 1 multi-turn\n"


def test_golden_text_with_template_and_last_turn():
    template = "<s>{system}\n用户：{instruction}\n{input}\n助手：{output}</s>"
    res = invoke(["convert", "--to", "text", "--last-turn", "--text-template", template, INPUT])
    assert res.exit_code == 0, res
    assert res.stdout_bytes == (HERE / "expected.text.jsonl").read_bytes()


def test_text_template_from_file(tmp_path):
    tpl = tmp_path / "t.txt"
    tpl.write_text("问：{instruction}答：{output}", encoding="utf-8")
    res = invoke(["convert", "--to", "text", "--text-template", f"@{tpl}"],
                 input=orjson.dumps(cqia_record(1)))
    assert res.records() == [{"text": "问：请解释一下第1个成语的意思。答：这是第1个回答，内容充实，"
                                      "说明了成语的出处和用法。"}]


def test_text_default_joins_fields():
    rec = {"instruction": "a", "input": "", "output": "b"}
    res = invoke(["convert", "--to", "text"], input=orjson.dumps(rec))
    assert res.records() == [{"text": "a\nb"}]


def test_goldens_read_back_to_the_same_cqia_text_fields():
    for target in ("alpaca", "sharegpt", "messages"):
        res = invoke(["convert", "--to", "alpaca", HERE / f"expected.{target}.jsonl"])
        assert res.exit_code == 0, res
        got = res.records()
        want = lines(HERE / "expected.alpaca.jsonl")
        if target != "alpaca":
            # without --keep-meta the chat formats keep the prompt as the trainer sees it
            want[1]["instruction"] += "\n" + want[1]["input"]
            want[1]["input"] = ""
        assert got == want, target


# -- detection --------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["alpaca", "sharegpt", "messages"])
def test_detects_each_format(target):
    res = invoke(["convert", "--to", "cqia", HERE / f"expected.{target}.jsonl"])
    assert res.exit_code == 0, res
    assert f"{target} -> cqia" in res.stderr


def test_unknown_layout_is_a_usage_error_listing_the_options():
    res = invoke(["convert", "--to", "alpaca"], input='{"title": "t", "body": "b"}\n')
    assert res.exit_code == 2
    assert "cannot tell the input format: <stdin>:1 has the keys title, body" in res.stderr
    assert "--from (cqia, alpaca, sharegpt or messages)" in res.stderr
    assert "--map/--template" in res.stderr
    assert res.stdout == ""


def test_mixed_formats_are_a_usage_error():
    data = (HERE / "expected.sharegpt.jsonl").read_bytes() + \
        (HERE / "expected.messages.jsonl").read_bytes()
    res = invoke(["convert", "--to", "alpaca"], input=data)
    assert res.exit_code == 2
    assert ("different formats (<stdin>:1 looks like sharegpt, <stdin>:4 looks like messages)"
            in res.stderr)


def test_explicit_from_reports_a_record_of_another_format_with_its_line():
    res = invoke(["convert", "--from", "sharegpt", "--to", "alpaca", INPUT])
    assert res.exit_code == 65
    assert res.stderr == (f"cqia convert: {INPUT}:1: no conversations field (reading sharegpt)\n")


def test_detection_buffer_keeps_line_numbers_for_later_errors(tmp_path):
    good = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(20)]
    good[3] = {"instruction": "q", "input": 5, "output": "a"}
    path = write_jsonl(tmp_path / "a.jsonl", good)
    res = invoke(["convert", "--to", "sharegpt", path])
    assert res.exit_code == 65
    assert res.stderr == f"cqia convert: {path}:4: input must be a string, got number\n"


def test_empty_input_writes_nothing():
    res = invoke(["convert", "--to", "alpaca"], input=b"")
    assert res.exit_code == 0 and res.stdout == ""
    res = invoke(["convert", "--to", "alpaca", "--array"], input=b"")
    assert res.stdout == "[]\n"


# -- role order and multi-turn ----------------------------------------------------------------


BAD_CHATS = [
    ([{"from": "gpt", "value": "a"}],
     "conversations[0]: expected 'human', got 'gpt' (human and gpt turns must alternate, "
     "starting with human)"),
    ([{"from": "human", "value": "q"}, {"from": "human", "value": "q"}],
     "conversations[1]: expected 'gpt', got 'human' (human and gpt turns must alternate, "
     "starting with human)"),
    ([{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"},
      {"from": "system", "value": "s"}],
     "conversations[2]: a 'system' turn is allowed only first"),
    ([{"from": "human", "value": "q"}],
     "conversations: ends with a 'human' turn that has no answer"),
    ([{"from": "system", "value": "s"}], "conversations: no human/gpt exchange"),
    ([{"from": "user", "value": "q"}],
     "conversations[0]: unknown from 'user' (expected 'system', 'human' or 'gpt')"),
    ([{"from": "human", "value": 3}], "conversations[0]: value must be a string, got number"),
    ("hi", "conversations must be an array of turns, got string"),
]


@pytest.mark.parametrize("turns,problem", BAD_CHATS)
def test_bad_role_order_is_reported_with_its_line(tmp_path, turns, problem):
    good = {"conversations": [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "您好"}]}
    path = write_jsonl(tmp_path / "chat.jsonl", [good, good, {"conversations": turns}, good])
    res = invoke(["convert", "--from", "sharegpt", "--to", "alpaca", path])
    assert res.exit_code == 65
    assert res.stderr == f"cqia convert: {path}:3: {problem}\n"
    assert len(res.records()) == 2  # streamed before the bad record stopped the run


def test_bad_messages_skipped_and_kept_verbatim(tmp_path):
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    bad = {"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}
    path = write_jsonl(tmp_path / "m.jsonl", [good, bad, good])
    errors = tmp_path / "bad.jsonl"
    res = invoke(["convert", "--to", "alpaca", "--on-error", "skip", "--errors", errors, path])
    assert res.exit_code == 0, res
    assert len(res.records()) == 2
    assert lines(errors) == [bad]
    assert "skipped 1 bad lines" in res.stderr


def test_openai_text_parts_are_joined():
    rec = {"messages": [{"role": "user", "content": [{"type": "text", "text": "你"},
                                                     {"type": "text", "text": "好"}]},
                        {"role": "assistant", "content": "嗨"}]}
    res = invoke(["convert", "--to", "alpaca"], input=orjson.dumps(rec))
    assert res.records() == [{"instruction": "你好", "input": "", "output": "嗨"}]


def test_multi_turn_to_text_needs_last_turn():
    res = invoke(["convert", "--to", "text", INPUT])
    assert res.exit_code == 65
    assert res.stderr == (f"cqia convert: {INPUT}:3: a conversation of 2 exchanges cannot be "
                          "written as text, which holds one; give --last-turn to keep only the "
                          "last exchange\n")
    res = invoke(["convert", "--to", "text", "--last-turn", INPUT])
    assert res.exit_code == 0
    assert len(res.records()) == 3


def test_last_turn_drops_history_for_any_target():
    res = invoke(["convert", "--to", "sharegpt", "--last-turn", INPUT])
    convs = [r["conversations"] for r in res.records()]
    assert [len(c) for c in convs] == [2, 2, 3]  # the third keeps its system turn
    assert convs[2][1]["value"] == "那它流经哪些省份？"


def test_sharegpt_top_level_system_is_read():
    rec = {"system": "s", "conversations": [{"from": "human", "value": "q"},
                                            {"from": "gpt", "value": "a"}]}
    res = invoke(["convert", "--to", "alpaca"], input=orjson.dumps(rec))
    assert res.records() == [{"instruction": "q", "input": "", "output": "a", "system": "s"}]


def test_bad_history_shape():
    rec = {"instruction": "q", "output": "a", "history": [["only one"]]}
    res = invoke(["convert", "--to", "sharegpt"], input=orjson.dumps(rec))
    assert res.exit_code == 65
    assert res.stderr == ("cqia convert: <stdin>:1: history[0] must be a [prompt, response] "
                          "pair of strings\n")


# -- options ----------------------------------------------------------------------------------


def test_system_fills_records_without_one():
    res = invoke(["convert", "--to", "messages", "--system", "你是助手。", INPUT])
    firsts = [r["messages"][0] for r in res.records()]
    assert firsts == [{"role": "system", "content": "你是助手。"}] * 2 + \
        [{"role": "system", "content": "你是一位地理老师。"}]


def test_keep_meta_carries_metadata_and_round_trips_exactly():
    res = invoke(["convert", "--to", "sharegpt", "--keep-meta", INPUT])
    recs = res.records()
    assert recs[1]["input"] == "材料：长江是中国最长的河流。\n问题：中国最长的河流是哪条？"
    assert recs[1]["_source"] == "exam" and recs[2]["answer_from"] == "expert"
    back = invoke(["convert", "--to", "cqia"], input=res.stdout_bytes)
    assert back.stdout_bytes == (HERE / "expected.cqia.jsonl").read_bytes()


def test_without_keep_meta_targets_are_clean():
    for rec in invoke(["convert", "--to", "alpaca", INPUT]).records():
        assert set(rec) <= {"instruction", "input", "output", "system", "history"}


def test_set_on_a_format_conversion():
    res = invoke(["convert", "--to", "cqia", "--set", "domain=百科", "--set",
                  "task_type.minor=[\"翻译\"]", "--set", "metadata=来源: a, b",
                  HERE / "expected.alpaca.jsonl"])
    rec = res.records()[0]
    assert rec["domain"] == ["百科"] and rec["metadata"] == "来源: a, b"
    assert rec["task_type"] == {"major": ["问答"], "minor": ["翻译"]}
    assert rec["answer_from"] == "llm"


def test_array_output_is_one_json_array():
    res = invoke(["convert", "--to", "alpaca", "--array", INPUT])
    assert res.exit_code == 0
    assert json.loads(res.stdout) == lines(HERE / "expected.alpaca.jsonl")
    assert res.stdout.startswith("[\n{") and res.stdout.endswith("}\n]\n")


def test_text_template_needs_to_text():
    res = invoke(["convert", "--to", "alpaca", "--text-template", "{x}", INPUT])
    assert res.exit_code == 2 and "--text-template needs --to text" in res.stderr


def test_bad_text_template_is_a_usage_error():
    res = invoke(["convert", "--to", "text", "--text-template", "{instruction", INPUT])
    assert res.exit_code == 2 and "unmatched '{' at column 1" in res.stderr


# -- containers -------------------------------------------------------------------------------


def test_json_array_input():
    res = invoke(["convert", "--to", "sharegpt", HERE / "alpaca_array.json"])
    assert res.exit_code == 0, res
    recs = res.records()
    assert len(recs) == 3
    assert recs[2]["conversations"][0] == {"from": "system", "value": "You are a translator."}
    assert recs[1]["conversations"][0]["value"] == "把下面的句子改写得更正式。\n这事儿我搞不定。"


def test_json_array_detected_by_content_on_stdin_and_compressed(tmp_path):
    data = (HERE / "alpaca_array.json").read_bytes()
    res = invoke(["convert", "--to", "alpaca"], input=data)
    assert len(res.records()) == 3
    import gzip

    gz = tmp_path / "arr.data.gz"
    gz.write_bytes(gzip.compress(data))
    res = invoke(["convert", "--to", "alpaca", gz])
    assert res.records() == invoke(["convert", "--to", "alpaca"], input=data).records()


def test_json_array_errors_at_their_lines(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('[\n  {"instruction": "q", "output": "a"},\n  "text",\n'
                    '  {"instruction": "q2", "output": 1}\n]\n', encoding="utf-8")
    res = invoke(["convert", "--to", "alpaca", path])
    assert res.exit_code == 65
    assert res.stderr == f"cqia convert: {path}:3: item 2 is not a JSON object (a JSON string)\n"
    errors = tmp_path / "e.jsonl"
    res = invoke(["convert", "--to", "alpaca", "--on-error", "skip", "--errors", errors, path])
    assert res.exit_code == 0
    assert res.records() == [{"instruction": "q", "input": "", "output": "a"}]
    assert errors.read_bytes() == b'"text"\n{"instruction":"q2","output":1}\n'


def test_broken_json_array(tmp_path):
    path = tmp_path / "b.json"
    path.write_text('[\n  {"instruction": "q", "output": "a"},\n  {"instruction": }\n]\n')
    res = invoke(["convert", "--to", "alpaca", path])
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia convert: {path}:3: invalid JSON in item 2: ")
    path.write_text('[{"instruction": "q", "output": "a"}\n{"x": 1}]')
    res = invoke(["convert", "--to", "alpaca", path])
    assert res.stderr == f"cqia convert: {path}:2: expected ',' or ']' after item 1, got '{{'\n"


def test_csv_input_reads_multiline_cells_and_json_columns():
    res = invoke(["convert", "--to", "cqia", HERE / "alpaca.csv"])
    assert res.exit_code == 0, res
    recs = res.records()
    assert recs[0]["output"] == "秋风起，落叶黄。\n雁南飞，思故乡。"
    assert recs[0]["domain"] == ["文学"] and recs[0]["human_verified"] is True
    assert recs[1]["domain"] == ["数学"] and recs[1]["output"] == "2"
    check = invoke(["validate"], input=res.stdout_bytes)
    assert check.exit_code == 0, check


def test_tsv_and_bad_row_reported_at_its_line(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_text("instruction\toutput\nq1\ta1\nq2\ta2\textra\nq3\ta3\n", encoding="utf-8")
    res = invoke(["convert", "--to", "alpaca", path])
    assert res.exit_code == 65
    assert res.stderr == f"cqia convert: {path}:3: row has 3 fields, the header has 2\n"
    res = invoke(["convert", "--to", "alpaca", "--on-error", "skip", path])
    assert [r["instruction"] for r in res.records()] == ["q1", "q3"]


def test_csv_with_bom_and_gb18030(tmp_path):
    path = tmp_path / "g.csv"
    path.write_bytes("instruction,output\n你好,您好\n".encode("gb18030"))
    res = invoke(["convert", "--to", "alpaca", "--encoding", "gb18030", path])
    assert res.records() == [{"instruction": "你好", "input": "", "output": "您好"}]
    path.write_bytes(b"\xef\xbb\xbf" + "instruction,output\n你好,您好\n".encode())
    res = invoke(["convert", "--to", "alpaca", path])
    assert res.records() == [{"instruction": "你好", "input": "", "output": "您好"}]


def test_container_option_overrides_the_suffix(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("instruction,output\nq,a\n")
    res = invoke(["convert", "--container", "csv", "--to", "alpaca", path])
    assert res.records() == [{"instruction": "q", "input": "", "output": "a"}]


# -- building from raw records ----------------------------------------------------------------


def test_forum_dump_with_shipped_template_passes_validate_and_spreads():
    args = ["convert", "--template", "xiaohongshu", "--map", "output=content", FORUM]
    res = invoke(args)
    assert res.exit_code == 0, res
    recs = res.records()
    assert len(recs) == 48
    check = invoke(["validate"], input=res.stdout_bytes)
    assert check.exit_code == 0, check
    starts = {"写一篇小红书风格的帖子": 0, "你是一名小红书博主": 0, "以「": 0, "请帮我写一篇小红书种草文案": 0}
    for rec in recs:
        hits = [s for s in starts if rec["instruction"].startswith(s)]
        assert len(hits) == 1, rec["instruction"]
        starts[hits[0]] += 1
        assert rec["domain"] == ["社交媒体"]
    assert all(n > 0 for n in starts.values()), starts
    planting = [r for r in recs if r["instruction"].startswith("请帮我写")]
    assert all(r["task_type"]["minor"] == ["小红书帖子", "种草文案"] for r in planting)
    # stable: the same run again, and the records in another order, choose the same templates
    assert invoke(args).stdout_bytes == res.stdout_bytes
    reversed_in = b"\n".join(reversed(FORUM.read_bytes().splitlines())) + b"\n"
    again = invoke(["convert", "--template", "xiaohongshu", "--map", "output=content"],
                   input=reversed_in).records()
    assert again[::-1] == recs
    other = invoke(args + ["--seed", "7"]).records()
    assert [r["instruction"] for r in other] != [r["instruction"] for r in recs]


def test_template_file_with_dotted_placeholders(tmp_path):
    tpl = tmp_path / "t.toml"
    tpl.write_text('domain = "论坛"\ntask_type = "生成"\noutput = "{content}"\n'
                   '[[template]]\ninstruction = "以{author.name}的口吻写：{title}{{原创}}"\n',
                   encoding="utf-8")
    res = invoke(["convert", "--template", tpl, "--set", "answer_from=human", FORUM])
    rec = res.records()[0]
    assert rec["instruction"].startswith("以用户") and rec["instruction"].endswith("{原创}")
    assert rec["domain"] == ["论坛"] and rec["task_type"] == {"major": ["生成"], "minor": ["生成"]}
    assert invoke(["validate"], input=res.stdout_bytes).exit_code == 0


def test_missing_placeholder_field_is_a_per_record_error(tmp_path):
    recs = lines(FORUM)[:3]
    del recs[1]["title"]
    path = write_jsonl(tmp_path / "f.jsonl", recs)
    res = invoke(["convert", "--template", "xiaohongshu", "--map", "output=content", path])
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia convert: {path}:2: template ")
    assert res.stderr.endswith(", instruction: the record has no field 'title' for {title}\n")
    res = invoke(["convert", "--template", "xiaohongshu", "--map", "output=content",
                  "--on-error", "skip", path])
    assert len(res.records()) == 2


def test_map_and_set_build_valid_records():
    res = invoke(["convert", "--map", "instruction=title,output=content,metadata=author.name",
                  "--set", "domain=社交媒体", "--set", "answer_from=human", FORUM])
    recs = res.records()
    assert recs[0]["instruction"] == lines(FORUM)[0]["title"]
    assert recs[0]["metadata"] == lines(FORUM)[0]["author"]["name"]
    assert recs[0]["domain"] == ["社交媒体"]
    assert set(recs[0]) == {"instruction", "input", "output", "task_type", "domain", "metadata",
                            "answer_from", "human_verified", "copyright"}
    assert invoke(["validate"], input=res.stdout_bytes).exit_code == 0


def test_map_missing_source_field(tmp_path):
    res = invoke(["convert", "--map", "instruction=title,output=body"], input=b'{"title":"t"}\n')
    assert res.exit_code == 65
    assert res.stderr == ("cqia convert: <stdin>:1: the record has no field 'body' "
                          "(--map output=body)\n")


def test_map_keep_meta_keeps_unused_source_fields():
    res = invoke(["convert", "--map", "instruction=title,output=content", "--keep-meta", FORUM])
    rec = res.records()[0]
    assert rec["likes"] == lines(FORUM)[0]["likes"] and "title" not in rec


@pytest.mark.parametrize("args,message", [
    (["--map", "instruction=title"], "nothing gives the output"),
    (["--map", "output=content", "--from", "alpaca"], "do not combine with --from alpaca"),
    (["--map", "instruction=a..b,output=c"], "bad field path"),
    (["--template", "nope", "--map", "output=x"], "not a shipped template set (douban, "
                                                   "xiaohongshu)"),
    (["--set", "novalue"], "expected NAME=VALUE"),
    (["--set", "human_verified=maybe"], "human_verified must be true or false"),
    (["--dataset-info", "x.json"], "--dataset-info needs --name NAME"),
    (["--dataset-info", "x.json", "--name", "n"], "--dataset-info needs -o FILE"),
])
def test_usage_errors(args, message):
    res = invoke(["convert"] + args, input=b"")
    assert res.exit_code == 2, res
    assert message in res.stderr


def test_template_and_map_giving_the_same_field(tmp_path):
    res = invoke(["convert", "--template", "douban", "--map", "instruction=t,output=c"],
                 input=b"")
    assert res.exit_code == 2 and "template 1 (review) and --map both give instruction" in \
        res.stderr


@pytest.mark.parametrize("text,message", [
    ("[[template]]\ninstruction = \"{title\"\n", "unmatched '{'"),
    ("x = 1\n", "needs one or more [[template]] tables"),
    ("[[template]]\ninput = \"a\"\n", "template 1 has no instruction"),
    ("[[template]\n", "not valid TOML"),
])
def test_bad_template_files(tmp_path, text, message):
    tpl = tmp_path / "bad.toml"
    tpl.write_text(text)
    res = invoke(["convert", "--template", tpl, "--map", "output=c"], input=b"")
    assert res.exit_code == 2 and message in res.stderr, res


# -- LLaMA-Factory dataset_info.json ----------------------------------------------------------


def test_dataset_info_written_and_merged(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    info = data / "dataset_info.json"
    info.write_text(json.dumps({"alpaca_en": {"file_name": "alpaca_en.json"},
                                "cqia": {"file_name": "old.json"}}), encoding="utf-8")
    res = invoke(["convert", "--to", "sharegpt", INPUT, "-o", data / "cqia.jsonl",
                  "--dataset-info", info, "--name", "cqia"])
    assert res.exit_code == 0, res
    got = json.loads(info.read_text(encoding="utf-8"))
    assert list(got) == ["alpaca_en", "cqia"]
    assert got["cqia"] == {
        "file_name": "cqia.jsonl", "formatting": "sharegpt",
        "columns": {"messages": "conversations"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                 "assistant_tag": "gpt", "system_tag": "system"}}
    res = invoke(["convert", "--to", "alpaca", INPUT, "-o", tmp_path / "a.json", "--array",
                  "--dataset-info", info, "--name", "cqia_alpaca"])
    got = json.loads(info.read_text(encoding="utf-8"))
    assert list(got) == ["alpaca_en", "cqia", "cqia_alpaca"]
    assert got["cqia_alpaca"] == {
        "file_name": "../a.json", "formatting": "alpaca",
        "columns": {"prompt": "instruction", "query": "input", "response": "output",
                    "system": "system", "history": "history"}}
    assert json.loads((tmp_path / "a.json").read_text()) == lines(HERE / "expected.alpaca.jsonl")


@pytest.mark.parametrize("target,entry", [
    ("messages", {"formatting": "sharegpt", "columns": {"messages": "messages"},
                  "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                           "assistant_tag": "assistant", "system_tag": "system"}}),
    ("text", {"formatting": "alpaca", "columns": {"prompt": "text"}}),
    ("alpaca", {"formatting": "alpaca", "columns": {"prompt": "instruction", "query": "input",
                                                    "response": "output"}}),
])
def test_dataset_info_entries(tmp_path, target, entry):
    info = tmp_path / "dataset_info.json"
    res = invoke(["convert", "--to", target, "--last-turn", "--system", "", INPUT,
                  "-o", tmp_path / "o.jsonl", "--dataset-info", info, "--name", "x"])
    assert res.exit_code == 0, res
    got = json.loads(info.read_text())["x"]
    if target == "alpaca":  # the third record keeps its own system prompt
        entry["columns"]["system"] = "system"
    assert got == {"file_name": "o.jsonl", **entry}


def test_dataset_info_not_json_fails_and_leaves_nothing(tmp_path):
    info = tmp_path / "dataset_info.json"
    info.write_text("{not json")
    out = tmp_path / "o.jsonl"
    res = invoke(["convert", "--to", "alpaca", INPUT, "-o", out, "--dataset-info", info,
                  "--name", "x"])
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia convert: {info}: not valid JSON")
    assert not out.exists() and info.read_text() == "{not json"
    assert [p.name for p in tmp_path.iterdir()] == ["dataset_info.json"]


# -- real shells ------------------------------------------------------------------------------


def test_shell_pipeline_round_trip_validates(tmp_path):
    shutil.copy(INPUT, tmp_path / "in.jsonl")
    res = shell("cqia convert -q --to messages --keep-meta in.jsonl | cqia convert -q --to "
                "alpaca --keep-meta | cqia convert -q --to cqia | cqia validate -q",
                cwd=tmp_path)
    assert res.exit_code == 0, res
    assert [r["instruction"] for r in res.records()] == [r["instruction"] for r in lines(INPUT)]
    assert res.records() == lines(HERE / "expected.cqia.jsonl")


def test_shell_head_ends_quietly(tmp_path):
    big = write_jsonl(tmp_path / "big.jsonl", [cqia_record(i) for i in range(20000)])
    res = shell(f"cqia convert --to sharegpt {big} | head -1")
    assert res.exit_code == 0
    assert res.stderr == ""
    assert orjson.loads(res.stdout)["conversations"][0]["from"] == "human"


def test_shell_byte_identical_runs_and_csv_from_stdin(tmp_path):
    shutil.copy(FORUM, tmp_path / "forum.jsonl")
    cmd = "cqia convert -q --template xiaohongshu --map output=content forum.jsonl | md5sum"
    a, b = shell(cmd, cwd=tmp_path), shell(cmd, cwd=tmp_path)
    assert a.exit_code == 0 and a.stdout == b.stdout
    res = shell(f"cat {HERE / 'alpaca.csv'} | cqia convert -q --container csv --to alpaca")
    assert res.exit_code == 0, res
    assert [r["instruction"] for r in res.records()] == ["写一首关于秋天的诗", "1+1等于几？"]


def test_shell_json_array_on_stdin_and_error_line(tmp_path):
    res = shell(f"cqia convert -q --to messages < {HERE / 'alpaca_array.json'}")
    assert res.exit_code == 0 and len(res.records()) == 3
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"conversations":[{"from":"human","value":"q"},{"from":"gpt","value":"a"}]}\n'
                   '{"conversations":[{"from":"gpt","value":"a"}]}\n')
    res = shell(f"cqia convert --to alpaca {bad}")
    assert res.exit_code == 65
    assert res.stderr == (f"cqia convert: {bad}:2: conversations[0]: expected 'human', got 'gpt' "
                          "(human and gpt turns must alternate, starting with human)\n")


def test_errors_in_buffered_records_of_several_array_files(tmp_path):
    # the first 16 records are read before the format is known; each keeps its own file:line
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    one.write_text('[\n {"instruction": "a", "output": "b"},\n\n {"instruction": "c",\n'
                   '  "output": null}\n]\n')
    two.write_text('[{"instruction": "d", "output": "e"},\n {"instruction": "f", "output": 2}]')
    res = invoke(["convert", "--to", "alpaca", "--on-error", "skip", "--errors",
                  tmp_path / "bad.jsonl", one, two])
    assert [r["instruction"] for r in res.records()] == ["a", "d"]
    assert (tmp_path / "bad.jsonl").read_bytes() == (b'{"instruction":"c","output":null}\n'
                                                     b'{"instruction":"f","output":2}\n')
    res = invoke(["convert", "--to", "alpaca", one, two])
    assert res.stderr == f"cqia convert: {one}:4: output must be a string, got null\n"
    res = invoke(["convert", "--to", "alpaca", two, one])
    assert res.stderr == f"cqia convert: {two}:2: output must be a string, got number\n"


def test_shell_concurrent_runs_into_one_dataset_info(tmp_path):
    shutil.copy(INPUT, tmp_path / "in.jsonl")
    names = [f"set{i}" for i in range(4)]
    cmd = " & ".join(f"cqia convert -q --to sharegpt in.jsonl -o {n}.jsonl "
                     f"--dataset-info dataset_info.json --name {n}" for n in names) + " & wait"
    res = shell(cmd, cwd=tmp_path)
    assert res.exit_code == 0 and res.stderr == "", res
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert sorted(info) == names
    assert all(info[n]["file_name"] == f"{n}.jsonl" for n in names)


def test_template_straight_to_a_chat_format():
    res = invoke(["convert", "--template", "douban", "--map", "output=content", "--to",
                  "messages", "--system", "你是豆瓣用户。", FORUM])
    assert res.exit_code == 0, res
    recs = res.records()
    assert len(recs) == 48
    for rec in recs:
        roles = [m["role"] for m in rec["messages"]]
        assert roles == ["system", "user", "assistant"]
        assert "《" in rec["messages"][1]["content"]


def test_forum_csv_through_map(tmp_path):
    path = tmp_path / "forum.csv"
    path.write_text('id,title,body,answer\n1,"去杭州玩三天，怎么安排？","预算两千","第一天西湖，\n第二天灵隐寺。"\n'
                    '2,"猫咪不吃饭怎么办",,"先看看是不是换了猫粮。"\n', encoding="utf-8")
    res = invoke(["convert", "--map", "instruction=title,input=body,output=answer",
                  "--set", "domain=社交媒体", path])
    assert res.exit_code == 0, res
    recs = res.records()
    assert recs[0]["input"] == "预算两千" and recs[0]["output"] == "第一天西湖，\n第二天灵隐寺。"
    assert recs[1]["input"] == ""
    assert invoke(["validate"], input=res.stdout_bytes).exit_code == 0


def test_formats_come_from_one_table():
    """--from, --to, the converter and --dataset-info take the formats from formats.table."""
    from cqia_cli.commands.convert import cli as convert_cli
    from cqia_cli.formats.table import SOURCES, TABLE

    opts = {p.name: p for p in convert_cli.params}
    assert list(opts["target"].type.choices) == list(TABLE)
    assert list(opts["source"].type.choices) == ["auto", *SOURCES]
    for name, fmt in TABLE.items():
        entry = fmt.dataset_entry("f.jsonl", system=True, history=True)
        assert entry["formatting"] in ("alpaca", "sharegpt") and entry["columns"]
        assert (fmt.tags is not None) == (entry["formatting"] == "sharegpt")
