"""The installed `cqia` in a real shell: pipes, closed pipes, signals, exit statuses."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import time

import pytest

from conftest import cqia_executable, cqia_record, shell, write_jsonl


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """20,000 records, written once for the module (every test only reads it)."""
    return write_jsonl(tmp_path_factory.mktemp("shell") / "big.jsonl",
                       [cqia_record(i) for i in range(20_000)])


def test_version_and_help():
    res = shell("cqia --version && cqia --help")
    assert res.exit_code == 0
    assert res.stdout.startswith("cqia ")
    assert "validate" in res.stdout


def test_help_does_not_import_heavy_modules():
    res = shell("python -c \"import sys; from cqia_cli.cli import cli; "
                "cli.main(['--help'], standalone_mode=False); "
                "heavy = [m for m in ('jieba', 'datasketch', 'numpy', 'rich', 'orjson') "
                "if m in sys.modules]; print('HEAVY', heavy)\"")
    assert "HEAVY []" in res.stdout, res


def test_pipe_between_commands(big, tmp_path):
    res = shell(f"cat {big} | cqia validate | cqia validate - > {tmp_path}/out.jsonl")
    assert res.exit_code == 0, res
    assert (tmp_path / "out.jsonl").read_bytes().count(b"\n") == 20_000


def test_closed_pipe_ends_quietly(big):
    res = shell(f"cqia validate {big} | head -1")
    assert res.exit_code == 0
    assert res.stdout.count("\n") == 1
    assert res.stderr == ""


def test_closed_pipe_status_is_like_cat(big):
    res = shell(f"set -o pipefail; cqia validate -q {big} | head -1 > /dev/null; echo $?")
    assert res.stdout.strip() == "141"
    assert res.stderr == ""


@pytest.mark.slow
def test_byte_identical_runs(big, tmp_path):
    gz = tmp_path / "big.jsonl.gz"
    gz.write_bytes(gzip.compress(big.read_bytes()))
    res = shell(f"cqia validate -q {gz} -o {tmp_path}/a.jsonl.gz && "
                f"cqia validate -q {gz} -o {tmp_path}/b.jsonl.gz && "
                f"cmp {tmp_path}/a.jsonl.gz {tmp_path}/b.jsonl.gz && "
                f"cqia validate -q {big} > {tmp_path}/c.jsonl && "
                f"cqia validate -q {big} > {tmp_path}/d.jsonl && cmp {tmp_path}/c.jsonl {tmp_path}/d.jsonl")
    assert res.exit_code == 0, res


def test_bad_input_statuses_without_traceback(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": oops}\n')
    res = shell(f"cqia validate {bad}")
    assert res.exit_code == 65
    assert res.stderr.splitlines()[-1].startswith(f"cqia validate: {bad}:3: invalid JSON: ")
    assert "Traceback" not in res.stderr
    res = shell(f"cqia validate {tmp_path}/missing.jsonl")
    assert res.exit_code == 66
    assert res.stderr == f"cqia validate: {tmp_path}/missing.jsonl: no such file\n"
    res = shell(f"printf '' | cqia validate")
    assert (res.exit_code, res.stdout, res.stderr) == (
        0, "", "validate: 0 records, 0 valid, 0 invalid (0.0%)\n")


def test_skip_with_errors_file_in_shell(tmp_path):
    bad = tmp_path / "bad.jsonl"
    good = write_jsonl(tmp_path / "g.jsonl", [cqia_record(1)]).read_bytes()
    bad.write_bytes(good + b"{not json}\r\n" + good)
    res = shell(f"cqia validate --on-error skip --errors {tmp_path}/e.jsonl {bad}")
    assert res.exit_code == 0
    assert res.stdout.count("\n") == 2
    assert (tmp_path / "e.jsonl").read_bytes() == b"{not json}\r\n"
    assert "cqia validate: skipped 1 bad lines (kept in" in res.stderr


def test_output_naming_an_input_is_refused(big):
    before = big.read_bytes()
    res = shell(f"cqia validate {big} -o {big}")
    assert res.exit_code == 74
    assert "refusing to write over an input file" in res.stderr
    assert big.read_bytes() == before


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_run_leaves_no_output(tmp_path, sig, status):
    out = tmp_path / "out.jsonl"
    proc = subprocess.Popen([cqia_executable(), "validate", "-o", str(out)],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    line = write_jsonl(tmp_path / "one.jsonl", [cqia_record(0)]).read_bytes()
    proc.stdin.write(line * 5000)
    proc.stdin.flush()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # wait until it has started writing its temporary file
        if any(p.name.startswith(".out.jsonl.") for p in tmp_path.iterdir()):
            break
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == status
    assert b"Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.jsonl"]


def test_gb18030_file(tmp_path):
    path = tmp_path / "gb.jsonl"
    rec = cqia_record(7)
    path.write_bytes(write_jsonl(tmp_path / "u.jsonl", [rec]).read_text("utf-8").encode("gb18030"))
    res = shell(f"cqia validate --encoding gb18030 {path}")
    assert res.exit_code == 0
    assert res.records() == [rec]
    res = shell(f"cqia validate {path}")
    assert res.exit_code == 65
    assert f"{path}:1: not valid UTF-8" in res.stderr


def test_completion_script():
    res = shell("_CQIA_COMPLETE=bash_source cqia")
    assert res.exit_code == 0
    assert "complete" in res.stdout and "_cqia_completion" in res.stdout


@pytest.mark.parametrize("compress", ["gzip -c", "bzip2 -c", "xz -c"])
def test_compressed_inputs_in_shell(tmp_path, compress):
    src = write_jsonl(tmp_path / "d.jsonl", [cqia_record(i) for i in range(50)])
    ext = {"gzip -c": "gz", "bzip2 -c": "bz2", "xz -c": "xz"}[compress]
    res = shell(f"{compress} {src} > {src}.{ext} && cqia validate -q {src}.{ext} | cmp - "
                f"<(cqia validate -q {src})")
    assert res.exit_code == 0, res


def test_crlf_and_missing_final_newline_in_shell(tmp_path):
    src = write_jsonl(tmp_path / "d.jsonl", [cqia_record(i) for i in range(3)])
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(src.read_bytes().replace(b"\n", b"\r\n").rstrip(b"\r\n"))
    res = shell(f"cqia validate -q {crlf} | cmp - <(cqia validate -q {src})")
    assert res.exit_code == 0, res


def test_terminal_stderr_keeps_stdout_clean(tmp_path):
    import pty

    src = write_jsonl(tmp_path / "d.jsonl", [cqia_record(i) for i in range(20_000)])
    master, slave = pty.openpty()
    proc = subprocess.Popen([cqia_executable(), "validate", str(src)],
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out, _ = proc.communicate(timeout=60)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.returncode == 0
    assert out.count(b"\n") == 20_000 and b"\x1b" not in out  # data only on stdout
    assert b"validate: 20,000 records" in seen
