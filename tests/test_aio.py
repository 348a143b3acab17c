"""The one seam for I/O-bound mapping: aio.ordered_map, and what is expressed through it,
aio.thread_map (Job.map_lines(threads=True)) and aio.map_records (Job.map_async, score's and
generate's loop). Each with the contract of the process map: results in input order whatever
order the work finishes in, an error in the middle raised after the results before it, a bad
line reported in its place exactly as plain iteration reports it, a signal ending it at once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time

import orjson
import pytest

from cqia_cli.aio import ordered_map, thread_map
from cqia_cli.io import Job, dumps
from cqia_cli.status import DataError


def _input(tmp_path, n=300, bad=(), name="in.jsonl"):
    """n lines, record i = {"i": i}; the line numbers (1-based) in `bad` are not JSON."""
    path = tmp_path / name
    with open(path, "wb") as f:
        for i in range(n):
            f.write(b"{oops %d\n" % i if i + 1 in bad else orjson.dumps({"i": i}) + b"\n")
    return path


def _async_collect(job, fn, **kw):
    async def go():
        got = []
        async for item, at, result in job.map_async(fn, **kw):
            got.append((item, at[:2], result))
        return got

    return asyncio.run(go())


# -- thread_map ----------------------------------------------------------------------------------


def test_thread_map_keeps_input_order_under_out_of_order_completion():
    rng = random.Random(1)
    delays = [rng.random() / 50 for _ in range(300)]
    finished = []

    def slow(i):
        time.sleep(delays[i])
        finished.append(i)
        return i * i

    assert list(thread_map(slow, range(300), 16)) == [i * i for i in range(300)]
    assert finished != sorted(finished)  # the work did finish out of order


def test_thread_map_raises_an_error_in_the_middle_after_the_results_before_it():
    rng = random.Random(2)
    delays = [rng.random() / 100 for _ in range(200)]
    started = []

    def slow(i):
        started.append(i)
        time.sleep(delays[i])
        if i == 150:
            raise ValueError("item 150")
        return i

    got = []
    with pytest.raises(ValueError, match="item 150"):
        for r in thread_map(slow, range(200), 8):
            got.append(r)
    assert got == list(range(150))
    time.sleep(0.1)
    assert max(started) < 150 + 2 * 8 + 1  # the window bounds what was started past it


def test_thread_map_has_jobs_calls_in_flight_and_jobs_1_runs_here():
    active, peak = [0], [0]
    lock = threading.Lock()
    threads = set()

    def call(i):
        threads.add(threading.current_thread().name)
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
        return i

    assert list(thread_map(call, range(64), 8)) == list(range(64))
    assert peak[0] == 8
    threads.clear()
    assert list(thread_map(call, range(5), 1)) == list(range(5))
    assert threads == {threading.current_thread().name}


def test_thread_map_reading_error_after_the_items_read_before_it():
    def items():
        yield from range(10)
        raise DataError("in.jsonl:11: invalid JSON")

    def work(i):
        time.sleep(0.001 * (10 - i))
        return i

    got = []
    with pytest.raises(DataError, match="in.jsonl:11"):
        for r in thread_map(work, items(), 4):
            got.append(r)
    assert got == list(range(10))


def test_thread_map_a_signal_while_calls_hang_ends_it_at_once():
    """SIGINT while every thread waits on a call that never returns (a dead server): the
    consumer gets KeyboardInterrupt within moments, calls in flight are abandoned, the loop is
    closed and no thread of it is waited for."""
    release = threading.Event()

    def hang(i):
        release.wait(30)
        return i

    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            list(thread_map(hang, range(100), 4))
        assert time.monotonic() - start < 2
    finally:
        timer.cancel()
        release.set()
    def mapping_threads():
        return [t for t in threading.enumerate() if t.name.startswith("cqia-map-")]

    deadline = time.monotonic() + 5
    while mapping_threads() and time.monotonic() < deadline:
        time.sleep(0.01)  # the released threads end by themselves (daemons, never joined)
    assert not mapping_threads()


def test_map_lines_threads_a_bad_line_among_good_ones_as_serial(tmp_path):
    path = _input(tmp_path, 500, bad={7, 8, 200, 500})

    def work(records):
        time.sleep(random.random() / 200)
        return b"".join(dumps({**r, "x": 1}) for r in records)

    outs = {}
    for jobs, threads in ((1, False), (4, True)):
        errors = tmp_path / f"errors-{jobs}.jsonl"
        with Job([str(path)], on_error="skip", errors=str(errors), quiet=True) as job:
            data = b"".join(job.map_lines(work, jobs, batch=16, threads=threads))
            outs[jobs] = (data, job.skipped)
        outs[jobs] += (errors.read_bytes(),)
    assert outs[1] == outs[4]
    assert outs[4][1] == 4 and outs[4][2] == b"{oops 6\n{oops 7\n{oops 199\n{oops 499\n"


def test_map_lines_threads_fail_at_the_first_bad_line_after_the_records_before_it(tmp_path):
    path = _input(tmp_path, 300, bad={123})

    def work(records):
        time.sleep(random.random() / 200)
        return [r["i"] for r in records]

    got = []
    with pytest.raises(DataError, match=f"{path}:123: invalid JSON"):
        with Job([str(path)], quiet=True) as job:
            for ids in job.map_lines(work, 4, batch=10, threads=True):
                got.extend(ids)
    assert got == list(range(122))


# -- Job.map_async (aio.map_records) -------------------------------------------------------------


def test_map_async_keeps_input_order_under_out_of_order_completion(tmp_path):
    path = _input(tmp_path, 400)
    rng = random.Random(3)
    finished = []

    async def work(rec):
        await asyncio.sleep(rng.random() / 100)
        finished.append(rec["i"])
        return rec["i"] * 2

    def fn(rec):  # every third ready at once (a cache hit), the rest awaited
        return rec["i"] * 2 if rec["i"] % 3 == 0 else work(rec)

    with Job([str(path)], quiet=True) as job:
        got = _async_collect(job, fn, window=32, batch=50)
        assert job.reader.records == 400
    assert [r for _, _, r in got] == [2 * i for i in range(400)]
    assert [at for _, at, _ in got] == [(str(path), i + 1) for i in range(400)]
    assert finished != sorted(finished)


def test_map_async_an_error_in_the_middle_comes_after_the_results_before_it(tmp_path):
    path = _input(tmp_path, 200)
    cancelled = []

    async def work(rec):
        try:
            i = rec["i"]
            await asyncio.sleep(0.05 if i == 50 else 0.01 if i < 50 else 30)
        except asyncio.CancelledError:
            cancelled.append(rec["i"])
            raise
        if rec["i"] == 50:
            raise ValueError("boom at 50")
        return rec["i"]

    async def go():
        got = []
        with pytest.raises(ValueError, match="boom at 50"):
            with Job([str(path)], quiet=True) as job:
                async for _, _, r in job.map_async(work, window=64, batch=16):
                    got.append(r)
        return got

    start = time.monotonic()
    assert asyncio.run(go()) == list(range(50))
    assert time.monotonic() - start < 2
    assert cancelled and min(cancelled) > 50  # what was in flight after it was cancelled


def test_map_async_prepare_sees_each_batch_once(tmp_path):
    path = _input(tmp_path, 100, bad={10})
    batches = []

    def prepare(records):
        batches.append(len(records))
        return [(r["i"], "prepared") for r in records]

    with Job([str(path)], on_error="skip", quiet=True) as job:
        got = _async_collect(job, lambda item: item[0], prepare=prepare, batch=25)
    assert batches == [24, 25, 25, 25]
    assert [item for item, _, _ in got] == [(i, "prepared") for i in range(100) if i != 9]


def test_map_async_bad_lines_in_their_place_among_the_callers_own(tmp_path):
    """--on-error skip: the bad lines and the records the caller rejects (a request that
    failed) reach --errors in input order, whatever order the work finishes in."""
    path = _input(tmp_path, 120, bad={3, 40, 41, 120})
    errors = tmp_path / "errors.jsonl"

    async def work(rec):
        await asyncio.sleep(random.random() / 100)
        return rec["i"] % 10 != 5  # "the request failed" for 5, 15, ...

    async def go(job):
        kept = []
        async for rec, at, ok in job.map_async(work, window=16, batch=8):
            if ok:
                kept.append(rec["i"])
            else:
                job.reader.bad_line(at[2], at[1], "request failed", path=at[0])
        return kept

    with Job([str(path)], on_error="skip", errors=str(errors), quiet=True) as job:
        kept = asyncio.run(go(job))
        assert job.skipped == 4 + 12
    bad = {2, 39, 40, 119}
    assert kept == [i for i in range(120) if i not in bad and i % 10 != 5]
    expected = [b"{oops %d\n" % i if i in bad else orjson.dumps({"i": i}) + b"\n"
                for i in range(120) if i in bad or i % 10 == 5]
    assert errors.read_bytes() == b"".join(expected)


def test_map_async_fails_at_a_bad_line_after_the_results_before_it_and_reads_no_further(
        tmp_path):
    path = _input(tmp_path, 300, bad={77})
    called = []

    async def work(rec):
        called.append(rec["i"])
        await asyncio.sleep(random.random() / 200)
        return rec["i"]

    async def go():
        got = []
        with pytest.raises(DataError, match=f"{path}:77: invalid JSON"):
            with Job([str(path)], quiet=True) as job:
                async for _, _, r in job.map_async(work, window=64, batch=32):
                    got.append(r)
        return got

    assert asyncio.run(go()) == list(range(76))
    assert max(called) == 75  # no request for a record after the bad line


def test_map_async_reading_error_after_the_records_before_it(tmp_path):
    import gzip

    path = tmp_path / "in.jsonl.gz"
    data = gzip.compress(b"".join(orjson.dumps({"i": i}) + b"\n" for i in range(2000)))
    path.write_bytes(data[:len(data) // 2])  # truncated

    async def go():
        got = []
        with pytest.raises(DataError, match="corrupt or truncated compressed data"):
            with Job([str(path)], quiet=True) as job:
                async for rec, _, _ in job.map_async(lambda r: asyncio.sleep(0), batch=64):
                    got.append(rec["i"])
        return got

    got = asyncio.run(go())
    assert got == list(range(len(got))) and got  # every record read before the error


def test_map_async_a_signal_cancels_the_work_in_flight(tmp_path):
    path = _input(tmp_path, 100)
    cancelled = []

    async def hang(rec):
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(rec["i"])
            raise

    async def go():
        asyncio.get_running_loop().call_later(0.2, os.kill, os.getpid(), signal.SIGINT)
        with Job([str(path)], quiet=True) as job:
            async for _ in job.map_async(hang, window=10):
                pass

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(go())
    assert time.monotonic() - start < 2
    assert sorted(cancelled) == list(range(10))  # the window, nothing after it


def test_ordered_map_window_counts_ready_and_pending_items():
    held = []

    async def work(i):
        await asyncio.sleep(0.001)
        return i

    def fn(i):
        held.append(i)
        return work(i)

    async def go():
        async for i, _ in ordered_map(range(100), fn, window=8):
            assert len(held) - i <= 8  # never more than the window read ahead of the consumer

    asyncio.run(go())
