"""SIGTERM and SIGINT to the whole process group under -j N, at random moments, in a real shell.

Ctrl-C in a shell and `timeout` signal every process of the group, the -j workers included.
Whatever the moment (reading, mid-batch, writing, a worker returning a large result), the
command must end within two seconds with 143 or 130, leave no temporary file, print no
traceback and leave no worker behind.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import orjson
import pytest

#: Python's own start-up (before cqia's first line runs) is outside cqia's reach: a SIGINT
#: there makes the interpreter fail to import `site`; signals come after it
EARLIEST = 0.15
DEADLINE = 2.0


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """~40,000 distinct records (~30 MB): a -j 2 run of filter or dedup lasts a few seconds.
    Some outputs are long, so that some batches' results are large."""
    rng = random.Random(7)
    path = tmp_path_factory.mktemp("signals") / "big.jsonl"

    han = [chr(0x4E00 + i) for i in range(6000)]
    pool = "".join(rng.choices(han, k=4_000_000))

    def text(n: int) -> str:  # a slice at a random place: records are not near-duplicates
        at = rng.randrange(len(pool) - n)
        return pool[at:at + n]

    with open(path, "wb") as f:
        for i in range(40_000):
            n = 20_000 if i % 997 == 0 else rng.randint(30, 400)
            f.write(orjson.dumps({"instruction": text(20), "input": "", "output": text(n)},
                                 option=orjson.OPT_APPEND_NEWLINE))
    return path


def _processes_naming(marker: str) -> list[int]:
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if marker.encode() in cmd and b"cqia" in cmd:
            pids.append(int(pid))
    return pids


def _signal_run(tmp_path, big, argv: str, how: str, sig: str, after: float):
    """Run `cqia ARGV` in bash, signal its process group `after` seconds in, return
    (status, seconds from the signal to the end, stderr, files left, processes left)."""
    work = tmp_path / f"run-{time.monotonic_ns()}"
    work.mkdir()
    marker = str(work)
    cmd = f"cqia {argv} {big} -o {work}/out.jsonl"
    if how == "timeout":
        script = f"timeout --preserve-status -s {sig} {after} {cmd}"
        proc = subprocess.Popen(["bash", "-c", script], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, cwd=work)
        start = time.monotonic()
        _, err = proc.communicate(timeout=after + 30)
        gone = time.monotonic() - start - after
    else:  # kill -SIG -PGID: the command leads its own group, as a shell job does
        proc = subprocess.Popen(["bash", "-c", f"exec {cmd}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, cwd=work, start_new_session=True)
        time.sleep(after)
        sent = time.monotonic()
        try:
            os.killpg(proc.pid, getattr(signal, f"SIG{sig}"))
        except ProcessLookupError:
            pass
        _, err = proc.communicate(timeout=30)
        gone = time.monotonic() - sent
        proc.returncode = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    # the workers of a parent that has ended: give them the time their poll takes to notice
    left = _processes_naming(marker)
    if left:
        time.sleep(1.0)
        left = _processes_naming(marker)
    files = sorted(p.name for p in work.iterdir())
    return proc.returncode, gone, err.decode("utf-8", "replace"), files, left


def _check(results, expected_status):
    interrupted = 0
    for argv, how, sig, after, (status, gone, err, files, left) in results:
        what = f"{argv} ({how} -s {sig} after {after:.2f}s)"
        assert "Traceback" not in err, what + err
        assert not left, f"{what}: processes left: {left}"
        assert not [f for f in files if f.endswith(".part")], f"{what}: {files}"
        if status == 0:  # finished before the signal
            assert "out.jsonl" in files, what
            continue
        interrupted += 1
        assert status == expected_status[sig], f"{what}: status {status}: {err}"
        assert gone < DEADLINE, f"{what}: ended {gone:.2f}s after the signal"
        # a signal that comes as the run ends (its outputs renamed into place) leaves them all;
        # any earlier one leaves none
        outputs = sorted(["out.jsonl"] + [a for a in argv.split() if a.endswith(".jsonl")])
        assert files in ([], outputs), f"{what}: {files}"
        if files:
            # the run had done its work and printed its summary (which may end its stderr)
            # when the signal came, as the interpreter was exiting: nothing more to say
            continue
        # the command's name is known once click has parsed it
        how_ended = "terminated" if sig == "TERM" else "interrupted"
        assert err.strip() in ("", f"cqia {argv.split()[0]}: {how_ended}",
                               f"cqia: {how_ended}"), what + err
    return interrupted


STATUS = {"TERM": 143, "INT": 130}


def _duration(tmp_path, big, argv: str) -> float:
    """How long one run takes on this machine now (its load varies a lot)."""
    work = tmp_path / "timing"
    work.mkdir(exist_ok=True)
    start = time.monotonic()
    subprocess.run(["bash", "-c", f"cqia {argv} {big} -o {work}/out.jsonl"], cwd=work,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.monotonic() - start


def _loop(tmp_path, big, argv: str, n: int, span: float, seed: int, timed: bool = True):
    rng = random.Random(seed)
    # signals while it runs: within the first 90% of a run timed just before (or, untimed,
    # within `span`, early enough in any run of the input on any machine)
    if timed:
        span = max(EARLIEST + 0.1, min(span, 0.9 * _duration(tmp_path, big, argv)))
    results = []
    for i in range(n):
        sig = ("TERM", "INT")[i % 2]
        how = ("timeout", "killpg")[(i // 2) % 2]
        after = round(rng.uniform(EARLIEST, span), 3)
        results.append((argv, how, sig, after, _signal_run(tmp_path, big, argv, how, sig, after)))
    interrupted = _check(results, STATUS)
    assert interrupted >= n // 2, "most runs ended before the signal: the input is too small"


@pytest.mark.slow
@pytest.mark.parametrize("argv", ["filter -j 2 --rejects rejects.jsonl",
                                  "dedup -j 2 --dupes d.jsonl"])
def test_group_signals_at_random_moments(tmp_path, big, argv):
    """20 signals per command, SIGTERM and SIGINT, through `timeout` and `kill -SIG -PGID`."""
    _loop(tmp_path, big, argv, 20, 1.6, seed=hash(argv) & 0xFFFF)


@pytest.mark.parametrize("argv", ["filter -j 2", "dedup -j 2"])
def test_group_signals_quick(tmp_path, big, argv):
    """The same, two signals per command, in the first half second (in the fast suite: no
    timing run first; a -j 2 run of `big` lasts well over a second)."""
    _loop(tmp_path, big, argv, 2, 0.5, seed=11, timed=False)


def test_signal_to_the_parent_alone_ends_the_workers(tmp_path, big):
    """`kill PID` (not the group): the parent terminates its workers on the way out."""
    work = tmp_path / "alone"
    work.mkdir()
    proc = subprocess.Popen(["cqia", "filter", "-j", "2", str(big), "-o", str(work / "o.jsonl")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=work)
    # once its worker runs (a fixed delay raced the end of a fast run: the table was printed
    # and the output published before the signal came)
    deadline = time.monotonic() + 20
    while len(_processes_naming(str(work))) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "no worker started"
        time.sleep(0.01)
    time.sleep(0.1)
    assert proc.poll() is None, "the run ended before the signal: the input is too small"
    proc.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent < DEADLINE
    assert proc.returncode == 143, err
    assert err.decode().strip() == "cqia filter: terminated"
    assert not _processes_naming(str(work))
    assert list(work.iterdir()) == []


WATCHDOG_SCRIPT = r"""
import os, signal, sys, threading, time
from cqia_cli import cli, io, parallel

cli._watchdog_enabled = True          # as the installed command sets it
part = sys.argv[1]
open(part, "w").close()
io.LIVE_TEMP.add(part)                # an output's temporary file, not yet renamed
child = os.fork()
if child == 0:                        # a worker that ignores the signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(60)
    os._exit(0)
parallel.LIVE_WORKERS.add(child)
print(child, flush=True)
held = threading.Lock()
held.acquire()


def body():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
    finally:
        held.acquire()                # the clean-up waits on a lock the signal left held


sys.exit(cli._run(body))
"""


def test_a_clean_up_that_hangs_after_a_signal_is_cut_short(tmp_path):
    """The exception a signal raises can land while a lock is held that the clean-up needs
    again; the command must still end within two seconds, with the signal's status, its
    temporary files removed and its workers killed."""
    import sys

    part = tmp_path / ".out.jsonl.x.part"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", WATCHDOG_SCRIPT, str(part)],
                          capture_output=True, timeout=30)
    took = time.monotonic() - start
    assert proc.returncode == 143, proc.stderr
    assert took < DEADLINE + 1.0, took  # + the interpreter's start-up
    assert not part.exists()
    assert b"Traceback" not in proc.stderr
    worker = int(proc.stdout.split()[0])
    for _ in range(20):  # killed (perhaps a zombie until its new parent reaps it)
        try:
            with open(f"/proc/{worker}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            break
        if state in ("Z", "X"):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"worker {worker} still running ({state})")


def test_a_signal_between_two_renames_leaves_every_output(tmp_path, monkeypatch):
    """A signal that comes while a run puts its outputs into place is held until all are:
    never some outputs and not others."""
    from cqia_cli import cli, io
    from cqia_cli.status import Terminated

    import threading

    # another thread alive, as queue feeder and HTTP threads are: the kernel may hand it the
    # signal, and Python still runs the handler in the main thread
    threading.Thread(target=time.sleep, args=(3,), daemon=True).start()
    cli._signalled.clear()
    old = signal.signal(signal.SIGTERM, cli._on_signal)  # the command's own handler
    real_publish = io.Output.publish
    calls = []

    def publish(self):
        real_publish(self)
        calls.append(self.name)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # between the first rename and the second

    monkeypatch.setattr(io.Output, "publish", publish)
    src = tmp_path / "in.jsonl"
    src.write_text('{"a": 1}\n')
    try:
        with pytest.raises(Terminated):
            with io.Job([str(src)], output=str(tmp_path / "out.jsonl"), quiet=True) as job:
                side = job.side_output(str(tmp_path / "side.jsonl"), "side")
                for rec in job.records():
                    job.write(rec)
                    side.write(rec)
    finally:
        signal.signal(signal.SIGTERM, old)
        cli._signalled.clear()
    assert len(calls) == 2
    assert (tmp_path / "out.jsonl").read_text() == '{"a":1}\n'
    assert (tmp_path / "side.jsonl").read_text() == '{"a":1}\n'
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


WORKER_DIED_SCRIPT = r"""
import os, signal, time
from cqia_cli import cli, parallel
from cqia_cli.status import Terminated

signal.signal(signal.SIGTERM, cli._on_signal)   # the command's own handler
cli._signalled.clear()


def reading():                                  # the input, as Job.raw_batches reads it
    try:
        yield 1
        yield 2
    finally:                                    # closed as it is freed, after the message
        os.kill(os.getpid(), signal.SIGTERM)    # this process's own copy of the signal
        for _ in range(100):
            time.sleep(0.001)


def run():
    lines = reading()
    next(lines)
    raise parallel._died(-signal.SIGTERM)       # the worker died of the group's SIGTERM first


try:
    run()
except Terminated:
    print("terminated")
print("done")
"""


def test_a_signal_after_a_worker_died_of_it_is_not_raised_in_a_clean_up(tmp_path):
    """timeout and Ctrl-C signal the whole group. When a -j worker ends first, the parent
    raises Terminated for it; its own copy of the signal, run later, must not raise again: it
    can land in a generator's `finally` run as the generator is freed, where Python prints
    "Exception ignored" and a traceback (seen once in CI, `dedup -j 2`, SIGTERM at 0.31 s)."""
    proc = subprocess.run([sys.executable, "-c", WORKER_DIED_SCRIPT], capture_output=True,
                          text=True, timeout=30, cwd=tmp_path)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, \
        proc.stderr
    assert proc.stdout.split() == ["terminated", "done"], proc.stdout


FREED_SCRIPT = r"""
import os, signal, sys, time
from cqia_cli import cli

SIG = getattr(signal, sys.argv[1])


def raise_interrupt(signum, frame):             # llm/run.py's handler in score's event loop
    raise KeyboardInterrupt


def reading():
    try:
        yield 1
    finally:                                    # run as the generator is freed, mid-run
        os.kill(os.getpid(), SIG)
        for _ in range(100):
            time.sleep(0.001)


def command():
    if sys.argv[2] == "loop":
        signal.signal(signal.SIGINT, raise_interrupt)
    lines = reading()
    next(lines)
    del lines                                   # abandoned: closed as it is freed
    for _ in range(2000):                       # the run goes on
        time.sleep(0.001)
    print("not ended")


sys.exit(cli._run(command))
"""


@pytest.mark.parametrize("sig,handler,status,said", [
    ("SIGTERM", "cqia", 143, "terminated"),
    ("SIGINT", "cqia", 130, "interrupted"),
    ("SIGINT", "loop", 130, "interrupted"),
])
def test_a_signal_raised_where_python_cannot_propagate_it_is_raised_again(
        tmp_path, sig, handler, status, said):
    """A signal's handler that runs in a generator's `finally` as the generator is freed
    raises where Python only prints "Exception ignored" and a traceback, and goes on (seen in
    CI: score's KeyboardInterrupt in a weakref callback of asyncio's set of tasks, status 0).
    The signal is sent again instead, and the command ends as for any signal."""
    proc = subprocess.run([sys.executable, "-c", FREED_SCRIPT, sig, handler],
                          capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, \
        proc.stderr
    assert proc.stdout == ""
    assert proc.returncode == status
    assert proc.stderr.strip().endswith(said), proc.stderr


LEAVING_SCRIPT = r"""
import os, signal, sys, time
from cqia_cli import cli, console
from cqia_cli.status import CqiaError

said = console.message


def message(text):                              # the signal comes as the error is reported
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(50):
        time.sleep(0.001)
    said(text)


def command():
    console.message = message
    raise CqiaError("in.jsonl:2: invalid JSON", 65)


print("status", cli._run(command))
"""


def test_a_signal_while_the_command_reports_how_it_ended_is_not_raised(tmp_path):
    """Once the command's function has returned or raised, what is left is the way out (the
    message, the clean-up): a signal's exception raised there would escape it, with a
    traceback. The command ends as it was ending."""
    proc = subprocess.run([sys.executable, "-c", LEAVING_SCRIPT], capture_output=True,
                          text=True, timeout=30, cwd=tmp_path)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.strip() == "status 65", proc.stdout + proc.stderr
    assert "in.jsonl:2: invalid JSON" in proc.stderr


IMPORT_SCRIPT = r"""
import os, signal, sys, time
from cqia_cli import cli

signal.signal(signal.SIGTERM, cli._on_signal)   # the command's own handler
sys.path.insert(0, sys.argv[1])
try:
    import slow_module                          # the signal comes while it is imported
    time.sleep(2)
    print("not interrupted")
except cli.Terminated:
    print("terminated after the import:", "slow_module" in sys.modules)
"""

SLOW_MODULE = """
import os, signal, time, weakref
os.kill(os.getpid(), signal.SIGTERM)
for _ in range(200):                             # bytecodes run in the import machinery
    time.sleep(0.001)
"""


def test_a_signal_during_an_import_is_raised_after_it_not_swallowed(tmp_path):
    """Raised inside the import machinery (a module lock's weakref callback), the exception
    would be printed as "Exception ignored" and the run would go on: the signal is sent again
    once the import is over."""
    (tmp_path / "slow_module.py").write_text(SLOW_MODULE)
    proc = subprocess.run([sys.executable, "-c", IMPORT_SCRIPT, str(tmp_path)],
                          capture_output=True, text=True, timeout=30)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert proc.stdout.strip() == "terminated after the import: True", proc.stdout


def test_a_signal_while_an_output_makes_its_temporary_file_leaves_none(tmp_path, monkeypatch):
    from cqia_cli import cli, io
    from cqia_cli.status import Interrupted

    real = io.tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        made = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # the file exists, its name is not listed yet
        return made

    monkeypatch.setattr(io.tempfile, "mkstemp", mkstemp)
    cli._signalled.clear()
    old = signal.signal(signal.SIGINT, cli._on_signal)
    src = tmp_path / "in.jsonl"
    src.write_text('{"a": 1}\n')
    try:
        with pytest.raises(Interrupted):
            with io.Job([str(src)], output=str(tmp_path / "out.jsonl"), quiet=True) as job:
                for rec in job.records():
                    job.write(rec)
    finally:
        signal.signal(signal.SIGINT, old)
        cli._signalled.clear()
    assert sorted(os.listdir(tmp_path)) == ["in.jsonl"]
    assert not io.LIVE_TEMP


LONG_C_CALL_SCRIPT = r"""
import hashlib, os, signal, sys, threading
from cqia_cli import cli, io

cli._watchdog_enabled = True          # as the installed command sets it
cli._start_signal_watcher()           # as main() starts it
part = sys.argv[1]
open(part, "w").close()
io.LIVE_TEMP.add(part)                # an output's temporary file, not yet renamed


def body():
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
    # one long C call that releases the GIL and never returns to the interpreter (as numpy's
    # sorts do): Python cannot run the handler until it returns, 15 s or more from now
    hashlib.pbkdf2_hmac("sha256", b"x", b"salt", int(sys.argv[2]))
    print("returned", flush=True)


sys.exit(cli._run(body))
"""


@pytest.mark.slow  # the watchdog's 1.5 s by design
def test_a_signal_during_one_long_c_call_still_ends_the_command_in_time(tmp_path):
    """The handler runs only when the C call returns; the watcher thread arms the watchdog as
    the signal arrives, so the command still ends within two seconds with 143, its temporary
    files removed."""
    import sys

    part = tmp_path / ".out.jsonl.x.part"
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", LONG_C_CALL_SCRIPT, str(part), "40000000"],
                          capture_output=True, timeout=60)
    took = time.monotonic() - start
    assert proc.returncode == 143, proc.stderr
    assert b"returned" not in proc.stdout  # ended inside the call, not after it
    assert took < 0.3 + DEADLINE + 1.0, took  # + the interpreter's start-up
    assert not part.exists()
    assert b"Traceback" not in proc.stderr


SIGNAL_IN_ORJSON_INIT = r"""
import os, signal, sys


class Hook:  # a SIGTERM while orjson's module initialisation imports json.encoder
    def find_spec(self, name, path=None, target=None):
        if name == "json.encoder" and "orjson" in sys.modules:
            sys.stderr.write("hooked\n")
            os.kill(os.getpid(), signal.SIGTERM)
        return None


sys.meta_path.insert(0, Hook())
sys.argv[0] = "cqia"
from cqia_cli.__main__ import main
main()
"""


def test_a_signal_while_orjson_is_imported_is_143_not_a_crash(tmp_path):
    """An exception raised inside orjson's module initialisation (the handler of a SIGTERM
    that came as it imported json.encoder) crashed the interpreter: status 139 (SIGSEGV), no
    clean-up. orjson is imported while a signal still ends the process at once."""
    import sys

    src = tmp_path / "in.jsonl"
    src.write_text('{"instruction": "q", "output": "a"}\n')
    proc = subprocess.run([sys.executable, "-c", SIGNAL_IN_ORJSON_INIT, "filter", str(src),
                           "-o", str(tmp_path / "out.jsonl")], capture_output=True, timeout=60)
    if b"hooked" not in proc.stderr:
        pytest.skip("json.encoder was imported before orjson: the signal cannot land there")
    assert proc.returncode == 143, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
