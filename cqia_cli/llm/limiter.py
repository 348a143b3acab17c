"""How many requests may go now: requests in flight, requests and tokens per minute, and an
adaptive slow-down when the server answers 429.

- `concurrency` caps the requests in flight. On a 429 the cap is halved (not below 1) and every
  new request waits until the server's Retry-After has passed; each later success raises the cap
  by one again, up to `concurrency` (additive increase, multiplicative decrease, as TCP does).
- `rpm` / `tpm` are token buckets refilled continuously at the per-minute rate, holding at most
  ten seconds' worth (providers enforce their per-minute limits over shorter windows too). A
  request larger than that may go when the bucket is full, leaving a debt later ones wait out.
"""

from __future__ import annotations

import asyncio
import time


class Bucket:
    def __init__(self, per_minute: float):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 6.0)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def wait_for(self, amount: float) -> float:
        """Seconds to wait before `amount` can be taken (0: take it now)."""
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now
        need = min(amount, self.capacity)
        if self.level >= need:
            self.level -= amount  # below zero for a request larger than the bucket: a debt
            return 0.0
        return (need - self.level) / self.rate


class Limiter:
    def __init__(self, concurrency: int, *, rpm: float | None = None, tpm: float | None = None):
        self.max = max(1, concurrency)
        self.limit = float(self.max)
        self.active = 0
        self.rpm = Bucket(rpm) if rpm else None
        self.tpm = Bucket(tpm) if tpm else None
        self.pause_until = 0.0
        self.slowdowns = 0
        self._cond = asyncio.Condition()

    async def acquire(self, tokens: int = 0) -> None:
        async with self._cond:
            while True:
                now = time.monotonic()
                if now < self.pause_until:
                    try:
                        await asyncio.wait_for(self._cond.wait(), self.pause_until - now)
                    except asyncio.TimeoutError:
                        pass
                    continue
                if self.active >= int(self.limit):
                    await self._cond.wait()
                    continue
                break
            self.active += 1
        # the buckets are waited on outside the lock; at most `limit` callers get here
        for bucket, amount in ((self.rpm, 1), (self.tpm, tokens)):
            if bucket is None or not amount:
                continue
            while True:
                wait = bucket.wait_for(amount)
                if not wait:
                    break
                await asyncio.sleep(wait)

    async def release(self, *, ok: bool = True) -> None:
        async with self._cond:
            self.active -= 1
            if ok and self.limit < self.max:
                self.limit = min(self.max, self.limit + 1.0 / max(1.0, self.limit))
            # wake as many waiters as there are free slots, not all of them (at 64 in flight
            # and a window of 256, waking all costs ~200 task switches per request)
            self._cond.notify(max(1, int(self.limit) - self.active))

    async def throttled(self, retry_after: float | None) -> None:
        """The server said 429: halve the requests in flight, and hold new ones until its
        Retry-After (or one second) has passed."""
        async with self._cond:
            self.slowdowns += 1
            self.limit = max(1.0, self.limit / 2)
            self.pause_until = max(self.pause_until,
                                   time.monotonic() + (retry_after if retry_after is not None
                                                       else 1.0))
            self._cond.notify_all()
