"""cqia stats: properties over arbitrary JSON records (hypothesis)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cqia_cli.stats import Accumulator, Config
from cqia_cli.stats.render import console_for, render_report, rendered

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from("abcde"), inner, max_size=4)),
    max_leaves=12)
keys = st.sampled_from(["instruction", "input", "output", "domain", "task_type", "answer_from",
                        "human_verified", "x", "y", "z"])
records = st.lists(st.dictionaries(keys, values, max_size=8), max_size=30)


def _run(recs, config):
    acc = Accumulator(config)
    for r in recs:
        acc.add(r, 1)
    return acc


@pytest.mark.slow
@settings(max_examples=40, deadline=None)
@given(records, records, st.booleans())
def test_any_records_merge_like_one_run(a, b, grouped):
    config = Config(group="x" if grouped else None, by=("y",))
    whole = _run(a + b, config)
    merged = Accumulator.from_json(orjson.loads(orjson.dumps(_run(a, config).to_json())))
    merged.merge(Accumulator.from_json(orjson.loads(orjson.dumps(_run(b, config).to_json()))))
    assert merged.to_json() == whole.to_json()
    con = console_for(tty=False)
    render_report(whole, con, title="t")
    assert rendered(con).startswith(f"t: {len(a) + len(b):,} records")


@pytest.mark.parametrize("a, b", [
    ([9e307, 9e307], [-9e307]),          # the sum overflows a float (found by hypothesis)
    ([0.1, 0.2], [0.3]),                 # float addition is not associative
    ([2**62, 2**62], [2**62]),           # an int sum beyond 64 bits
])
def test_numeric_sums_merge_exactly(a, b):
    config = Config()
    recs = lambda vals: [{"_x": v} for v in vals]  # noqa: E731
    whole = _run(recs(a + b), config)
    merged = Accumulator.from_json(orjson.loads(orjson.dumps(_run(recs(a), config).to_json())))
    merged.merge(Accumulator.from_json(orjson.loads(orjson.dumps(_run(recs(b), config).to_json()))))
    assert merged.to_json() == whole.to_json()
    n = whole.numeric_fields()["_x"]
    assert n.total == sum(__import__("fractions").Fraction(v) for v in a + b)
