"""The example recipes run end to end with the installed cqia, in a copy of examples/.

examples/cqia: the manifest's counts add up across stages (kept + rejected + duplicates +
invalid + unreadable = fetched), a second make does nothing, touching one source rebuilds only
what depends on it, and the LLaMA-Factory files are there. examples/decontaminate finds the
leaked evaluation items; examples/many-machines (with redis-server) deduplicates in three
concurrent processes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import shell

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("examples") / "examples"
    shutil.copytree(EXAMPLES, dest, ignore=shutil.ignore_patterns("out"))
    return dest


@pytest.fixture(scope="module")
def cqia_run(examples) -> Path:
    res = shell("env -u CQIA_LLM_BASE_URL make -C cqia", cwd=examples, timeout=600)
    assert res.exit_code == 0, res.stderr[-3000:]
    # no model endpoint: the scoring stage says, in one line, that it was skipped
    assert res.stdout.count("score: skipped: CQIA_LLM_BASE_URL is not set") == 1
    assert "before" in res.stdout and "after" in res.stdout  # ends with the stats comparison
    return examples / "cqia"


@pytest.mark.slow
def test_manifest_counts_add_up(cqia_run):
    m = json.loads((cqia_run / "out" / "manifest.json").read_text("utf-8"))
    assert m["problems"] == [] and m["balance"]["ok"]
    assert m["cqia"].startswith("cqia ")
    sources = m["sources"]
    assert len(sources) == 10
    for name, s in sources.items():
        assert s["fetched"] + s["unreadable"] == s["source_lines"], name
        assert s["valid"] + s["invalid"] == s["fetched"], name
        assert s["cleaned"] == s["valid"], name  # clean repairs, drops nothing
        assert s["kept"] + s["rejected"] == s["cleaned"], name
    dirty = sources["forum-scrape"]
    assert dirty["unreadable"] >= 4 and dirty["invalid"] >= 5 and dirty["rejected"] >= 20
    assert dirty["changed"] >= 1 and sum(s["changed"] for s in sources.values()) >= 10
    t = m["totals"]
    assert t["score"] == {"skipped": True, "reason": "CQIA_LLM_BASE_URL is not set"}
    assert t["merged"] == t["scored"] == t["survivors"] + t["duplicates"]
    assert t["duplicates"] >= 3  # the forum's copies of bundled records
    assert sum(t["split"].values()) == t["survivors"] == t["clustered"]
    assert t["converted"] == t["split"] and set(t["split"]) == {"train", "valid", "test"}
    assert m["balance"]["fetched"] == m["balance"]["accounted"]
    assert all(len(h) == 64 for h in m["inputs"].values())
    assert any(c.startswith("cqia dedup") for c in m["commands"])
    assert any(c.startswith("cqia split") for c in m["commands"])


@pytest.mark.slow  # the whole recipe runs first: ~10 s
def test_llamafactory_files(cqia_run):
    lf = cqia_run / "out" / "llamafactory"
    info = json.loads((lf / "dataset_info.json").read_text("utf-8"))
    assert set(info) == {"cqia_train", "cqia_valid", "cqia_test"}
    for name, entry in info.items():
        assert entry["formatting"] == "sharegpt"
        assert (lf / entry["file_name"]).exists()
    first = json.loads((lf / "cqia_train.jsonl").read_text("utf-8").splitlines()[0])
    assert [t["from"] for t in first["conversations"]][:2] == ["system", "human"]
    html = (cqia_run / "out" / "stats" / "after.html").read_text("utf-8")
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")


@pytest.mark.slow  # the whole recipe runs first: ~10 s
def test_second_make_does_nothing(cqia_run):
    res = shell("make -q -C cqia", cwd=cqia_run.parent)
    assert res.exit_code == 0, res.stdout  # -q: status 0 when everything is up to date


@pytest.mark.slow
def test_touching_one_source_rebuilds_only_what_depends_on_it(cqia_run):
    src = cqia_run.parent / "data" / "ruozhiba.jsonl"
    os.utime(src, None)
    res = shell("make -n -C cqia", cwd=cqia_run.parent)
    text = res.stdout.replace("\\\n", " ")
    cqia_lines = [line for line in text.splitlines() if line.startswith("cqia ")]
    per_source = [line for line in cqia_lines
                  if line.split()[1] in ("fetch", "validate", "clean", "filter")]
    assert per_source and all("ruozhiba" in line for line in per_source)
    res = shell("make -C cqia > /dev/null && make -q -C cqia", cwd=cqia_run.parent, timeout=600)
    assert res.exit_code == 0, res.stderr[-2000:]


def test_decontaminate(examples):
    res = shell("make -C decontaminate", cwd=examples, timeout=300)
    assert res.exit_code == 0, res.stderr[-2000:]
    out = examples / "decontaminate" / "out"
    leaked = [json.loads(x) for x in (out / "leaked.jsonl").read_text("utf-8").splitlines()]
    assert len(leaked) == 6
    assert all(r["_dup_of"]["source"].endswith("eval.cqia.jsonl") for r in leaked)
    kept = (out / "train.clean.jsonl").read_text("utf-8").count("\n")
    dupes = (out / "dupes.jsonl").read_text("utf-8").count("\n")
    total = sum(p.read_text("utf-8").count("\n") for p in (examples / "data").glob("*.jsonl"))
    assert kept + dupes == total


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_many_machines(examples):
    pytest.importorskip("redis")
    import socket

    with socket.socket() as s:  # a free port: other test runs on this machine may hold 6397
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = shell(f"make -C many-machines PORT={port}", cwd=examples, timeout=300)
    assert res.exit_code == 0, res.stderr[-2000:]
    out = examples / "many-machines" / "out"
    parts = sum(p.read_text("utf-8").count("\n") for p in out.glob("part-?.jsonl"))
    kept = sum(p.read_text("utf-8").count("\n") for p in out.glob("part-?.dedup.jsonl"))
    dupes = sum(p.read_text("utf-8").count("\n") for p in out.glob("part-?.dupes.jsonl"))
    assert kept + dupes == parts and dupes >= 3
    assert f"{kept:,} records" in (out / "stats.txt").read_text("utf-8")


@pytest.mark.slow  # the whole recipe runs first: ~10 s
def test_review_targets(cqia_run):
    """make review / review-report / reviewed: not in the default chain, and consistent."""
    from cqia_cli.review.sample import Plan
    from cqia_cli.review.session import Session

    out = cqia_run / "out"
    dry = shell("make -n -C cqia review REVIEWER=ann", cwd=cqia_run.parent)
    assert dry.exit_code == 0 and "review --sample 200 --seed 1 --reviewer ann" in dry.stdout
    deduped = str(out / "deduped.jsonl")
    s = Session(deduped, deduped + ".review.sqlite", "ann", Plan(200, 1),
                background_hash=False)
    s.decide("accept")
    s.move(1)
    s.decide("reject", "wrong")
    s.close()
    rep = shell("make -s -C cqia review-report", cwd=cqia_run.parent)
    assert rep.exit_code == 0, rep.stderr
    assert "decided       2 (accepted 1, rejected 1)" in rep.stdout
    res = shell("make -C cqia reviewed", cwd=cqia_run.parent)
    assert res.exit_code == 0, res.stderr
    lines = lambda p: len((out / p).read_bytes().splitlines())  # noqa: E731
    assert lines("reviewed.jsonl") + lines("review-rejects.jsonl") == lines("deduped.jsonl")
    assert lines("review-rejects.jsonl") == 1
