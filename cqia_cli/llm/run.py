"""The run loop both commands share: records in, requests through the Runner, records out in
input order; dry runs; failures under --on-error; the summary.

A command supplies a Task:
    bodies(record) -> [request body, ...] or None (None: pass the record through untouched);
                      may raise prompts.MissingField (a problem of that record)
    check(answer)  -> the value it needs from one answer, or raises parse.ParseError
    apply(record, outcome) -> the record to write
    rendered(record) -> the messages of one record, for --dry-run to show
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from cqia_cli import console
from cqia_cli.llm.accounting import LiveProgress, Stats, estimate_tokens, human
from cqia_cli.llm.prompts import MissingField
from cqia_cli.status import CqiaError, ExitStatus

#: exit status when the endpoint fails (no answer after all retries, a wrong key/URL/model)
UNAVAILABLE = ExitStatus.UNAVAILABLE


@dataclass
class Settings:
    command: str
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    concurrency: int = 64
    rpm: float | None = None
    tpm: float | None = None
    retries: int = 5
    retry_wait: float = 1.0
    timeout: float = 120.0
    cache: str | None = None
    use_cache: bool = True
    dry_run: bool = False
    price_in: float | None = None
    price_out: float | None = None


class _Pass:
    """A record that needs no request (e.g. --only-missing and the field is filled)."""


PASS = _Pass()


@dataclass
class InputProblem:
    text: str


def short(text: str | None, n: int = 80) -> str:
    if text is None:
        return ""
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "..."


def resolve_model(settings: Settings) -> None:
    """Without --model, take the server's only model (vLLM and a one-model Ollama serve one)."""
    if settings.model:
        return
    if not settings.base_url:
        raise CqiaError("give --base-url (or OPENAI_BASE_URL) and --model", ExitStatus.USAGE)
    from cqia_cli.llm.client import ChatClient, RequestFailed

    async def ask():
        client = ChatClient(settings.base_url, api_key=settings.api_key, timeout=30,
                            connections=1, command=settings.command)
        try:
            return await client.models()
        finally:
            await client.close()

    try:
        models = asyncio.run(ask())
    except RequestFailed as e:
        raise CqiaError(f"no --model given, and listing the server's models failed: {e.reason}",
                        UNAVAILABLE) from None
    if len(models) != 1:
        raise CqiaError(f"give --model: the server has {len(models)} models"
                        + (f" ({', '.join(models[:10])})" if models else ""), ExitStatus.USAGE)
    settings.model = models[0]


def _preparer(task, cache):
    """For `Job.map_async`: each batch of records -> (record, bodies or InputProblem or None,
    cache keys, cache hits) per record, the cache looked up once per batch."""
    from cqia_cli.llm.cache import request_key

    def prepare(records: list[dict]) -> list:
        items = []
        keys_all = []
        for rec in records:
            try:
                bodies = task.bodies(rec)
            except MissingField as e:
                bodies = InputProblem(f"the prompt uses {{{e.name}}}, which this record lacks "
                                      f"(write {{{e.name}?}} to allow it to be missing)")
            keys = [request_key(b) for b in bodies] if isinstance(bodies, list) else None
            if keys:
                keys_all.extend(keys)
            items.append((rec, bodies, keys))
        hits = cache.get_many(keys_all) if keys_all else {}
        return [(rec, bodies, keys, hits) for rec, bodies, keys in items]

    return prepare


def run(job, settings: Settings, task, *, quiet: bool = False) -> Stats:
    """Run `task` over the job's records; returns the counters (the command prints the summary)."""
    from cqia_cli.llm.cache import open_cache

    cache = open_cache(settings.cache, enabled=settings.use_cache, command=settings.command)
    try:
        if settings.dry_run:
            return _dry_run(job, settings, task, cache)
        with _interrupt_raises():
            return asyncio.run(_run(job, settings, task, cache, quiet))
    finally:
        cache.close()


class _interrupt_raises:
    """Ctrl-C raises KeyboardInterrupt where the loop is, as SIGTERM raises Terminated.

    asyncio.run's own SIGINT handling cancels the main task and relies on the cancellation
    reaching it; a library that swallows a CancelledError somewhere below (seen with aiohttp
    mid-write) then lets the run go on to the end with status 0. Raising instead always ends
    the run: asyncio.run then cancels every task and the Job removes its temporary files."""

    def __enter__(self):
        import signal
        import threading

        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, _raise_interrupt)
        return self

    def __exit__(self, *exc):
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _quiet_loop_errors(loop, context) -> None:
    """Errors of tasks nobody awaits any more (aiohttp's writers of requests cancelled on the
    way out) are not the user's business: one line per error is the contract. --debug shows
    them."""
    from cqia_cli import cli

    if cli._debug:
        loop.default_exception_handler(context)


async def _run(job, settings: Settings, task, cache, quiet: bool) -> Stats:
    from cqia_cli.llm.client import ChatClient
    from cqia_cli.llm.limiter import Limiter
    from cqia_cli.llm.runner import Fatal, Runner

    asyncio.get_running_loop().set_exception_handler(_quiet_loop_errors)
    stats = Stats()
    client = ChatClient(settings.base_url, api_key=settings.api_key, timeout=settings.timeout,
                        connections=settings.concurrency, command=settings.command)
    limiter = Limiter(settings.concurrency, rpm=settings.rpm, tpm=settings.tpm)
    runner = Runner(client, cache, limiter, stats, retries=settings.retries,
                    retry_wait=settings.retry_wait)
    progress = LiveProgress(settings.command, stats, job.reader, enabled=not quiet)

    def no_json(reason: str) -> None:
        task.params.pop("response_format", None)
        if not quiet:
            progress.close()
            console.message(f"the server rejects response_format ({short(reason, 120)}); "
                            "asking without it from now on (--no-json does so from the start)")

    runner.on_no_json = no_json
    reader = job.reader
    write = job.out.write
    on_error = job.on_error
    errors_out = job.errors_out

    def submit(item):
        stats.records += 1
        bodies = item[1]
        if bodies is None:
            return PASS
        if isinstance(bodies, InputProblem):
            return bodies
        return runner.submit(bodies, task.check, item[2], item[3])

    results = job.map_async(submit, prepare=_preparer(task, cache),
                            window=max(256, 4 * settings.concurrency))
    try:
        async for (rec, *_), at, res in results:
            if runner.fatal:
                raise Fatal(runner.fatal)
            if res is PASS:
                stats.done += 1
                write(rec, at)  # read ahead: say which record cannot be written
            elif isinstance(res, InputProblem):
                stats.records -= 1
                reader.bad_line(at[2], at[1], res.text, path=at[0])
            elif res.error is not None:
                stats.failed += 1
                where = f"{at[0]}:{at[1]}"
                if on_error == "fail":
                    answer = f": {short(res.raw)!r}" if res.raw is not None else ""
                    raise CqiaError(
                        f"{where}: {res.error}{answer} (--on-error skip --errors FILE keeps "
                        "going and keeps such records)",
                        ExitStatus.DATA if res.kind == "parse" else UNAVAILABLE)
                if errors_out is not None:
                    errors_out.write({**rec, "_error": {"where": where, "reason": res.error,
                                                        "answer": res.raw}}, at)
            else:
                stats.done += 1
                write(task.apply(rec, res), at)
            progress.update()
    except Fatal as e:
        raise CqiaError(f"{settings.base_url}: {e}", UNAVAILABLE) from None
    finally:
        await results.aclose()  # the requests still in flight cancelled before the client goes
        progress.close()
        await client.close()
    return stats


def _dry_run(job, settings: Settings, task, cache) -> Stats:
    from cqia_cli.llm.runner import Runner

    stats = Stats()
    runner = Runner(None, cache, None, stats)
    requests = missing = prompt_tokens = completion_tokens = 0
    shown = first = None
    reader = job.reader
    for rec in job.records():
        try:
            bodies = task.bodies(rec)
        except MissingField as e:
            reader.bad_line(reader.raw, reader.lineno,
                            f"the prompt uses {{{e.name}}}, which this record lacks")
            continue
        stats.records += 1
        if not bodies:
            continue
        requests += len(bodies)
        todo = runner.missing(bodies)
        missing += len(todo)
        for body in todo:
            prompt_tokens += sum(estimate_tokens(str(m.get("content", "")))
                                 for m in body["messages"])
            completion_tokens += int(body.get("max_tokens") or 0)
        if first is None:
            first = bodies[0]
        if shown is None and todo:
            shown = todo[0]
    lines = [f"dry run: nothing sent. {stats.records:,} records, {requests:,} requests, "
             f"{requests - missing:,} in the cache ({getattr(cache, 'name', '')}), "
             f"{missing:,} to send to {settings.base_url or '(no --base-url)'} "
             f"as model {settings.model}",
             f"estimated tokens of those: {human(prompt_tokens)} prompt, at most "
             f"{human(completion_tokens)} completion (max_tokens)"]
    if settings.price_in is not None or settings.price_out is not None:
        low = (settings.price_in or 0) * prompt_tokens / 1e6
        high = low + (settings.price_out or 0) * completion_tokens / 1e6
        lines.append(f"estimated cost: {low:.4f} to {high:.4f} (prices per million tokens)")
    if shown is None:
        shown = first
    if shown is not None:
        lines.append("the first request to send:" if shown is not first or missing
                     else "the first request (its answer is cached):")
        for m in shown["messages"]:
            lines.append(f"--- {m['role']} ---")
            lines.append(str(m.get("content", "")))
        params = {k: v for k, v in shown.items() if k != "messages"}
        lines.append(f"--- parameters --- {params}")
    for line in lines:
        console.plain(line)
    return stats


def summary(job, stats: Stats, settings: Settings) -> None:
    job.summary(stats.line(settings.command, settings.price_in, settings.price_out))
    if stats.failed and job.on_error == "skip":
        kept = (f"kept in {job.errors_out.name} with the reason and the answer"
                if job.errors_out is not None else "not kept: give --errors FILE")
        job.summary(f"{settings.command}: {stats.failed:,} records failed and were left out "
                    f"({kept}); run again to retry only those (the rest is cached)")


def as_value(text: str) -> Any:
    """A --set value: JSON when it parses (true, 3, "x", [..]), else the text itself."""
    import orjson

    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text
