"""The command contract (CONVENTIONS.md), checked on every verb that exists.

Every verb in the COMMANDS registry takes part by discovery (a new verb joins without an edit
here): bad JSON, a non-object line, undecodable bytes, a missing file, a directory, an empty
input, --on-error skip with --errors, --help with examples and exit statuses; compressed input
(.gz .bz2 .xz .zst), a BOM, CRLF, GB18030 with --encoding, standard input and `-` all give the
output of the plain file; `| head -1` in a real shell ends quietly; `-o` over an input is
refused, to a device (root), a FIFO and a symlink is written in place / through the link;
`-j 2` gives the bytes of `-j 1` where the verb has -j.

A verb that needs more than its input to run says so in SPECS: extra arguments, how its output
is named, and `fixture`, the name of a pytest fixture (defined below, or in conftest.py) that
starts what it needs (a server) and returns a `Hook` adding arguments and serving its inputs.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from cqia_cli.cli import COMMANDS, available_commands, cli

from conftest import cqia_record, invoke, shell, write_jsonl


@dataclass
class Spec:
    """What the contract needs to know of a verb; the default fits a plain record filter."""

    #: extra arguments to run at all; "{tmp}" is the test's temporary directory
    args: list[str] = field(default_factory=list)
    #: how an output named "{o}" is given (split takes a pattern)
    output: list[str] = field(default_factory=lambda: ["-o", "{o}"])
    #: the files an output "{o}" becomes, as suffixes of "{o}" (split: one per part)
    parts: tuple[str, ...] = ("",)
    #: standard output is a report, not JSON Lines
    report: bool = False
    #: writes nothing on standard output unless given an output
    no_stdout: bool = False
    #: a directory given as input is read (fetch reads a folder), not refused
    reads_directories: bool = False
    #: what of its output is compared across forms of one input (stats' first line gives the
    #: input's name and size in bytes, which differ between a .gz and the plain file)
    normalise: Callable[[bytes], bytes] | None = None
    #: more arguments when the input is standard input; "{tmp}" as in args
    stdin_args: list[str] = field(default_factory=list)
    #: run in the test's directory before the verb (make a file its arguments name)
    setup: Callable[[Path], None] | None = None
    #: name of a fixture returning a Hook: starts what the verb needs (a server) for the test
    fixture: str | None = None
    #: writes no records (a report): a record it cannot write as JSON is no error for it
    writes_records: bool = True
    #: more arguments for it to write every field of a record (convert's --keep-meta)
    carry_args: list[str] = field(default_factory=list)


@dataclass
class Hook:
    """What a verb's fixture gives: arguments to add, and how to hand it an input file (a URL
    of a server it started, ...); None keeps the local path."""

    args: list[str] = field(default_factory=list)
    serve: Callable[[Path], str] | None = None


#: Verbs that need more than the default Spec. A new verb adds its entry here when it needs one.
SPECS: dict[str, Spec] = {
    "validate": Spec(args=["--optional", "input"]),
    "split": Spec(args=["--ratios", "a=0.5,b=0.5"], output=["-o", "{o}_{{split}}"],
                  parts=("_a", "_b"), no_stdout=True),
    "convert": Spec(args=["--from", "cqia", "--to", "alpaca"], carry_args=["--keep-meta"]),
    "stats": Spec(report=True, normalise=lambda b: b.split(b"\n", 1)[-1],
                  writes_records=False),
    "fetch": Spec(reads_directories=True, fixture="fetch_hook"),
    # review keeps its decisions beside its FILE; reading stdin it needs a file named
    "review": Spec(args=["--apply"], stdin_args=["--decisions", "{tmp}/decisions.jsonl"],
                   setup=lambda tmp: (tmp / "decisions.jsonl").touch()),
    # score and generate talk to the local OpenAI-compatible server (see _llm_endpoint)
    "score": Spec(args=["--model", "judge"]),
    "generate": Spec(args=["--model", "m", "--prompt", "{{instruction}}", "--into", "x"]),
}
#: Verbs that need a model endpoint: every test of them gets the local test server's URL in
#: the environment (CQIA_LLM_BASE_URL) and its answer cache under tmp_path (_llm_endpoint).
LLM_VERBS = {"score", "generate"}

VERBS = available_commands()


def spec(verb: str) -> Spec:
    return SPECS.get(verb, Spec())


def has_jobs(verb: str) -> bool:
    """Whether the verb has -j/--jobs (found on the command itself)."""
    command = cli.get_command(None, verb)
    return any(p.name == "jobs" for p in command.params)


@pytest.fixture(scope="module")
def llm_url():
    from llm_server import LLMServer

    with LLMServer() as server:
        yield server.url


@pytest.fixture(autouse=True)
def _llm_endpoint(request, monkeypatch, tmp_path):
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("verb") in LLM_VERBS:
        monkeypatch.setenv("CQIA_LLM_BASE_URL", request.getfixturevalue("llm_url"))
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def fetch_hook(tmp_path):
    """fetch reads URLs: its inputs are also served by a real HTTP server on 127.0.0.1."""
    from fetch_server import Server

    server = Server()

    def serve(path: Path) -> str:
        server.files[f"/files/{path.name}"] = path.read_bytes()
        return f"{server.url}/files/{path.name}"

    yield Hook(args=["--cache-dir", str(tmp_path / "cache"), "--backoff", "0"], serve=serve)
    server.stop()


@pytest.fixture
def hook(request) -> Callable[[str], Hook]:
    """hook(verb): the verb's Hook, its fixture started on first use."""

    def get(verb: str) -> Hook:
        name = spec(verb).fixture
        return request.getfixturevalue(name) if name else Hook()

    return get


#: kept for the tests below that run a verb with its extra arguments only
ARGS: dict[str, list[str]] = {
    verb: s.args + ([a.replace("{o}", "{tmp}/out") for a in s.output] if s.no_stdout else [])
    for verb, s in SPECS.items()
}
#: Verbs whose standard output is not JSON Lines (a report).
REPORTS = {v for v, s in SPECS.items() if s.report}
#: Verbs that write no standard output with the ARGS above.
NO_STDOUT = {v for v, s in SPECS.items() if s.no_stdout}


def _args(verb: str, tmp_path) -> list[str]:
    return [verb] + [a.replace("{tmp}", str(tmp_path)).replace("{{", "{").replace("}}", "}")
                     for a in ARGS.get(verb, [])]


def test_every_registered_verb_is_listed_in_help():
    res = invoke(["--help"])
    assert res.exit_code == 0
    for verb in VERBS:
        assert verb in res.stdout
    assert set(VERBS) <= set(COMMANDS)


@pytest.mark.parametrize("verb", VERBS)
def test_help_has_examples_and_exit_status(verb):
    res = invoke([verb, "--help"])
    assert res.exit_code == 0
    assert "Examples:" in res.stdout and "Exit status:" in res.stdout
    assert "65" in res.stdout and "66" in res.stdout


@pytest.mark.parametrize("verb", VERBS)
def test_invalid_json_is_65_with_file_and_line(verb, tmp_path):
    path = tmp_path / "bad.jsonl"
    good = write_jsonl(tmp_path / "g.jsonl", [cqia_record(0), cqia_record(1)]).read_bytes()
    path.write_bytes(good + b'{"instruction": "x",\n' + good)
    res = invoke(_args(verb, tmp_path) + [str(path)])
    assert res.exit_code == 65, res
    assert res.stderr.startswith(f"cqia {verb}: {path}:3: invalid JSON: "), res
    assert "Traceback" not in res.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_non_object_line_is_65(verb, tmp_path):
    path = tmp_path / "arr.jsonl"
    path.write_bytes(b'["not", "an", "object"]\n')
    res = invoke(_args(verb, tmp_path) + [str(path)])
    assert res.exit_code == 65, res
    assert f"{path}:1: not a JSON object" in res.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_undecodable_bytes_is_65(verb, tmp_path):
    path = tmp_path / "gb.jsonl"
    path.write_bytes('{"instruction": "中文"}\n'.encode("gb18030"))
    res = invoke(_args(verb, tmp_path) + [str(path)])
    assert res.exit_code == 65, res
    assert f"{path}:1: not valid UTF-8" in res.stderr


@pytest.mark.parametrize("verb", [v for v in VERBS if v != "fetch"])
def test_missing_file_is_66(verb, tmp_path):
    res = invoke(_args(verb, tmp_path) + [str(tmp_path / "missing.jsonl")])
    assert res.exit_code == 66, res
    assert res.stderr.strip().startswith(f"cqia {verb}: ")
    assert "missing.jsonl" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.parametrize("verb", VERBS)
def test_empty_input_is_success(verb, tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    res = invoke(_args(verb, tmp_path) + [str(path)])
    assert res.exit_code == 0, res
    if verb not in REPORTS:
        assert res.stdout == ""


@pytest.mark.parametrize("verb", VERBS)
def test_skip_keeps_bad_lines(verb, tmp_path):
    recs = [cqia_record(i) for i in range(3)]
    path = write_jsonl(tmp_path / "in.jsonl", recs[:2], raw_lines=[b"{oops\n"])
    with open(path, "ab") as f:
        f.write(write_jsonl(tmp_path / "tail.jsonl", recs[2:]).read_bytes())
    errors = tmp_path / "errors.jsonl"
    res = invoke(_args(verb, tmp_path) + ["--on-error", "skip", "--errors", str(errors),
                                          str(path)])
    assert res.exit_code == 0, res
    assert errors.read_bytes() == b"{oops\n"
    assert "skipped 1 bad lines" in res.stderr
    if verb not in REPORTS and verb not in NO_STDOUT:
        assert len(res.records()) >= 1


@pytest.mark.parametrize("verb", VERBS)
def test_errors_needs_skip(verb, tmp_path):
    res = invoke(_args(verb, tmp_path) + ["--errors", str(tmp_path / "e.jsonl")],
                 input=b"")
    assert res.exit_code == 2
    assert "--errors needs --on-error skip" in res.stderr


def test_unknown_command_and_option_are_usage_errors():
    assert invoke(["frobnicate"]).exit_code == 2
    res = invoke(["validate", "--no-such-option"])
    assert res.exit_code == 2 and "No such option" in res.stderr


def test_the_way_out_freezes_what_is_left_and_still_writes_everything(tmp_path):
    """The interpreter's end skips its garbage collector's walks (cli._freeze_for_exit), and
    the output, the status and an atexit handler's work are as before."""
    import subprocess
    import sys

    src = write_jsonl(tmp_path / "in.jsonl", [cqia_record(i) for i in range(300)])
    out = tmp_path / "out.jsonl"
    code = ("import atexit, gc, sys\n"
            "from cqia_cli.cli import main\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, file=sys.stderr))\n"
            f"sys.argv = ['cqia', 'validate', '-q', '-o', {str(out)!r}, {str(src)!r}]\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == 0, proc.stderr
    assert b"frozen True" in proc.stderr
    assert len(out.read_bytes().splitlines()) == 300
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"{nope\n")
    proc = subprocess.run([sys.executable, "-c", code.replace(repr(str(src)), repr(str(bad)))],
                          capture_output=True)
    assert proc.returncode == 65 and b"bad.jsonl:1" in proc.stderr, proc.stderr


def test_options_from_the_environment(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"instruction": "x"}\n{bad\n')
    res = invoke(["validate", "--optional", "input", str(path)],
                 env={"CQIA_VALIDATE_ON_ERROR": "skip"})
    assert res.exit_code == 1  # the record is invalid, but the bad line was skipped
    assert "skipped 1 bad lines" in res.stderr


def _too_deep(tmp_path: Path) -> tuple[Path, bytes]:
    """Three records, the second nested 500 levels deep: it parses (orjson reads 1,024
    levels) but cannot be written (orjson writes 255)."""
    deep: object = "底"
    for _ in range(500):
        deep = [deep]
    answers = ["春眠不觉晓，处处闻啼鸟。这首诗写春天早晨的景色，语言自然。",
               "水的沸点在标准大气压下是一百摄氏度，海拔越高沸点越低。",
               "光合作用把二氧化碳和水变成葡萄糖和氧气，需要光照和叶绿素。"]
    recs = [cqia_record(i, output=a) for i, a in enumerate(answers)]
    recs[1]["extra"] = deep
    path = write_jsonl(tmp_path / "deep.jsonl", recs)
    return path, path.read_bytes().split(b"\n")[1] + b"\n"


def _deep_args(verb: str, tmp_path: Path, h: Hook) -> list[str]:
    s = spec(verb)
    args = [a.replace("{tmp}", str(tmp_path)).replace("{{", "{").replace("}}", "}")
            for a in s.args + s.carry_args + s.output]
    return [verb] + [a.replace("{o}", str(tmp_path / "out")) for a in args] + h.args


#: every verb serially, and with -j 2 where it has -j (workers serialise the records)
DEEP_CASES = [(v, "1") for v in VERBS] + [(v, "2") for v in VERBS if has_jobs(v)]


@pytest.mark.parametrize("verb, jobs", DEEP_CASES)
def test_a_record_too_deep_to_write_is_65_with_file_and_line(verb, jobs, tmp_path, hook):
    path, _ = _too_deep(tmp_path)
    h = hook(verb)
    name = h.serve(path) if h.serve is not None else str(path)
    res = invoke(_deep_args(verb, tmp_path, h) + (["-j", jobs] if has_jobs(verb) else [])
                 + [name])
    if not spec(verb).writes_records:  # stats: the record is read and counted
        assert res.exit_code == 0, res
        return
    assert res.exit_code == 65, res
    assert res.stderr == (f"cqia {verb}: {name}:2: cannot write a record as JSON: "
                          "Recursion limit reached\n"), res


@pytest.mark.parametrize("verb, jobs", [c for c in DEEP_CASES if spec(c[0]).writes_records])
def test_a_record_too_deep_to_write_is_skipped_byte_for_byte(verb, jobs, tmp_path, hook):
    path, line = _too_deep(tmp_path)
    h = hook(verb)
    name = h.serve(path) if h.serve is not None else str(path)
    errors = tmp_path / "errors.jsonl"
    res = invoke(_deep_args(verb, tmp_path, h) + (["-j", jobs] if has_jobs(verb) else [])
                 + ["--on-error", "skip", "--errors", str(errors), name])
    assert res.exit_code == 0, res
    assert errors.read_bytes() == line
    assert "skipped 1 bad lines" in res.stderr
    written = b"".join(Path(f"{tmp_path / 'out'}{p}").read_bytes() for p in spec(verb).parts)
    assert written.count(b"\n") == 2 and "底" not in written.decode()


# -- the same output whatever the form of the input -----------------------------------------


def _base(tmp_path: Path, n: int = 40) -> Path:
    recs = [cqia_record(i) for i in range(n)]
    recs += recs[:3]  # duplicates, for verbs that remove them
    recs.append(cqia_record(99, output="短"))  # a short answer, for verbs that drop
    return write_jsonl(tmp_path / "in.jsonl", recs)


def _run(verb: str, tmp_path: Path, inputs: list[str], out: Path, *, extra=(), hook_=None,
         input: bytes | None = None):
    """Run the verb with its output named `out`; returns (result, {suffix: bytes})."""
    s = spec(verb)
    h = hook_ or Hook()
    if s.setup is not None:
        s.setup(tmp_path)
    stdin = not inputs or inputs == ["-"]
    args = [verb, "-q"] + [a.replace("{tmp}", str(tmp_path))
                           for a in s.args + (s.stdin_args if stdin else [])] + h.args
    args += [a.replace("{o}", str(out)).replace("{{", "{").replace("}}", "}") for a in s.output]
    res = invoke(args + list(extra) + inputs, input=input)
    files = {p: _unnamed(Path(f"{out}{p}").read_bytes(), inputs)
             for p in s.parts if Path(f"{out}{p}").is_file()}
    if s.normalise is not None:
        files = {p: s.normalise(b) for p, b in files.items()}
    return res, files


def _normalised(verb: str, data: bytes) -> bytes:
    normalise = spec(verb).normalise
    return data if normalise is None else normalise(data)


def _unnamed(data: bytes, inputs: list[str]) -> bytes:
    """Output with the names of its inputs replaced (a report names what it read)."""
    for name in inputs + ["<stdin>"]:
        if name != "-":
            data = data.replace(name.encode(), b"INPUT")
    return data


def _variant(base: Path, kind: str) -> tuple[Path, list[str]]:
    """`base` in another form: (path, extra arguments)."""
    data = base.read_bytes()
    d = base.parent / "variants"
    d.mkdir(exist_ok=True)
    if kind == "gz":
        return _write(d / "in.jsonl.gz", gzip.compress(data)), []
    if kind == "bz2":
        return _write(d / "in.jsonl.bz2", bz2.compress(data)), []
    if kind == "xz":
        return _write(d / "in.jsonl.xz", lzma.compress(data)), []
    if kind == "zst":
        zstandard = pytest.importorskip("zstandard")
        return _write(d / "in.jsonl.zst", zstandard.ZstdCompressor().compress(data)), []
    if kind == "bom":
        return _write(d / "in.jsonl", b"\xef\xbb\xbf" + data), []
    if kind == "crlf":
        return _write(d / "in.jsonl", data.replace(b"\n", b"\r\n")), []
    if kind == "gb18030":
        return (_write(d / "in.jsonl", data.decode("utf-8").encode("gb18030")),
                ["--encoding", "gb18030"])
    raise ValueError(kind)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


VARIANTS = ["gz", "bz2", "xz", "zst", "bom", "crlf", "gb18030"]


@pytest.mark.parametrize("kind", VARIANTS)
@pytest.mark.parametrize("verb", VERBS)
def test_every_form_of_input_gives_the_same_output(verb, kind, tmp_path, hook):
    base = _base(tmp_path)
    h = hook(verb)
    want_res, want = _run(verb, tmp_path, [str(base)], tmp_path / "want", hook_=h)
    assert want_res.exit_code == 0 and want, want_res
    path, extra = _variant(base, kind)
    res, got = _run(verb, tmp_path, [str(path)], tmp_path / "got", extra=extra, hook_=h)
    assert res.exit_code == 0, res
    assert got == want
    if h.serve is not None:  # the same input through the verb's server
        res, got = _run(verb, tmp_path, [h.serve(path)], tmp_path / "served", extra=extra,
                        hook_=h)
        assert res.exit_code == 0, res
        assert got == want


@pytest.mark.parametrize("verb", VERBS)
def test_standard_input_and_dash(verb, tmp_path, hook):
    base = _base(tmp_path)
    h = hook(verb)
    _, want = _run(verb, tmp_path, [str(base)], tmp_path / "want", hook_=h)
    for inputs, name in (([], "none"), (["-"], "dash")):
        res, got = _run(verb, tmp_path, inputs, tmp_path / name, hook_=h,
                        input=base.read_bytes())
        assert res.exit_code == 0, res
        assert got == want, name


@pytest.mark.parametrize("verb", VERBS)
def test_head_1_in_a_real_shell_ends_quietly(verb, tmp_path, hook):
    write_jsonl(tmp_path / "big.jsonl", [cqia_record(i) for i in range(3000)])
    s = spec(verb)
    args = " ".join(f"'{a}'" for a in
                    [a.replace("{tmp}", str(tmp_path)) for a in s.args] + hook(verb).args)
    if s.no_stdout:
        args += " " + " ".join(f"'{a.replace('{o}', str(tmp_path / 'out'))}'".replace("{{", "{")
                               .replace("}}", "}") for a in s.output)
    res = shell(f"set -o pipefail; cqia {verb} {args} big.jsonl | head -1; "
                "echo \"status ${PIPESTATUS[0]}\"", cwd=tmp_path)
    assert res.stderr == "" or all(not line.startswith(f"cqia {verb}:")
                                   for line in res.stderr.splitlines()), res
    assert "Traceback" not in res.stderr and "Broken pipe" not in res.stderr, res
    assert res.stdout.splitlines()[-1] in ("status 0", "status 141"), res


# -- where outputs go ------------------------------------------------------------------------


@pytest.mark.parametrize("verb", VERBS)
def test_output_over_an_input_is_refused(verb, tmp_path, hook):
    s = spec(verb)
    out = tmp_path / "x"
    data = _base(tmp_path).read_bytes()
    victim = _write(Path(f"{out}{s.parts[0]}"), data)
    res, _ = _run(verb, tmp_path, [str(victim)], out, hook_=hook(verb))
    assert res.exit_code == 74, res
    assert "refusing to write over an input file" in res.stderr
    assert victim.read_bytes() == data


@pytest.mark.parametrize("verb", VERBS)
def test_output_through_a_link_to_an_input_is_refused(verb, tmp_path, hook):
    s = spec(verb)
    base = _base(tmp_path)
    data = base.read_bytes()
    out = tmp_path / "link"
    for p in s.parts:
        Path(f"{out}{p}").symlink_to(base)
    res, _ = _run(verb, tmp_path, [str(base)], out, hook_=hook(verb))
    assert res.exit_code == 74 and "refusing to write over an input file" in res.stderr, res
    assert base.read_bytes() == data and Path(f"{out}{s.parts[0]}").is_symlink()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mknod needs root")
@pytest.mark.parametrize("verb", VERBS)
def test_output_to_a_character_device(verb, tmp_path, hook):
    s = spec(verb)
    out = tmp_path / "null"
    for p in s.parts:
        os.mknod(f"{out}{p}", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    res, _ = _run(verb, tmp_path, [str(_base(tmp_path))], out, hook_=hook(verb))
    assert res.exit_code == 0, res
    for p in s.parts:
        assert stat.S_ISCHR(os.lstat(f"{out}{p}").st_mode), "the device was replaced"


@pytest.mark.parametrize("verb", VERBS)
def test_output_to_a_fifo(verb, tmp_path, hook):
    s = spec(verb)
    h = hook(verb)
    base = _base(tmp_path)
    _, want = _run(verb, tmp_path, [str(base)], tmp_path / "want", hook_=h)
    out = tmp_path / "fifo"
    got: dict[str, bytes] = {}

    def drain(p: str) -> None:
        with open(f"{out}{p}", "rb") as f:
            got[p] = f.read()

    threads = []
    for p in s.parts:
        os.mkfifo(f"{out}{p}")
        threads.append(threading.Thread(target=drain, args=(p,), daemon=True))
        threads[-1].start()
    res, _ = _run(verb, tmp_path, [str(base)], out, hook_=h)
    for t in threads:
        t.join(20)
    assert res.exit_code == 0, res
    assert {p: _normalised(verb, b) for p, b in got.items()} == want
    assert all(stat.S_ISFIFO(os.lstat(f"{out}{p}").st_mode) for p in s.parts)


@pytest.mark.parametrize("verb", VERBS)
def test_output_to_a_symlink_writes_its_target(verb, tmp_path, hook):
    s = spec(verb)
    h = hook(verb)
    base = _base(tmp_path)
    _, want = _run(verb, tmp_path, [str(base)], tmp_path / "want", hook_=h)
    (tmp_path / "real").mkdir()
    out = tmp_path / "link"
    for p in s.parts:
        Path(f"{out}{p}").symlink_to(tmp_path / "real" / f"t{p}")
    res, _ = _run(verb, tmp_path, [str(base)], out, hook_=h)
    assert res.exit_code == 0, res
    for p in s.parts:
        assert Path(f"{out}{p}").is_symlink()
        assert _normalised(verb, (tmp_path / "real" / f"t{p}").read_bytes()) == want[p]
    assert sorted(f.name for f in (tmp_path / "real").iterdir()) == sorted(f"t{p}" for p in s.parts)


@pytest.mark.parametrize("verb", [v for v in VERBS if has_jobs(v)])
def test_jobs_2_gives_the_bytes_of_jobs_1(verb, tmp_path, hook):
    h = hook(verb)
    recs = [cqia_record(i % 700) for i in range(3000)]
    recs[5]["output"] = "短"
    base = write_jsonl(tmp_path / "in.jsonl", recs)
    one, want = _run(verb, tmp_path, [str(base)], tmp_path / "one", hook_=h, extra=["-j", "1"])
    two, got = _run(verb, tmp_path, [str(base)], tmp_path / "two", hook_=h, extra=["-j", "2"])
    assert one.exit_code == two.exit_code == 0, (one, two)
    assert got == want


@pytest.mark.parametrize("verb", [v for v in VERBS if not spec(v).reads_directories])
def test_a_directory_as_input_is_66(verb, tmp_path, hook):
    d = tmp_path / "adir"
    d.mkdir()
    res, _ = _run(verb, tmp_path, [str(d)], tmp_path / "out", hook_=hook(verb))
    assert res.exit_code == 66, res
    assert res.stderr == f"cqia {verb}: {d}: is a directory\n"


#: Options that name a file to read, with what else the verb needs to reach reading it: a
#: directory there is 66 with `PATH: is a directory`, as for a FILE argument (not click's 2).
INPUT_OPTIONS = {
    ("dedup", "--against"): ["{input}"],
    ("dedup", "--index"): ["{input}"],
    ("fetch", "--catalog"): ["--list"],
}


@pytest.mark.parametrize("verb, option", sorted(INPUT_OPTIONS))
def test_a_directory_given_to_an_input_option_is_66(verb, option, tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    base = write_jsonl(tmp_path / "in.jsonl", [cqia_record(0)])
    rest = [a.replace("{input}", str(base)) for a in INPUT_OPTIONS[verb, option]]
    res = invoke([verb, option, str(d)] + rest)
    assert res.exit_code == 66, res
    assert res.stderr == f"cqia {verb}: {d}: is a directory\n"


def test_input_options_are_listed():
    """Every option typed click.Path (a path the verb reads) is in INPUT_OPTIONS."""
    import click

    found = {(verb, p.opts[0]) for verb in VERBS for p in cli.get_command(None, verb).params
             if isinstance(p, click.Option) and isinstance(p.type, click.Path)}
    assert found <= set(INPUT_OPTIONS), found - set(INPUT_OPTIONS)


def test_every_test_module_holds_tests():
    """Helpers that others import are not named test_*.py (pytest would collect them)."""
    for path in Path(__file__).parent.glob("test_*.py"):
        text = path.read_text(encoding="utf-8")
        assert "\ndef test_" in text or "\nclass Test" in text or "\nasync def test_" in text, \
            f"{path.name} holds no test: name it as a helper"


@pytest.mark.parametrize("preset", [None, "3"])
def test_the_entry_point_keeps_openblas_to_one_thread_unless_told(preset, tmp_path):
    """numpy's OpenBLAS would start (and spin) a thread per CPU; cqia does no linear algebra.
    A value the user set is kept."""
    import subprocess
    import sys

    src = write_jsonl(tmp_path / "in.jsonl", [cqia_record(i) for i in range(20)])
    code = ("import atexit, os, sys\n"
            "from cqia_cli.__main__ import main\n"
            "atexit.register(lambda: print('blas', os.environ.get('OPENBLAS_NUM_THREADS'),"
            " file=sys.stderr))\n"
            f"sys.argv = ['cqia', 'stats', {str(src)!r}]\n"
            "main()\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"blas {preset or '1'}".encode() in proc.stderr
