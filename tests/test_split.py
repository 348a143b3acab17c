"""cqia split: every record in exactly one file, exact ratios, groups, strata, seeds, --stream."""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import orjson
import pytest

from conftest import cqia_record, invoke, shell, write_jsonl

RATIOS = "train=0.8,valid=0.1,test=0.1"


def make_records(n: int) -> list[dict]:
    recs = []
    for i in range(n):
        rec = cqia_record(i)
        rec["task_type"] = {"major": [("问答", "生成", "分类", "翻译")[i % 4 if i % 10 else 0]],
                            "minor": []}
        rec["domain"] = [("通用", "医学", "法律")[i % 3]]
        rec["_cluster"] = i // 5 if i % 2 else i  # some groups of several records
        rec["id"] = i
        recs.append(rec)
    return recs


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        return [orjson.loads(line) for line in f if line.strip()]


def split_files(out: Path) -> dict[str, list[dict]]:
    return {p.name.split(".")[0]: read_jsonl(p) for p in sorted(out.iterdir())
            if not p.name.startswith(".")}


@pytest.fixture
def data(tmp_path) -> Path:
    return write_jsonl(tmp_path / "in.jsonl", make_records(1003))


@pytest.fixture
def out(tmp_path) -> Path:
    d = tmp_path / "out"
    d.mkdir()
    return d


def run_split(data: Path, out: Path, *args, input=None) -> dict[str, list[dict]]:
    files = [] if input is not None else [data]
    res = invoke(["split", *args, "-o", f"{out}/{{split}}.jsonl", *files], input=input)
    assert res.exit_code == 0, res
    assert res.stdout_bytes == b""
    return split_files(out)


def assert_partition(parts: dict[str, list[dict]], records: list[dict]) -> None:
    """Every input record in exactly one output, and each file in input order."""
    ids = [r["id"] for recs in parts.values() for r in recs]
    assert sorted(ids) == [r["id"] for r in records]
    for recs in parts.values():
        assert [r["id"] for r in recs] == sorted(r["id"] for r in recs)
    by_id = {r["id"]: r for r in records}
    for recs in parts.values():
        for r in recs:
            assert r == by_id[r["id"]]


# -- exact mode -----------------------------------------------------------------------------

def test_exact_ratios(data, out):
    parts = run_split(data, out, "--ratios", RATIOS)
    assert_partition(parts, make_records(1003))
    # 1003 * (0.8, 0.1, 0.1) = 802.4, 100.3, 100.3: floors 802, 100, 100, the extra to train
    assert {k: len(v) for k, v in parts.items()} == {"train": 803, "valid": 100, "test": 100}


def test_counts_with_rest(data, out):
    parts = run_split(data, out, "--counts", "test=17,valid=30", "--rest", "rest")
    assert {k: len(v) for k, v in parts.items()} == {"test": 17, "valid": 30, "rest": 956}
    assert_partition(parts, make_records(1003))


def test_ratios_below_one_leave_the_rest_to_train(data, out):
    parts = run_split(data, out, "--ratios", "test=0.1")
    assert {k: len(v) for k, v in parts.items()} == {"test": 100, "train": 903}


def test_fraction_ratios(data, out):
    parts = run_split(data, out, "--ratios", "a=1/3,b=1/3,c=1/3")
    assert sorted(len(v) for v in parts.values()) == [334, 334, 335]


def test_stdin_is_spooled_and_gives_the_same_split(data, out, tmp_path):
    from_file = run_split(data, out, "--ratios", RATIOS, "--seed", "7")
    out2 = tmp_path / "out2"
    out2.mkdir()
    from_stdin = run_split(data, out2, "--ratios", RATIOS, "--seed", "7",
                           input=data.read_bytes())
    assert from_stdin == from_file
    assert (out / "train.jsonl").read_bytes() == (out2 / "train.jsonl").read_bytes()


def test_same_seed_same_output_other_seed_other_output(data, tmp_path):
    def files(seed: str, name: str) -> dict[str, bytes]:
        d = tmp_path / name
        d.mkdir()
        run_split(data, d, "--ratios", RATIOS, "--seed", seed)
        return {p.name: p.read_bytes() for p in d.iterdir()}

    first = files("1", "a")
    assert first == files("1", "b")
    assert first["test.jsonl"] != files("2", "c")["test.jsonl"]


def test_stratified_ratios_within_one_record(data, out):
    records = make_records(1003)
    parts = run_split(data, out, "--ratios", RATIOS, "--stratify", "task_type.major")
    assert_partition(parts, records)
    assert {k: len(v) for k, v in parts.items()} == {"train": 803, "valid": 100, "test": 100}
    strata = Counter(r["task_type"]["major"][0] for r in records)
    ratios = {"train": 0.8, "valid": 0.1, "test": 0.1}
    for stratum, size in strata.items():
        for name, recs in parts.items():
            got = sum(1 for r in recs if r["task_type"]["major"][0] == stratum)
            assert abs(got - size * ratios[name]) < 1, (stratum, name, got, size)


def test_stratify_many_small_strata_stay_exact(tmp_path, out):
    # 97 strata of 1 to 9 records: each stratum within one record, the totals still exact
    records = [dict(cqia_record(i), id=i, s=f"s{(i * 7) % 97}") for i in range(500)]
    data = write_jsonl(tmp_path / "in.jsonl", records)
    parts = run_split(data, out, "--ratios", "a=0.5,b=0.3,c=0.2", "--stratify", "s")
    assert {k: len(v) for k, v in parts.items()} == {"a": 250, "b": 150, "c": 100}
    sizes = Counter(r["s"] for r in records)
    for name, ratio in (("a", 0.5), ("b", 0.3), ("c", 0.2)):
        got = Counter(r["s"] for r in parts[name])
        for s, size in sizes.items():
            assert abs(got[s] - size * ratio) < 1


def test_stratify_by_list_field_uses_its_first_element(tmp_path, out):
    records = [dict(cqia_record(i), id=i, domain=["医学", "通用"] if i < 40 else ["法律"])
               for i in range(100)]
    data = write_jsonl(tmp_path / "in.jsonl", records)
    res = invoke(["split", "--ratios", "train=0.5,test=0.5", "--stratify", "domain",
                  "-o", f"{out}/{{split}}.jsonl", data])
    assert res.exit_code == 0, res
    parts = split_files(out)
    assert sum(1 for r in parts["test"] if r["domain"][0] == "医学") == 20
    assert "医学" in res.stderr and "法律" in res.stderr and "通用" not in res.stderr


def test_group_by_keeps_groups_together(data, out):
    records = make_records(1003)
    parts = run_split(data, out, "--ratios", RATIOS, "--group-by", "_cluster")
    assert_partition(parts, records)
    home = {}
    for name, recs in parts.items():
        for r in recs:
            assert home.setdefault(r["_cluster"], name) == name
    sizes = {k: len(v) for k, v in parts.items()}
    # groups of up to 5 records: each split within one group of its target
    assert abs(sizes["test"] - 100) <= 5 and abs(sizes["valid"] - 100) <= 5


def test_group_by_with_stratify(data, out):
    parts = run_split(data, out, "--ratios", RATIOS, "--group-by", "_cluster",
                      "--stratify", "domain")
    assert_partition(parts, make_records(1003))
    home = {}
    for name, recs in parts.items():
        for r in recs:
            assert home.setdefault(r["_cluster"], name) == name


def test_group_by_missing_value_is_a_group_of_its_own(tmp_path, out):
    records = [dict(cqia_record(i), id=i) for i in range(100)]  # no _cluster at all
    data = write_jsonl(tmp_path / "in.jsonl", records)
    parts = run_split(data, out, "--ratios", "train=0.9,test=0.1", "--group-by", "_cluster")
    assert {k: len(v) for k, v in parts.items()} == {"train": 90, "test": 10}


def test_compression_by_suffix(data, out):
    res = invoke(["split", "--ratios", RATIOS, "-o", f"{out}/{{split}}.jsonl.gz", data])
    assert res.exit_code == 0, res
    assert sorted(p.name for p in out.iterdir()) == ["test.jsonl.gz", "train.jsonl.gz",
                                                     "valid.jsonl.gz"]
    assert_partition({p.name: read_jsonl(p) for p in out.iterdir()}, make_records(1003))


def test_empty_input_writes_empty_files(tmp_path, out):
    data = write_jsonl(tmp_path / "in.jsonl", [])
    parts = run_split(data, out, "--ratios", RATIOS)
    assert parts == {"train": [], "valid": [], "test": []}


def test_summary_table_on_stderr(data, out):
    res = invoke(["split", "--ratios", RATIOS, "--stratify", "domain",
                  "-o", f"{out}/{{split}}.jsonl", data])
    assert res.exit_code == 0
    assert "split: 1,003 records: train 803, valid 100, test 100" in res.stderr
    assert "train.jsonl" in res.stderr
    assert "法律" in res.stderr and "domain" in res.stderr
    quiet = invoke(["split", "-q", "--ratios", RATIOS, "-o", f"{out}/{{split}}.jsonl", data])
    assert quiet.exit_code == 0 and quiet.stderr == ""


# -- stream mode ----------------------------------------------------------------------------

def test_stream_partition_and_rough_ratios(data, out):
    parts = run_split(data, out, "--stream", "--ratios", RATIOS)
    assert_partition(parts, make_records(1003))
    assert 700 < len(parts["train"]) < 900


def test_stream_identical_over_shards_of_the_input(tmp_path):
    records = make_records(1003)
    write_jsonl(tmp_path / "whole.jsonl", records)
    write_jsonl(tmp_path / "first.jsonl", records[:400])
    write_jsonl(tmp_path / "second.jsonl", records[400:])
    results = {}
    for name in ("whole", "first", "second"):
        d = tmp_path / f"out-{name}"
        d.mkdir()
        results[name] = run_split(tmp_path / f"{name}.jsonl", d, "--stream", "--ratios", RATIOS,
                                  "--seed", "5")
    for split in ("train", "valid", "test"):
        assert results["whole"][split] == results["first"][split] + results["second"][split]


def test_stream_seed_changes_assignment_and_key_is_used(tmp_path, data):
    def parts(*args) -> dict[str, list[int]]:
        d = tmp_path / f"o{len(list(tmp_path.iterdir()))}"
        d.mkdir()
        return {k: [r["id"] for r in v] for k, v in
                run_split(data, d, "--stream", "--ratios", RATIOS, *args).items()}

    assert parts("--seed", "1") == parts("--seed", "1")
    assert parts("--seed", "1") != parts("--seed", "2")
    # the same key (domain has three values) puts records in the same split
    (tmp_path / "d").mkdir()
    by_domain = run_split(data, tmp_path / "d", "--stream", "--ratios", RATIOS, "--key", "domain")
    homes = {}
    for name, recs in by_domain.items():
        for r in recs:
            assert homes.setdefault(r["domain"][0], name) == name


def test_stream_group_by(data, out):
    parts = run_split(data, out, "--stream", "--ratios", RATIOS, "--group-by", "_cluster")
    home = {}
    for name, recs in parts.items():
        for r in recs:
            assert home.setdefault(r["_cluster"], name) == name


# -- shards ---------------------------------------------------------------------------------

def test_shards_equal_sizes(data, out):
    res = invoke(["split", "--shards", "4", "-o", f"{out}/part-{{shard:03d}}.jsonl", data])
    assert res.exit_code == 0, res
    names = sorted(p.name for p in out.iterdir())
    assert names == ["part-000.jsonl", "part-001.jsonl", "part-002.jsonl", "part-003.jsonl"]
    sizes = [len(read_jsonl(out / n)) for n in names]
    assert sizes == [251, 251, 251, 250]
    assert_partition({n: read_jsonl(out / n) for n in names}, make_records(1003))


def test_shard_size_cuts_in_input_order(data, out):
    res = invoke(["split", "--shard-size", "300", "-o", f"{out}/c{{shard}}.jsonl.gz", data])
    assert res.exit_code == 0, res
    files = [out / f"c{i}.jsonl.gz" for i in range(4)]
    assert sorted(out.iterdir()) == sorted(files)
    got = [read_jsonl(p) for p in files]
    assert [len(g) for g in got] == [300, 300, 300, 103]
    assert [r for g in got for r in g] == make_records(1003)


def test_a_split_may_be_called_all(data, out):
    parts = run_split(data, out, "--ratios", "all=1")
    assert len(parts["all"]) == 1003


def test_shard_size_within_splits(data, out):
    res = invoke(["split", "--ratios", RATIOS, "--shard-size", "400",
                  "-o", f"{out}/{{split}}-{{shard}}.jsonl", data])
    assert res.exit_code == 0, res
    assert sorted(p.name for p in out.iterdir()) == [
        "test-0.jsonl", "train-0.jsonl", "train-1.jsonl", "train-2.jsonl", "valid-0.jsonl"]
    assert len(read_jsonl(out / "train-2.jsonl")) == 3


# -- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--ratios", RATIOS], "give -o/--output with a pattern"),
    (["--ratios", RATIOS, "-o", "out.jsonl"], "has no {split}"),
    (["--shards", "3", "-o", "{split}.jsonl"], "has no {shard}"),
    (["--ratios", RATIOS, "-o", "{split}-{part}.jsonl"], "unknown field {part}"),
    (["--ratios", "train=0.9,test=0.2", "-o", "{split}.jsonl"], "add up to 1.1, more than 1"),
    (["--ratios", "train=x", "-o", "{split}.jsonl"], "train=x: not a number"),
    (["--ratios", "train=0.5,train=0.5", "-o", "{split}.jsonl"], "train is given twice"),
    (["--ratios", "train=0.9", "--counts", "test=5", "-o", "{split}.jsonl"],
     "give only one of --ratios and --counts"),
    (["-o", "{split}.jsonl"], "say how to split"),
    (["--counts", "test=-1", "-o", "{split}.jsonl"], "a count is a whole number"),
    (["--counts", "test=5", "--rest", "test", "-o", "{split}.jsonl"], "also in --counts"),
    (["--ratios", "a=0.5,b=0.5", "--rest", "c", "-o", "{split}.jsonl"], "would get nothing"),
    (["--stream", "--counts", "test=5", "-o", "{split}.jsonl"], "--counts needs exact mode"),
    (["--stream", "--ratios", RATIOS, "--stratify", "domain", "-o", "{split}.jsonl"],
     "--stratify needs exact mode"),
    (["--ratios", RATIOS, "--key", "instruction", "-o", "{split}.jsonl"],
     "--key sets the hash key of --stream"),
    (["--shards", "2", "--shard-size", "5", "-o", "{shard}.jsonl"], "not both"),
    (["--ratios", "a/b=0.5", "-o", "{split}.jsonl"], "not a usable split name"),
    (["--shard-size", "9", "--stratify", "domain", "-o", "{shard}.jsonl"],
     "--stratify goes with --ratios, --counts or --shards"),
    (["--ratios", RATIOS, "--group-by", "a..b", "-o", "{split}.jsonl"], "bad field path"),
])
def test_usage_errors(tmp_path, data, args, message):
    res = invoke(["split", *args, data])
    assert res.exit_code == 2, res
    assert message in res.stderr
    assert not list(tmp_path.glob("*.jsonl*")) or sorted(
        p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_counts_larger_than_input(data, out):
    res = invoke(["split", "--counts", "test=2000", "-o", f"{out}/{{split}}.jsonl", data])
    assert res.exit_code == 2
    assert res.stderr == "cqia split: --counts asks for 2,000 records but the input has 1,003\n"
    assert list(out.iterdir()) == []


def test_bad_json_line_reports_file_and_line_and_writes_nothing(tmp_path, out):
    data = write_jsonl(tmp_path / "in.jsonl", make_records(5), raw_lines=[b"{oops\n"])
    res = invoke(["split", "--ratios", RATIOS, "-o", f"{out}/{{split}}.jsonl", data])
    assert res.exit_code == 65
    assert res.stderr.startswith(f"cqia split: {data}:6: invalid JSON")
    assert list(out.iterdir()) == []


def test_on_error_skip_in_exact_mode_reads_the_same_records_twice(tmp_path, out):
    data = write_jsonl(tmp_path / "in.jsonl", make_records(50),
                       raw_lines=[b"[1]\n", b"\n", b"not json\n"])
    errors = tmp_path / "bad.txt"
    res = invoke(["split", "--ratios", "train=0.5,test=0.5", "--on-error", "skip",
                  "--errors", errors, "-o", f"{out}/{{split}}.jsonl", data])
    assert res.exit_code == 0, res
    parts = split_files(out)
    assert_partition(parts, make_records(50))
    assert errors.read_bytes() == b"[1]\nnot json\n"
    assert "skipped 2 bad lines" in res.stderr


def test_missing_input(out):
    res = invoke(["split", "--ratios", RATIOS, "-o", f"{out}/{{split}}.jsonl", "nope.jsonl"])
    assert res.exit_code == 66
    assert res.stderr == "cqia split: nope.jsonl: no such file\n"


def test_missing_output_directories_are_made(data, tmp_path):
    res = invoke(["split", "--ratios", RATIOS, "-o", f"{tmp_path}/no/such/{{split}}.jsonl", data])
    assert res.exit_code == 0, res
    assert sorted(p.name for p in (tmp_path / "no" / "such").iterdir()) == sorted(
        f"{name}.jsonl" for name, _ in (r.split("=") for r in RATIOS.split(",")))


def test_refuses_to_write_over_an_input(data, tmp_path):
    res = invoke(["split", "--ratios", "in=0.5,test=0.5", "-o", f"{tmp_path}/{{split}}.jsonl",
                  data])
    assert res.exit_code == 74
    assert "refusing to write over an input file" in res.stderr
    assert len(read_jsonl(data)) == 1003


# -- the installed command in a real shell ---------------------------------------------------

def test_shell_pipe_from_stdin_is_byte_identical_twice(data, tmp_path):
    cmd = (f"cat {data} | cqia split --ratios {RATIOS} --stratify domain -q "
           f"-o '{tmp_path}/{{d}}/{{{{split}}}}.jsonl'")
    outputs = []
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        res = shell(cmd.format(d=d))
        assert res.exit_code == 0 and res.stderr == "", res
        outputs.append({p.name: p.read_bytes() for p in (tmp_path / d).iterdir()})
    assert outputs[0] == outputs[1]
    assert set(outputs[0]) == {"train.jsonl", "valid.jsonl", "test.jsonl"}


def test_shell_stream_shards_concatenate_to_the_whole(data, tmp_path):
    split = f"cqia split -q --stream --ratios {RATIOS}"
    res = shell(
        f"cd {tmp_path} && mkdir w h && "
        f"{split} -o 'w/{{split}}.jsonl' {data} && "
        f"head -n 500 {data} | {split} -o 'h/{{split}}-1.jsonl' && "
        f"tail -n +501 {data} | {split} -o 'h/{{split}}-2.jsonl' && "
        "for s in train valid test; do cat h/$s-1.jsonl h/$s-2.jsonl | cmp - w/$s.jsonl; done")
    assert res.exit_code == 0, res


def test_shell_files_then_pipeline(data, tmp_path):
    res = shell(f"cd {tmp_path} && cqia split --ratios {RATIOS} -o '{{split}}.jsonl.gz' {data} "
                "2>/dev/null && zcat test.jsonl.gz | head -1")
    assert res.exit_code == 0 and res.stderr == "", res
    assert orjson.loads(res.stdout_bytes)["instruction"]


def test_other_encoding_read_twice_and_spooled(tmp_path, out):
    records = make_records(30)
    data = tmp_path / "in.jsonl"
    data.write_bytes(b"".join(orjson.dumps(r).decode("utf-8").encode("gb18030") + b"\n"
                              for r in records))
    from_file = run_split(data, out, "--ratios", "a=0.5,b=0.5", "--encoding", "gb18030")
    assert_partition(from_file, records)
    out2 = tmp_path / "out2"
    out2.mkdir()
    from_stdin = run_split(data, out2, "--ratios", "a=0.5,b=0.5", "--encoding", "gb18030",
                           input=data.read_bytes())
    assert from_stdin == from_file


def test_shell_process_substitution_is_spooled_not_read_twice(data, tmp_path):
    res = shell(f"cd {tmp_path} && mkdir f p && "
                f"cqia split -q --ratios {RATIOS} -o 'f/{{split}}.jsonl' {data} && "
                f"cqia split -q --ratios {RATIOS} -o 'p/{{split}}.jsonl' <(cat {data}) && "
                "for s in train valid test; do cmp f/$s.jsonl p/$s.jsonl; done")
    assert res.exit_code == 0 and res.stderr == "", res


def test_counts_with_stratify(data, out):
    records = make_records(1003)
    parts = run_split(data, out, "--counts", "test=100", "--stratify", "domain")
    assert len(parts["test"]) == 100 and len(parts["train"]) == 903
    sizes = Counter(r["domain"][0] for r in records)
    got = Counter(r["domain"][0] for r in parts["test"])
    for domain, size in sizes.items():
        assert abs(got[domain] - 100 * size / 1003) < 1


def test_stream_shards(data, out):
    res = invoke(["split", "--stream", "--shards", "3", "-o", f"{out}/{{shard}}.jsonl", data])
    assert res.exit_code == 0, res
    parts = {p.name: read_jsonl(p) for p in out.iterdir()}
    assert sorted(parts) == ["0.jsonl", "1.jsonl", "2.jsonl"]
    assert_partition(parts, make_records(1003))
    assert all(250 < len(v) < 420 for v in parts.values())


def test_many_shards_summarised_in_one_line(data, out):
    res = invoke(["split", "--shards", "40", "-o", f"{out}/{{shard:02d}}.jsonl", data])
    assert res.exit_code == 0, res
    assert len(list(out.iterdir())) == 40
    assert res.stderr == "split: 1,003 records: 40 shards of 25 to 26\n"


@pytest.mark.parametrize("mode", [[], ["--stream"]])
def test_negative_seed_is_another_seed(data, tmp_path, mode):
    got = []
    for seed in ("1", "-1"):
        d = tmp_path / f"s{seed}"
        d.mkdir()
        got.append([r["id"] for r in run_split(data, d, "--ratios", RATIOS, "--seed", seed,
                                                 *mode)["test"]])
    assert got[0] != got[1]


def test_errors_file_may_not_be_a_split_file(data, out):
    res = invoke(["split", "--ratios", RATIOS, "--on-error", "skip", "--errors",
                  f"{out}/test.jsonl", "-o", f"{out}/{{split}}.jsonl", data])
    assert res.exit_code == 2
    assert res.stderr == (f"cqia split: {out}/test.jsonl: given for both --errors and "
                          "--output\n")
    assert list(out.iterdir()) == []


def test_thousands_of_shards(tmp_path, out):
    data = write_jsonl(tmp_path / "in.jsonl", make_records(20))
    res = invoke(["split", "-q", "--shards", "1100", "-o", f"{out}/{{shard:04d}}.jsonl", data])
    assert res.exit_code == 0, res
    files = sorted(out.iterdir())
    assert len(files) == 1100 and files[0].name == "0000.jsonl"
    assert sum(len(read_jsonl(p)) for p in files) == 20


def test_compressed_input_is_read_twice(tmp_path, out):
    records = make_records(200)
    data = tmp_path / "in.jsonl.gz"
    with gzip.open(data, "wb") as f:
        f.write(b"".join(orjson.dumps(r) + b"\n" for r in records))
    parts = run_split(data, out, "--ratios", RATIOS, "--group-by", "_cluster")
    assert_partition(parts, records)


def test_mark_writes_every_record_in_order_with_its_split(data, out):
    res = invoke(["split", "--mark", "--ratios", RATIOS, "--seed", "3", data])
    assert res.exit_code == 0, res
    marked = res.records()
    assert [r["id"] for r in marked] == list(range(1003))
    assert Counter(r["_split"] for r in marked) == {"train": 803, "valid": 100, "test": 100}
    # the same assignment as the files
    parts = run_split(data, out, "--ratios", RATIOS, "--seed", "3")
    for name, recs in parts.items():
        assert {r["id"] for r in recs} == {r["id"] for r in marked if r["_split"] == name}
    assert {k: v for k, v in marked[0].items() if k != "_split"} == make_records(1)[0]


def test_mark_shards_from_stdin_and_to_a_file(data, tmp_path):
    target = tmp_path / "marked.jsonl.gz"
    res = invoke(["split", "--mark", "--shards", "3", "-o", target], input=data.read_bytes())
    assert res.exit_code == 0, res
    marked = read_jsonl(target)
    assert sorted(Counter(r["_shard"] for r in marked).values()) == [334, 334, 335]
    assert {r["_shard"] for r in marked} == {0, 1, 2}
    res = invoke(["split", "--mark", "--shard-size", "5", data])
    assert res.exit_code == 2 and "--mark writes one stream" in res.stderr


def test_shell_mark_head_ends_quietly(tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", make_records(20000))
    for mode in ("", "--stream"):
        res = shell(f"cqia split --mark {mode} --ratios {RATIOS} {data} | head -1")
        assert res.exit_code == 0 and res.stderr == "", res
        assert orjson.loads(res.stdout_bytes)["_split"] in ("train", "valid", "test")


def _with_a_deep_record(tmp_path: Path) -> tuple[Path, bytes]:
    """Six records of two strata, the third nested 500 levels deep (read, not writable)."""
    deep: object = 0
    for _ in range(500):
        deep = [deep]
    recs = [cqia_record(i, task_type={"major": ["问答" if i % 2 else "翻译"], "minor": []})
            for i in range(6)]
    recs[2]["extra"] = deep
    path = write_jsonl(tmp_path / "deep.jsonl", recs)
    return path, path.read_bytes().split(b"\n")[2] + b"\n"


@pytest.mark.parametrize("stdin", [False, True])
def test_exact_split_names_a_record_it_cannot_write(tmp_path, stdin):
    # the exact split reads twice (standard input kept meanwhile): the line named is the
    # record's own, not the last one read, and the record gets no part
    path, line = _with_a_deep_record(tmp_path)
    name = "<stdin>" if stdin else str(path)
    args = ["split", "--ratios", "a=0.5,b=0.5", "--stratify", "task_type.major",
            "-o", str(tmp_path / "out" / "{split}.jsonl")]
    res = invoke(args + (["-"] if stdin else [path]),
                 input=path.read_bytes() if stdin else None)
    assert res.exit_code == 65, res
    assert res.stderr == (f"cqia split: {name}:3: cannot write a record as JSON: "
                          "Recursion limit reached\n")
    assert not (tmp_path / "out").exists()
    errors = tmp_path / "errors.jsonl"
    res = invoke(args + ["-q", "--on-error", "skip", "--errors", errors]
                 + (["-"] if stdin else [path]), input=path.read_bytes() if stdin else None)
    assert res.exit_code == 0, res
    assert errors.read_bytes() == line
    parts = [read_jsonl(tmp_path / "out" / f"{p}.jsonl") for p in ("a", "b")]
    assert sorted(len(p) for p in parts) == [2, 3]
    assert "extra" not in str(parts)
