"""Counters of one run, the progress line on a terminal, the summary, the cost."""

from __future__ import annotations

import re
import time

from cqia_cli import console

_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")


def estimate_tokens(text: str) -> int:
    """A rough token count for --dry-run and --tpm before the server says: one token per Chinese
    character or full-width punctuation, one per four other characters (tokenizers of Qwen,
    DeepSeek and GPT-4o give 0.6-1.3 per Chinese character)."""
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def human(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e4:
        return f"{n / 1e3:.1f}k"
    return f"{int(n):,}"


class Stats:
    def __init__(self):
        self.records = 0
        self.done = 0          # records with all answers
        self.failed = 0        # records that failed (request or parse)
        self.sent = 0          # HTTP requests sent, retries included
        self.answered = 0      # answers received
        self.cache_hits = 0
        self.retries = 0
        self.throttled = 0     # 429 answers
        self.parse_failures = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cached_prompt_tokens = 0
        self.cached_completion_tokens = 0
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return max(1e-9, time.monotonic() - self.start)

    def cost(self, price_in: float | None, price_out: float | None) -> float | None:
        """Cost of the requests sent in this run; prices are per million tokens."""
        if price_in is None and price_out is None:
            return None
        return ((price_in or 0.0) * self.prompt_tokens
                + (price_out or 0.0) * self.completion_tokens) / 1e6

    def line(self, cmd: str, price_in=None, price_out=None) -> str:
        t = self.elapsed()
        parts = [f"{cmd}: {self.records:,} records, {self.done:,} done, {self.failed:,} failed;",
                 f"{self.answered:,} requests answered ({self.sent:,} sent, "
                 f"{self.retries:,} retries, {self.throttled:,} rate-limited),",
                 f"{self.cache_hits:,} cache hits;",
                 f"tokens {human(self.prompt_tokens)} prompt + "
                 f"{human(self.completion_tokens)} completion"]
        cost = self.cost(price_in, price_out)
        if cost is not None:
            parts[-1] += f", cost {cost:.4f}"
        parts[-1] += ";"
        parts.append(f"{self.records / t:,.0f} records/s, {self.answered / t:,.1f} requests/s "
                     f"in {t:.1f}s")
        return " ".join(parts)


class LiveProgress:
    """One line on a terminal's stderr: records, requests, cache hits, tokens, rate, ETA."""

    def __init__(self, label: str, stats: Stats, reader, enabled: bool):
        self.stats = stats
        self.reader = reader
        self._progress = None
        self._next = 0.0
        if not (enabled and console.stderr_is_terminal()):
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        total = reader.total_bytes
        columns = [TextColumn(f"[bold]{label}")]
        if total:
            columns += [BarColumn(), TimeRemainingColumn()]
        columns += [TextColumn("{task.fields[text]}")]
        self._progress = Progress(*columns, console=console.stderr_console(), transient=True)
        self._task = self._progress.add_task(label, total=total or None, text="")
        self._progress.start()

    def update(self) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + 0.2
        s = self.stats
        t = s.elapsed()
        text = (f"{s.records:,} records · {s.answered:,} requests · {s.cache_hits:,} cached · "
                f"{human(s.prompt_tokens + s.completion_tokens)} tokens · "
                f"{s.answered / t:,.1f} req/s")
        self._progress.update(self._task, completed=self.reader.done_bytes() or 0, text=text)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
