"""One record -> its requests -> checked answers, through the cache, the limiter and retries.

A command gives, per record, the request bodies (one, or K for --samples) and a `check` that
turns an answer into the value it needs or raises ParseError. `Runner.submit(bodies, check)`
returns an Outcome at once when every answer is in the cache (no task, no await: a cached re-run
runs at the speed of reading), else a coroutine for `aio.ordered_map` to run.

Retries: a 429 halves the requests in flight and holds new ones for its Retry-After (the
limiter); 5xx, 408, timeouts and dropped connections wait an exponential backoff with jitter
(`retry_wait * 2**n`, times 0.5-1.5, at most 60 s, or the server's Retry-After) and go again, up
to `retries` times. 401, 403 and 404 stop the run (a wrong key, URL or model). Other 4xx fail the
record (e.g. a prompt longer than the model's context).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any, Callable

import orjson

from cqia_cli.llm.accounting import Stats, estimate_tokens
from cqia_cli.llm.cache import request_key
from cqia_cli.llm.client import Answer, RequestFailed
from cqia_cli.llm.parse import ParseError


@dataclass
class Outcome:
    values: list | None = None     # one checked value per request, when all succeeded
    answers: list | None = None    # the Answer of each request
    error: str | None = None       # why the record failed
    kind: str = ""                 # "request" (no answer after retries) or "parse"
    raw: str | None = None         # the answer that could not be used


class Fatal(Exception):
    """A failure no record can escape (bad key, unknown model, wrong URL): stop the run."""


class Runner:
    def __init__(self, client, cache, limiter, stats: Stats, *, retries: int = 5,
                 retry_wait: float = 1.0):
        self.client = client
        self.cache = cache
        self.limiter = limiter
        self.stats = stats
        self.retries = retries
        self.retry_wait = retry_wait
        self.fatal: str | None = None
        self._random = random.Random()
        #: False once the server has rejected response_format; then `on_no_json(reason)` is
        #: called once and requests go without it
        self.json_ok = True
        self.on_no_json: Callable[[str], None] | None = None

    def submit(self, bodies: list[dict], check: Callable[[Answer], Any],
               keys: list[str] | None = None, hits: dict | None = None):
        """Outcome now (all cached), or a coroutine giving it. `keys` are the bodies' cache keys
        and `hits` what the cache holds for them, when the caller looked them up in a batch."""
        keyed = []
        values: list = [None] * len(bodies)
        answers: list = [None] * len(bodies)
        for i, body in enumerate(bodies):
            if not self.json_ok and "response_format" in body:
                body = bodies[i] = _without_json(body)
                key = request_key(body)
                hit = self.cache.get(key)
            else:
                key = keys[i] if keys is not None else request_key(body)
                hit = hits.get(key) if hits is not None else self.cache.get(key)
            if hit is not None:
                try:
                    values[i] = check(hit)
                    answers[i] = hit
                    self.stats.cache_hits += 1
                    self.stats.cached_prompt_tokens += hit.prompt_tokens
                    self.stats.cached_completion_tokens += hit.completion_tokens
                    continue
                except ParseError:
                    pass  # stored by an older rule that accepted it: ask again
            keyed.append((i, key, orjson.dumps(body), body))
        if not keyed:
            return Outcome(values=values, answers=answers)
        return self._fetch_all(keyed, values, answers, check)

    def missing(self, bodies: list[dict]) -> list[dict]:
        """The bodies whose answers are not in the cache (what --dry-run would send)."""
        return [b for b in bodies if self.cache.get(request_key(b)) is None]

    async def _fetch_all(self, keyed, values, answers, check) -> Outcome:
        results = await asyncio.gather(*(self._fetch(key, data, body, check)
                                         for _, key, data, body in keyed))
        for (i, _, _, _), res in zip(keyed, results):
            if isinstance(res, Outcome):  # failed
                return res
            values[i], answers[i] = res
        return Outcome(values=values, answers=answers)

    async def _fetch(self, key: str, data: bytes, body: dict, check):
        stats = self.stats
        tokens = 0
        if self.limiter.tpm is not None:
            tokens = sum(estimate_tokens(str(m.get("content", ""))) for m in body["messages"])
            tokens += int(body.get("max_tokens") or 0)
        attempt = 0
        while True:
            await self.limiter.acquire(tokens)
            if not self.json_ok and "response_format" in body:  # learnt while this one waited
                body = _without_json(body)
                key, data = request_key(body), orjson.dumps(body)
                hit = self.cache.get(key)
                if hit is not None:
                    try:
                        value = check(hit)
                        await self.limiter.release(ok=True)
                        return value, hit
                    except ParseError:
                        pass
            stats.sent += 1
            try:
                answer = await self.client.chat(data)
            except RequestFailed as e:
                await self.limiter.release(ok=False)
                if e.fatal or (e.connect and not stats.answered):
                    # nothing has answered yet and nothing listens there: a wrong URL or a
                    # server not started, not a blip worth half a minute of backoff
                    self.fatal = self.fatal or e.reason
                    raise Fatal(e.reason) from None
                if e.status == 400 and "response_format" in body and _about_json(e.reason):
                    # the server does not do response_format: ask again without it (the rubric
                    # asks for JSON in words too), and from now on never with it
                    body = _without_json(body)
                    key, data = request_key(body), orjson.dumps(body)
                    if self.json_ok:
                        self.json_ok = False
                        if self.on_no_json is not None:
                            self.on_no_json(e.reason)
                    hit = self.cache.get(key)
                    if hit is not None:
                        try:
                            return check(hit), hit
                        except ParseError:
                            pass
                    continue
                if e.status == 429:
                    stats.throttled += 1
                    await self.limiter.throttled(e.retry_after)
                if not e.retry or attempt >= self.retries:
                    tried = f" after {attempt + 1} attempts" if attempt else ""
                    return Outcome(error=f"request failed{tried}: {e.reason}", kind="request")
                attempt += 1
                stats.retries += 1
                if e.status != 429:  # the limiter holds 429s for their Retry-After itself
                    if e.retry_after is not None:
                        delay = min(e.retry_after, 300.0)
                    else:
                        delay = min(60.0, self.retry_wait * 2 ** (attempt - 1))
                        delay *= 0.5 + self._random.random()
                    await asyncio.sleep(delay)
                continue
            await self.limiter.release(ok=True)
            break
        stats.answered += 1
        stats.prompt_tokens += answer.prompt_tokens
        stats.completion_tokens += answer.completion_tokens
        try:
            value = check(answer)
        except ParseError as e:
            stats.parse_failures += 1
            return Outcome(error=str(e), kind="parse", raw=answer.content)
        self.cache.put(key, data, answer)  # at once: a kill -9 later repeats nothing received
        return value, answer


def _without_json(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "response_format"}


def _about_json(reason: str) -> bool:
    low = reason.lower()
    return "response_format" in low or "json" in low or "response format" in low
