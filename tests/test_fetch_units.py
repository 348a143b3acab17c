"""cqia fetch's domain package without the CLI: hub paths, globs, the catalog (containers:
tests/test_containers.py)."""

from __future__ import annotations

import pytest

from cqia_cli.fetching import catalog, hub
from cqia_cli.status import CqiaError, DataError


@pytest.mark.parametrize("uri,repo,rev,path,given", [
    ("hf://datasets/m-a-p/COIG-CQIA/ruozhiba/*.jsonl", "m-a-p/COIG-CQIA", "main",
     "ruozhiba/*.jsonl", False),
    ("hf://datasets/m-a-p/COIG-CQIA@v1/x.jsonl", "m-a-p/COIG-CQIA", "v1", "x.jsonl", True),
    ("hf://datasets/o/n@refs%2Fconvert%2Fparquet/default/train/*.parquet", "o/n",
     "refs/convert/parquet", "default/train/*.parquet", True),
    ("hf://datasets/o/n", "o/n", "main", "", False),
    ("hf://datasets/o/n/", "o/n", "main", "", False),
])
def test_parse(uri, repo, rev, path, given):
    hp = hub.parse(uri)
    assert (hp.repo, hp.revision, hp.path, hp.rev_given) == (repo, rev, path, given)
    assert hp.uri() == uri.rstrip("/")


@pytest.mark.parametrize("uri", ["hf://datasets/onlyowner", "hf://datasets/o/n@/x",
                                 "hf://spaces/o/n/app.py"])
def test_parse_rejects(uri):
    with pytest.raises(CqiaError) as e:
        hub.parse(uri)
    assert e.value.status == 2


@pytest.mark.parametrize("pattern,yes,no", [
    ("*.jsonl", ["a.jsonl"], ["d/a.jsonl", "a.json"]),
    ("*/*.jsonl", ["d/a.jsonl"], ["a.jsonl", "d/e/a.jsonl"]),
    ("**/*.jsonl", ["a.jsonl", "d/a.jsonl", "d/e/a.jsonl"], ["a.csv"]),
    ("d/**", ["d/a", "d/e/f.csv"], ["e/a"]),
    ("d/?.csv", ["d/a.csv"], ["d/ab.csv", "d//.csv"]),
    ("d/[!x]*.csv", ["d/a.csv"], ["d/x.csv"]),
    ("a+b (1).jsonl", ["a+b (1).jsonl"], ["aab (1).jsonl"]),
])
def test_glob_regex(pattern, yes, no):
    rx = hub.glob_regex(pattern)
    assert [p for p in yes if rx.fullmatch(p)] == yes
    assert [p for p in no if rx.fullmatch(p)] == []


def test_glob_base():
    assert hub._glob_base("ruozhiba/*.jsonl") == "ruozhiba"
    assert hub._glob_base("*/*.jsonl") == ""
    assert hub._glob_base("a/b/c*/d.jsonl") == "a/b"


def test_builtin_catalog_covers_the_coig_cqia_subsets():
    entries = catalog.builtin()
    for name in ("chinese_traditional", "douban", "exam", "finance", "human_value", "logi_qa",
                 "ruozhiba", "segmentfault", "wiki", "zhihu", "xhs", "wikihow", "coig_pc"):
        e = entries[f"cqia/{name}"]
        assert e.uris == [f"hf://datasets/m-a-p/COIG-CQIA/{name}/*.jsonl"]
        assert e.schema == "cqia" and e.description
    assert entries["cqia/all"].uris == ["hf://datasets/m-a-p/COIG-CQIA/*/*.jsonl"]
    for e in entries.values():
        hub.parse(e.uris[0])  # every built-in entry is a valid hub path


def test_catalog_errors(tmp_path):
    bad = tmp_path / "c.toml"
    bad.write_text("[sources\n")
    with pytest.raises(DataError, match="invalid TOML"):
        catalog.load([str(bad)])
    bad.write_text('[sources."x"]\nuri = "a"\nschmea = "cqia"\n')
    with pytest.raises(DataError, match="unknown key 'schmea'"):
        catalog.load([str(bad)])
