"""Order-preserving work over batches of records in `-j` processes.

`map_batches(func, batches, jobs)` yields `func(batch)` for each batch in input order. With
`jobs == 1` it runs in this process; otherwise in a pool of worker processes, with at most a few
batches per worker in flight, so memory stays flat however long the input is. Output is the same
for every `-j`, because results are yielded in input order.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import signal
from collections import deque
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


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


def _worker_init(initializer: Callable | None, initargs: tuple) -> None:
    # Ctrl-C goes to the whole process group: let the parent handle it, quietly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if initializer is not None:
        initializer(*initargs)


def map_batches(
    func: Callable[[Any], R],
    batches: Iterable[Any],
    jobs: int = 1,
    *,
    initializer: Callable | None = None,
    initargs: tuple = (),
    window: int | None = None,
) -> Iterator[R]:
    jobs = resolve_jobs(jobs)
    if jobs == 1:
        if initializer is not None:
            initializer(*initargs)
        for batch in batches:
            yield func(batch)
        return
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    window = window or jobs * 3
    pool = ctx.Pool(jobs, _worker_init, (initializer, initargs))
    pending: deque = deque()
    try:
        for batch in batches:
            pending.append(pool.apply_async(func, (batch,)))
            if len(pending) >= window:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
        pool.close()
        pool.join()
    except BaseException:
        # The consumer stopped (an error, a closed pipe, Ctrl-C): let the batches in flight
        # finish first. Terminating a pool while a worker is writing a large result to it can
        # wait forever; at most `window` batches are in flight.
        for result in pending:
            result.wait(timeout=30)
        raise
    finally:
        pool.terminate()
