"""Where outputs go: every output of every command (-o and the side outputs) through io.Output.

A device, FIFO, socket or /dev/fd/N is written in place and never replaced; a symlink's target is
written atomically and the link stays; regular files and new paths are written atomically, with
their missing parent directories made. Devices are made with mknod inside tmp_path (root only):
no test here, nor anywhere in the suite, names a system device as an output
(test_no_test_names_a_system_device_as_an_output checks it).
"""

from __future__ import annotations

import io
import os
import re
import socket
import stat
import threading
from pathlib import Path

import numpy as np
import orjson
import pytest

from conftest import cqia_record, invoke, shell, write_jsonl

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
needs_root = pytest.mark.skipif(not ROOT, reason="mknod needs root")

#: (verb, arguments) for every file output of every local verb; "{o}" is the output under
#: test, "{tmp}" the test's directory. Each writes something with the input of `_input`.
OUTPUTS = [
    ("validate", ["-o", "{o}"]),
    ("validate", ["--invalid", "{o}"]),
    ("filter", ["-o", "{o}"]),
    ("filter", ["--min-len", "output=1000", "--rejects", "{o}"]),
    ("filter", ["--report", "{o}"]),
    ("dedup", ["-o", "{o}"]),
    ("dedup", ["--dupes", "{o}"]),
    ("dedup", ["--clusters", "{o}"]),
    ("dedup", ["--save-index", "{o}"]),
    ("stats", ["-o", "{o}"]),
    ("stats", ["--html", "{o}"]),
    ("convert", ["--from", "cqia", "--to", "alpaca", "-o", "{o}"]),
    ("convert", ["--from", "cqia", "--to", "alpaca", "-o", "{tmp}/x.jsonl",
                 "--name", "x", "--dataset-info", "{o}"]),
    ("split", ["--ratios", "a=0.5,b=0.5", "-o", "{o}"]),
]
IDS = [f"{verb}{'-' + next((a for a in args if a.startswith('-') and a != '-o' and '{o}' in args[args.index(a) + 1]), '-o')}"
       for verb, args in OUTPUTS]


def _input(tmp_path: Path) -> Path:
    """Ten valid records, each twice (dedup has duplicates to write), one without task_type
    (validate --invalid has something to write)."""
    recs = [cqia_record(i) for i in range(5)] * 2
    del recs[0]["task_type"]
    return write_jsonl(tmp_path / "in.jsonl", recs)


def _compact(path: Path) -> bytes:
    """The records of a JSON Lines file as cqia writes them."""
    return b"".join(orjson.dumps(orjson.loads(line)) + b"\n" for line in path.read_bytes().splitlines())


def _args(verb: str, args: list[str], out: str, tmp_path: Path) -> list[str]:
    if verb == "split":  # one output per part: the test's name stands for each
        out = out + "_{split}"
    return [verb, "-q"] + [a.replace("{o}", out).replace("{tmp}", str(tmp_path)) for a in args]


def _outputs_named(verb: str, out: Path) -> list[Path]:
    return [Path(f"{out}_a"), Path(f"{out}_b")] if verb == "split" else [out]


# -- devices --------------------------------------------------------------------------------


@needs_root
@pytest.mark.parametrize("verb,args", OUTPUTS, ids=IDS)
def test_a_character_device_is_written_in_place(verb, args, tmp_path):
    data = _input(tmp_path)
    out = tmp_path / "null"
    for node in _outputs_named(verb, out):
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    res = invoke(_args(verb, args, str(out), tmp_path) + [str(data)])
    assert res.exit_code in (0, 1), res  # validate --invalid: 1, records were invalid
    for node in _outputs_named(verb, out):
        assert stat.S_ISCHR(os.lstat(node).st_mode), f"{node} was replaced"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@needs_root
@pytest.mark.parametrize("verb,args", OUTPUTS, ids=IDS)
def test_a_full_device_is_status_74_in_one_line(verb, args, tmp_path):
    data = _input(tmp_path)
    out = tmp_path / "full"
    for node in _outputs_named(verb, out):
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    res = invoke(_args(verb, args, str(out), tmp_path) + [str(data)])
    assert res.exit_code == 74, res
    lines = [line for line in res.stderr.splitlines() if line.startswith("cqia ")]
    assert "Traceback" not in res.stderr
    assert len(lines) == 1 and re.match(
        rf"cqia {verb}: {re.escape(str(out))}(_[ab])?: cannot write: No space left on device$",
        lines[0]), res
    for node in _outputs_named(verb, out):
        assert stat.S_ISCHR(os.lstat(node).st_mode)


@needs_root
def test_compressed_output_to_a_full_device_is_74(tmp_path):
    data = _input(tmp_path)
    out = tmp_path / "full.gz"
    os.mknod(out, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    res = invoke(["validate", "-o", str(out), str(data)])
    assert res.exit_code == 74 and "No space left on device" in res.stderr, res


@needs_root
def test_the_same_device_may_take_several_outputs(tmp_path):
    data = _input(tmp_path)
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    res = invoke(["filter", "-q", "--min-len", "output=1000", "-o", str(null), "--rejects",
                  str(null), "--report", str(null), str(data)])
    assert res.exit_code == 0, res
    assert stat.S_ISCHR(os.lstat(null).st_mode)


# -- FIFOs, sockets, descriptors ------------------------------------------------------------


class _Drain(threading.Thread):
    """Read a FIFO to its end in a thread, as the process at the other end would."""

    def __init__(self, path: Path):
        super().__init__(daemon=True)
        self.path = path
        self.data = b""
        self.start()

    def run(self) -> None:
        with open(self.path, "rb") as f:
            self.data = f.read()

    def result(self) -> bytes:
        self.join(20)
        assert not self.is_alive()
        return self.data


@pytest.mark.parametrize("verb,args", OUTPUTS, ids=IDS)
def test_a_fifo_is_written_in_place(verb, args, tmp_path):
    data = _input(tmp_path)
    out = tmp_path / "fifo"
    ref = tmp_path / "ref"
    drains = []
    for node in _outputs_named(verb, out):
        os.mkfifo(node)
        drains.append(_Drain(node))
    res = invoke(_args(verb, args, str(out), tmp_path) + [str(data)])
    assert res.exit_code in (0, 1), res
    got = [d.result() for d in drains]
    for node in _outputs_named(verb, out):
        assert stat.S_ISFIFO(os.lstat(node).st_mode)
    # the same bytes as to a regular file
    ref_res = invoke(_args(verb, args, str(ref), tmp_path) + [str(data)])
    assert ref_res.exit_code == res.exit_code
    want = [p.read_bytes() for p in _outputs_named(verb, ref)]
    if args[-1] == "{o}" and args[-2] == "--save-index":  # an .npz through a pipe: same arrays
        a, b = np.load(io.BytesIO(got[0])), np.load(io.BytesIO(want[0]))
        assert sorted(a.files) == sorted(b.files)
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
    elif verb == "stats" and "--html" in args:
        assert got[0].startswith(b"<!DOCTYPE html>") or got[0].startswith(b"<html")
    else:
        assert got == want


def test_compressed_output_to_a_fifo(tmp_path):
    import gzip
    import lzma

    data = _input(tmp_path)
    for name, decompress in (("fifo.jsonl.gz", gzip.decompress), ("fifo.jsonl.xz", lzma.decompress)):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        drain = _Drain(fifo)
        res = invoke(["filter", "-q", "-o", str(fifo), str(data)])
        assert res.exit_code == 0, res
        assert decompress(drain.result()) == _compact(data)


def test_a_unix_socket_is_written_in_place(tmp_path):
    data = _input(tmp_path)
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    got = []

    def serve():
        conn, _ = server.accept()
        with conn:
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
            got.append(b"".join(chunks))

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    res = invoke(["filter", "-q", "-o", str(path), str(data)])
    t.join(20)
    server.close()
    assert res.exit_code == 0, res
    assert got == [_compact(data)]
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_process_substitution_and_stdout_links_in_a_real_shell(tmp_path):
    data = _input(tmp_path)
    res = shell("cqia filter -q --min-len output=1000 in.jsonl -o kept.jsonl "
                "--rejects >(wc -l > count); wait $!; cat count", cwd=tmp_path)
    assert res.exit_code == 0 and res.stdout.strip() == "10", res
    res = shell("cqia filter -q in.jsonl -o >(cat > copy.jsonl); wait $!", cwd=tmp_path)
    assert res.exit_code == 0, res
    assert (tmp_path / "copy.jsonl").read_bytes() == _compact(data)
    # links made here as /dev/stdout and /dev/stderr are made (never the system's own names as
    # outputs in a test: a regression would replace them, as root)
    os.symlink("/proc/self/fd/1", tmp_path / "stdout")
    os.symlink("/proc/self/fd/2", tmp_path / "stderr")
    res = shell("cqia filter -q -o stdout in.jsonl", cwd=tmp_path)
    assert res.exit_code == 0 and res.stdout_bytes == _compact(data), res
    res = shell("cqia filter -q -o stderr in.jsonl 2>&1 >discarded", cwd=tmp_path)
    assert res.exit_code == 0 and res.stdout_bytes == _compact(data), res
    assert (tmp_path / "discarded").read_bytes() == b""
    big = write_jsonl(tmp_path / "big.jsonl", [cqia_record(i) for i in range(20000)])
    res = shell(f"set -o pipefail; cqia filter -q -o stdout {big} | head -1; "
                "echo status ${PIPESTATUS[0]}", cwd=tmp_path)
    assert res.stderr == "", res
    assert res.stdout.splitlines()[-1] == "status 141", res  # as `cat big | head -1` ends


# -- symbolic links, regular files ----------------------------------------------------------


@pytest.mark.parametrize("verb,args", [o for o in OUTPUTS if o[0] != "split"],
                         ids=[i for i, o in zip(IDS, OUTPUTS) if o[0] != "split"])
def test_a_symlink_keeps_its_link_and_its_target_is_written(verb, args, tmp_path):
    data = _input(tmp_path)
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "target"
    target.write_bytes(b"{}\n")  # an empty dataset_info.json for convert to merge into
    link = tmp_path / "link"
    link.symlink_to(target)
    res = invoke(_args(verb, args, str(link), tmp_path) + [str(data)])
    assert res.exit_code in (0, 1), res
    assert link.is_symlink() and os.readlink(link) == str(target)
    ref = tmp_path / "ref"
    invoke(_args(verb, args, str(ref), tmp_path) + [str(data)])
    if verb == "stats" and "--html" in args:
        assert target.read_bytes().startswith(b"<")
    elif "--save-index" not in args:
        assert target.read_bytes() == ref.read_bytes()
    assert [p.name for p in (tmp_path / "real").iterdir()] == ["target"]  # no temporary file


def test_a_dangling_symlink_makes_its_target(tmp_path):
    data = _input(tmp_path)
    link = tmp_path / "link.jsonl"
    link.symlink_to("made.jsonl")
    res = invoke(["filter", "-q", "-o", str(link), str(data)])
    assert res.exit_code == 0, res
    assert link.is_symlink() and (tmp_path / "made.jsonl").read_bytes() == _compact(data)


@pytest.mark.parametrize("verb,args", OUTPUTS, ids=IDS)
def test_a_link_to_an_input_is_refused(verb, args, tmp_path):
    data = _input(tmp_path)
    before = data.read_bytes()
    if verb == "split":
        for part in "ab":
            Path(f"{tmp_path}/link_{part}").symlink_to(data)
    else:
        (tmp_path / "link").symlink_to(data)
    res = invoke(_args(verb, args, str(tmp_path / "link"), tmp_path) + [str(data)])
    assert res.exit_code == 74, res
    assert "refusing to write over an input file" in res.stderr
    assert data.read_bytes() == before


def test_an_existing_file_keeps_its_mode(tmp_path):
    data = _input(tmp_path)
    out = tmp_path / "out.jsonl"
    out.write_bytes(b"old\n")
    out.chmod(0o640)
    assert invoke(["filter", "-q", "-o", str(out), str(data)]).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert out.read_bytes() == _compact(data)


# -- missing parent directories -------------------------------------------------------------


@pytest.mark.parametrize("verb,args", OUTPUTS, ids=IDS)
def test_missing_parent_directories_are_made(verb, args, tmp_path):
    data = _input(tmp_path)
    out = tmp_path / "new" / "deeper" / "out"
    res = invoke(_args(verb, args, str(out), tmp_path) + [str(data)])
    assert res.exit_code in (0, 1), res
    for path in _outputs_named(verb, out):
        assert path.is_file()


def test_split_and_convert_make_their_output_directory(tmp_path):
    data = _input(tmp_path)
    assert data.parent == tmp_path
    res = shell("cqia split -q --ratios train=0.8,test=0.2 -o 'out/{split}.jsonl' in.jsonl && "
                "cqia convert -q --from cqia --to alpaca -o conv/x.jsonl in.jsonl", cwd=tmp_path)
    assert res.exit_code == 0, res
    assert (tmp_path / "out" / "train.jsonl").is_file() and (tmp_path / "out" / "test.jsonl").is_file()
    assert (tmp_path / "conv" / "x.jsonl").is_file()


@pytest.mark.parametrize("verb,args", OUTPUTS, ids=IDS)
def test_a_failed_run_leaves_no_directory_it_made(verb, args, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(_input(tmp_path).read_bytes() + b"{oops\n")
    out = tmp_path / "new" / "out"
    res = invoke(_args(verb, args, str(out), tmp_path) + [str(bad)])
    assert res.exit_code == 65, res
    assert not (tmp_path / "new").exists()


def test_a_parent_that_cannot_be_made_is_74(tmp_path):
    data = _input(tmp_path)
    (tmp_path / "file").write_bytes(b"")
    res = invoke(["split", "--ratios", "a=0.5,b=0.5", "-o", f"{tmp_path}/file/sub/{{split}}",
                  str(data)])
    assert res.exit_code == 74, res
    assert len(res.stderr.splitlines()) == 1 and "cannot" in res.stderr
    if ROOT:
        return  # root may write anywhere: the read-only case below needs a normal user
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    res = invoke(["filter", "-o", str(ro / "sub" / "x.jsonl"), str(data)])
    assert res.exit_code == 74 and "cannot create directory" in res.stderr, res


# -- the suite itself -----------------------------------------------------------------------

#: An option that names an output, then a system path (in a list, a string or a shell line).
_OUTPUT_OPTIONS = (r"-o|--output|--rejects|--dupes|--report|--errors|--invalid|--html|"
                   r"--clusters|--dataset-info|--save-index|--[a-z][a-z-]*-out")
_SYSTEM = r"/(?:dev|proc|sys|tmp)(?:/|[\"'\s]|$)"
_NAMED = re.compile(rf"""(?:^|[\s"'\[,(])(?:{_OUTPUT_OPTIONS})(?:[=\s]|["']\s*,\s*["'])\s*(?:{_SYSTEM})""")
_CALL = re.compile(rf"""(?:Output|write_records|side_output)\(\s*["'](?:{_SYSTEM})""")


def test_no_test_names_a_system_device_as_an_output():
    """As root, an output that replaced its path clobbered the machine's /dev/null: a test must
    make its devices in tmp_path, never name a system one as an output."""
    here = Path(__file__)
    offenders = []
    for path in sorted(here.parent.glob("*.py")):
        if path == here:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _NAMED.search(line) or _CALL.search(line):
                offenders.append(f"{path.name}:{n}: {line.strip()}")
    assert offenders == []


_DEV = "/" + "dev/"  # spelled apart so that a grep of the suite finds no device output here


@pytest.mark.parametrize("line", [
    'invoke(["filter", "--rejects", "' + _DEV + 'null", data])',
    "res = shell(f'cqia dedup --dupes " + _DEV + "stdout {x}')",
    'args = ["-o", "' + _DEV + 'full"]',
    "cqia stats --html=/proc/self/fd/1",
    'Output("/dev/null")',
    'invoke(["split", "-o", "/tmp/{split}.jsonl"])',
])
def test_the_guard_catches_a_system_output(line):
    assert _NAMED.search(line) or _CALL.search(line)


@pytest.mark.parametrize("line", [
    'res = shell("make -C cqia > /dev/null && make -q -C cqia")',
    'invoke(["filter", "--rejects", str(tmp_path / "r.jsonl")])',
    "cqia validate big | head -1 > /dev/null; echo $?",
])
def test_the_guard_lets_shell_redirections_pass(line):
    assert not (_NAMED.search(line) or _CALL.search(line))
