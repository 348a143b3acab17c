"""The one ordered, bounded map for I/O-bound work (HTTP requests): many calls in flight, results
in input order, memory flat, errors where a plain loop would meet them.

    async for item, result in ordered_map(items, fn, window=256):   # asyncio (score, generate)
        ...
    for result in thread_map(func, items, jobs=8):                  # a blocking func, in threads
        ...
    async for item, at, result in map_records(job, fn):             # Job.map_async: a job's records
        ...

`ordered_map` is the primitive; the other two are expressed through it. CPU-bound work goes to
processes instead (`parallel.map_batches`, behind `Job.map_lines`), with the same contract:

- results come out in input order whatever order the work finishes in;
- at most `window` items are held at once, ready or not: when the window is full the oldest is
  awaited before the next item is read, so the oldest item bounds memory, never the input;
- an exception raised by the work is raised when that item's turn comes, after the results of
  the items before it; the work still in flight is then cancelled (threads: abandoned);
- an exception raised while reading `items` (a bad line under --on-error fail, corrupt
  compressed data) is raised after the items read before it are finished and handed on;
- when the consumer stops early (an error, a closed pipe, Ctrl-C or SIGTERM) the tasks still
  pending are cancelled and nothing is waited for beyond their cancellation.

`fn(item)` returns either a plain value (ready now: a cache hit, which then costs no task) or an
awaitable (a coroutine: it is run as a task). How many of the held items are really in flight
is `fn`'s business (a semaphore or a rate limiter inside it); `in_flight=N` adds a plain
semaphore.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import queue
import threading
from collections import deque
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


async def ordered_map(
    items: Iterable[T],
    fn: Callable[[T], "R | Awaitable[R]"],
    *,
    window: int = 256,
    in_flight: int | None = None,
) -> AsyncIterator[tuple[T, R]]:
    if window < 1:
        raise ValueError("window must be at least 1")
    sem = asyncio.Semaphore(in_flight) if in_flight else None

    async def limited(aw):
        try:
            async with sem:
                return await aw
        finally:  # cancelled while waiting for the semaphore: the work never started
            if inspect.iscoroutine(aw) and inspect.getcoroutinestate(aw) == "CORO_CREATED":
                aw.close()

    pending: deque = deque()  # (item, task or None, value)
    started = 0
    iterator = iter(items)
    try:
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                break
            except Exception:
                # a reading error (a bad line under --on-error fail): what was read before it
                # is finished and handed on first, as a plain loop would have, then it is raised
                while pending:
                    head = pending.popleft()
                    yield head[0], (head[2] if head[1] is None else await head[1])
                raise
            value: Any = fn(item)
            if inspect.isawaitable(value):
                task = asyncio.ensure_future(limited(value) if sem else value)
                pending.append((item, task, value))
                started += 1
            else:
                pending.append((item, None, value))
            # hand on everything at the head that is ready, without waiting
            while pending and (pending[0][1] is None or pending[0][1].done()):
                head = pending.popleft()
                yield head[0], (head[2] if head[1] is None else head[1].result())
            if len(pending) >= window:
                head = pending.popleft()
                yield head[0], await head[1]
            elif started >= 32:
                started = 0
                await asyncio.sleep(0)  # let the tasks started so far run while reading on
        while pending:
            head = pending.popleft()
            yield head[0], (head[2] if head[1] is None else await head[1])
    finally:
        tasks = [t for _, t, _ in pending if t is not None and not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for _, t, aw in pending:  # work cancelled before it ever started
            if t is not None and inspect.iscoroutine(aw) and \
                    inspect.getcoroutinestate(aw) == "CORO_CREATED":
                aw.close()


# -- a blocking function in threads --------------------------------------------------------------


def thread_map(
    func: Callable[[T], R],
    items: Iterable[T],
    jobs: int = 8,
    *,
    window: int | None = None,
) -> Iterator[R]:
    """`func(item)` for each item, in input order, `jobs` calls at a time in threads: the
    `ordered_map` contract for a blocking function (a synchronous HTTP client), run on an event
    loop of its own (a window of `2 * jobs` by default). `jobs == 1` calls `func` here.

    The threads are daemons: on an error or a signal the consumer stops at once, calls in
    flight are abandoned (their results dropped) rather than waited for, so a command still
    ends within two seconds whatever the network does."""
    jobs = max(1, jobs)
    if jobs == 1:
        for item in items:
            yield func(item)
        return
    window = max(window or 2 * jobs, jobs)
    loop = asyncio.new_event_loop()
    threads = _Threads(jobs)

    def start(item):
        return asyncio.wrap_future(threads.submit(func, item), loop=loop)

    results = ordered_map(items, start, window=window)
    step = None
    try:
        while True:
            step = asyncio.ensure_future(results.__anext__(), loop=loop)
            try:
                _, value = loop.run_until_complete(step)
            except StopAsyncIteration:
                step = None
                return
            step = None
            yield value
    finally:
        try:
            if step is not None and not step.done():
                # a signal (KeyboardInterrupt, Terminated) raised while the loop ran: the step
                # is still pending; cancelling it runs ordered_map's own clean-up
                step.cancel()
                loop.run_until_complete(asyncio.gather(step, return_exceptions=True))
            loop.run_until_complete(results.aclose())
        finally:
            threads.shutdown()
            loop.close()


class _Threads(concurrent.futures.Executor):
    """`n` daemon threads (a ThreadPoolExecutor's threads are joined at exit: a call hanging on
    the network would keep a signalled command alive)."""

    def __init__(self, n: int):
        self._todo: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"cqia-map-{i}")
                         for i in range(n)]
        for t in self._threads:
            t.start()

    def submit(self, fn, /, *args, **kwargs) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._todo.put((future, fn, args, kwargs))
        return future

    def _work(self) -> None:
        while True:
            got = self._todo.get()
            if got is None:
                return
            future, fn, args, kwargs = got
            if not future.set_running_or_notify_cancel():  # cancelled while queued
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as e:  # noqa: BLE001 - raised in the consumer, in order
                future.set_exception(e)

    def shutdown(self, wait: bool = False, *, cancel_futures: bool = True) -> None:
        while True:  # what was never started is dropped
            try:
                got = self._todo.get_nowait()
            except queue.Empty:
                break
            if got is not None and cancel_futures:
                got[0].cancel()
        for _ in self._threads:
            self._todo.put(None)
        if wait:
            for t in self._threads:
                t.join()


# -- a job's records ----------------------------------------------------------------------------


class _Bad:
    """A bad line, carried through the window to be reported in its place."""

    __slots__ = ("lineno", "line", "problem")

    def __init__(self, lineno: int, line: bytes, problem: str):
        self.lineno, self.line, self.problem = lineno, line, problem


async def map_records(
    job,
    fn: Callable[[Any], Any],
    *,
    prepare: Callable[[list[dict]], list] | None = None,
    window: int = 256,
    batch: int = 256,
    in_flight: int | None = None,
) -> AsyncIterator[tuple[Any, tuple[str, int, bytes], Any]]:
    """The records of `job` through `ordered_map`: yields (item, at, fn(item)) in input order,
    `at` = (input name, line number, line) of the record, for `Output.write(record, at)` and
    `reader.bad_line(line, lineno, problem, path=name)`. `item` is the record, or what
    `prepare(records)` made of it: called once per batch of `batch` records (one look-up for a
    batch, as the LLM cache's), it returns one item per record, in order.

    The input is read as raw lines (`Job.raw_batches`) and parsed with the one shared loop
    (`io.parse_lines`). A bad line travels through the window and is reported when its turn
    comes, exactly as plain iteration reports it: under --on-error skip it is counted and kept
    in --errors in its place among the failures the caller keeps there; under --on-error fail
    it is raised after the results of the records before it, and nothing after it is read (no
    request is sent for a record after it). A reading error is raised the same way."""
    from cqia_cli.io import parse_lines

    reader = job.reader
    encoding = reader.encoding
    stop_at_bad = job.on_error == "fail"

    def entries():
        for name, first, lines in job.raw_batches(batch):
            linenos: list[int] = []
            records: list[dict] = []
            bads: list = []
            for run, bad in parse_lines(lines, first, encoding, linenos):
                records.extend(run)
                if bad is not None:
                    bads.append((len(records), _Bad(*bad)))
            items = prepare(records) if prepare is not None and records else records
            if len(items) != len(records):
                raise RuntimeError("map_records: prepare must return one item per record")
            at_bad = 0
            for i, (item, lineno) in enumerate(zip(items, linenos)):
                while at_bad < len(bads) and bads[at_bad][0] == i:
                    yield name, bads[at_bad][1]
                    if stop_at_bad:
                        return
                    at_bad += 1
                yield name, (item, lineno, lines[lineno - first])
            for _, bad in bads[at_bad:]:
                yield name, bad
                if stop_at_bad:
                    return

    def start(entry):
        got = entry[1]
        return got if type(got) is _Bad else fn(got[0])

    bad_line = reader.bad_line
    mapped = ordered_map(entries(), start, window=window, in_flight=in_flight)
    try:
        async for (name, got), result in mapped:
            if type(got) is _Bad:
                bad_line(got.line, got.lineno, got.problem, path=name)
                continue
            reader.records += 1
            yield got[0], (name, got[1], got[2]), result
    finally:  # the work still in flight cancelled now, not when the generator is collected
        await mapped.aclose()
