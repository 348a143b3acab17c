"""The HTTP client for OpenAI-compatible chat completions, and how its failures are classified.

httpx's AsyncClient is used directly rather than the openai package: measured against the local
test server (bench/bench_llm.py), the same concurrent run spends less CPU per request without
openai's pydantic models and its own retry layer, and cqia does its own retries and rate control
anyway. httpx is the one optional dependency (`pip install 'cqia[llm]'`), imported here only.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass

import orjson

from cqia_cli.status import CqiaError, ExitStatus

MISSING_MESSAGE = ("cqia {cmd} needs the optional httpx package: pip install 'cqia[llm]'")


def import_httpx(command: str):
    try:
        import httpx
    except ImportError:
        raise CqiaError(MISSING_MESSAGE.format(cmd=command), ExitStatus.USAGE) from None
    return httpx


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
                 retry_after: float | None = None, fatal: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry = retry
        self.retry_after = retry_after
        #: fatal: no record can succeed (bad key, unknown model, wrong URL): stop the run
        self.fatal = fatal


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
    """One TLS context for all the connections (httpx builds one per client otherwise, loading
    the CA bundle each time: 26 ms apiece). The CA bundle httpx would use: SSL_CERT_FILE, else
    certifi's."""
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
    """POST {base_url}/chat/completions with a JSON body.

    Each request in flight has its own single-connection httpx client, taken from a free list
    and given back: httpx's shared pool scans all its connections for every request, which at
    64 connections cut throughput against the local server from ~900 to ~80 requests/s
    (measured; bench/bench_llm.py). One connection per client keeps keep-alive and costs O(1).
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 120.0,
                 connections: int = 64, command: str = "score"):
        httpx = import_httpx(command)
        self._httpx = httpx
        self.base_url = base_url.rstrip("/")
        self._url = self.base_url + "/chat/completions"
        headers = {"Content-Type": "application/json", "User-Agent": "cqia"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers = headers
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 30.0), pool=None)
        self._connections = max(1, connections)
        self._verify = _ssl_context() if self.base_url.startswith("https:") else False
        self._all: list = []
        self._free = None  # an asyncio.Queue of idle clients, made in the running loop

    def _new_client(self):
        import socket

        # TCP_NODELAY: httpx sends the headers and the body in two writes; with Nagle's
        # algorithm the body then waits for the server's delayed ACK (40 ms) on every request
        transport = self._httpx.AsyncHTTPTransport(
            verify=self._verify,
            limits=self._httpx.Limits(max_connections=1, max_keepalive_connections=1),
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        client = self._httpx.AsyncClient(headers=self._headers, timeout=self._timeout,
                                         transport=transport)
        self._all.append(client)
        return client

    async def _take(self):
        if self._free is None:
            import asyncio

            self._free = asyncio.Queue()
        if self._free.empty() and len(self._all) < self._connections:
            return self._new_client()
        return await self._free.get()

    def _give(self, client) -> None:
        self._free.put_nowait(client)

    async def close(self) -> None:
        for client in self._all:
            try:
                await client.aclose()
            except Exception:  # noqa: BLE001 - closing on the way out
                pass
        self._all.clear()
        self._free = None

    async def models(self) -> list[str]:
        client = await self._take()
        try:
            resp = await client.get(self.base_url + "/models")
        except self._httpx.HTTPError as e:
            raise RequestFailed(f"{self.base_url}/models: {type(e).__name__}: {e}",
                                fatal=True) from None
        finally:
            self._give(client)
        if resp.status_code != 200:
            raise RequestFailed(f"{self.base_url}/models: HTTP {resp.status_code}: "
                                f"{_error_text(resp.content)}", status=resp.status_code,
                                fatal=True)
        try:
            return [m["id"] for m in orjson.loads(resp.content)["data"]]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise RequestFailed(f"{self.base_url}/models: not an OpenAI model list",
                                fatal=True) from None

    async def chat(self, body: bytes) -> Answer:
        httpx = self._httpx
        client = await self._take()
        try:
            resp = await client.post(self._url, content=body)
        except httpx.TimeoutException as e:
            raise RequestFailed(f"timed out ({type(e).__name__})", retry=True) from None
        except httpx.ConnectError as e:
            raise RequestFailed(f"cannot connect to {self.base_url}: {e}", retry=True) from None
        except (httpx.TransportError, OSError) as e:
            raise RequestFailed(f"connection lost: {type(e).__name__}: {e}",
                                retry=True) from None
        finally:
            self._give(client)
        status = resp.status_code
        if status != 200:
            text = _error_text(resp.content)
            reason = f"HTTP {status}: {text}" if text else f"HTTP {status}"
            retry_after = parse_retry_after(resp.headers.get("retry-after"))
            if status == 429 or status == 408 or status >= 500:
                raise RequestFailed(reason, status=status, retry=True, retry_after=retry_after)
            # a wrong key, URL or model name fails every record alike: stop at once
            raise RequestFailed(reason, status=status, fatal=status in (401, 403, 404))
        try:
            data = orjson.loads(resp.content)
            choice = data["choices"][0]
            content = choice["message"].get("content")
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
            raise RequestFailed("the server's answer is not a chat completion: "
                                f"{resp.content[:120]!r}", status=status, retry=True) from None
        usage = data.get("usage") or {}
        return Answer(
            content=content if isinstance(content, str) else "",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish=str(choice.get("finish_reason") or ""),
            model=str(data.get("model") or ""),
        )
