"""The click-free pieces of the LLM stage: the ordered async map, score parsing, templates,
the limiter, the agreement figures, the caches."""

from __future__ import annotations

import asyncio
import time

import pytest

from cqia_cli.aio import ordered_map
from cqia_cli.llm.agreement import agreement, label
from cqia_cli.llm.cache import SQLiteCache, request_key
from cqia_cli.llm.client import Answer, parse_retry_after
from cqia_cli.llm.limiter import Bucket, Limiter
from cqia_cli.llm.parse import ParseError, parse_score
from cqia_cli.llm.prompts import MissingField, Template, TemplateError


def collect(agen):
    async def go():
        return [x async for x in agen]

    return asyncio.run(go())


def test_ordered_map_keeps_order_and_bounds_the_window():
    held = []
    running = 0
    peak = 0

    async def work(i):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001 * ((7 * i) % 5))
        running -= 1
        return i * i

    def fn(i):
        held.append(i)
        return i if i % 3 == 0 else work(i)  # some ready at once (cache hits)

    out = collect(ordered_map(range(200), fn, window=16))
    assert out == [(i, i if i % 3 == 0 else i * i) for i in range(200)]
    assert peak <= 16


def test_ordered_map_in_flight_limit_and_errors_cancel_the_rest():
    running = 0
    peak = 0
    cancelled = []

    async def work(i):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.002 if i != 5 else 0)
            if i == 5:
                raise ValueError("boom")
            return i
        except asyncio.CancelledError:
            cancelled.append(i)
            raise
        finally:
            running -= 1

    async def go():
        got = []
        with pytest.raises(ValueError):
            async for item, value in ordered_map(range(100), work, window=50, in_flight=3):
                got.append(value)
        return got

    got = asyncio.run(go())
    assert got == [0, 1, 2, 3, 4]
    assert peak <= 3 and cancelled  # the rest was cancelled, not left running


def test_ordered_map_finishes_what_was_read_before_a_reading_error():
    def items():
        yield from range(5)
        raise KeyError("bad line")

    async def work(i):
        await asyncio.sleep(0.001 * (5 - i))
        return i

    async def go():
        got = []
        with pytest.raises(KeyError):
            async for _, value in ordered_map(items(), work, window=8):
                got.append(value)
        return got

    assert asyncio.run(go()) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("text,score,reason", [
    ("8", 8, "8"), ("8/10", 8, "8/10"), ("评分：8", 8, "评分：8"), ("评分: 7.5", 7.5, None),
    ('{"score": 8}', 8, None), ('{"score": 9, "reason": "好"}', 9, "好"),
    ('```json\n{"评分": "6", "理由": "一般"}\n```', 6, "一般"),
    ("我认为这个回答可以得 9 分。", 9, None), ("Score: 10", 10, None), ("**7**", 7, None),
    ('<think>先看 {相关性}，大概 3/10？不，</think>{"score": 8, "reason": "好"}', 8, "好"),
])
def test_scores_are_parsed_robustly(text, score, reason):
    got, why = parse_score(text, (1, 10))
    assert got == score
    if reason is not None:
        assert why == reason


@pytest.mark.parametrize("text,problem", [
    ("", "empty answer"), ("好的", "no score in the answer"),
    ("11", "outside the scale"), ('{"score": 0}', "outside the scale"),
    ('{"score": "高"}', "not a number"), ("评分：42", "outside the scale"),
])
def test_scores_that_are_not(text, problem):
    with pytest.raises(ParseError, match=problem):
        parse_score(text, (1, 10))


def test_templates():
    t = Template('问：{instruction}\n类：{task_type.major}\n选：{extra?}{{"x": 1}}')
    assert t.fields == ["instruction", "task_type.major", "extra"]
    rec = {"instruction": "为什么", "task_type": {"major": ["问答", "推理"]}}
    assert t.render(rec) == '问：为什么\n类：问答\n推理\n选：{"x": 1}'
    with pytest.raises(MissingField) as e:
        Template("{nope}").render(rec)
    assert e.value.name == "nope"
    assert Template("{conversations.0.value}").render(
        {"conversations": [{"value": "hi"}]}) == "hi"
    with pytest.raises(TemplateError):
        Template("{a..b}")


def test_bucket_and_adaptive_limiter():
    b = Bucket(60)  # ten seconds' budget at once, then one a second
    assert all(b.wait_for(1) == 0 for _ in range(10))
    assert 0.5 < b.wait_for(1) <= 1.0
    t = Bucket(600)  # 100 tokens held; a 250-token request goes when full, then a debt
    assert t.wait_for(250) == 0
    assert t.wait_for(10) == pytest.approx(16.0, abs=0.1)  # (10 + 150) / 10 per second

    async def go():
        lim = Limiter(8)
        for _ in range(8):
            await lim.acquire()
        assert lim.active == 8
        await lim.throttled(0.2)
        assert lim.limit == 4 and lim.slowdowns == 1
        for _ in range(8):
            await lim.release(ok=False)
        t = time.monotonic()
        await lim.acquire()  # held until Retry-After has passed
        assert time.monotonic() - t >= 0.15
        await lim.release(ok=True)
        for _ in range(200):
            await lim.acquire()
            await lim.release(ok=True)
        assert lim.limit == 8  # raised back, not beyond
    asyncio.run(go())


def test_retry_after_forms():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_labels_and_agreement():
    assert [label(v) for v in (True, 0, "keep", "reject", "是", "否", None, "maybe",
                               {"decision": "accept"})] == \
        [True, False, True, False, True, False, None, None, True]
    rep = agreement([(10, True), (2, False)], (1, 10))
    assert rep["best"]["threshold"] == 10 and rep["best"]["f1"] == 1.0


def test_cache_key_and_sqlite_roundtrip(tmp_path):
    a = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 0}
    b = {"temperature": 0, "messages": [{"role": "user", "content": "x"}], "model": "m"}
    assert request_key(a) == request_key(b)
    assert request_key(a) != request_key({**a, "temperature": 0.1})
    assert request_key(a) != request_key({**a, "model": "n"})
    path = tmp_path / "sub" / "c.sqlite"
    cache = SQLiteCache(str(path))
    cache.put("k", b"{}", Answer("内容", 3, 4, "stop", "m"))
    cache.close()
    again = SQLiteCache(str(path))
    assert again.get("k") == Answer("内容", 3, 4, "stop", "m")
    assert again.get("other") is None
    assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
