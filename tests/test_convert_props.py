"""Round-trip properties of cqia convert (hypothesis): cqia -> alpaca/sharegpt/messages -> cqia
keeps instruction, input and output exactly, with Chinese and emoji text, empty inputs,
system prompts and multi-turn histories."""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import invoke
from cqia_cli.formats.chat import detect_one
from cqia_cli.formats.converter import Converter

CHINESE_EMOJI = list("长江黄河你好世界中文测试成语答问。，！？、“”《》😀🎉👍🏽🧧👨‍👩‍👧") + \
    ["\n", "\r\n", " ", "\t", "\\", '"', "{", "}", "\u2028"]
text = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.lists(st.sampled_from(CHINESE_EMOJI), max_size=30).map("".join),
)
pair = st.lists(text, min_size=2, max_size=2)


@st.composite
def cqia_records(draw):
    rec = {
        "instruction": draw(text),
        "input": draw(st.one_of(st.just(""), text)),
        "output": draw(text),
    }
    system = draw(st.one_of(st.none(), text.filter(bool)))
    if system:
        rec["system"] = system
    history = draw(st.lists(pair, max_size=3))
    if history:
        rec["history"] = history
    rec.update({
        "task_type": {"major": [draw(text.filter(str.strip))], "minor": []},
        "domain": ["通用"], "answer_from": draw(st.sampled_from(["human", "llm", "expert"])),
        "human_verified": draw(st.booleans()),
    })
    return rec


def through_json(rec: dict) -> dict:
    return orjson.loads(orjson.dumps(rec))


def fields(rec: dict) -> tuple:
    return (rec["instruction"], rec["input"], rec["output"], rec.get("system"),
            rec.get("history", []))


@pytest.mark.parametrize("target", ["alpaca", "sharegpt", "messages"])
@settings(max_examples=150, deadline=None)
@given(rec=cqia_records())
def test_round_trip_with_keep_meta_is_exact(target, rec):
    there = through_json(Converter("cqia", target, keep_meta=True)(copy.deepcopy(rec)))
    assert detect_one(there) == ("cqia" if target == "alpaca" else target)
    back = through_json(Converter(target, "cqia")(there))
    assert back == rec


@pytest.mark.parametrize("target", ["sharegpt", "messages"])
@settings(max_examples=100, deadline=None)
@given(rec=cqia_records())
def test_chat_round_trip_without_meta_keeps_the_prompt(target, rec):
    there = through_json(Converter("cqia", target)(copy.deepcopy(rec)))
    assert set(there) == {"conversations" if target == "sharegpt" else "messages"}
    back = through_json(Converter(target, "cqia")(there))
    prompt = rec["instruction"] + ("\n" + rec["input"] if rec["input"] else "")
    assert (back["instruction"], back["input"], back["output"]) == (prompt, "", rec["output"])
    assert back.get("history", []) == rec.get("history", [])
    assert back.get("system") == rec.get("system")


@settings(max_examples=100, deadline=None)
@given(rec=cqia_records())
def test_alpaca_round_trip_without_meta_keeps_the_text_fields(rec):
    there = through_json(Converter("cqia", "alpaca")(copy.deepcopy(rec)))
    back = through_json(Converter("alpaca", "cqia")(there))
    assert fields(back) == fields(rec)


@settings(max_examples=100, deadline=None)
@given(rec=cqia_records(), targets=st.permutations(["alpaca", "sharegpt", "messages"]))
def test_chains_through_every_format_are_exact(rec, targets):
    current, source = copy.deepcopy(rec), "cqia"
    for target in targets:
        current = through_json(Converter(source, target, keep_meta=True)(current))
        source = target
    assert through_json(Converter(source, "cqia")(current)) == rec


@pytest.mark.parametrize("target", ["alpaca", "sharegpt", "messages"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recs=st.lists(cqia_records(), min_size=1, max_size=5))
def test_cli_round_trip_is_exact(target, recs):
    data = b"".join(orjson.dumps(r) + b"\n" for r in recs)
    there = invoke(["convert", "-q", "--to", target, "--keep-meta"], input=data)
    assert there.exit_code == 0, there
    back = invoke(["convert", "-q", "--to", "cqia"], input=there.stdout_bytes)
    assert back.exit_code == 0, back
    assert back.records() == recs
