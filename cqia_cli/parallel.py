"""Order-preserving work over batches in `-j` processes (CPU-bound work):

    map_batches(func, batches, jobs)          # func(batch) for each, in input order

I/O-bound work (HTTP calls) goes through `aio.ordered_map` (and `aio.thread_map` for a blocking
function) instead, with the same ordering and error contract.

It yields `func(batch)` for each batch in input order, with at most a few batches per worker in
flight, so memory stays flat however long the input is; output is the same for every `-j`.
With `jobs == 1` the same `func` runs in this process. With `jobs == N` this process is one of
the N: it starts N - 1 workers and runs `func` itself on the next batch whenever the result it
needs next is not ready (so `-j 2` on two cores is two busy processes, not three taking turns).
An exception raised by `func` is raised in the consumer when that batch's turn comes, after
the results of the batches before it.

The process pool is cqia's own, not multiprocessing.Pool: each worker has its own task channel
and its own result channel (with fork plain pipes, each written by a thread of the writing
process: batches of lines in one buffer, results with large buffers out of band, see
`_pack_task` and `_Sender`; elsewhere queues), and nothing is shared between workers,
so a worker killed at any moment (Ctrl-C and
`timeout` signal the whole process group) can never leave a lock held that the parent or
another worker waits on. Workers die at once on SIGINT and SIGTERM; when the consumer stops
(an error, a closed pipe, a signal to the parent alone) the workers are terminated, killed if
they do not end within a second, and reaped: no orphan, no wait on a result in flight. A worker
that dies on its own (killed by the OOM killer) is reported instead of waited for; one whose
parent died exits by itself.

With the "fork" start method (Linux), `func`, `initializer` and `initargs` are inherited by the
workers, not pickled: closures and large objects (automata, models) cost nothing to hand over.
Elsewhere they must be picklable.

`Workers(func, jobs)` starts the workers early, before this process builds large state that
they do not need (dedup learns its stop-shingles from a sample first): a worker forked later
shares every page of this process's heap copy-on-write, and this process's next batches then
pay a page fault and a copy for each heap page they reuse (measured: 62k -> 36k page faults in
dedup -j 2's main process). `map_batches(..., workers=w)` then sends `initializer` and
`initargs` (pickled) to the waiting workers instead of forking them.

A func in two stages (`Staged(prepare, finish)`: `prepare` needs nothing the initializer sets
up) lets workers started early work before that: `Workers.send_early(batch)` gives a worker
a batch whose `prepare` it runs at once; it runs `finish` on it once the initializer has
come. `map_batches` then takes the first batches of its input as those sent early (they are
not sent again) and yields their results in their place. dedup's workers normalise and hash
the first batches while this process learns the stop-shingles from them.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import queue
import select
import signal
import struct
import time
from collections import deque
from typing import Any, Callable, Iterable, Iterator, TypeVar

from cqia_cli.io import FileLines
from cqia_cli.status import SIGNALLED, CqiaError, InputError, Interrupted, Terminated

T = TypeVar("T")
R = TypeVar("R")

#: batches read and not yet given back, per job: the memory bound
WINDOW_PER_JOB = 4
#: batches waiting at each worker besides the one it works on: enough that it does not wait
#: while this process works on a batch of its own, few enough that little is left to it
#: alone when the input ends
AHEAD = 2
#: batches read ahead before one goes to a worker (see map_batches)
LOOKAHEAD = 2
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
    local: bool = True,
    workers: "Workers | None" = None,
    queued: int = AHEAD,
    reserve: int = LOOKAHEAD,
) -> Iterator[R]:
    """`func(batch)` for each batch, in input order, in `jobs` processes (CPU-bound work).
    `initializer(*initargs)` runs once in each process that calls `func`.

    This process is one of the `jobs` (local=True): it starts `jobs - 1` workers, keeps a
    few batches queued for each, and whenever the next result in order is not ready yet it
    takes the next batch and runs `func` on it itself, instead of waiting. So `-j 2` is two
    processes on two cores, not three: the consumer's own work (dedup decides and writes,
    every command writes) shares the cores with the workers without preempting them, and
    the split between this process and the workers follows how busy each is. local=False:
    `jobs` workers, and this process only waits for them. `workers`: the processes started
    earlier for this `func` (`Workers`, same jobs and local); they are given `initializer` and
    `initargs` now, and are stopped at the end as those started here are.

    `queued`: batches kept waiting at each worker besides the one it works on; `reserve`:
    the batches at the end of the input kept for this process (a worker gets a batch only
    when that many more follow it). The defaults suit a consumer with little work of its own
    per result; one that works as long on a result as a third of `func` (dedup decides) is
    still busy when the workers end, and does better with 1 and 0 (measured in dedup)."""
    jobs = resolve_jobs(jobs)
    if workers is not None and (workers.func is not func or workers.jobs != jobs
                                or workers.local != local):
        raise ValueError("map_batches: workers started for another func, jobs or local")
    if jobs == 1:
        if initializer is not None:
            initializer(*initargs)
        for batch in batches:
            yield func(batch)
        return
    started_early = workers.take() if workers is not None else None
    count = jobs - 1 if local else jobs  # worker processes
    if started_early is not None:
        pool = started_early
        try:
            pool.initialize(initializer, initargs)
        except BaseException:
            pool.close(False)
            raise
    else:
        pool = _ProcessPool(func, count, initializer, initargs)
    window = max(window or jobs * WINDOW_PER_JOB, jobs)
    # one slot per batch, in input order: the worker it went to, or -1 and (ok, result) for
    # a batch done here
    slots: deque = deque()
    sent = [0] * count  # batches sent to each worker
    started = pool.started  # and taken up by it
    batches = iter(batches)
    if pool.early:
        # the first batches of the input went to the workers before (Workers.send_early):
        # their slots come first, and they count in the window on top of the usual ones
        window += len(pool.early)
        try:
            for w in pool.early:
                if next(batches, _END) is _END:
                    raise ValueError("map_batches: fewer batches than were sent early")
                sent[w] += 1
                slots.append((w, None))
        except BaseException:
            pool.close(False)
            raise
    # batches read and not yet handed out; a worker gets a batch only when `reserve` more
    # are known to follow it, so the last ones of the input are this process's: it does not
    # wait alone at the end for batches queued at a worker
    ahead: deque = deque()
    lookahead = reserve if local else 0
    more = True
    ready_here = False

    def read() -> None:
        nonlocal more
        while more and len(ahead) <= lookahead:
            batch = next(batches, _END)
            if batch is _END:
                more = False
            else:
                ahead.append(batch)

    ok = False
    try:
        while True:
            # every worker has `queued` batches waiting besides the one it works on (so it does
            # not wait while this process is busy), within the window (memory)
            while len(slots) < window:
                w = min(range(count), key=lambda i: sent[i] - started[i])
                if sent[w] - started[w] >= queued:
                    break
                read()
                if len(ahead) <= lookahead:
                    break
                pool.send(w, ahead.popleft())
                sent[w] += 1
                slots.append((w, None))
            if slots and slots[0][0] < 0:
                done = slots.popleft()[1]
                if not done[0]:
                    raise done[1]
                yield done[1]
                continue
            read()
            if local and ahead and len(slots) < window and \
                    (not slots or not pool.ready(slots[0][0])):
                batch = ahead.popleft()
                if not ready_here:
                    if initializer is not None:
                        initializer(*initargs)
                    ready_here = True
                try:
                    done = (True, func(batch))
                except Exception as e:  # noqa: BLE001 - raised in its turn, as a worker's
                    done = (False, e)
                    more = False  # nothing after it is needed
                    ahead.clear()
                slots.append((-1, done))
                continue
            if not slots:
                break
            w = slots.popleft()[0]
            result = pool.receive(w)
            if not more and not ahead and all(s[0] != w for s in slots):
                # its last result: it is stopped now, and ends while this process works on
                # what is left (dedup -j 2 waited 12 ms for it at the end, measured)
                pool.finish(w)
            yield result
        ok = True
    finally:
        pool.close(ok)


_END = object()


class Staged:
    """A func in two stages: `prepare(batch)` needs nothing that the initializer sets up,
    `finish(prepare(batch))` is the result. Calling it does both."""

    def __init__(self, prepare: Callable, finish: Callable) -> None:
        self.prepare = prepare
        self.finish = finish

    def __call__(self, batch):
        return self.finish(self.prepare(batch))


class Workers:
    """The worker processes of a later `map_batches(func, ..., jobs, local=local,
    workers=...)`, started now (see the module's notes): none for jobs == 1. A context
    manager: leaving it stops the workers if map_batches did not take them."""

    def __init__(self, func: Callable, jobs: int = 1, *, local: bool = True,
                 warm_up: Callable | None = None, warm_args: tuple = ()) -> None:
        """`warm_up(*warm_args)` runs in each worker as it starts (what does not depend on
        the state built meanwhile: loading a tokenizer's dictionary), alongside this process;
        an error there is raised at the first batch, as an initializer's."""
        self.func = func
        self.jobs = resolve_jobs(jobs)
        self.local = local
        count = self.jobs - 1 if local else self.jobs
        self._pool = _ProcessPool(func, count, warm_up, warm_args) \
            if self.jobs > 1 and count > 0 else None

    def send_early(self, batch) -> bool:
        """Give `batch` to a worker now (round robin), for `func.prepare` (func is `Staged`)
        before the initializer comes: it is then the next batch of the later map_batches'
        input, which must be the same batch. False (nothing sent) without workers."""
        pool = self._pool
        if pool is None:
            return False
        if not hasattr(self.func, "prepare"):
            raise ValueError("Workers.send_early: func has no prepare stage (Staged)")
        w = len(pool.early) % pool.jobs
        pool.tasks[w].put(_Early(batch))
        pool.early.append(w)
        return True

    @property
    def count(self) -> int:
        """Worker processes (0 for jobs == 1)."""
        return self._pool.jobs if self._pool is not None else 0

    def take(self) -> "_ProcessPool | None":
        pool, self._pool = self._pool, None
        return pool

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, *exc) -> None:
        pool = self.take()
        if pool is not None:
            pool.close(exc[0] is None)


class _Init:
    """A worker started early (`Workers`): run `initializer(*initargs)` now."""

    def __init__(self, initializer: Callable | None, initargs: tuple) -> None:
        self.initializer = initializer
        self.initargs = initargs


class _Early:
    """A batch sent before the initializer (`Workers.send_early`): prepare it now, finish it
    once the initializer has run."""

    __slots__ = ("batch",)

    def __init__(self, batch) -> None:
        self.batch = batch


# -- processes ----------------------------------------------------------------------------------


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _worker_main(tasks, results, func, initializer, initargs, parent: int,
                 close_fds: tuple = (), started=None, index: int = 0) -> None:
    # The whole process group gets Ctrl-C and `timeout`'s SIGTERM: a worker just ends (no
    # handler, no traceback); the parent reports it and cleans up. The parent started this
    # process with both signals blocked, so one that came meanwhile is delivered now, to the
    # default action, not to the parent's handler inherited by the fork (which would swallow
    # a second signal).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    for fd in close_fds:  # the other workers' result pipes, inherited by the fork
        try:
            os.close(fd)
        except OSError:
            pass
    sender = _Sender(results) if isinstance(results, int) else None
    send = results.put if sender is None else sender.send
    if isinstance(tasks, int):
        tasks = _TaskReader(tasks)
    try:
        if initializer is not None:
            initializer(*initargs)
        ready = True
    except BaseException as e:  # noqa: BLE001 - reported by the parent on the first batch
        ready = False
        failure = _portable(e)
    held: deque = deque()  # batches sent early, prepared: (ok, prepared or the error)

    def reply(out) -> None:
        try:
            send(out)
        except OSError:  # the parent is gone (a closed pipe)
            os._exit(1)
        except Exception as e:  # noqa: BLE001 - a result that cannot be pickled (nothing was
            send((False, _portable(e)))  # written yet): raised in the parent, in order

    while True:
        try:
            item = tasks.get(timeout=_POLL)
        except queue.Empty:
            if os.getppid() != parent:  # the parent is gone: nobody will read the results
                os._exit(1)
            continue
        except (EOFError, OSError):  # the parent's end of the task pipe is closed: it is gone
            os._exit(1)
        if item is None:
            break
        kind = type(item)
        if kind is _Failed:  # a batch it could not read: its error, in its turn
            if started is not None:
                started[index] += 1
            if item.early:
                held.append((False, item.error))
            else:
                reply((False, item.error))
            continue
        if kind is _Init:  # started early: its initializer comes now
            if ready and item.initializer is not None:  # (after the warm-up's, if that failed)
                try:
                    item.initializer(*item.initargs)
                except BaseException as e:  # noqa: BLE001 - reported on the first batch
                    ready = False
                    failure = _portable(e)
            while held:  # then the batches sent early are finished, in order
                ok, value = held.popleft()
                if not ready:
                    out = (False, failure)
                elif not ok:
                    out = (False, value)
                else:
                    try:
                        out = (True, func.finish(value))
                    except BaseException as e:  # noqa: BLE001 - raised in the parent, in order
                        out = (False, _portable(e))
                del value
                reply(out)
                del out
            continue
        if started is not None:  # this worker's own counter: the parent only reads it
            started[index] += 1
        if kind is _Early:
            if not ready:
                held.append((False, None))
                continue
            try:
                held.append((True, func.prepare(item.batch)))
            except BaseException as e:  # noqa: BLE001 - raised in the parent, in order
                held.append((False, _portable(e)))
            del item
            continue
        if not ready:
            send((False, failure))
            continue
        try:
            out = (True, func(item))
        except BaseException as e:  # noqa: BLE001 - raised in the parent, in order
            out = (False, _portable(e))
        reply(out)
        del out
    if sender is not None:
        sender.close()
    else:
        results.close()
        results.join_thread()


# -- results through a plain pipe (fork) ----------------------------------------------------------
#
# A batch's result (a few MB of numpy arrays and bytes for dedup) crosses as pickle protocol 5
# with its large buffers out of band: the worker writes the buffers straight from its arrays, the
# parent reads each into its own bytearray, which the unpickled arrays then use as they are.
# Two copies (the kernel's) instead of six for multiprocessing.Queue (pickle, pipe in, pipe out,
# BytesIO, getvalue, unpickle), and no feeder thread.

_HEAD = struct.Struct("<QQ")  # pickle bytes, out-of-band buffers; then one <Q per buffer
#: the pipe capacity asked for (Linux; the default 64 KB makes a few-MB result cross in ~100
#: wake-ups of writer and reader); refused or elsewhere: the default
PIPE_SIZE = 1 << 20


def _widen(fd: int) -> None:
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except (ImportError, OSError, ValueError):
        pass


class _Sender:
    """What goes out through a pipe goes from a thread, so that the sender goes on with its
    work while the reader is busy (a batch of a few MB does not fit in the pipe): a worker's
    results (no more wait than the parent has batches out: map_batches' window), the parent's
    tasks for a worker (no more than `queued`). The thread starts at the first message (the
    parent starts its workers before: no fork while it runs)."""

    def __init__(self, fd: int, pack: Callable = None, *, parent: bool = False) -> None:
        self.fd = fd
        self.pack = pack or _pack
        self.parent = parent
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = None

    def send(self, obj) -> None:
        """Pack `obj` here (what cannot be pickled is raised here, with nothing written),
        write it there."""
        self.send_packed(self.pack(obj))

    def send_packed(self, parts: list) -> None:
        if self.thread is None:
            import threading

            thread = threading.Thread(target=self._run, name="cqia-send", daemon=True)
            thread.start()
            # known only once started: a signal in between (KeyboardInterrupt) leaves close()
            # a thread it can join, or none (then waiting on an empty queue: it writes nothing)
            self.thread = thread
        self.queue.put(parts)

    put = send

    def _run(self) -> None:
        while True:
            parts = self.queue.get()
            if parts is None:
                return
            parts = [b"".join(p.lines) if type(p) is _Joined else p for p in parts]
            try:
                _write_all_v(self.fd, parts)
            except OSError:  # the reader is gone (a closed pipe)
                if not self.parent:
                    os._exit(1)  # a worker: nobody reads its results
                return  # the parent: the worker's end is reported when its result is due
            del parts

    def close(self, wait: bool = True) -> None:
        """Write what was sent (wait), or give up on it (the reader is stopped), and close."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join(None if wait else _GRACE)
        if self.thread is None or not self.thread.is_alive():
            os.close(self.fd)
        # else: stuck writing to a reader that never ends; the fd goes with the process


def _pack(obj) -> list:
    """What a worker writes for `obj` (`_recv_raw` reads it): a header, the pickle, and its
    out-of-band buffers."""
    import pickle

    bufs: list = []

    def oob(pb) -> bool:
        try:
            bufs.append(pb.raw())
        except BufferError:  # not contiguous: in band
            return True
        return False

    data = pickle.dumps(obj, protocol=5, buffer_callback=oob)
    head = _HEAD.pack(len(data), len(bufs)) + struct.pack(f"<{len(bufs)}Q",
                                                           *[b.nbytes for b in bufs])
    if len(data) < (1 << 16):
        return [head + data] + bufs
    return [head, data] + bufs


def _write_all_v(fd: int, parts: list) -> None:
    """Write every part, in order, with as few calls (each without the GIL) as the pipe
    allows: one writev when the reader keeps up (and has few parts)."""
    views = [v for v in (memoryview(p).cast("B") for p in parts) if v.nbytes]
    i = 0
    while i < len(views):
        n = os.writev(fd, views[i:i + _IOV_MAX])
        while i < len(views) and n >= views[i].nbytes:
            n -= views[i].nbytes
            i += 1
        if n:
            views[i] = views[i][n:]


_IOV_MAX = 512


def _read_exact(fd: int, n: int, buf=None):
    """n bytes from the pipe (into `buf`, n bytes long, else a new bytearray); EOFError when
    the writer ends first."""
    if buf is None:
        buf = bytearray(n)
    view = memoryview(buf).cast("B")
    got = 0
    while got < n:
        k = os.readv(fd, [view[got:]])
        if k == 0:
            raise EOFError
        got += k
    return buf


def _recv_raw(fd: int):
    import pickle

    size, nbufs = _HEAD.unpack(_read_exact(fd, _HEAD.size))
    lens = struct.unpack(f"<{nbufs}Q", _read_exact(fd, 8 * nbufs)) if nbufs else ()
    data = _read_exact(fd, size)
    if not lens:
        return pickle.loads(data)
    # out-of-band buffers come from numpy arrays (numpy is loaded): read into uninitialised
    # arrays, not zero-filled bytearrays
    import numpy as np

    return pickle.loads(data, buffers=[_read_exact(fd, n, np.empty(n, np.uint8)) for n in lens])


# -- tasks through a plain pipe (fork) ---------------------------------------------------------
#
# A batch of `Job.map_lines` is (first line's number, [line, ...]): a few MB in ~2,000 bytes
# objects. It crosses as a header, the lines' lengths and the lines joined; the worker reads
# them into a buffer it keeps and cuts it into the same lines; lines read from a regular file
# (io.FileLines) cross as where they are in it, and the worker reads them there (a file changed
# meanwhile is an InputError for that batch). Through a multiprocessing.Queue,
# this process's feeder thread pickled it (a copy, holding the GIL: -j 2's main process is busy
# the whole run) and the worker read it in pieces, joined them and unpickled it. Any other task
# is pickled, as results are.

_TASK = struct.Struct("<Bq")  # kind; for lines, the first line's number
_LINE_COUNT = struct.Struct("<QQ")  # lines, bytes; then one <Q per line
_PICKLED, _LINES, _EARLY_LINES, _FILE, _EARLY_FILE = 0, 1, 2, 3, 4
#: lines of a regular file: device, inode, offset, bytes, lines, the reading process and its
#: descriptor, length of the path; the path
_FILE_AT = struct.Struct("<QQQQQqqQ")
#: a worker keeps its buffer for the next batch up to this size
_KEEP_BUFFER = 64 << 20


class _Failed:
    """A task a worker could not read (its file changed): raised in the parent in its turn."""

    __slots__ = ("error", "early")

    def __init__(self, error: BaseException, early: bool) -> None:
        self.error = error
        self.early = early


def _batch_lines(batch) -> list | None:
    """The lines of a batch that is (first line's number, [bytes, ...]), else None."""
    if (type(batch) is tuple and len(batch) == 2 and type(batch[0]) is int
            and type(batch[1]) in (list, FileLines) and -(1 << 63) <= batch[0] < (1 << 63)):
        lines = batch[1]
        if all(type(x) is bytes for x in lines):
            return lines
    return None


def _pack_task(obj) -> list:
    """What the parent writes for a task (`_TaskReader.get` reads it)."""
    from array import array

    early = type(obj) is _Early
    batch = obj.batch if early else obj
    lines = _batch_lines(batch)
    if lines is None:
        return [_TASK.pack(_PICKLED, 0)] + _pack(obj)
    where = lines.where if type(lines) is FileLines else None
    if where is not None:  # the worker reads them from the file
        path, dev, ino, pid, fd, offset, size = where
        name = os.fsencode(path)
        return [_TASK.pack(_EARLY_FILE if early else _FILE, batch[0])
                + _FILE_AT.pack(dev, ino, offset, size, len(lines), pid, fd, len(name)) + name]
    lens = array("Q", map(len, lines))
    head = _TASK.pack(_EARLY_LINES if early else _LINES, batch[0]) + \
        _LINE_COUNT.pack(len(lines), sum(lens)) + lens.tobytes()
    # one buffer, not a part per line: the pipe takes a batch in one writev, which waits for
    # the reader without the GIL; between the calls that 2,000 parts need, the writing thread
    # waits for the GIL, and the worker for it (measured: a batch's read 3 -> 4 ms). Joined by
    # the writing thread as it writes (_Joined), not here: the tasks queued for a busy worker
    # (dedup's first batches wait while it prepares each) would each hold a joined copy of
    # their lines, new memory of the size of the input read ahead (measured: dedup -j 2's
    # faults in this process 44.2k -> 39.8k, with the freeze before the fork)
    return [head, _Joined(lines)]


class _Joined:
    """Lines that `_Sender` joins into one buffer when it comes to write them."""

    __slots__ = ("lines",)

    def __init__(self, lines: list) -> None:
        self.lines = lines


class _TaskReader:
    """A worker's end of its task pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)
        self.buf = bytearray()
        self.file: tuple | None = None  # ((path, (device, inode)), fd) of the input read last

    def get(self, timeout: float):
        """The next task; queue.Empty after `timeout` seconds without one; EOFError when the
        parent's end is closed."""
        from array import array

        fd = self.fd
        if not self.poller.poll(timeout * 1000):
            raise queue.Empty
        kind, first = _TASK.unpack(_read_exact(fd, _TASK.size))
        if kind == _PICKLED:
            return _recv_raw(fd)
        if kind in (_FILE, _EARLY_FILE):
            dev, ino, offset, size, count, pid, pfd, plen = \
                _FILE_AT.unpack(_read_exact(fd, _FILE_AT.size))
            path = os.fsdecode(bytes(_read_exact(fd, plen)))
            early = kind == _EARLY_FILE
            try:
                lines = self._read_lines(path, (dev, ino), (pid, pfd), offset, size, count)
            except CqiaError as e:
                return _Failed(e, early)
            return _Early((first, lines)) if early else (first, lines)
        count, size = _LINE_COUNT.unpack(_read_exact(fd, _LINE_COUNT.size))
        lens = array("Q")
        lens.frombytes(_read_exact(fd, 8 * count))
        buf = self.buf if len(self.buf) >= size else bytearray(size)
        if size <= _KEEP_BUFFER:
            self.buf = buf
        view = memoryview(buf)[:size]
        _read_exact(fd, size, view)
        data = bytes(view)
        del view
        lines = []
        pos = 0
        for n in lens:
            lines.append(data[pos:pos + n])
            pos += n
        batch = (first, lines)
        return _Early(batch) if kind == _EARLY_LINES else batch

    def _read_lines(self, path: str, ident: tuple, reader: tuple, offset: int, size: int,
                    count: int) -> list[bytes]:
        """The `count` lines in `size` bytes at `offset` of the file the parent read them from
        (`FileLines`; `ident` its device and inode, `reader` the parent's process and
        descriptor), split as reading the file splits them (after each b"\n")."""
        changed = InputError(f"{path}: changed while it was being read")
        if self.file is None or self.file[0] != (path, ident):
            # the inputs come one after the other: one open at a time
            if self.file is not None:
                os.close(self.file[1])
                self.file = None
            self.file = ((path, ident), _open_same(path, ident, reader, changed))
        rfd = self.file[1]
        parts = []
        got = 0
        try:
            while got < size:
                part = os.pread(rfd, size - got, offset + got)
                if not part:
                    raise changed  # shorter than when it was read
                parts.append(part)
                got += len(part)
        except OSError as e:
            raise InputError(f"{path}: read error: {e.strerror or e}") from None
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        lines = []
        append = lines.append
        find = data.find
        a = 0
        while a < size:
            b = find(b"\n", a) + 1 or size
            append(data[a:b])
            a = b
        if len(lines) != count:
            raise changed
        return lines


def _open_same(path: str, ident: tuple, reader: tuple, changed: CqiaError) -> int:
    """A descriptor of the file (device, inode) = `ident` that the parent reads as `path`: by
    its name, else (removed or replaced since, Linux) through the parent's own descriptor;
    `changed` when neither is that file any more."""
    # not blocking: the descriptor may have been reused meanwhile for a FIFO with no writer
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    for name in (path, "/proc/%d/fd/%d" % reader):
        try:
            fd = os.open(name, flags)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
        except OSError:
            st = None
        if st is not None and (st.st_dev, st.st_ino) == ident:
            return fd
        os.close(fd)
    raise changed


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
    """`jobs` processes, each with its own task and result channels; a worker's results come
    back in the order it was sent its batches."""

    def __init__(self, func, jobs: int, initializer, initargs):
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        if method == "fork":
            # what exists now is frozen out of the cyclic collector's way (the recipe of the
            # gc module's documentation): its walks would write to every object shared with the
            # workers, and each page written costs a copy in the process that writes it.
            # Measured on dedup -j 2 (perf, minor faults by symbol): the collector's faults
            # 1,794 -> 37 in this process, 337 -> 21 in the worker.
            import gc

            gc.freeze()
        ctx = mp.get_context(method)
        self.jobs = jobs
        self.procs: list = []
        self.tasks: list = []
        self.results: list = []  # multiprocessing queues, or (fork) the read ends of pipes
        self.raw = method == "fork"
        #: the worker each batch sent early went to (`Workers.send_early`), in order
        self.early: list[int] = []
        #: workers sent their end (`finish`)
        self.finished: set[int] = set()
        #: batches each worker has taken up (written by that worker only: no lock)
        self.started = ctx.RawArray("q", jobs)
        try:
            for index in range(jobs):
                if self.raw:
                    # tasks (_pack_task) in one pipe, results in another; of each, the worker
                    # keeps only its own end: a dead worker is an EOF here, a dead parent there
                    take, give = os.pipe()
                    _widen(give)
                    self.tasks.append(_Sender(give, _pack_task, parent=True))
                    read, write = os.pipe()
                    _widen(write)
                    self.results.append(read)
                    others = tuple(self.results) + tuple(t.fd for t in self.tasks)
                    args = (take, write, func, initializer, initargs, os.getpid(), others,
                            self.started, index)
                else:
                    tasks = ctx.Queue()
                    self.tasks.append(tasks)
                    writer = getattr(tasks, "_writer", None)  # a batch of lines is a few MB: it
                    if writer is not None:  # crosses in a few reads, not one per 64 KB
                        _widen(writer.fileno())
                    results = ctx.Queue()
                    self.results.append(results)
                    args = (tasks, results, func, initializer, initargs, os.getpid(), (),
                            self.started, index)
                proc = ctx.Process(target=_worker_main, daemon=True, args=args)
                # no signal between the fork and the worker's own handlers, nor between the
                # start and the moment this process knows the worker (to end it)
                blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
                try:
                    proc.start()
                    self.procs.append(proc)
                    LIVE_WORKERS.add(proc.pid)
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                    if self.raw:
                        os.close(write)
                        os.close(take)
        except BaseException:
            self.close(False)
            raise

    def initialize(self, initializer: Callable | None, initargs: tuple) -> None:
        """Workers started early (`Workers`): `initializer(*initargs)` in each, before any
        batch. Pickled here first, so that what cannot be pickled is raised here."""
        import pickle

        init = _Init(initializer, initargs)
        if self.raw:
            parts = _pack_task(init)  # once, for every worker
            for sender in self.tasks:
                sender.send_packed(parts)
            return
        pickle.dumps(init)
        for tasks in self.tasks:
            tasks.put(init)

    def send(self, i: int, batch) -> None:
        """Batch to worker i (its results come back in the order it was sent them)."""
        self.tasks[i].put(batch)  # never blocks: a thread writes it

    def ready(self, i: int) -> bool:
        """Whether worker i's next result has started to arrive (receive will not wait long)."""
        if self.raw:
            poller = select.poll()
            poller.register(self.results[i], select.POLLIN)
            return bool(poller.poll(0))
        return not self.results[i].empty()

    def receive(self, i: int):
        """Worker i's next result."""
        results = self.results[i]
        if self.raw:
            return self._receive_raw(i, results)
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

    def _receive_raw(self, i: int, fd: int):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not poller.poll(_POLL * 1000):
            if not self.procs[i].is_alive() and not poller.poll(50):
                raise _died(self.procs[i].exitcode)
        try:
            ok, value = _recv_raw(fd)
        except EOFError:  # the worker ended before (or while) writing its result
            self.procs[i].join(_GRACE)
            raise _died(self.procs[i].exitcode) from None
        if not ok:
            raise value
        return value

    def finish(self, i: int) -> None:
        """Worker i will get no more batches (and its results are all taken): it ends now."""
        if i not in self.finished:
            self.finished.add(i)
            self.tasks[i].put(None)

    def close(self, ok: bool) -> None:
        """Stop the workers: let them finish (all results taken) or terminate them."""
        if ok:
            for i in range(len(self.tasks)):
                self.finish(i)
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
        if self.raw:
            for sender in self.tasks:
                sender.close(wait=False)  # all read (ok), or nobody will read it
            for fd in self.results:
                os.close(fd)
        else:
            for q in self.tasks + self.results:
                q.cancel_join_thread()  # never wait at exit on data nobody will read
                q.close()
        self.tasks = []
        self.results = []
        self.procs = []


def _died(exitcode: int | None) -> BaseException:
    """What a worker's unexpected end means in the parent. A worker ended by SIGINT or
    SIGTERM: this process is ending for that signal too (status.SIGNALLED), and its own copy
    of it (the group's), when it comes, is not raised again."""
    if exitcode in (-signal.SIGINT, -signal.SIGTERM):
        if not SIGNALLED:
            SIGNALLED.append(-exitcode)
        return Interrupted() if exitcode == -signal.SIGINT else Terminated()
    how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"status {exitcode}"
    return CqiaError(f"a worker process ended unexpectedly ({how}; out of memory?)")
