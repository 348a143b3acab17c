"""Properties of cqia filter over generated records: nothing lost, order kept, the shared
trigger scan never changes a verdict, and the where language never raises on odd records."""

from __future__ import annotations

import json

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cqia_cli.filtering import Filter, RuleSet
from cqia_cli.filtering.config import build_rules
from cqia_cli.filtering.expr import Expression
from conftest import DATA, invoke

FIX = DATA / "filter"
PIECES = [json.loads(line)["output"] for name in ("dirty.jsonl", "clean.jsonl")
          for line in (FIX / name).read_text("utf-8").splitlines()]
PIECES += ["", " ", "\n", "哈", "！", "A", "13812345678", "如图", "可靠", "😀", "\ufffd", "`code`",
           "$x=1$", "https://a.example/b", "{\"k\": 1}", "\ue000", "作为一个AI"]

text = st.lists(st.sampled_from(PIECES), max_size=4).map("".join)
records = st.builds(
    lambda i, o, extra: {"instruction": i, "input": "", "output": o, **extra},
    text, text,
    st.dictionaries(st.sampled_from(["score", "images", "answer_from", "task_type"]),
                    st.one_of(st.integers(-3, 12), st.text(max_size=5), st.none(),
                              st.lists(st.text(max_size=3), max_size=2)), max_size=2),
)

SLOW = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.slow
@SLOW
@given(st.lists(records, max_size=25))
def test_kept_and_rejects_partition_the_input(rows):
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    kept = invoke(["filter", "-q"], input=data).records()
    dropped = invoke(["filter", "-q", "--invert"], input=data).records()
    assert len(kept) + len(dropped) == len(rows)
    for r in dropped:
        assert r.pop("_reject")["rule"]
    it_kept, it_dropped = iter(kept), iter(dropped)
    nk, nd = next(it_kept, None), next(it_dropped, None)
    for r in rows:  # an order-preserving merge of the two outputs gives the input back
        if nk == r:
            nk = next(it_kept, None)
        else:
            assert nd == r
            nd = next(it_dropped, None)
    assert nk is None and nd is None


_GATED = Filter(RuleSet().build(), all_reasons=True)
_ALONE = build_rules(RuleSet().specs())


@SLOW
@given(records)
def test_shared_scan_changes_no_verdict(record):
    expected = [(r.name, *hit) for r in _ALONE if (hit := r.check(record))] or None
    assert _GATED.check(record) == expected


@SLOW
@given(records, st.sampled_from([
    "score >= 8", 'answer_from == "human"', "len(output) > 3 and not output =~ \"^A$\"",
    '"问答" in task_type or exists(images)', "num(score) < 5 or lower(instruction) in [\"a\"]",
]))
def test_where_never_raises(record, expr):
    assert Expression(expr)(record) in (True, False)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab哈c。！\n ", max_size=120), st.sampled_from([-0.1, 0.0, 0.3, 0.5, 1.0]),
       st.sampled_from([3, 10]))
def test_repetition_shortcuts_equal_their_reference(text, threshold, n):
    """The early-stopping n-gram estimate and the sentence pieces give what the plain versions
    give (they only save work)."""
    from cqia_cli.filtering import rules

    assert rules._sampled_dup_exceeds(text, n, threshold) == (
        rules._sampled_dup_share(text, n) > threshold)
    assert ([s for s in map(str.strip, rules._SENTENCES(text)) if s]
            == [s for s in map(str.strip, rules._SENTENCE_SPLIT.split(text)) if s])


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="你好吗他是的，。ab", max_size=40), st.text(alphabet="你好吗他是的，。ab",
                                                                 max_size=40))
def test_echo_han_precheck_never_hides_an_echo(output, source):
    """The Han pre-check of echo changes no verdict: the same as with it turned off."""
    from unittest import mock

    from cqia_cli.filtering import rules

    echo = rules.Echo(min_chars=1, min_share=0.0)
    record = {"instruction": source, "output": output}
    with mock.patch.object(rules, "_han_missing", lambda text, source: False):
        reference = echo.check(record)
    assert echo.check(record) == reference


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="中文字abcXYZ 1,。😀é\u4dc0", max_size=60),
       st.sampled_from([0.0, 0.05, 0.3, 0.9, 1.0]))
def test_han_bound_shortcut_equals_the_full_bound(text, lo):
    from cqia_cli.filtering import rules

    b = text.encode("utf-8", "surrogatepass")
    han = len(b) - len(b.translate(None, rules._HAN_LEADS))
    letters = len(b) - len(b.translate(None, rules._ASCII_LETTERS))
    ascii_chars = len(b) - len(b.translate(None, rules._ASCII))
    full = bool(han) and han >= lo * (letters + len(text) - ascii_chars)
    assert rules._han_bound(text, lo) == full
