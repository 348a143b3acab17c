"""Ordered, bounded async map: I/O-bound work (HTTP requests) over a stream of items, many in
flight, results in input order, memory flat.

    async for item, result in ordered_map(items, fn, window=256):
        ...

`fn(item)` returns either a plain value (ready now: e.g. a cache hit, which then costs no task)
or an awaitable (a coroutine: it is run as a task). At most `window` items are held at once,
ready or not; when the window is full, the oldest is awaited before the next item is read. So
the oldest item bounds memory, never the input's length, and results come out in input order
whatever order the work finishes in. How many of the held items are really in flight is `fn`'s
business (a semaphore or a rate limiter inside it); `in_flight=N` adds a plain semaphore.

`items` is an ordinary (synchronous) iterable: reading a record from a file is fast, and the
reader (`Job.records()`) keeps reporting bad lines as every command does. When reading raises
(a bad line under --on-error fail), the items read before it are finished and yielded first,
then the error is raised. When the consumer stops early (an error, a closed pipe, Ctrl-C), the
tasks still pending are cancelled.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, TypeVar

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
