"""Order-preserving work over batches in `-j` processes (CPU-bound work):

    map_batches(func, batches, jobs)          # func(batch) for each, in input order

I/O-bound work (HTTP calls) goes through `aio.ordered_map` (and `aio.thread_map` for a blocking
function) instead, with the same ordering and error contract.

It yields `func(batch)` for each batch in input order, with at most a few batches per worker in
flight, so memory stays flat however long the input is; output is the same for every `-j`.
With `jobs == 1` the same `func` runs in this process. An exception raised by `func` is raised
in the consumer when that batch's turn comes, after the results of the batches before it.

The process pool is cqia's own, not multiprocessing.Pool: each worker has its own pair of
queues and nothing is shared between workers, so a worker killed at any moment (Ctrl-C and
`timeout` signal the whole process group) can never leave a lock held that the parent or
another worker waits on. Workers die at once on SIGINT and SIGTERM; when the consumer stops
(an error, a closed pipe, a signal to the parent alone) the workers are terminated, killed if
they do not end within a second, and reaped: no orphan, no wait on a result in flight. A worker
that dies on its own (killed by the OOM killer) is reported instead of waited for; one whose
parent died exits by itself.

With the "fork" start method (Linux), `func`, `initializer` and `initargs` are inherited by the
workers, not pickled: closures and large objects (automata, models) cost nothing to hand over.
Elsewhere they must be picklable.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import queue
import signal
import time
from typing import Any, Callable, Iterable, Iterator, TypeVar

from cqia_cli.status import CqiaError, Interrupted, Terminated

T = TypeVar("T")
R = TypeVar("R")

#: batches in flight per worker: enough to keep every worker busy while the parent writes
WINDOW_PER_JOB = 3
#: how long a finished consumer lets stopped workers end before killing them
_GRACE = 1.0
#: how often a waiting parent (or worker) checks that its peer is still alive
_POLL = 0.5

#: the pids of worker processes started and not yet reaped: what the last-resort exit on a
#: signal (cli._watchdog) kills when the orderly clean-up did not finish in time
LIVE_WORKERS: set[int] = set()


def resolve_jobs(jobs: int | None) -> int:
    """`-j 0` means one process per CPU."""
    if not jobs or jobs < 1:
        return max(1, os.cpu_count() or 1)
    return jobs


def chunked(iterable: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(iterable)
    while True:
        batch = list(itertools.islice(it, size))
        if not batch:
            return
        yield batch


def map_batches(
    func: Callable[[Any], R],
    batches: Iterable[Any],
    jobs: int = 1,
    *,
    initializer: Callable | None = None,
    initargs: tuple = (),
    window: int | None = None,
) -> Iterator[R]:
    """`func(batch)` for each batch, in input order, in `jobs` worker processes (CPU-bound
    work). `initializer(*initargs)` runs once in each worker (and in this process for -j 1)."""
    jobs = resolve_jobs(jobs)
    if jobs == 1:
        if initializer is not None:
            initializer(*initargs)
        for batch in batches:
            yield func(batch)
        return
    pool = _ProcessPool(func, jobs, initializer, initargs)
    window = max(window or jobs * WINDOW_PER_JOB, jobs)
    ok = False
    try:
        sent = 0
        received = 0
        for batch in batches:
            pool.send(sent, batch)
            sent += 1
            if sent - received >= window:
                yield pool.receive(received)
                received += 1
        while received < sent:
            yield pool.receive(received)
            received += 1
        ok = True
    finally:
        pool.close(ok)


# -- processes ----------------------------------------------------------------------------------


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _worker_main(tasks, results, func, initializer, initargs, parent: int) -> None:
    # The whole process group gets Ctrl-C and `timeout`'s SIGTERM: a worker just ends (no
    # handler, no traceback); the parent reports it and cleans up. The parent started this
    # process with both signals blocked, so one that came meanwhile is delivered now, to the
    # default action, not to the parent's handler inherited by the fork (which would swallow
    # a second signal).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    try:
        if initializer is not None:
            initializer(*initargs)
        ready = True
    except BaseException as e:  # noqa: BLE001 - reported by the parent on the first batch
        ready = False
        failure = _portable(e)
    while True:
        try:
            item = tasks.get(timeout=_POLL)
        except queue.Empty:
            if os.getppid() != parent:  # the parent is gone: nobody will read the results
                os._exit(1)
            continue
        if item is None:
            break
        if not ready:
            results.put((False, failure))
            continue
        try:
            out = (True, func(item))
        except BaseException as e:  # noqa: BLE001 - raised in the parent, in order
            out = (False, _portable(e))
        results.put(out)
    results.close()
    results.join_thread()


def _portable(e: BaseException) -> BaseException:
    """`e`, or a stand-in that survives pickling with the same message."""
    import pickle

    try:
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001
        if isinstance(e, CqiaError):
            return CqiaError(e.message, e.status)
        return RuntimeError(f"{type(e).__name__}: {e}")


class _ProcessPool:
    """`jobs` processes; batch k goes to worker k % jobs, whose results come back in order on
    its own queue, so the parent reads result k from there."""

    def __init__(self, func, jobs: int, initializer, initargs):
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        ctx = mp.get_context(method)
        self.jobs = jobs
        self.procs: list = []
        self.tasks: list = []
        self.results: list = []
        try:
            for _ in range(jobs):
                tasks, results = ctx.Queue(), ctx.Queue()
                self.tasks.append(tasks)
                self.results.append(results)
                proc = ctx.Process(target=_worker_main, daemon=True,
                                   args=(tasks, results, func, initializer, initargs,
                                         os.getpid()))
                # no signal between the fork and the worker's own handlers, nor between the
                # start and the moment this process knows the worker (to end it)
                blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
                try:
                    proc.start()
                    self.procs.append(proc)
                    LIVE_WORKERS.add(proc.pid)
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        except BaseException:
            self.close(False)
            raise

    def send(self, k: int, batch) -> None:
        self.tasks[k % self.jobs].put(batch)  # never blocks: the queue's thread writes it

    def receive(self, k: int):
        i = k % self.jobs
        results = self.results[i]
        while True:
            try:
                ok, value = results.get(timeout=_POLL)
                break
            except queue.Empty:
                proc = self.procs[i]
                if proc.is_alive():
                    continue
                try:  # a result may have arrived just before the worker ended
                    ok, value = results.get(timeout=0.05)
                    break
                except queue.Empty:
                    raise _died(proc.exitcode) from None
        if not ok:
            raise value
        return value

    def close(self, ok: bool) -> None:
        """Stop the workers: let them finish (all results taken) or terminate them."""
        if ok:
            for tasks in self.tasks:
                tasks.put(None)
        else:
            for proc in self.procs:
                if proc.is_alive():
                    try:
                        proc.terminate()
                    except OSError:
                        pass
        deadline = time.monotonic() + (10 * _GRACE if ok else _GRACE)
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
                proc.join(_GRACE)
        for proc in self.procs:
            if not proc.is_alive():
                LIVE_WORKERS.discard(proc.pid)
        for q in self.tasks + self.results:
            q.cancel_join_thread()  # never wait at exit on data nobody will read
            q.close()
        self.procs = []


def _died(exitcode: int | None) -> BaseException:
    """What a worker's unexpected end means in the parent."""
    if exitcode == -signal.SIGINT:
        return Interrupted()
    if exitcode == -signal.SIGTERM:
        return Terminated()
    how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"status {exitcode}"
    return CqiaError(f"a worker process ended unexpectedly ({how}; out of memory?)")
