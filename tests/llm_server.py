"""A real OpenAI-compatible chat-completions server on 127.0.0.1, for tests and bench/bench_llm.py.

Not a test module (no test_ prefix). It speaks enough HTTP/1.1 (keep-alive, Content-Length) for
httpx and the openai client, on an asyncio loop in a background thread:

    with LLMServer(latency=0.0, capacity=64) as server:
        server.url            # http://127.0.0.1:PORT/v1
        server.log            # one dict per request received, in arrival order

Endpoints: POST /v1/chat/completions, GET /v1/models (one model, "judge"), GET /log (the request
log as JSON, for a server run as a separate process with `python tests/llm_server.py`).

Answers are deterministic, computed from the prompt:
- a judge request (response_format json, or a system prompt mentioning 评分) gets
  `{"score": S, "reason": "..."}` with S = 1 + sha256(last user message) % 10;
- any other request gets `模型回答：` + the sha256 prefix and the first 20 characters of the last
  user message.

Directives written anywhere in the messages change one request's fate (deterministic per prompt;
`times=N` makes only the first N requests of that prompt behave so, later ones answer normally):
    [[delay=0.5]]                      sleep 0.5 s before answering
    [[status=500 times=2]]             answer HTTP 500 (any status)
    [[status=429 retry-after=1 times=1]]   429 with a Retry-After header
    [[reset times=1]]                  drop the connection without an answer (TCP RST)
    [[content=TEXT]]                   answer TEXT verbatim (e.g. malformed or out-of-scale)
    [[score=42]]                       the judge answers {"score": 42, ...}
    [[plain=评分：8]]                  same as content, for the judge's non-JSON styles
    [[length]]                         finish_reason "length" (truncated)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import struct
import threading
import time
from collections import defaultdict

DIRECTIVE = re.compile(r"\[\[(\w+)(?:=([^\]\s]*))?((?:\s+[\w-]+=[^\]\s]*)*)\]\]")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def judge_score(user: str) -> int:
    return 1 + int(sha(user), 16) % 10


def plain_answer(user: str) -> str:
    return f"模型回答：{sha(user)[:8]} {user[:20]}"


class LLMServer:
    def __init__(self, *, latency: float = 0.0, capacity: int = 1000, model: str = "judge",
                 host: str = "127.0.0.1", port: int = 0):
        self.latency = latency
        self.capacity = capacity
        self.model = model
        self.host = host
        self.port = port
        self.log: list[dict] = []
        #: answer 400 to requests with response_format, as servers without JSON mode do
        self.reject_json = False
        self.in_flight = 0
        self.max_in_flight = 0
        self._counts: dict = defaultdict(int)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> "LLMServer":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        self._sem = asyncio.Semaphore(self.capacity)
        self._server = await asyncio.start_server(self._conn, self.host, self.port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown():
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        except Exception:  # noqa: BLE001 - stopping anyway
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    def __enter__(self) -> "LLMServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def requests_for(self, needle: str) -> int:
        """How many chat requests contained `needle` in their last user message."""
        return sum(1 for r in self.log if needle in r.get("user", ""))

    # -- HTTP ---------------------------------------------------------------------------------

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = b""
                if "content-length" in headers:
                    try:
                        body = await reader.readexactly(int(headers["content-length"]))
                    except (asyncio.IncompleteReadError, ConnectionError):
                        return
                status, extra, payload = await self._handle(method, path, body, writer)
                if status is None:  # connection reset
                    return
                data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
                out = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}",
                       "Content-Type: application/json",
                       f"Content-Length: {len(data)}", "Connection: keep-alive"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass

    async def _handle(self, method: str, path: str, body: bytes, writer):
        if method == "GET" and path.rstrip("/").endswith("/models"):
            return 200, {}, {"object": "list", "data": [
                {"id": self.model, "object": "model", "owned_by": "cqia-tests"}]}
        if method == "GET" and path == "/log":
            return 200, {}, self.log
        if method != "POST" or not path.rstrip("/").endswith("/chat/completions"):
            return 404, {}, {"error": {"message": f"no route {method} {path}"}}
        try:
            req = json.loads(body)
            messages = req["messages"]
        except (ValueError, KeyError, TypeError):
            return 400, {}, {"error": {"message": "bad request body"}}
        everything = "\n".join(str(m.get("content", "")) for m in messages)
        user = next((str(m.get("content", "")) for m in reversed(messages)
                     if m.get("role") == "user"), "")
        system = next((str(m.get("content", "")) for m in messages
                       if m.get("role") == "system"), "")
        key = sha(json.dumps(messages, ensure_ascii=False, sort_keys=True)
                  + json.dumps({k: v for k, v in req.items() if k != "messages"}, sort_keys=True))
        entry = {"t": time.time(), "user": user, "key": key, "model": req.get("model"),
                 "temperature": req.get("temperature"),
                 "response_format": req.get("response_format")}
        self.log.append(entry)
        directives = self._directives(everything, key)
        if self.reject_json and req.get("response_format"):
            entry["status"] = 400
            return 400, {}, {"error": {"message": "response_format is not supported by this "
                                                  "model", "type": "invalid_request_error"}}
        async with self._sem:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                delay = float(directives.get("delay", self.latency))
                if delay:
                    await asyncio.sleep(delay)
                if "reset" in directives:
                    entry["status"] = "reset"
                    sock = writer.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return None, {}, None
                if "status" in directives:
                    status = int(directives["status"])
                    entry["status"] = status
                    extra = {}
                    if "retry-after" in directives:
                        extra["Retry-After"] = directives["retry-after"]
                    return status, extra, {"error": {"message": f"told to answer {status}",
                                                     "type": "test"}}
            finally:
                self.in_flight -= 1
        judge = bool(req.get("response_format")) or "评分" in system
        if "content" in directives:
            content = directives["content"]
        elif "plain" in directives:
            content = directives["plain"]
        elif judge:
            score = int(directives.get("score", judge_score(user)))
            content = json.dumps({"score": score, "reason": f"理由{sha(user)[:6]}"},
                                 ensure_ascii=False)
        else:
            content = plain_answer(user)
        entry["status"] = 200
        entry["content"] = content
        return 200, {}, {
            "id": "chatcmpl-" + key[:12], "object": "chat.completion", "created": 0,
            "model": req.get("model") or self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "length" if "length" in directives else "stop"}],
            "usage": {"prompt_tokens": len(everything), "completion_tokens": len(content),
                      "total_tokens": len(everything) + len(content)},
        }

    def _directives(self, text: str, key: str) -> dict:
        found: dict = {}
        for m in DIRECTIVE.finditer(text):
            name, value, rest = m.group(1), m.group(2), m.group(3)
            opts = dict(kv.split("=", 1) for kv in rest.split()) if rest else {}
            if "times" in opts:
                counter = (key, m.group(0))
                self._counts[counter] += 1
                if self._counts[counter] > int(opts["times"]):
                    continue
            if name in ("content", "plain") and value is not None:
                value = value.replace("_", " ")
            found[name] = value if value is not None else ""
            for k, v in opts.items():
                if k != "times":
                    found[k] = v
        return found


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--latency", type=float, default=0.0)
    ap.add_argument("--capacity", type=int, default=1000)
    args = ap.parse_args()
    server = LLMServer(latency=args.latency, capacity=args.capacity, port=args.port).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
