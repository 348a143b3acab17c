"""The click options score and generate share (endpoint, concurrency, cache, accounting), and
their Settings. Each may also come from the environment: CQIA_<CMD>_<OPTION>, then
CQIA_LLM_<OPTION> for both commands, then the usual OPENAI_BASE_URL / OPENAI_API_KEY."""

from __future__ import annotations

import functools
from typing import Callable

import click

from cqia_cli.llm.run import Settings

NAMES = ("base_url", "model", "api_key", "concurrency", "rpm", "tpm", "retries", "retry_wait",
         "timeout", "cache", "no_cache", "dry_run", "price_in", "price_out")


def _env(cmd: str, name: str, *more: str) -> list[str]:
    return [f"CQIA_{cmd.upper()}_{name}", f"CQIA_LLM_{name}", *more]


def llm_options(cmd: str) -> Callable:
    decorators = [
        click.option("--base-url", metavar="URL", envvar=_env(cmd, "BASE_URL", "OPENAI_BASE_URL"),
                     help="The OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (vLLM), "
                          "http://localhost:11434/v1 (Ollama), https://api.deepseek.com/v1 "
                          "[env: OPENAI_BASE_URL]."),
        click.option("--model", metavar="NAME", envvar=_env(cmd, "MODEL"),
                     help="Model name [default: the server's only model, from /v1/models]."),
        click.option("--api-key", metavar="KEY", envvar=_env(cmd, "API_KEY", "OPENAI_API_KEY"),
                     help="Bearer key; none for a local server [env: OPENAI_API_KEY]."),
        click.option("--concurrency", type=click.IntRange(1, 4096), default=64,
                     show_default=True, envvar=_env(cmd, "CONCURRENCY"), metavar="N",
                     help="Requests in flight at most (halved on a 429, then raised again)."),
        click.option("--rpm", type=click.FloatRange(min=0, min_open=True), default=None,
                     envvar=_env(cmd, "RPM"), metavar="N", help="At most N requests a minute."),
        click.option("--tpm", type=click.FloatRange(min=0, min_open=True), default=None,
                     envvar=_env(cmd, "TPM"), metavar="N",
                     help="At most N tokens a minute (prompt estimated, plus max_tokens)."),
        click.option("--retries", type=click.IntRange(min=0), default=5, show_default=True,
                     envvar=_env(cmd, "RETRIES"), metavar="N",
                     help="Retries of a request after a 429, 5xx, timeout or dropped "
                          "connection (exponential backoff with jitter; Retry-After honoured)."),
        click.option("--retry-wait", type=click.FloatRange(min=0), default=1.0,
                     show_default=True, envvar=_env(cmd, "RETRY_WAIT"), metavar="SECONDS",
                     help="The first backoff; doubled for each retry, at most 60 s."),
        click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=120.0,
                     show_default=True, envvar=_env(cmd, "TIMEOUT"), metavar="SECONDS",
                     help="Give up on one request after this long (then retried)."),
        click.option("--cache", metavar="PATH|redis://HOST:PORT/DB", envvar=_env(cmd, "CACHE"),
                     help="Where answers are kept: an SQLite file, or Redis for many machines "
                          "[default: $XDG_CACHE_HOME/cqia/llm.sqlite, ~/.cache/cqia/llm.sqlite]."),
        click.option("--no-cache", is_flag=True, envvar=_env(cmd, "NO_CACHE"),
                     help="Neither read nor write the cache."),
        click.option("--dry-run", is_flag=True,
                     help="Send nothing: print what a run would send (records, requests not in "
                          "the cache, estimated tokens and cost) and the first request."),
        click.option("--price-in", type=click.FloatRange(min=0), default=None, metavar="PRICE",
                     envvar=_env(cmd, "PRICE_IN"),
                     help="Price of a million prompt tokens, for the cost in the summary."),
        click.option("--price-out", type=click.FloatRange(min=0), default=None, metavar="PRICE",
                     envvar=_env(cmd, "PRICE_OUT"),
                     help="Price of a million completion tokens."),
    ]

    def decorator(f: Callable) -> Callable:
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            values = {n: kwargs.pop(n) for n in NAMES}
            kwargs["llm"] = Settings(
                command=cmd, base_url=values["base_url"], model=values["model"],
                api_key=values["api_key"], concurrency=values["concurrency"],
                rpm=values["rpm"], tpm=values["tpm"], retries=values["retries"],
                retry_wait=values["retry_wait"], timeout=values["timeout"],
                cache=values["cache"], use_cache=not values["no_cache"],
                dry_run=values["dry_run"], price_in=values["price_in"],
                price_out=values["price_out"])
            if values["no_cache"] and values["cache"]:
                raise click.UsageError("--cache and --no-cache contradict each other")
            return f(*args, **kwargs)

        for d in reversed(decorators):
            wrapper = d(wrapper)
        return wrapper

    return decorator


def check_endpoint(llm: Settings) -> None:
    """Before reading any record: an endpoint to send to (a dry run needs only the model)."""
    if not llm.dry_run and not llm.base_url:
        raise click.UsageError("give --base-url URL (or set OPENAI_BASE_URL), e.g. "
                               "http://localhost:8000/v1 for a local vLLM")
