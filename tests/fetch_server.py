"""A helper (no tests): a real HTTP server on 127.0.0.1 for the fetch and contract tests: plain files, and the two endpoints of
the Hugging Face Hub that fetch uses (tree listing with Link pagination, resolve with a
redirect), with HTTP Range, scripted failures (status codes, dropped connections) and a log."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, bytes] = {}  # URL path -> content
        self.repos: dict[tuple[str, str], dict[str, bytes]] = {}  # (repo, revision) -> files
        self.not_lfs: set[str] = set()  # repository paths listed without an LFS sha256
        self.tampered: dict[str, bytes] = {}  # repository path -> other bytes than listed
        self.cdn: "Server | None" = None  # resolve redirects there (another host) when set
        self.scripts: dict[str, list] = {}  # URL path -> actions for the next requests
        self.token: str | None = None  # required by the hub endpoints when set
        self.page_size = 1000
        self.delay = 0.0  # seconds between chunks of a body
        self.log: list[tuple[str, str | None, str | None]] = []  # (path, Range, Authorization)
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def requests(self, path: str) -> list[tuple[str, str | None, str | None]]:
        with self.lock:
            return [r for r in self.log if r[0] == path]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802
        srv = self.server
        parsed = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parsed.path)
        with srv.lock:
            srv.log.append((path, self.headers.get("Range"), self.headers.get("Authorization")))
            script = srv.scripts.get(path)
            action = script.pop(0) if script else None
        if isinstance(action, int):
            self._send(action, b"scripted failure\n", {"Content-Type": "text/plain"})
            return
        if path.startswith("/api/datasets/") or path.startswith("/datasets/"):
            if srv.token and self.headers.get("Authorization") != f"Bearer {srv.token}":
                self._send(401, b'{"error":"Invalid credentials"}')
                return
        if path.startswith("/api/datasets/"):
            self._tree(path, urllib.parse.parse_qs(parsed.query))
            return
        if path.startswith("/datasets/"):
            # /datasets/OWNER/NAME/resolve/REV/PATH -> a redirect to the "CDN"
            _, _, owner, name, verb, rev, rest = path.split("/", 6)
            files = srv.repos.get((f"{owner}/{name}", rev))
            if verb != "resolve" or files is None or rest not in files:
                self._send(404, b'{"error":"Entry not found"}')
                return
            cdn = "/cdn/" + urllib.parse.quote(f"{owner}/{name}/{rev}/{rest}")
            host = srv.cdn or srv
            host.files[urllib.parse.unquote(cdn)] = srv.tampered.get(rest, files[rest])
            self._send(302, b"", {"Location": (host.url if srv.cdn else "") + cdn})
            return
        data = srv.files.get(path)
        if data is None:
            self._send(404, b"not found\n")
            return
        self._body(data, action)

    def _body(self, data: bytes, action) -> None:
        srv = self.server
        etag = '"' + hashlib.md5(data).hexdigest() + '"'
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
        if start:
            if start >= len(data):
                self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if action == "drop":  # half the body, then the connection goes away
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        step = 4096
        for i in range(0, len(body), step):
            self.wfile.write(body[i:i + step])
            if srv.delay:
                self.wfile.flush()
                time.sleep(srv.delay)

    def _tree(self, path: str, query: dict) -> None:
        srv = self.server
        # /api/datasets/OWNER/NAME/tree/REV[/FOLDER]
        parts = path.split("/", 7)
        repo, rev = f"{parts[3]}/{parts[4]}", parts[6]
        folder = parts[7].strip("/") if len(parts) > 7 else ""
        files = srv.repos.get((repo, rev))
        if files is None or parts[5] != "tree":
            self._send(404, b'{"error":"Repository not found"}')
            return
        recursive = query.get("recursive", ["false"])[0] == "true"
        entries: dict[str, dict] = {}
        prefix = folder + "/" if folder else ""
        for fpath, data in files.items():
            if not fpath.startswith(prefix):
                continue
            rest = fpath[len(prefix):]
            if "/" in rest and not recursive:
                d = prefix + rest.split("/", 1)[0]
                entries[d] = {"type": "directory", "oid": "0" * 40, "size": 0, "path": d}
                continue
            if recursive:  # folders on the way are listed too, as the hub does
                bits = rest.split("/")[:-1]
                for i in range(1, len(bits) + 1):
                    d = prefix + "/".join(bits[:i])
                    entries[d] = {"type": "directory", "oid": "0" * 40, "size": 0, "path": d}
            entry = {"type": "file", "oid": git_blob_id(data), "size": len(data), "path": fpath}
            if fpath not in srv.not_lfs:
                entry["oid"] = "1" * 40  # the pointer's id
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                "pointerSize": 130}
            entries[fpath] = entry
        if folder and not entries:
            self._send(404, b'{"error":"Entry not found"}')
            return
        listing = [entries[k] for k in sorted(entries, key=lambda k: (k.count("/"), k),
                                              reverse=True)]  # an order fetch must not rely on
        cursor = int(query.get("cursor", ["0"])[0])
        page = listing[cursor:cursor + srv.page_size]
        headers = {"Content-Type": "application/json"}
        if cursor + srv.page_size < len(listing):
            q = urllib.parse.urlencode({**({"recursive": "true"} if recursive else {}),
                                        "cursor": cursor + srv.page_size})
            headers["Link"] = f'<{srv.url}{urllib.parse.quote(path)}?{q}>; rel="next"'
        self._send(200, json.dumps(page).encode(), headers)
