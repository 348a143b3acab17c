"""The parallel primitive: Job.map_lines over parallel.map_batches (processes) and
aio.thread_map (threads; its own tests are in test_aio.py), Job.second_pass / open_reader,
Output.json_array."""

from __future__ import annotations

import os
import threading
import time

import orjson
import pytest

from cqia_cli.io import Job, Output, dumps, parse_lines
from cqia_cli.parallel import LOOKAHEAD, Staged, Workers, map_batches
from cqia_cli.status import CqiaError, DataError, InputError

from conftest import invoke

LINES = [b'{"i": 1}\n', b'{"i": 2}\n', b"\n", b"{oops\n", b'{"i": 3}\n', b"[1]\n",
         b'{"i": 4}\n', b'"s"\n', b'{"i": 5}\n']


def _write(tmp_path, n=2000, bad_every=0):
    path = tmp_path / "in.jsonl"
    with open(path, "wb") as f:
        for i in range(n):
            if bad_every and i % bad_every == bad_every - 1:
                f.write(b"{not json\n")
            else:
                f.write(orjson.dumps({"i": i, "text": "文" * (i % 7)}) + b"\n")
    return path


def double(records):  # module level: picklable as well as inherited
    return b"".join(dumps({**r, "i": r["i"] * 2}) for r in records), len(records)


def test_parse_lines_gives_runs_between_bad_lines():
    runs = parse_lines(LINES, 10)
    assert [[r["i"] for r in recs] for recs, _ in runs] == [[1, 2], [3], [4], [5]]
    assert [bad[:2] if bad else None for _, bad in runs] == [
        (13, b"{oops\n"), (15, b"[1]\n"), (17, b'"s"\n'), None]
    assert runs[1][1][2] == "not a JSON object (a JSON array)"


@pytest.mark.parametrize("mode", [{"jobs": 1}, {"jobs": 2}, {"jobs": 3, "threads": True}])
def test_map_lines_same_output_and_bad_lines_for_every_mode(tmp_path, mode):
    """-j 1 (in process), -j N (processes) and threads give the same bytes, in input order,
    and report the same bad lines (skip: counted and kept in --errors) as plain iteration."""
    path = _write(tmp_path, 3000, bad_every=101)
    errors = tmp_path / "errors.jsonl"
    out = tmp_path / "out.jsonl"
    with Job([str(path)], on_error="skip", errors=str(errors), output=str(out),
             quiet=True) as job:
        n = 0
        for data, count in job.map_lines(double, batch=64, **mode):
            job.out.write_raw(data)
            n += count
        skipped = job.skipped
    plain = [r for r in (orjson.loads(x) for x in path.read_bytes().splitlines()
                         if not x.startswith(b"{not"))]
    assert out.read_bytes() == b"".join(dumps({**r, "i": r["i"] * 2}) for r in plain)
    assert n == len(plain) and skipped == 3000 // 101
    assert errors.read_bytes() == b"{not json\n" * skipped


@pytest.mark.parametrize("jobs", [1, 2])
def test_map_lines_fails_at_the_first_bad_line_after_the_records_before_it(tmp_path, jobs):
    path = _write(tmp_path, 1000)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[700] = b"[1, 2]\n"
    path.write_bytes(b"".join(lines))
    got = []
    with pytest.raises(DataError) as e:
        with Job([str(path)], quiet=True) as job:
            for data, _ in job.map_lines(double, jobs, batch=64):
                got.append(data)
    assert e.value.message == f"{path}:701: not a JSON object (a JSON array)"
    assert b"".join(got).count(b"\n") == 700  # every record before it, none after


def _fail_at_3(batch):
    if batch == 3:
        raise DataError("batch 3 is bad")
    return batch


@pytest.mark.parametrize("jobs", [1, 2])
def test_map_batches_raises_a_worker_error_in_order(jobs):
    got = []
    with pytest.raises(DataError, match="batch 3 is bad"):
        for r in map_batches(_fail_at_3, range(10), jobs):
            got.append(r)
    assert got == [0, 1, 2]


def _die_at_5(batch):
    if batch == 5:
        os._exit(3)
    return batch


def test_a_worker_that_dies_is_reported_not_waited_for():
    start = time.monotonic()
    got = []
    with pytest.raises(CqiaError, match="worker process ended unexpectedly"):
        for r in map_batches(_die_at_5, range(20), 2, local=False):
            got.append(r)
    # the results it had not sent yet are lost with it; the ones before came in order
    assert got == list(range(len(got))) and len(got) <= 5
    assert time.monotonic() - start < 10


def _unpicklable_at_2(batch):
    return threading.Lock() if batch == 2 else batch


def test_a_result_that_cannot_be_pickled_is_an_error_in_order_not_a_dead_worker():
    got = []
    with pytest.raises(Exception, match="pickle") as e:
        for r in map_batches(_unpicklable_at_2, range(6), 2, local=False):
            got.append(r)
    assert got == [0, 1]
    assert "worker process ended" not in str(e.value)


def _where(batch):
    time.sleep(0.02)
    return batch, os.getpid()


@pytest.mark.parametrize("jobs", [2, 3])
def test_this_process_is_one_of_the_jobs(jobs):
    """-j N: N - 1 workers, and the consumer takes batches itself while it would wait; the
    results come in input order whoever made them."""
    children_before = set(_children())
    results = map_batches(_where, range(60), jobs)
    got = [next(results)]
    workers = set(_children()) - children_before
    got += list(results)
    assert [b for b, _ in got] == list(range(60))
    assert len(workers) == jobs - 1
    pids = {p for _, p in got}
    assert os.getpid() in pids and pids - {os.getpid()} <= workers and len(pids) == jobs
    # the last batches never go to a worker: nobody waits alone at the end
    assert [p for _, p in got[-LOOKAHEAD:]] == [os.getpid()] * LOOKAHEAD
    assert set(_children()) == children_before


def test_the_schedule_keeps_the_last_batches_here_or_gives_them_out():
    """`reserve`: that many of the input's last batches are this process's; `queued`: the
    batches waiting at a worker. The results are the same, in order, for any schedule."""
    for queued, reserve in ((2, 3), (1, 0), (3, 1)):
        got = list(map_batches(_where, range(30), 2, queued=queued, reserve=reserve))
        assert [b for b, _ in got] == list(range(30))
        if reserve:
            assert [p for _, p in got[-reserve:]] == [os.getpid()] * reserve


def _slow_in_a_worker_bad_at_3(batch, parent=os.getpid()):
    if os.getpid() != parent:
        time.sleep(0.3)
    if batch == 3:
        raise DataError("batch 3 is bad")
    return batch


def test_an_error_in_a_batch_done_here_is_raised_in_its_turn():
    """Batches 0-2 go to the worker (slow); the consumer does 3 itself meanwhile, which fails:
    raised after the worker's three results, not before."""
    got = []
    with pytest.raises(DataError, match="batch 3 is bad"):
        for r in map_batches(_slow_in_a_worker_bad_at_3, range(10), 2):
            got.append(r)
    assert got == [0, 1, 2]


def test_local_false_leaves_the_work_to_the_workers():
    got = list(map_batches(_where, range(12), 2, local=False))
    assert [b for b, _ in got] == list(range(12))
    assert os.getpid() not in {p for _, p in got} and len({p for _, p in got}) == 2


def test_large_array_results_cross_intact_and_writable():
    """Results with numpy arrays (out of band) and bytes larger than a pipe, in order."""
    import numpy as np

    def big(i):
        return {"a": np.arange(i * 300_000, (i + 1) * 300_000, dtype=np.int64),
                "b": bytes([i]) * 3_000_000, "c": np.zeros((4, 3), np.uint16)[:, 1]}

    for i, r in enumerate(map_batches(big, range(6), 2)):
        assert r["a"].tolist() == list(range(i * 300_000, (i + 1) * 300_000))
        assert r["b"] == bytes([i]) * 3_000_000 and r["c"].tolist() == [0, 0, 0, 0]
        r["a"][0] = -1  # the main process may change what it got


def _echo_lines(batch):
    return batch, os.getpid()


def test_batches_of_lines_cross_intact_and_anything_else_pickled():
    """A batch of lines (first line's number, [bytes]) crosses to a worker as one buffer and
    is cut back into the same lines; any other batch is pickled. Both in order."""
    big = "文".encode() * 1_000_000  # 3 MB: larger than the pipe
    batches = [
        (1, [b'{"a": 1}\n', b"", b"\n", b"\xff\xfe not utf-8\r\n", big + b"\n", b"x"]),
        (-5, []),
        (2 ** 62, [b"last"]),
        (2 ** 70, [b"too large a number: pickled"]),
        (3, ["str lines: pickled"]),
        (4, (b"a tuple", b"pickled")),
        [b"a list"],
        "anything",
    ]
    got = list(map_batches(_echo_lines, batches, 2, local=False))
    assert [g[0] for g in got] == batches
    assert all(type(line) is bytes for line in got[0][0][1])
    assert {g[1] for g in got} != {os.getpid()}


def test_workers_end_when_the_parent_is_killed(tmp_path):
    """A parent killed with SIGKILL (no clean-up) leaves no worker behind: a waiting worker
    sees its task pipe closed, a busy one its result pipe."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from cqia_cli import parallel\n"
        "it = parallel.map_batches(time.sleep, [0.3] * 100, 3, local=False)\n"
        "next(it)\n"
        "print(*parallel.LIVE_WORKERS, flush=True)\n"
        "time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert len(workers) == 3 and all(_alive(p) for p in workers)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(p) for p in workers)


@pytest.mark.parametrize("started", [False, True])
def test_a_signal_while_the_sending_thread_starts_leaves_a_sender_that_closes(monkeypatch,
                                                                             started):
    """Ctrl-C (KeyboardInterrupt) as the first task's writing thread starts, before or after
    it runs: closing the sender afterwards (the pool's clean-up) neither fails nor hangs."""
    from cqia_cli import parallel

    real_start = threading.Thread.start

    def interrupted_start(self):
        if started:
            real_start(self)
        raise KeyboardInterrupt

    read, write = os.pipe()
    try:
        sender = parallel._Sender(write, parallel._pack_task, parent=True)
        monkeypatch.setattr(threading.Thread, "start", interrupted_start)
        with pytest.raises(KeyboardInterrupt):
            sender.send((1, [b"a line\n"]))
        monkeypatch.setattr(threading.Thread, "start", real_start)
        begin = time.monotonic()
        sender.close(wait=False)
        assert time.monotonic() - begin < 0.5
        assert os.read(read, 100) == b""  # nothing was written; the write end is closed
    finally:
        os.close(read)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_map_batches_uses_a_closure_without_pickling_it():
    """Forked workers inherit the function: a closure over a lock (not picklable) works."""
    lock = threading.Lock()

    def add(batch):
        with lock:
            return sum(batch)

    batches = [list(range(i, i + 5)) for i in range(0, 100, 5)]
    assert list(map_batches(add, batches, 2)) == [sum(b) for b in batches]


def test_the_consumer_stopping_ends_the_workers():
    children_before = set(_children())
    results = map_batches(time.sleep, [0.5] * 50, 2)
    next(results)
    results.close()  # the consumer stops early (a closed pipe, an error)
    assert set(_children()) == children_before


_STATE: dict = {}


def _set_state(value, fail=False) -> None:
    if fail:
        raise DataError("the initializer failed")
    _STATE["value"] = value


def _read_state(batch):
    return batch, _STATE.get("value"), os.getpid()


@pytest.mark.parametrize("local", [True, False])
def test_workers_started_early_are_initialised_later_with_what_came_after(local):
    """Workers forked before the parent builds its state get the initializer and arguments
    made after the fork (pickled), before their first batch; the parent runs it too."""
    children_before = set(_children())
    _STATE.clear()
    with Workers(_read_state, 2, local=local) as workers:
        early = set(_children()) - children_before
        assert len(early) == (1 if local else 2)
        value = {"made": "after the fork", "n": list(range(1000))}
        got = list(map_batches(_read_state, range(30), 2, initializer=_set_state,
                               initargs=(value,), workers=workers, local=local))
    assert [b for b, _, _ in got] == list(range(30))
    assert all(v == value for _, v, _ in got)
    pids = {p for _, _, p in got}
    assert pids - {os.getpid()} == early  # the same processes did the work
    assert (os.getpid() in pids) == local
    assert set(_children()) == children_before


def test_workers_started_early_report_a_failing_initializer_at_the_first_batch():
    with Workers(_read_state, 2, local=False) as workers:
        with pytest.raises(DataError, match="the initializer failed"):
            list(map_batches(_read_state, range(5), 2, initializer=_set_state,
                             initargs=(1, True), workers=workers, local=False))


def _warm(fail=False) -> None:
    if fail:
        raise DataError("the warm-up failed")
    _STATE["warm"] = os.getpid()


def _read_warm(batch):
    return _STATE.get("warm"), _STATE.get("value"), os.getpid()


def test_workers_started_early_warm_up_as_they_start_and_its_error_comes_first():
    _STATE.clear()
    with Workers(_read_warm, 2, local=False, warm_up=_warm) as workers:
        got = list(map_batches(_read_warm, range(6), 2, initializer=_set_state,
                               initargs=(7,), workers=workers, local=False))
    assert all(w == p and v == 7 for w, v, p in got)  # warmed in the worker itself
    # a failed warm-up is what the first batch reports, even when the initializer works
    with Workers(_read_warm, 2, local=False, warm_up=_warm, warm_args=(True,)) as workers:
        with pytest.raises(DataError, match="the warm-up failed"):
            list(map_batches(_read_warm, range(6), 2, initializer=_set_state,
                             initargs=(7,), workers=workers, local=False))


def test_workers_started_early_and_never_used_are_stopped():
    children_before = set(_children())
    with Workers(_read_state, 3):
        assert len(set(_children()) - children_before) == 2
    assert set(_children()) == children_before
    with pytest.raises(KeyError):
        with Workers(_read_state, 2):
            raise KeyError("the parent failed before map_batches")
    assert set(_children()) == children_before
    assert Workers(_read_state, 1).take() is None  # -j 1: none


def test_workers_started_for_another_func_or_jobs_are_refused():
    with Workers(_read_state, 2) as workers:
        with pytest.raises(ValueError, match="another func"):
            next(map_batches(_where, range(3), 2, workers=workers))
        with pytest.raises(ValueError, match="another func"):
            next(map_batches(_read_state, range(3), 3, workers=workers))
        with pytest.raises(TypeError):  # initargs that cannot be pickled: said at once
            next(map_batches(_read_state, range(3), 2, initializer=_set_state,
                             initargs=(threading.Lock(),), workers=workers))


def test_map_lines_with_line_workers_gives_what_map_lines_gives(tmp_path):
    path = _write(tmp_path, 3000, bad_every=101)
    outs = []
    for early in (False, True):
        errors = tmp_path / f"errors{early}.jsonl"
        with Job([str(path)], on_error="skip", errors=str(errors), quiet=True) as job:
            with job.line_workers(double, 2) as workers:
                sample = job.peek(100, batch=64)
                got = b"".join(d for d, _ in job.map_lines(
                    double, 2, batch=64, workers=workers if early else None))
        outs.append((len(sample), got, errors.read_bytes(), job.skipped))
    assert outs[0] == outs[1] and outs[0][3] == 29
    with Job([str(path)], quiet=True) as job:
        with job.line_workers(double, 2) as workers:
            with pytest.raises(ValueError, match="another func"):
                next(job.map_lines(double, 2, batch=64, lazy=True, workers=workers))


# -- a func in two stages: batches sent early, prepared before the initializer comes ----------


def _prepare(batch):
    if batch == "bad":
        raise DataError("prepare failed")
    return batch, _STATE.get("value"), os.getpid()


def _finish(prepared):
    batch, before, pid = prepared
    if batch == -13:
        raise DataError("finish failed at -13")
    return batch, before, _STATE.get("value"), pid, os.getpid()


_STAGED = Staged(_prepare, _finish)


@pytest.mark.parametrize("jobs", [2, 3])
def test_batches_sent_early_are_prepared_at_once_and_finished_after_the_initializer(jobs):
    """Workers.send_early: a worker started early runs `prepare` on the batch before the
    initializer has come, `finish` after it; map_batches takes the first batches of its input
    as those, sends them no more, and yields every result in input order."""
    _STATE.clear()
    children_before = set(_children())
    with Workers(_STAGED, jobs) as workers:
        early = set(_children()) - children_before
        assert len(early) == jobs - 1
        assert all(workers.send_early(b) for b in range(5))
        got = list(map_batches(_STAGED, range(40), jobs, initializer=_set_state,
                               initargs=("set",), workers=workers))
    assert [g[0] for g in got] == list(range(40))
    for batch, before, after, prepared_in, finished_in in got[:5]:
        assert before is None and after == "set"  # prepared before the initializer ran
        assert prepared_in == finished_in and prepared_in in early
    assert {g[3] for g in got[:5]} == early  # round robin
    assert all(before == after == "set" for _, before, after, _, _ in got[5:])
    assert Staged(_prepare, _finish)(4)[:3] == (4, "set", "set")  # calling it does both
    assert set(_children()) == children_before


def test_a_batch_sent_early_that_fails_is_raised_in_its_turn():
    for bad, message in (("bad", "prepare failed"), (-13, "finish failed at -13")):
        with Workers(_STAGED, 2, local=False) as workers:
            for b in (0, bad, 2):
                workers.send_early(b)
            results = map_batches(_STAGED, [0, bad, 2, 3], 2, initializer=_set_state,
                                  initargs=(1,), workers=workers, local=False)
            assert next(results)[0] == 0
            with pytest.raises(DataError, match=message):
                next(results)


def test_batches_sent_early_report_a_failed_initializer_or_warm_up():
    with Workers(_STAGED, 2, local=False) as workers:
        workers.send_early(0)
        with pytest.raises(DataError, match="the initializer failed"):
            list(map_batches(_STAGED, range(3), 2, initializer=_set_state, initargs=(1, True),
                             workers=workers, local=False))
    with Workers(_STAGED, 2, local=False, warm_up=_warm, warm_args=(True,)) as workers:
        workers.send_early(0)
        with pytest.raises(DataError, match="the warm-up failed"):
            list(map_batches(_STAGED, range(3), 2, initializer=_set_state, initargs=(1,),
                             workers=workers, local=False))


def test_send_early_needs_a_staged_func_and_workers_and_as_many_batches_after():
    children_before = set(_children())
    with Workers(_read_state, 2) as workers:
        with pytest.raises(ValueError, match="no prepare stage"):
            workers.send_early(0)
    with Workers(_STAGED, 1) as workers:
        assert workers.send_early(0) is False  # -j 1: nothing to send it to
    with Workers(_STAGED, 2) as workers:
        for b in range(3):
            workers.send_early(b)
        with pytest.raises(ValueError, match="fewer batches than were sent early"):
            list(map_batches(_STAGED, range(2), 2, workers=workers))
    assert set(_children()) == children_before


def _write_prepare(records):
    return [dumps({**r, "i": r["i"] * 2}) for r in records]  # too deep: raised here


def _write_finish(out):
    return b"".join(out), len(out)


_STAGED_WRITE = Staged(_write_prepare, _write_finish)


@pytest.mark.parametrize("jobs", [2, 3])
def test_peek_with_line_workers_sends_its_batches_early_with_the_same_results(tmp_path, jobs):
    """Job.peek(workers=...) gives each batch it reads to the workers at once; map_lines then
    gives what it gives without, bad lines and a record too deep to write (in a batch sent
    early) reported in place."""
    path = _write(tmp_path, 3000, bad_every=101)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[150] = b'{"i": 0, "x": ' + b"[" * 300 + b"]" * 300 + b"}\n"
    lines[151] = b"\n"
    path.write_bytes(b"".join(lines))
    got = {}
    for early, extra in ((False, 0), (True, 0), (True, 3), (True, 100)):
        errors = tmp_path / f"errors{early}{extra}.jsonl"
        with Job([str(path)], on_error="skip", errors=str(errors), quiet=True) as job:
            with job.line_workers(_STAGED_WRITE, jobs, lazy=True) as workers:
                sample = job.peek(500, batch=64, workers=workers if early else None,
                                  extra=extra)
                sent = len(workers._pool.early)
                data = list(job.map_lines(_STAGED_WRITE, jobs, batch=64, lazy=True,
                                          workers=workers))
        got[early, extra] = ([r["i"] for r in sample], data, errors.read_bytes(), job.skipped)
        # 8 batches of 64 lines hold the first 500 records; `extra` more per worker, as many
        # as the input has (3000 lines: 47 batches)
        assert sent == (min(47, 8 + extra * (jobs - 1)) if early else 0)
    assert got[True, 0] == got[False, 0] == got[True, 3] == got[True, 100]
    assert got[True, 0][2].startswith(b"{not json\n" * 1 + lines[150])
    assert got[True, 0][3] == 29 + 1


def _children() -> list[int]:
    me = os.getpid()
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        out.append(int(pid))
            except (OSError, ValueError, IndexError):
                pass
    return out


def test_second_pass_reads_the_files_again_and_open_reader_reports_as_the_job(tmp_path):
    path = _write(tmp_path, 50)
    other = tmp_path / "other.jsonl"
    other.write_bytes(b'{"a": 1}\n[2]\n')
    with Job([str(path)], quiet=True, output=str(tmp_path / "o")) as job:
        first = list(job.records(again=True))
        assert list(job.second_pass()) == first
        with pytest.raises(DataError, match=f"{other}:2: not a JSON object"):
            list(job.open_reader(str(other)))


def test_second_pass_of_standard_input_is_kept_in_a_temporary_file():
    data = b"".join(orjson.dumps({"i": i}) + b"\n" for i in range(100))
    r = invoke(["split", "-q", "--ratios", "a=0.5,b=0.5", "--mark"], input=data)
    assert r.exit_code == 0
    out = [orjson.loads(x) for x in r.stdout_bytes.splitlines()]
    assert [o["i"] for o in out] == list(range(100))


@pytest.mark.parametrize("records,expected", [
    ([], b"[]\n"),
    ([{"a": 1}], b'[\n{"a":1}\n]\n'),
    ([{"a": 1}, {"b": "文"}], '[\n{"a":1},\n{"b":"文"}\n]\n'.encode()),
])
def test_output_json_array(tmp_path, records, expected):
    path = tmp_path / "a.json"
    out = Output(str(path))
    out.json_array()
    for r in records:
        out.write(r)
    out.commit()
    assert path.read_bytes() == expected
    assert orjson.loads(expected) == records


# -- Job.peek: the first records read ahead, then given again by map_lines ----------------------


def _first_of(records):
    return [r["i"] for r in records]


@pytest.mark.parametrize("jobs", [1, 2])
def test_peek_then_map_lines_gives_every_line_once_and_reports_bad_lines_in_place(tmp_path,
                                                                                 jobs):
    path = _write(tmp_path, 1000, bad_every=50)
    errors = tmp_path / "errors.jsonl"
    with Job([str(path)], on_error="skip", errors=str(errors), quiet=True) as job:
        head = job.peek(100, batch=64)
        assert job.skipped == 0  # the bad lines among them are the pass's to report
        got = [i for ids in job.map_lines(_first_of, jobs, batch=64) for i in ids]
        skipped = job.skipped
    plain = [orjson.loads(x)["i"] for x in path.read_bytes().splitlines()
             if not x.startswith(b"{not")]
    assert [r["i"] for r in head] == plain[:100]
    assert got == plain and skipped == 1000 // 50
    assert errors.read_bytes() == b"{not json\n" * skipped


def test_peek_reads_standard_input_once(tmp_path, monkeypatch):
    import io
    import sys

    data = b"".join(orjson.dumps({"i": i}) + b"\n" for i in range(500))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    with Job(["-"], quiet=True) as job:
        assert [r["i"] for r in job.peek(3, batch=10)] == [0, 1, 2]
        got = [i for ids in job.map_lines(_first_of, 1, batch=10) for i in ids]
    assert got == list(range(500))


def test_peek_of_more_records_than_the_input_has_gives_them_all(tmp_path):
    path = _write(tmp_path, 5)
    with Job([str(path)], quiet=True) as job:
        assert len(job.peek(100)) == 5
        assert sum(len(ids) for ids in job.map_lines(_first_of)) == 5


def test_peek_fails_at_a_bad_line_only_in_the_pass_after_the_records_before_it(tmp_path):
    path = _write(tmp_path, 100)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[10] = b"[1]\n"
    path.write_bytes(b"".join(lines))
    got = []
    with pytest.raises(DataError) as e:
        with Job([str(path)], quiet=True) as job:
            assert len(job.peek(50, batch=64)) == 50  # the bad line is not its to report
            for ids in job.map_lines(_first_of, batch=64):
                got.extend(ids)
    assert e.value.message == f"{path}:11: not a JSON object (a JSON array)"
    assert got == list(range(10))


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_reading_error_met_by_peek_is_raised_by_the_pass_after_the_lines_before_it(
        tmp_path, jobs):
    import gzip

    data = b"".join(orjson.dumps({"i": i}) + b"\n" for i in range(20000))
    whole = gzip.compress(data)
    path = tmp_path / "t.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    got = []
    with pytest.raises(DataError, match="corrupt or truncated compressed data"):
        with Job([str(path)], quiet=True) as job:
            job.peek(10 ** 9, batch=64)  # reads up to the error, which is the pass's
            for ids in job.map_lines(_first_of, jobs, batch=64):
                got.extend(ids)
    assert got and got == list(range(len(got)))


def test_peek_is_used_once_before_reading_with_the_pass_batch(tmp_path):
    path = _write(tmp_path, 10)
    with Job([str(path)], quiet=True) as job:
        job.peek(2, batch=64)
        with pytest.raises(RuntimeError):
            job.peek(2, batch=64)
        with pytest.raises(RuntimeError):
            next(job.records())
        with pytest.raises(ValueError):
            next(job.map_lines(_first_of, batch=32))


def _double_lazy(records):
    out = [dumps({**r, "i": r["i"] * 2}) for r in records]
    return b"".join(out), len(out)


def _take_one(records):
    return next(iter(records))


@pytest.mark.parametrize("jobs", [1, 2])
def test_map_lines_lazy_gives_what_eager_gives_with_bad_and_too_deep_lines(tmp_path, jobs):
    """lazy=True (records parsed as func takes them): the same results, bad lines reported
    in place, a record too deep to write made a bad line and the records around it kept."""
    path = _write(tmp_path, 3000, bad_every=101)
    lines = path.read_bytes().splitlines(keepends=True)
    deep = b'{"i": 0, "x": ' + b"[" * 300 + b"]" * 300 + b"}\n"
    lines[1000] = deep
    lines[1001] = b"\n"
    lines[-1] = b"[1]\n"
    path.write_bytes(b"".join(lines))
    got = {}
    for lazy in (False, True):
        errors = tmp_path / f"errors-{lazy}.jsonl"
        with Job([str(path)], on_error="skip", errors=str(errors), quiet=True) as job:
            data = [d for d in job.map_lines(_double_lazy, jobs, batch=64, lazy=lazy)]
            skipped = job.skipped
        got[lazy] = (data, skipped, errors.read_bytes())
    assert got[True] == got[False]
    data, skipped, errors = got[True]
    assert deep in errors and errors.endswith(b"[1]\n")
    assert skipped == errors.count(b"\n") and sum(n for _, n in data) == 3000 - 1 - skipped  # one blank


def test_map_lines_lazy_func_must_take_every_record(tmp_path):
    path = _write(tmp_path, 10)
    with pytest.raises(RuntimeError, match="must take every record"):
        with Job([str(path)], quiet=True) as job:
            list(job.map_lines(_take_one, lazy=True))


# -- skipped lines of every reader, counted once ------------------------------------------------


def test_open_reader_skips_are_counted_once_in_the_run_and_a_second_pass_adds_none(tmp_path):
    main = _write(tmp_path, 300, bad_every=100)  # 3 bad lines
    ref = tmp_path / "ref.jsonl"
    ref.write_bytes(b'{"i": 1}\n{bad ref\n{"i": 2}\n[1]\n')
    errors = tmp_path / "errors.jsonl"
    with Job([str(main)], on_error="skip", errors=str(errors), quiet=True) as job:
        assert len(list(job.open_reader(str(ref)))) == 2
        assert job.skipped == 2
        assert len(list(job.records(again=True))) == 297
        assert len(list(job.second_pass())) == 297  # the same 3 bad lines: not again
        assert job.skipped == 5
        assert job._skipped_line() == (f"skipped 5 bad lines: 3 in {main}, 2 in {ref} "
                                       f"(kept in {errors})")
    assert errors.read_bytes().count(b"\n") == 5


def test_dedup_against_a_reference_with_a_bad_line_counts_it(tmp_path):
    main = tmp_path / "in.jsonl"
    main.write_bytes(b'{"instruction": "a", "output": "x"}\n{"instruction": "b", "output": "y"}\n')
    ref = tmp_path / "ref.jsonl"
    ref.write_bytes(b'{"instruction": "a", "output": "x"}\n{oops\n')
    errors = tmp_path / "errors.jsonl"
    res = invoke(["dedup", "--against", ref, "--on-error", "skip", "--errors", errors, main])
    assert res.exit_code == 0, res
    assert [r["instruction"] for r in res.records()] == ["b"]
    assert res.stderr.endswith(f"skipped 1 bad lines in {ref} (kept in {errors})\n"), res
    assert errors.read_bytes() == b"{oops\n"


def test_split_counts_a_bad_line_once_over_its_two_passes(tmp_path):
    path = _write(tmp_path, 100, bad_every=40)  # 2 bad lines
    errors = tmp_path / "errors.jsonl"
    res = invoke(["split", "--ratios", "a=0.5,b=0.5", "--on-error", "skip", "--errors", errors,
                  "-o", tmp_path / "{split}.jsonl", path])
    assert res.exit_code == 0, res
    assert res.stderr.count("skipped") == 1
    assert res.stderr.endswith(f"skipped 2 bad lines (kept in {errors})\n"), res
    assert errors.read_bytes() == b"{not json\n" * 2


def test_stats_compare_counts_the_bad_lines_of_both_sides_once(tmp_path):
    before = _write(tmp_path, 50, bad_every=20)  # 2 bad lines
    after = tmp_path / "after.jsonl"
    after.write_bytes(b'{"instruction": "q", "output": "a"}\n{oops\n')
    res = invoke(["stats", "--compare", "--on-error", "skip", before, after])
    assert res.exit_code == 0, res
    assert res.stderr.count("skipped") == 1
    assert res.stderr.endswith(f"skipped 3 bad lines: 2 in {before}, 1 in {after}\n"), res


@pytest.mark.parametrize("stdin", [False, True])
def test_dedup_two_pass_counts_a_bad_line_once(tmp_path, stdin):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"instruction": "a", "output": "x"}\n{oops\n'
                     b'{"instruction": "a", "output": "x"}\n{"instruction": "b", "output": "z"}\n')
    errors = tmp_path / "errors.jsonl"
    args = ["dedup", "--keep", "longest", "--on-error", "skip", "--errors", errors]
    res = invoke(args, input=path.read_bytes()) if stdin else invoke(args + [path])
    assert res.exit_code == 0, res
    assert [r["output"] for r in res.records()] == ["x", "z"]
    assert res.stderr.count("skipped") == 1 and "skipped 1 bad lines" in res.stderr, res
    assert errors.read_bytes() == b"{oops\n"


@pytest.fixture
def unfrozen():
    """A test that freezes objects (gc.freeze) gives them back to the collector after."""
    import gc

    gc.unfreeze()
    yield gc
    gc.unfreeze()


@pytest.mark.parametrize("gc_on", [True, False])
def test_peek_parses_without_the_collector_and_freezes_the_records(tmp_path, unfrozen, gc_on):
    """The records peeked at are frozen out of the cyclic collector's way (it would walk them
    again and again while they are parsed and learned from); the collector is left as it was."""
    gc = unfrozen
    path = _write(tmp_path, 300, bad_every=50)
    seen: list = []

    def count(phase, info):
        if phase == "start":
            seen.append(info["generation"])

    was = gc.isenabled()
    if not gc_on:
        gc.disable()
    gc.collect()
    gc.callbacks.append(count)
    try:
        with Job([str(path)], on_error="skip", quiet=True) as job:
            head = job.peek(200, batch=64)
            assert seen == []  # no collection while parsing
            assert gc.isenabled() is gc_on
            frozen = gc.get_freeze_count()
            assert (frozen >= len(head)) is gc_on
            got = [i for ids in job.map_lines(_first_of, 1, batch=64) for i in ids]
    finally:
        gc.callbacks.remove(count)
        if was:
            gc.enable()
    assert [r["i"] for r in head] == got[:200] and len(got) == 300 - 300 // 50


def test_workers_are_forked_with_the_objects_before_them_frozen(unfrozen):
    """What exists when -j workers are forked is frozen (no collector walk writes to the pages
    both processes share); the work is the same."""
    gc = unfrozen
    before = [{"n": i} for i in range(1000)]
    assert gc.get_freeze_count() == 0
    out = list(map_batches(_double, [[1, 2], [3]], 2))
    assert out == [[2, 4], [6]]
    if "fork" in __import__("multiprocessing").get_all_start_methods():
        assert gc.get_freeze_count() >= len(before)


def _double(batch):
    return [x * 2 for x in batch]


def test_a_task_of_lines_is_joined_only_as_it_is_written():
    """A batch of lines queued for a worker holds the lines themselves, not a joined copy
    (dedup queues its first batches for a busy worker); the worker reads the same lines."""
    from cqia_cli.parallel import _Early, _Joined, _pack_task, _Sender, _TaskReader

    lines = [orjson.dumps({"i": i, "t": "文" * i}) + b"\n" for i in range(300)]
    parts = _pack_task((7, lines))
    assert type(parts[-1]) is _Joined and parts[-1].lines is lines
    assert sum(len(p) for p in parts[:-1]) < 8 * len(lines) + 64  # a header and the lengths
    take, give = os.pipe()
    sender = _Sender(give, _pack_task, parent=True)
    reader = _TaskReader(take)
    try:
        sender.put((7, lines))
        sender.put(_Early((307, lines[:5])))
        assert reader.get(5) == (7, lines)
        early = reader.get(5)
        assert type(early) is _Early and early.batch == (307, lines[:5])
    finally:
        sender.close()
        os.close(take)


def test_a_task_of_file_lines_crosses_as_where_they_are(tmp_path):
    """Lines read from a regular file cross to a worker as where they are (a few dozen bytes,
    whatever the batch's size); the worker reads them there, split as reading splits them
    (after each newline only). A file cut short, or replaced once the parent is done with it,
    makes that batch an InputError for the parent to raise in its turn, not the worker's
    death."""
    from cqia_cli.io import RecordReader
    from cqia_cli.parallel import _Early, _Failed, _pack_task, _Sender, _TaskReader

    path = tmp_path / "in.jsonl"
    body = b"".join(b'{"i": %d,\r"t": "%s"}\n' % (i, "文".encode() * i) for i in range(50))
    path.write_bytes(body + b'{"last": 1}')
    batches = [(first, lines) for _, first, lines in RecordReader([str(path)]).raw_batches(20)]
    assert [len(lines) for _, lines in batches] == [20, 20, 11]
    take, give = os.pipe()
    sender = _Sender(give, _pack_task, parent=True)
    reader = _TaskReader(take)
    try:
        for first, lines in batches:
            parts = _pack_task((first, lines))
            assert len(parts) == 1 and len(parts[0]) < 80 + len(str(path).encode())
            sender.put((first, lines))
            got = reader.get(5)
            assert got == (first, lines) and type(got[1]) is list
        sender.put(_Early(batches[2]))
        early = reader.get(5)
        assert type(early) is _Early and early.batch == batches[2]
        # cut short in place: the worker's open file is shorter than the lines it is sent
        with open(path, "r+b") as f:
            f.truncate(len(body) // 2)
        sender.put(batches[2])
        failed = reader.get(5)
        assert type(failed) is _Failed and not failed.early
        assert isinstance(failed.error, InputError)
        assert str(failed.error) == f"{path}: changed while it was being read"
        # replaced: a worker opening the name now finds another file there
        other = tmp_path / "other.jsonl"
        other.write_bytes(body)
        os.replace(other, path)
        sender.put(_Early(batches[0]))
        failed = _TaskReader(take).get(5)
        assert type(failed) is _Failed and failed.early
        assert str(failed.error) == f"{path}: changed while it was being read"
    finally:
        sender.close()
        os.close(take)


def _written(path, data: bytes):
    path.write_bytes(data)
    return path


def _lines_in(batch):
    return len(batch[1])


def test_a_batch_a_worker_cannot_read_is_raised_in_the_parent(tmp_path):
    from cqia_cli.io import RecordReader

    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"a": 1}\n' * 10)
    batches = [(first, lines) for _, first, lines in RecordReader([str(path)]).raw_batches(4)]
    assert list(map_batches(_lines_in, iter(batches), 2, local=False)) == [4, 4, 2]
    other = tmp_path / "other.jsonl"
    other.write_bytes(b'{"a": 1}\n' * 10)
    os.replace(other, path)
    with pytest.raises(InputError) as e:
        list(map_batches(_lines_in, iter(batches), 2, local=False))
    assert str(e.value) == f"{path}: changed while it was being read"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_worker_reads_the_file_the_parent_reads_even_once_renamed_over_or_removed(tmp_path):
    """A name replaced or removed while the parent still reads the file: the worker reads the
    parent's file through the parent's own descriptor; once the parent has closed it, the
    batch is an InputError that says so."""
    from cqia_cli.io import RecordReader
    from cqia_cli.parallel import _Failed, _pack_task, _Sender, _TaskReader

    path = tmp_path / "in.jsonl"
    path.write_bytes(b"".join(b'{"i": %d}\n' % i for i in range(30)))
    reading = RecordReader([str(path)]).raw_batches(10)
    _, first, lines = next(reading)  # the parent is reading the file
    take, give = os.pipe()
    sender = _Sender(give, _pack_task, parent=True)
    try:
        other = tmp_path / "other.jsonl"
        other.write_bytes(b'{"other": 1}\n' * 30)
        os.replace(other, path)
        sender.put((first, lines))
        assert _TaskReader(take).get(5) == (first, lines)
        path.unlink()
        sender.put((first, lines))
        assert _TaskReader(take).get(5) == (first, lines)
        reading.close()  # the parent is done with it
        sender.put((first, lines))
        failed = _TaskReader(take).get(5)
        assert type(failed) is _Failed
        assert str(failed.error) == f"{path}: changed while it was being read"
        # one name given twice, another file under it the second time: each read as it was
        reader = _TaskReader(take)
        for body in (b'{"one": 1}\n' * 3, b'{"two": 2}\n' * 3):
            os.replace(_written(tmp_path / "next.jsonl", body), path)
            _, first, lines = next(RecordReader([str(path)]).raw_batches(10))
            sender.put((first, lines))
            assert reader.get(5) == (1, [body[:11]] * 3)
    finally:
        sender.close()
        os.close(take)


def _pid(batch):
    time.sleep(0.01)
    return os.getpid()


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_a_worker_ends_once_its_last_result_is_taken():
    """A worker that will get no more batches is told to end as its last result is taken,
    not when the consumer is done: it ends while the consumer works on what is left."""
    it = map_batches(_pid, ([i] for i in range(12)), 2)
    pids = [next(it) for _ in range(12)]  # the last result held: the generator is suspended
    workers = set(pids) - {os.getpid()}
    assert len(workers) == 1
    worker = workers.pop()
    deadline = time.monotonic() + 5
    while _state(worker) not in ("Z", "gone") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _state(worker) in ("Z", "gone")
    assert next(it, None) is None  # and the pool is closed as before
    assert _state(worker) == "gone"
