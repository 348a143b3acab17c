"""cqia convert on raw forum dumps (issue 16): --set of a COIG-CQIA field, --dataset-info with a
compressed output, and built records that Hugging Face `datasets` loads with published ones."""

from __future__ import annotations

import json

import pytest

from conftest import invoke, write_jsonl

#: COIG-CQIA records as published (human_value/100poison's shape), written here: tests never
#: read ../shared
REAL = [
    {"instruction": "我想买一辆新汽车，请问燃油车和电动车哪个好一些？", "input": "",
     "output": "电动车的使用成本比燃油车低，维修和保养也比较简单。",
     "task_type": {"major": ["文本生成"], "minor": ["问答"]},
     "domain": ["人类价值观", "环境科学"], "metadata": "暂无元数据信息", "answer_from": "expert",
     "human_verified": True, "copyright": "暂无版权及作者信息"},
    {"instruction": "中国的首都是哪里？", "input": "", "output": "北京。",
     "task_type": {"major": ["试题"], "minor": ["中学考试"]}, "domain": ["地理"],
     "metadata": "", "answer_from": "human", "human_verified": True, "copyright": ""},
]
DUMP = [{"text": "今天的晚霞真好看", "upvotes": 3}, {"text": "周末去爬山了，累但开心", "upvotes": 8}]


def test_set_of_a_cqia_field_satisfies_it(tmp_path):
    dump = write_jsonl(tmp_path / "dump.jsonl", DUMP)
    res = invoke(["convert", "--map", "output=text", "--set", "instruction=写一句", dump])
    assert res.exit_code == 0, res.stderr
    assert [(r["instruction"], r["output"]) for r in res.records()] == [
        ("写一句", "今天的晚霞真好看"), ("写一句", "周末去爬山了，累但开心")]
    assert invoke(["validate", "-q"], input=res.stdout_bytes).exit_code == 0
    # nothing gives the instruction: still a usage error that names --set
    res = invoke(["convert", "--map", "output=text", dump])
    assert res.exit_code == 2 and "--set instruction=TEXT" in res.stderr


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_dataset_info_refuses_a_compressed_output(tmp_path, suffix):
    data = write_jsonl(tmp_path / "in.jsonl", REAL)
    out = tmp_path / f"x.jsonl{suffix}"
    info = tmp_path / "dataset_info.json"
    res = invoke(["convert", "--to", "alpaca", "-o", out, "--dataset-info", info, "--name", "x",
                  data])
    assert res.exit_code == 2
    assert "LLaMA-Factory does not load compressed files" in res.stderr
    assert not out.exists() and not info.exists()


def test_built_records_have_every_cqia_field_and_no_empty_lists(tmp_path):
    dump = write_jsonl(tmp_path / "dump.jsonl", DUMP)
    res = invoke(["convert", "--map", "output=text", "--set", "instruction=写一句", dump])
    rec = res.records()[0]
    assert list(rec) == ["instruction", "input", "output", "task_type", "domain", "metadata",
                         "answer_from", "human_verified", "copyright"]
    assert rec["task_type"] == {"major": ["问答"], "minor": ["问答"]}
    res = invoke(["convert", "--map", "output=text,task_type=upvotes", "--set",
                  "instruction=写一句", dump])
    assert res.records()[0]["task_type"] == {"major": ["3"], "minor": ["3"]}


def test_built_records_load_with_published_ones_in_datasets(tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets.disable_progress_bars()
    dump = write_jsonl(tmp_path / "dump.jsonl", DUMP)
    real = write_jsonl(tmp_path / "real.jsonl", REAL)
    built = tmp_path / "built.jsonl"
    res = invoke(["convert", "-q", "--map", "output=text", "--set", "instruction=写一句",
                  "--set", "domain=社交媒体", dump, "-o", built])
    assert res.exit_code == 0, res.stderr
    for i, files in enumerate(([built, real], [real, built])):
        ds = datasets.load_dataset("json", data_files=[str(f) for f in files], split="train",
                                   cache_dir=str(tmp_path / f"cache{i}"))
        assert len(ds) == 4
        minors = sorted(tuple(t["minor"]) for t in ds["task_type"])
        assert minors == [("中学考试",), ("问答",), ("问答",), ("问答",)]
        assert str(ds.features["task_type"]["minor"].feature).startswith("Value('string'")


def test_chat_records_to_cqia_load_with_published_ones_when_published_come_first(tmp_path,
                                                                              monkeypatch):
    """Records converted from a chat format keep only what they carry (an exact round trip),
    so they lack metadata and copyright: `datasets` takes them after the published records
    (missing columns become null), not before (a later file may not bring new columns)."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets.disable_progress_bars()
    chat = write_jsonl(tmp_path / "chat.jsonl", [
        {"conversations": [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "你好！"}]}])
    conv = tmp_path / "conv.jsonl"
    assert invoke(["convert", "-q", "--to", "cqia", chat, "-o", conv]).exit_code == 0
    assert json.loads(conv.read_text())["task_type"]["minor"] == ["问答"]
    real = write_jsonl(tmp_path / "real.jsonl", REAL)
    ds = datasets.load_dataset("json", data_files=[str(real), str(conv)], split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert len(ds) == 3
