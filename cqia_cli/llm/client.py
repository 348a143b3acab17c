"""The HTTP client for OpenAI-compatible chat completions, and how its failures are classified.

aiohttp, measured against the two clients the issue named, on the local test server with 200 ms
latency and 64 requests in flight (2,000 requests, bench/bench_llm.py, a shared machine): CPU per
request 0.22-0.25 ms with aiohttp, 1.0-1.2 ms with httpx (after working around its pool, see
below), 3.4 ms with the openai package's AsyncOpenAI (httpx plus pydantic models). On a busy
machine the CPU per request is what keeps 64 requests in flight. cqia does its own retries and
rate control, so the openai package's layers would add nothing. aiohttp is the one optional
dependency (`pip install 'cqia[llm]'`), imported here only, when a command runs.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass

import orjson

from cqia_cli.status import CqiaError, ExitStatus

MISSING_MESSAGE = "cqia {cmd} needs the optional aiohttp package: pip install 'cqia[llm]'"


def check_aiohttp(command: str) -> None:
    """Fail early, with the install hint, when aiohttp is missing; importing it (0.2-0.4 s) waits
    until a request is really sent, so a run served from the cache does not pay for it."""
    import importlib.util
    import sys

    if "aiohttp" in sys.modules and sys.modules["aiohttp"] is None or \
            importlib.util.find_spec("aiohttp") is None:
        raise CqiaError(MISSING_MESSAGE.format(cmd=command), ExitStatus.USAGE)


@dataclass
class Answer:
    content: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish: str = ""
    model: str = ""


class RequestFailed(Exception):
    """One request failed. `retry` says whether trying again may help; `retry_after` is the
    server's Retry-After in seconds (429/503), `status` the HTTP status (0: no answer)."""

    def __init__(self, reason: str, *, status: int = 0, retry: bool = False,
                 retry_after: float | None = None, fatal: bool = False,
                 connect: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry = retry
        self.retry_after = retry_after
        #: fatal: no record can succeed (bad key, unknown model, wrong URL): stop the run
        self.fatal = fatal
        #: the connection could not be made at all (refused, no such host)
        self.connect = connect


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(body: bytes) -> str:
    try:
        data = orjson.loads(body)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
        if isinstance(data, dict) and data.get("message"):
            return str(data["message"])[:300]
    except (orjson.JSONDecodeError, AttributeError):
        pass
    return body[:200].decode("utf-8", "replace").strip()


def _ssl_context():
    """The TLS context: the CA bundle of SSL_CERT_FILE, else certifi's where installed, else the
    system's."""
    import os
    import ssl

    cafile = os.environ.get("SSL_CERT_FILE")
    if not cafile:
        try:
            import certifi

            cafile = certifi.where()
        except ImportError:
            cafile = None
    return ssl.create_default_context(cafile=cafile)


class ChatClient:
    """POST {base_url}/chat/completions with a JSON body, `connections` at a time at most,
    connections kept alive, proxies from the environment (HTTPS_PROXY, NO_PROXY)."""

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 120.0,
                 connections: int = 64, command: str = "score"):
        check_aiohttp(command)
        self._aiohttp = None
        self.base_url = base_url.rstrip("/")
        self._url = self.base_url + "/chat/completions"
        headers = {"Content-Type": "application/json", "User-Agent": "cqia"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers = headers
        self._timeout = timeout
        self._connections = max(1, connections)
        self._session = None

    def _open(self):
        if self._session is None:
            import aiohttp

            self._aiohttp = aiohttp
            ssl = _ssl_context() if self.base_url.startswith("https:") else False
            self._session = aiohttp.ClientSession(
                headers=self._headers, trust_env=True,
                timeout=aiohttp.ClientTimeout(total=self._timeout,
                                              connect=min(self._timeout, 30.0)),
                connector=aiohttp.TCPConnector(limit=self._connections, ssl=ssl))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, url: str, data: bytes | None = None):
        session = self._open()
        aiohttp = self._aiohttp
        try:
            async with session.request(method, url, data=data) as resp:
                return resp.status, resp.headers.get("Retry-After"), await resp.read()
        except asyncio.TimeoutError:
            raise RequestFailed(f"timed out after {self._timeout:g} s", retry=True) from None
        except aiohttp.ClientConnectorError as e:
            raise RequestFailed(f"cannot connect to {self.base_url}: {e.os_error or e}",
                                retry=True, connect=True) from None
        except aiohttp.InvalidURL:
            raise RequestFailed(f"{url}: not a valid URL", fatal=True) from None
        except (aiohttp.ClientError, OSError) as e:
            raise RequestFailed(f"connection lost: {type(e).__name__}: {e}",
                                retry=True) from None

    async def models(self) -> list[str]:
        url = self.base_url + "/models"
        try:
            status, _, content = await self._request("GET", url)
        except RequestFailed as e:
            raise RequestFailed(f"{url}: {e.reason}", fatal=True) from None
        if status != 200:
            raise RequestFailed(f"{url}: HTTP {status}: {_error_text(content)}", status=status,
                                fatal=True)
        try:
            return [m["id"] for m in orjson.loads(content)["data"]]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise RequestFailed(f"{url}: not an OpenAI model list", fatal=True) from None

    async def chat(self, body: bytes) -> Answer:
        status, retry_after_header, content = await self._request("POST", self._url, body)
        if status != 200:
            text = _error_text(content)
            reason = f"HTTP {status}: {text}" if text else f"HTTP {status}"
            retry_after = parse_retry_after(retry_after_header)
            if status == 429 or status == 408 or status >= 500:
                raise RequestFailed(reason, status=status, retry=True, retry_after=retry_after)
            # a wrong key, URL or model name fails every record alike: stop at once
            raise RequestFailed(reason, status=status, fatal=status in (401, 403, 404))
        try:
            data = orjson.loads(content)
            choice = data["choices"][0]
            message = choice["message"].get("content")
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
            raise RequestFailed("the server's answer is not a chat completion: "
                                f"{content[:120]!r}", status=status, retry=True) from None
        usage = data.get("usage") or {}
        return Answer(
            content=message if isinstance(message, str) else "",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish=str(choice.get("finish_reason") or ""),
            model=str(data.get("model") or ""),
        )
