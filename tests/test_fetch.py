"""cqia fetch: every acceptance item against real HTTP servers on 127.0.0.1 (no network)."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from conftest import cqia_executable, cqia_record, invoke, shell, write_jsonl
from fetch_server import Server

RECORDS = [cqia_record(i) for i in range(6)]


def jsonl_bytes(records) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.stop()


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    for name in ("HF_ENDPOINT", "HF_TOKEN", "HF_HUB_OFFLINE", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no token file of the user's
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no user catalog


def fetch(cache, *args, input=None, env=None):
    return invoke(["fetch", "--cache-dir", cache, "--backoff", "0", *args], input=input, env=env)


def local_records(tmp_path, records=RECORDS):
    path = write_jsonl(tmp_path / "local.jsonl", records)
    res = invoke(["fetch", path])
    assert res.exit_code == 0, res
    return res.records()


# -- containers: the same records as the local file read directly ---------------------------


def test_plain_url_gives_the_records_of_the_local_file(server, cache, tmp_path):
    server.files["/data/qa.jsonl"] = jsonl_bytes(RECORDS)
    res = fetch(cache, f"{server.url}/data/qa.jsonl")
    assert res.exit_code == 0, res
    assert res.records() == RECORDS == local_records(tmp_path)
    assert res.stderr == "fetch: 6 records from 1 file (1 downloaded)\n"


@pytest.mark.parametrize("suffix,compress", [(".gz", gzip.compress), (".bz2", bz2.compress)])
def test_compressed_url(server, cache, suffix, compress):
    server.files["/qa.jsonl" + suffix] = compress(jsonl_bytes(RECORDS))
    res = fetch(cache, f"{server.url}/qa.jsonl{suffix}")
    assert res.exit_code == 0, res
    assert res.records() == RECORDS


def test_compression_told_by_content_when_the_url_has_no_suffix(server, cache):
    server.files["/download"] = gzip.compress(jsonl_bytes(RECORDS))
    res = fetch(cache, f"{server.url}/download?id=3")
    assert res.exit_code == 0, res
    assert res.records() == RECORDS


def test_json_array_url_same_as_local(server, cache, tmp_path):
    data = json.dumps(RECORDS, ensure_ascii=False, indent=2).encode()
    server.files["/qa.json"] = data
    (tmp_path / "qa.json").write_bytes(data)
    res = fetch(cache, f"{server.url}/qa.json")
    assert res.exit_code == 0, res
    assert res.records() == RECORDS
    assert res.stdout_bytes == invoke(["fetch", tmp_path / "qa.json"]).stdout_bytes


def test_json_suffix_holding_json_lines(server, cache):
    server.files["/belle.json"] = jsonl_bytes(RECORDS)
    res = fetch(cache, f"{server.url}/belle.json")
    assert res.records() == RECORDS


def _csv_bytes(records, delimiter=","):
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(["instruction", "input", "output"])
    for r in records:
        w.writerow([r["instruction"], r["input"], r["output"]])
    return buf.getvalue().encode()


def _flat(records):
    return [{k: r[k] for k in ("instruction", "input", "output")} for r in records]


@pytest.mark.parametrize("suffix,delim", [(".csv", ","), (".tsv", "\t"), (".csv.gz", ",")])
def test_csv_and_tsv_url_same_as_local(server, cache, tmp_path, suffix, delim):
    records = _flat(RECORDS)
    records[1]["output"] = "第一行\n第二行，带逗号, 和 \"引号\""
    data = _csv_bytes(records, delim)
    if suffix.endswith(".gz"):
        data = gzip.compress(data)
    server.files["/qa" + suffix] = data
    (tmp_path / ("qa" + suffix)).write_bytes(data)
    res = fetch(cache, f"{server.url}/qa{suffix}")
    assert res.exit_code == 0, res
    assert res.records() == records
    assert invoke(["fetch", tmp_path / ("qa" + suffix)]).records() == records


def test_parquet_url_same_as_local(server, cache, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    records = [{k: v for k, v in r.items() if k != "task_type"} for r in RECORDS]
    path = tmp_path / "qa.parquet"
    pq.write_table(pa.Table.from_pylist(records), path, row_group_size=2)
    server.files["/qa.parquet"] = path.read_bytes()
    res = fetch(cache, f"{server.url}/qa.parquet")
    assert res.exit_code == 0, res
    assert res.records() == records == invoke(["fetch", path]).records()


def test_parquet_without_the_extra_names_it(server, cache, tmp_path, monkeypatch):
    (tmp_path / "qa.parquet").write_bytes(b"PAR1" + b"\0" * 20 + b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    res = fetch(cache, tmp_path / "qa.parquet")
    assert res.exit_code == 66
    assert res.stderr == (f"cqia fetch: {tmp_path / 'qa.parquet'}: Parquet files need the "
                          "optional pyarrow package: pip install 'cqia[parquet]'\n")


# -- the hub ----------------------------------------------------------------------------------


def _repo(server, repo="org/set", rev="main"):
    files = {
        "b/z.jsonl": jsonl_bytes(RECORDS[4:]),
        "a/y.jsonl": jsonl_bytes(RECORDS[2:4]),
        "a/x.jsonl": jsonl_bytes(RECORDS[:2]),
        "a/deep/w.jsonl.gz": gzip.compress(jsonl_bytes([cqia_record(9)])),
        "README.md": b"# card\n",
        ".gitattributes": b"*.jsonl filter=lfs\n",
    }
    server.repos[(repo, rev)] = files
    return files


def test_hub_glob_expands_in_a_stable_order(server, cache):
    _repo(server)
    server.page_size = 2  # several pages, linked
    res = fetch(cache, "--endpoint", server.url, "--add-source",
                "hf://datasets/org/set/*/*.jsonl")
    assert res.exit_code == 0, res
    assert [r.pop("_source") for r in res.records()] == [
        {"uri": "hf://datasets/org/set/a/x.jsonl", "line": 1},
        {"uri": "hf://datasets/org/set/a/x.jsonl", "line": 2},
        {"uri": "hf://datasets/org/set/a/y.jsonl", "line": 1},
        {"uri": "hf://datasets/org/set/a/y.jsonl", "line": 2},
        {"uri": "hf://datasets/org/set/b/z.jsonl", "line": 1},
        {"uri": "hf://datasets/org/set/b/z.jsonl", "line": 2},
    ]
    assert [r for r in res.records()] == [{**r, "_source": r["_source"]} for r in res.records()]
    listing = [p for p, _, _ in server.log if p.startswith("/api/")]
    assert listing[0] == "/api/datasets/org/set/tree/main"


@pytest.mark.parametrize("path,expected", [
    ("**/*.jsonl", ["a/x", "a/y", "b/z"]),
    ("a/**", ["a/deep/w", "a/x", "a/y"]),
    ("a", ["a/deep/w", "a/x", "a/y"]),  # a folder: its data files at any depth
    ("", ["a/deep/w", "a/x", "a/y", "b/z"]),  # the whole repository
    ("b/z.jsonl", ["b/z"]),
    ("a/[xy].jsonl", ["a/x", "a/y"]),
])
def test_hub_paths(server, cache, path, expected):
    _repo(server)
    res = fetch(cache, "--endpoint", server.url, "--add-source",
                "hf://datasets/org/set" + (f"/{path}" if path else ""))
    assert res.exit_code == 0, res
    files = []
    for r in res.records():
        f = r["_source"]["uri"].split("/set/", 1)[1].split(".")[0]
        if f not in files:
            files.append(f)
    assert files == expected


def test_hub_revision_endpoint_from_env_and_redirects(server, cache):
    _repo(server, rev="v1.0")
    res = fetch(cache, "hf://datasets/org/set@v1.0/b/z.jsonl",
                env={"HF_ENDPOINT": server.url})
    assert res.exit_code == 0, res
    assert res.records() == RECORDS[4:]
    paths = [p for p, _, _ in server.log]
    assert "/datasets/org/set/resolve/v1.0/b/z.jsonl" in paths
    assert "/cdn/org/set/v1.0/b/z.jsonl" in paths  # the redirect was followed


def test_hub_file_outside_lfs_is_checked_by_its_git_id(server, cache):
    files = _repo(server)
    server.not_lfs.add("b/z.jsonl")
    args = ["--endpoint", server.url, "hf://datasets/org/set/b/z.jsonl"]
    assert fetch(cache, *args).records() == RECORDS[4:]
    server.tampered["b/z.jsonl"] = files["b/z.jsonl"].replace(b"human", b"llm\x20\x20")
    res = fetch(cache, "--refresh", *args)
    assert res.exit_code == 66
    expected = hashlib.sha1(b"blob %d\0" % len(files["b/z.jsonl"]) + files["b/z.jsonl"])
    assert res.stderr.startswith("cqia fetch: hf://datasets/org/set/b/z.jsonl: the download is "
                                 "corrupt: git blob id ")
    assert res.stderr.endswith(f", expected {expected.hexdigest()}\n")


def test_hub_token_sent_to_the_hub_only(server, cache):
    _repo(server)
    server.token = "s3cret"
    server.files["/plain.jsonl"] = jsonl_bytes(RECORDS[:1])
    res = fetch(cache, "--endpoint", server.url, "hf://datasets/org/set/a/x.jsonl",
                f"{server.url}/plain.jsonl", env={"HF_TOKEN": "s3cret"})
    assert res.exit_code == 0, res
    auth = {p: a for p, _, a in server.log}
    assert auth["/api/datasets/org/set/tree/main/a"] == "Bearer s3cret"
    assert auth["/datasets/org/set/resolve/main/a/x.jsonl"] == "Bearer s3cret"
    assert auth["/plain.jsonl"] is None


def test_hub_token_not_carried_across_a_redirect_to_another_host(server, cache):
    _repo(server)
    server.token = "s3cret"
    server.cdn = cdn = Server()
    try:
        res = fetch(cache, "--endpoint", server.url, "--token", "s3cret",
                    "hf://datasets/org/set/a/x.jsonl")
        assert res.exit_code == 0, res
        assert res.records() == RECORDS[:2]
        assert cdn.log == [("/cdn/org/set/main/a/x.jsonl", None, None)]
    finally:
        cdn.stop()


def test_a_file_fetched_through_a_mirror_is_cached_for_the_hub(server, cache):
    _repo(server)
    mirror = Server()
    try:
        mirror.repos = server.repos
        assert fetch(cache, "--endpoint", mirror.url, "hf://datasets/org/set/a/x.jsonl"
                     ).exit_code == 0
        res = fetch(cache, "--endpoint", server.url, "hf://datasets/org/set/a/x.jsonl")
        assert res.exit_code == 0 and res.records() == RECORDS[:2]
        assert [p for p, _, _ in server.log] == ["/api/datasets/org/set/tree/main/a"]
    finally:
        mirror.stop()


def test_format_option_for_an_unhelpful_name(server, cache):
    server.files["/export.txt"] = b"instruction\toutput\na\tb\n"
    res = fetch(cache, "--format", "tsv", f"{server.url}/export.txt")
    assert res.exit_code == 0, res
    assert res.records() == [{"instruction": "a", "output": "b"}]


def test_cache_that_cannot_be_written(server, tmp_path):
    server.files["/qa.jsonl"] = jsonl_bytes(RECORDS)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = fetch(blocker, f"{server.url}/qa.jsonl")
    assert res.exit_code == 74
    assert "cannot create the cache directory" in res.stderr and "--cache-dir" in res.stderr
    assert res.stderr.count("\n") == 1


def test_hub_token_from_the_login_file(server, cache, tmp_path):
    _repo(server)
    server.token = "filetoken"
    (tmp_path / "hf-home").mkdir()
    (tmp_path / "hf-home" / "token").write_text("filetoken\n")
    res = fetch(cache, "--endpoint", server.url, "hf://datasets/org/set/a/x.jsonl")
    assert res.exit_code == 0, res


def test_hub_401_is_one_line_naming_the_url(server, cache):
    _repo(server)
    server.token = "s3cret"
    res = fetch(cache, "--endpoint", server.url, "hf://datasets/org/set/a/x.jsonl")
    assert res.exit_code == 66
    assert res.stderr == (
        f"cqia fetch: hf://datasets/org/set/a ({server.url}/api/datasets/org/set/tree/main/a): "
        "HTTP 401 Unauthorized; private or gated: give a token with --token or HF_TOKEN\n")
    assert res.stdout == ""


def test_hub_unknown_repo_and_no_match(server, cache):
    _repo(server)
    res = fetch(cache, "--endpoint", server.url, "hf://datasets/org/nope/*.jsonl")
    assert res.exit_code == 66
    assert res.stderr.count("\n") == 1
    assert "HTTP 404 Not Found" in res.stderr and "/api/datasets/org/nope/tree/main" in res.stderr
    res = fetch(cache, "--endpoint", server.url, "hf://datasets/org/set/*.parquet")
    assert res.exit_code == 66
    assert res.stderr == ("cqia fetch: hf://datasets/org/set/*.parquet: no data files match in "
                          "org/set@main\n")


def test_hub_uri_must_name_a_dataset(cache):
    res = fetch(cache, "hf://models/org/m/x.bin")
    assert res.exit_code == 2
    assert "only dataset repositories" in res.stderr


# -- the catalog ------------------------------------------------------------------------------


def test_builtin_catalog_name_expands_to_the_coig_cqia_folder(server, cache):
    server.repos[("m-a-p/COIG-CQIA", "main")] = {
        "ruozhiba/ruozhiba_ruozhiba.jsonl": jsonl_bytes(RECORDS[:3]),
        "zhihu/zhihu_expansion.jsonl": jsonl_bytes(RECORDS[3:]),
    }
    res = fetch(cache, "--endpoint", server.url, "--add-source", "cqia/ruozhiba")
    assert res.exit_code == 0, res
    assert [r["_source"]["uri"] for r in res.records()] == [
        "hf://datasets/m-a-p/COIG-CQIA/ruozhiba/ruozhiba_ruozhiba.jsonl"] * 3
    res = fetch(cache, "--endpoint", server.url, "cqia/all")
    assert res.records() == RECORDS


def test_list_shows_builtin_and_user_entries(tmp_path):
    user = tmp_path / "config" / "cqia" / "catalog.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[sources."me/scrape"]\nuri = "data/*.csv"\nschema = "alpaca"\n'
                    'description = "my scrape"\n', encoding="utf-8")
    res = invoke(["fetch", "--list"])
    assert res.exit_code == 0, res
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["NAME", "SCHEMA", "SOURCE", "DESCRIPTION"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["cqia/ruozhiba"][1:3] == ["cqia", "hf://datasets/m-a-p/COIG-CQIA/ruozhiba/*.jsonl"]
    assert rows["cqia/zhihu"][2] == "hf://datasets/m-a-p/COIG-CQIA/zhihu/*.jsonl"
    assert rows["cqia/all"][2] == "hf://datasets/m-a-p/COIG-CQIA/*/*.jsonl"
    assert rows["me/scrape"][1:3] == ["alpaca", "data/*.csv"]
    assert str(user) in res.stdout


def test_user_catalog_entry_with_several_sources(server, cache, tmp_path):
    server.files["/one.jsonl"] = jsonl_bytes(RECORDS[:2])
    local = write_jsonl(tmp_path / "two.jsonl", RECORDS[2:])
    cat = tmp_path / "mine.toml"
    cat.write_text(f'[sources."me/both"]\nuris = ["{server.url}/one.jsonl", "{local}"]\n')
    res = fetch(cache, "--catalog", cat, "me/both")
    assert res.exit_code == 0, res
    assert res.records() == RECORDS


def test_bad_catalog_file(tmp_path, cache):
    cat = tmp_path / "bad.toml"
    cat.write_text('[sources."x"]\nschema = "cqia"\n')
    res = fetch(cache, "--catalog", cat, "--list")
    assert res.exit_code == 65
    assert res.stderr == (f"cqia fetch: {cat}: sources.'x': needs uri = \"...\" or "
                          "uris = [\"...\", ...]\n")


# -- transport: resume, retries, errors, verification, offline, concurrency -------------------


def _big(n=400) -> bytes:
    return jsonl_bytes([cqia_record(i) for i in range(n)])


def test_dropped_connection_resumes_on_the_next_run(server, cache):
    data = _big()
    server.files["/big.jsonl"] = data
    server.scripts["/big.jsonl"] = ["drop"]
    url = f"{server.url}/big.jsonl"
    res = fetch(cache, "--retries", "0", url)
    assert res.exit_code == 66
    assert res.stderr.startswith(f"cqia fetch: {url}: connection lost after ")
    assert res.stderr.endswith("(gave up after 1 try)\n")
    parts = list(cache.rglob("*.part"))
    assert len(parts) == 1 and 0 < parts[0].stat().st_size < len(data)
    half = parts[0].stat().st_size
    res = fetch(cache, url)
    assert res.exit_code == 0, res
    assert server.requests("/big.jsonl")[-1][1] == f"bytes={half}-"
    assert res.stdout_bytes == orjson_lines(data)
    cached = [p for p in cache.rglob("big.jsonl")]
    assert cached[0].read_bytes() == data
    assert not list(cache.rglob("*.part"))


def orjson_lines(data: bytes) -> bytes:
    return b"".join(orjson.dumps(orjson.loads(line)) + b"\n" for line in data.splitlines())


def test_dropped_connection_resumes_within_one_run(server, cache):
    data = _big()
    server.files["/big.jsonl"] = data
    server.scripts["/big.jsonl"] = ["drop"]
    res = fetch(cache, f"{server.url}/big.jsonl")
    assert res.exit_code == 0, res
    ranges = [r for _, r, _ in server.requests("/big.jsonl")]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    assert res.stdout_bytes == orjson_lines(data)
    assert "connection lost after" in res.stderr and "trying again" in res.stderr


def test_500_twice_then_200_succeeds(server, cache):
    server.files["/qa.jsonl"] = jsonl_bytes(RECORDS)
    server.scripts["/qa.jsonl"] = [500, 503]
    url = f"{server.url}/qa.jsonl"
    res = fetch(cache, url)
    assert res.exit_code == 0, res
    assert res.records() == RECORDS
    assert len(server.requests("/qa.jsonl")) == 3
    assert res.stderr.splitlines()[:2] == [
        f"cqia fetch: {url}: HTTP 500 Internal Server Error; trying again in 0s",
        f"cqia fetch: {url}: HTTP 503 Service Unavailable; trying again in 0s",
    ]


def test_5xx_past_the_retries_fails(server, cache):
    server.files["/qa.jsonl"] = b"{}\n"
    server.scripts["/qa.jsonl"] = [500, 500, 500]
    url = f"{server.url}/qa.jsonl"
    res = fetch(cache, "--retries", "2", "-q", url)
    assert res.exit_code == 66
    assert res.stderr == (f"cqia fetch: {url}: HTTP 500 Internal Server Error "
                          "(gave up after 3 tries)\n")


def test_hub_listing_is_retried_too(server, cache):
    _repo(server)
    server.scripts["/api/datasets/org/set/tree/main/b"] = [502]
    res = fetch(cache, "--endpoint", server.url, "-q", "hf://datasets/org/set/b/z.jsonl")
    assert res.exit_code == 0, res
    assert res.records() == RECORDS[4:]


@pytest.mark.parametrize("status,reason", [(404, "Not Found"), (401, "Unauthorized"),
                                           (403, "Forbidden")])
def test_http_errors_are_one_line_naming_the_url(server, cache, status, reason):
    server.scripts["/qa.jsonl"] = [status]
    url = f"{server.url}/qa.jsonl"
    res = fetch(cache, url)
    assert res.exit_code == 66
    hint = "; the server refused access" if status != 404 else ""
    assert res.stderr == f"cqia fetch: {url}: HTTP {status} {reason}{hint}\n"
    assert res.stdout == ""


def test_no_server_at_all(cache):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"http://127.0.0.1:{port}/qa.jsonl"
    res = fetch(cache, "--retries", "1", "-q", url)
    assert res.exit_code == 66
    assert res.stderr.startswith(f"cqia fetch: {url}: cannot connect: ")
    assert res.stderr.endswith("(gave up after 2 tries)\n")


def test_corrupt_cached_file_is_detected_and_fetched_again(server, cache):
    _repo(server)
    args = ["--endpoint", server.url, "hf://datasets/org/set/a/x.jsonl"]
    assert fetch(cache, *args).exit_code == 0
    cached = next(cache.rglob("x.jsonl"))
    data = cached.read_bytes()
    cached.write_bytes(data.replace("成语".encode(), "成绩".encode(), 1))  # same size
    before = len(server.requests("/datasets/org/set/resolve/main/a/x.jsonl"))
    res = fetch(cache, *args)
    assert res.exit_code == 0, res
    assert res.records() == RECORDS[:2]
    assert res.stderr.startswith("cqia fetch: hf://datasets/org/set/a/x.jsonl: the cached copy "
                                 "is corrupt (its sha256 does not match); fetching it again\n")
    assert len(server.requests("/datasets/org/set/resolve/main/a/x.jsonl")) == before + 1
    assert cached.read_bytes() == data


def test_corrupt_cached_url_is_fetched_again(server, cache):
    server.files["/qa.jsonl"] = jsonl_bytes(RECORDS)
    url = f"{server.url}/qa.jsonl"
    assert fetch(cache, url).exit_code == 0
    cached = next(cache.rglob("qa.jsonl"))
    cached.write_bytes(cached.read_bytes()[:-10] + b"x" * 10)
    res = fetch(cache, url)
    assert res.exit_code == 0 and res.records() == RECORDS
    assert "corrupt" in res.stderr
    assert len(server.requests("/qa.jsonl")) == 2


def test_second_run_comes_from_the_cache(server, cache):
    server.files["/qa.jsonl"] = jsonl_bytes(RECORDS)
    url = f"{server.url}/qa.jsonl"
    first = fetch(cache, url)
    second = fetch(cache, url)
    assert second.stdout_bytes == first.stdout_bytes
    assert second.stderr == "fetch: 6 records from 1 file (1 from the cache)\n"
    assert len(server.requests("/qa.jsonl")) == 1
    assert fetch(cache, "--refresh", url).exit_code == 0
    assert len(server.requests("/qa.jsonl")) == 2


def test_sha256_option(server, cache):
    data = jsonl_bytes(RECORDS)
    server.files["/qa.jsonl"] = data
    url = f"{server.url}/qa.jsonl"
    wrong = "0" * 64
    res = fetch(cache, "--sha256", wrong, url)
    assert res.exit_code == 66
    assert res.stderr == (f"cqia fetch: {url}: the download is corrupt: sha256 "
                          f"{hashlib.sha256(data).hexdigest()}, expected {wrong}\n")
    assert not list(cache.rglob("qa.jsonl"))
    res = fetch(cache, "--sha256", f"{url}={hashlib.sha256(data).hexdigest()}", url)
    assert res.exit_code == 0 and res.records() == RECORDS
    res = fetch(cache, "--sha256", "abc", url)
    assert res.exit_code == 2


def test_offline_with_an_empty_cache(server, cache):
    server.files["/qa.jsonl"] = jsonl_bytes(RECORDS)
    url = f"{server.url}/qa.jsonl"
    res = fetch(cache, "--offline", url)
    assert res.exit_code == 66
    assert res.stderr == (f"cqia fetch: {url}: not in the cache and --offline (or "
                          "HF_HUB_OFFLINE) is set; fetch it once online first\n")
    _repo(server)
    res = fetch(cache, "--endpoint", server.url, "hf://datasets/org/set/*/*.jsonl",
                env={"HF_HUB_OFFLINE": "1"})
    assert res.exit_code == 66
    assert res.stderr == ("cqia fetch: hf://datasets/org/set: its file listing is not in the "
                          "cache and --offline (or HF_HUB_OFFLINE) is set; run once online "
                          "first\n")
    assert server.log == []


def test_offline_after_an_online_run_needs_no_network(server, cache):
    _repo(server)
    server.files["/qa.jsonl"] = jsonl_bytes(RECORDS)
    args = ["--endpoint", server.url, "hf://datasets/org/set/*/*.jsonl", f"{server.url}/qa.jsonl"]
    online = fetch(cache, *args)
    assert online.exit_code == 0, online
    n = len(server.log)
    for extra, env in ((["--offline"], None), ([], {"HF_HUB_OFFLINE": "true"})):
        offline = fetch(cache, *extra, *args, env=env)
        assert offline.exit_code == 0, offline
        assert offline.stdout_bytes == online.stdout_bytes
    assert len(server.log) == n


@pytest.mark.slow
def test_two_fetches_of_one_file_at_once(server, tmp_path):
    exe = cqia_executable()
    data = _big(600)
    server.files["/big.jsonl"] = data
    server.delay = 0.03  # a download that takes over a second: the two runs overlap
    cache = tmp_path / "cache"
    cmd = [exe, "fetch", "--cache-dir", str(cache), f"{server.url}/big.jsonl"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    for out, _ in outs:
        assert out == orjson_lines(data)
    assert sorted(err.decode() for _, err in outs) == [
        f"cqia fetch: {server.url}/big.jsonl: another cqia fetch is downloading it; waiting\n"
        "fetch: 600 records from 1 file (1 from the cache)\n",
        "fetch: 600 records from 1 file (1 downloaded)\n",
    ]
    assert len(server.requests("/big.jsonl")) == 1  # the second waited and used the cache
    assert next(cache.rglob("big.jsonl")).read_bytes() == data


# -- records: the same error path as local files ----------------------------------------------


def test_malformed_remote_line_is_url_line_problem(server, cache, tmp_path):
    body = jsonl_bytes(RECORDS[:2]) + b'{"instruction": "x",\n' + jsonl_bytes(RECORDS[2:3])
    server.files["/qa.jsonl"] = body
    url = f"{server.url}/qa.jsonl"
    res = fetch(cache, url)
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia fetch: {url}:3: invalid JSON: ")
    local = tmp_path / "local.jsonl"
    local.write_bytes(body)
    direct = invoke(["fetch", local])  # the same message as for the file read directly
    assert direct.exit_code == 65
    assert res.stderr == direct.stderr.replace(str(local), url)
    errors = tmp_path / "bad.txt"
    res = fetch(cache, "--on-error", "skip", "--errors", errors, url)
    assert res.exit_code == 0
    assert res.records() == RECORDS[:3]
    assert errors.read_bytes() == b'{"instruction": "x",\n'
    assert "skipped 1 bad lines" in res.stderr


def test_bad_csv_row_is_reported_with_its_line(server, cache, tmp_path):
    server.files["/qa.csv"] = b'instruction,output\na,b\n"multi\nline",c\nonly-one\nd,e\n'
    url = f"{server.url}/qa.csv"
    res = fetch(cache, url)
    assert res.exit_code == 65
    assert res.stderr == f"cqia fetch: {url}:5: row has 1 fields, the header has 2\n"
    errors = tmp_path / "bad.txt"
    res = fetch(cache, "--on-error", "skip", "--errors", errors, url)
    assert res.records() == [{"instruction": "a", "output": "b"},
                             {"instruction": "multi\nline", "output": "c"},
                             {"instruction": "d", "output": "e"}]
    assert errors.read_bytes() == b"only-one\n"


def test_json_array_item_not_an_object(server, cache):
    # reported at the line where the item starts, as convert does (and for a local file)
    server.files["/qa.json"] = b'[{"a": 1},\n "text", {"b": 2}]'
    url = f"{server.url}/qa.json"
    res = fetch(cache, url)
    assert res.exit_code == 65
    assert res.stderr == f"cqia fetch: {url}:2: item 2 is not a JSON object (a JSON string)\n"
    res = fetch(cache, "--on-error", "skip", url)
    assert res.records() == [{"a": 1}, {"b": 2}]


def test_invalid_json_array(server, cache):
    server.files["/qa.json"] = b'[{"a": 1},\n {"b": }]'
    url = f"{server.url}/qa.json"
    res = fetch(cache, url)
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia fetch: {url}:2: invalid JSON in item 2: ")


# -- options ---------------------------------------------------------------------------------


def test_limit_does_not_download_what_it_does_not_read(server, cache):
    server.files["/one.jsonl"] = jsonl_bytes(RECORDS[:3])
    server.files["/two.jsonl"] = jsonl_bytes(RECORDS[3:])
    res = fetch(cache, "--limit", "2", f"{server.url}/one.jsonl", f"{server.url}/two.jsonl")
    assert res.exit_code == 0
    assert res.records() == RECORDS[:2]
    assert server.requests("/two.jsonl") == []
    res = fetch(cache, "--limit", "4", f"{server.url}/one.jsonl", f"{server.url}/two.jsonl")
    assert res.records() == RECORDS[:4]


def test_add_source_on_local_files_and_stdin(tmp_path, cache):
    path = write_jsonl(tmp_path / "a.jsonl", RECORDS[:2])
    res = fetch(cache, "--add-source", path, "-", input=jsonl_bytes(RECORDS[2:3]))
    assert [r["_source"] for r in res.records()] == [
        {"uri": str(path), "line": 1}, {"uri": str(path), "line": 2},
        {"uri": "<stdin>", "line": 1}]
    assert [{k: v for k, v in r.items() if k != "_source"} for r in res.records()] == RECORDS[:3]


def test_local_folder_glob_and_missing(tmp_path, cache):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    write_jsonl(tmp_path / "d" / "sub" / "b.jsonl", RECORDS[2:])
    write_jsonl(tmp_path / "d" / "a.jsonl", RECORDS[:2])
    (tmp_path / "d" / "notes.txt").write_text("not data")
    assert fetch(cache, tmp_path / "d").records() == RECORDS
    assert fetch(cache, str(tmp_path / "d" / "**" / "*.jsonl")).records() == RECORDS
    res = fetch(cache, tmp_path / "nope.jsonl")
    assert res.exit_code == 66
    assert res.stderr == (f"cqia fetch: {tmp_path / 'nope.jsonl'}: no such file (nor a URL, an "
                          "hf:// path or a catalog name; see cqia fetch --list)\n")


def test_output_file_is_atomic_and_not_left_on_failure(server, cache, tmp_path):
    server.files["/good.jsonl"] = jsonl_bytes(RECORDS)
    server.scripts["/bad.jsonl"] = [404]
    out = tmp_path / "out.jsonl"
    res = fetch(cache, "-o", out, f"{server.url}/good.jsonl", f"{server.url}/bad.jsonl")
    assert res.exit_code == 66
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl.*"))
    res = fetch(cache, "-o", out, f"{server.url}/good.jsonl")
    assert res.exit_code == 0 and out.read_bytes() == orjson_lines(jsonl_bytes(RECORDS))


# -- the installed command in a real shell ---------------------------------------------------


def test_shell_pipe_head_is_quiet_and_output_is_stable(server, tmp_path):
    cqia_executable()
    server.files["/big.jsonl.gz"] = gzip.compress(_big(2000))
    url = f"{server.url}/big.jsonl.gz"
    cache = tmp_path / "cache"
    res = shell(f"cqia fetch --cache-dir {cache} {url} | head -1")
    assert res.exit_code == 0 and res.stderr == ""
    assert orjson.loads(res.stdout) == cqia_record(0)
    one = shell(f"cqia fetch -q --cache-dir {cache} --add-source {url} | sha256sum")
    two = shell(f"cqia fetch -q --cache-dir {cache} --add-source {url} | sha256sum")
    assert one.exit_code == 0 and one.stdout == two.stdout and one.stderr == ""


def test_shell_error_status(server, tmp_path):
    cqia_executable()
    url = f"{server.url}/missing.jsonl"
    res = shell(f"cqia fetch --cache-dir {tmp_path} {url}; echo status=$?")
    assert res.stdout == "status=66\n"
    assert res.stderr == f"cqia fetch: {url}: HTTP 404 Not Found\n"


def test_shell_into_the_pipeline(server, tmp_path):
    cqia_executable()
    server.files["/qa.jsonl"] = jsonl_bytes(RECORDS)
    res = shell(f"cqia fetch -q --cache-dir {tmp_path} {server.url}/qa.jsonl | cqia validate")
    assert res.exit_code == 0, res
    assert res.records() == RECORDS


def test_interrupted_download_resumes_on_the_next_run(server, tmp_path):
    import signal
    import time

    exe = cqia_executable()
    data = _big(600)
    server.files["/big.jsonl"] = data
    server.delay = 0.03
    cache = tmp_path / "cache"
    cmd = [exe, "fetch", "--cache-dir", str(cache), f"{server.url}/big.jsonl"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    part = None
    while time.monotonic() < deadline:  # wait until some bytes have arrived
        parts = list(cache.rglob("*.part"))
        if parts and parts[0].stat().st_size > 8192:
            part = parts[0]
            break
        time.sleep(0.02)
    assert part is not None
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert err.decode().endswith("cqia fetch: terminated\n") and out == b""
    kept = part.stat().st_size
    assert 0 < kept < len(data)
    server.delay = 0
    res = fetch(cache, f"{server.url}/big.jsonl")
    assert res.exit_code == 0, res
    assert server.requests("/big.jsonl")[-1][1] == f"bytes={kept}-"
    assert res.stdout_bytes == orjson_lines(data)


@pytest.mark.parametrize("fmt,data,expected", [
    ("csv", b"instruction,output\na,b\n", [{"instruction": "a", "output": "b"}]),
    ("json", b'[{"a": 1}, {"a": 2}]', [{"a": 1}, {"a": 2}]),
])
def test_other_containers_on_stdin(cache, tmp_path, fmt, data, expected):
    local = write_jsonl(tmp_path / "x.jsonl", [{"z": 0}])
    res = fetch(cache, "--format", fmt, "-", input=data)
    assert res.exit_code == 0, res
    assert res.records() == expected
    res = fetch(cache, "--format", "jsonl", "-", local, input=b'{"s": 1}\n')
    assert res.records() == [{"s": 1}, {"z": 0}]


def test_parquet_on_stdin(cache, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "qa.parquet"
    pq.write_table(pa.Table.from_pylist(RECORDS), path)
    res = fetch(cache, "--format", "parquet", "-", input=path.read_bytes())
    assert res.exit_code == 0, res
    assert res.records() == RECORDS


def test_whole_repository_takes_data_files_only(server, cache):
    """As hf://datasets/m-a-p/COIG-CQIA is laid out: subsets in folders, their metadata in
    dataset_infos.json, and all of them again in one top-level file (issue 16)."""
    files = _repo(server)
    files["dataset_infos.json"] = json.dumps({"default": {"features": {}}}).encode()
    files["set-full.jsonl"] = b"".join(files[p] for p in ("a/x.jsonl", "a/y.jsonl", "b/z.jsonl"))
    files[".hidden/cache.jsonl"] = jsonl_bytes(RECORDS[:1])
    res = fetch(cache, "--endpoint", server.url, "--add-source", "hf://datasets/org/set")
    assert res.exit_code == 0, res
    uris = list(dict.fromkeys(r["_source"]["uri"] for r in res.records()))
    assert uris == [f"hf://datasets/org/set/{p}" for p in
                    ("a/deep/w.jsonl.gz", "a/x.jsonl", "a/y.jsonl", "b/z.jsonl")]
    assert ("cqia fetch: hf://datasets/org/set/set-full.jsonl: skipped, its name says it holds "
            "the repository's other files in one") in res.stderr
    # named, it is fetched
    res = fetch(cache, "--endpoint", server.url, "hf://datasets/org/set/set-full.jsonl")
    assert res.exit_code == 0 and len(res.records()) == len(RECORDS)
    # a repository whose only data is one top-level file keeps it
    server.repos[("org/flat", "main")] = {"all.jsonl": jsonl_bytes(RECORDS[:2]),
                                          "dataset_infos.json": b"{}"}
    res = fetch(cache, "--endpoint", server.url, "hf://datasets/org/flat")
    assert res.exit_code == 0 and res.records() == RECORDS[:2]


# -- the fake must behave like the hub where fetch relies on it --------------------------------


def test_fake_hub_paginates_and_serves_ranges():
    import urllib.request

    srv = Server()
    try:
        srv.repos[("o/n", "main")] = {"a/x.jsonl": b"1\n", "a/y.jsonl": b"22\n", "z.csv": b"h\n"}
        srv.page_size = 2
        url = f"{srv.url}/api/datasets/o/n/tree/main?recursive=true"
        paths = []
        while url:
            with urllib.request.urlopen(url) as resp:
                paths += [e["path"] for e in json.load(resp)]
                link = resp.headers.get("Link")
            url = link[1:link.index(">")] if link else None
        assert sorted(paths) == ["a", "a/x.jsonl", "a/y.jsonl", "z.csv"]
        srv.files["/f"] = b"0123456789"
        req = urllib.request.Request(f"{srv.url}/f", headers={"Range": "bytes=4-"})
        with urllib.request.urlopen(req) as resp:
            assert resp.status == 206 and resp.read() == b"456789"
    finally:
        srv.stop()
