"""The answer cache: every request's answer, keyed by model + the full messages + the sampling
parameters, so a re-run, or a run killed at any moment and started again, sends no request whose
answer it had received.

- SQLite (default `$XDG_CACHE_HOME/cqia/llm.sqlite`, else `~/.cache/cqia/llm.sqlite`; `--cache
  PATH`): WAL journal, so several processes read and write one file at once; each answer is
  committed on its own as soon as it arrives (autocommit; in WAL mode a commit survives the
  process being killed, only a power cut may lose the last ones).
- Redis (`--cache redis://HOST:PORT/DB`): one string per answer under `cqia:llm:KEY`, for many
  machines scoring shards of one corpus.
- `--no-cache`: nothing kept.

Only answers the command could use are stored (a score that parses, a non-empty text), so a
second run asks again exactly for the records that failed.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time

import orjson

from cqia_cli import wal
from cqia_cli.llm.client import Answer
from cqia_cli.status import CqiaError, ExitStatus


def request_key(body: dict) -> str:
    """The cache key of one request body: sha256 of its canonical JSON (sorted keys), which holds
    the model, the messages and every sampling parameter."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def default_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cqia", "llm.sqlite")


class NoCache:
    name = "none"

    def get(self, key: str) -> Answer | None:
        return None

    def get_many(self, keys: list[str]) -> dict:
        return {}

    def put(self, key: str, request: bytes, answer: Answer) -> None:
        pass

    def close(self) -> None:
        pass


def _setup(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA synchronous=NORMAL")
    # the answers a lookup reads, apart from the request bodies they answer (kept for
    # inspection): a lookup then reads a small table (3 MB against 84 MB for 20,000 records of
    # the cqia rubric), a quarter less time per record
    db.execute(
        "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, content TEXT NOT NULL,"
        " prompt_tokens INTEGER, completion_tokens INTEGER, finish TEXT, model TEXT,"
        " created REAL)")
    db.execute("CREATE TABLE IF NOT EXISTS requests (key TEXT PRIMARY KEY, body BLOB)")


class SQLiteCache:
    def __init__(self, path: str):
        self.name = path
        directory = os.path.dirname(os.path.abspath(path))
        try:
            os.makedirs(directory, exist_ok=True)
            self.db = wal.connect(path, 60, _setup)
        except (sqlite3.Error, OSError) as e:
            raise CqiaError(f"cache {path}: cannot open: {e}", ExitStatus.IO) from None

    def get(self, key: str) -> Answer | None:
        try:
            row = self.db.execute(
                "SELECT content, prompt_tokens, completion_tokens, finish, model FROM answers "
                "WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as e:
            raise CqiaError(f"cache {self.name}: cannot read: {e}", ExitStatus.IO) from None
        return None if row is None else Answer(*row)

    def get_many(self, keys: list[str]) -> dict:
        """key -> Answer for the keys in the cache, in one query per 500 keys (a cached re-run
        spends its time here: one query per record costs twice as much)."""
        found = {}
        try:
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                for row in self.db.execute(
                        "SELECT key, content, prompt_tokens, completion_tokens, finish, model "
                        f"FROM answers WHERE key IN ({','.join('?' * len(chunk))})", chunk):
                    found[row[0]] = Answer(*row[1:])
        except sqlite3.Error as e:
            raise CqiaError(f"cache {self.name}: cannot read: {e}", ExitStatus.IO) from None
        return found

    def put(self, key: str, request: bytes, answer: Answer) -> None:
        try:
            # one transaction: the answer is there with its request, or neither is
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute(
                    "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key, answer.content, answer.prompt_tokens, answer.completion_tokens,
                     answer.finish, answer.model, time.time()))
                self.db.execute("INSERT OR REPLACE INTO requests VALUES (?, ?)", (key, request))
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            raise CqiaError(f"cache {self.name}: cannot write: {e}", ExitStatus.IO) from None

    def close(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass


class RedisCache:
    PREFIX = "cqia:llm:"

    def __init__(self, url: str, command: str):
        try:
            import redis
        except ImportError:
            raise CqiaError(f"--cache redis:// needs the optional redis package: "
                            f"pip install 'cqia[redis]'", ExitStatus.USAGE) from None
        self.name = url
        self._errors = (redis.RedisError, OSError)
        try:
            self.r = redis.Redis.from_url(url, socket_timeout=30)
            self.r.ping()
        except ValueError as e:
            raise CqiaError(f"--cache {url}: {e}", ExitStatus.USAGE) from None
        except self._errors as e:
            raise CqiaError(f"cache {url}: cannot connect: {e}", ExitStatus.IO) from None

    def get(self, key: str) -> Answer | None:
        try:
            raw = self.r.get(self.PREFIX + key)
        except self._errors as e:
            raise CqiaError(f"cache {self.name}: cannot read: {e}", ExitStatus.IO) from None
        if raw is None:
            return None
        return self._answer(raw)

    @staticmethod
    def _answer(raw: bytes) -> Answer:
        d = orjson.loads(raw)
        return Answer(d["content"], d.get("prompt_tokens", 0), d.get("completion_tokens", 0),
                      d.get("finish", ""), d.get("model", ""))

    def get_many(self, keys: list[str]) -> dict:
        if not keys:
            return {}
        try:
            values = self.r.mget([self.PREFIX + k for k in keys])
        except self._errors as e:
            raise CqiaError(f"cache {self.name}: cannot read: {e}", ExitStatus.IO) from None
        return {k: self._answer(v) for k, v in zip(keys, values) if v is not None}

    def put(self, key: str, request: bytes, answer: Answer) -> None:
        value = orjson.dumps({"content": answer.content, "prompt_tokens": answer.prompt_tokens,
                              "completion_tokens": answer.completion_tokens,
                              "finish": answer.finish, "model": answer.model})
        try:
            self.r.set(self.PREFIX + key, value)
        except self._errors as e:
            raise CqiaError(f"cache {self.name}: cannot write: {e}", ExitStatus.IO) from None

    def close(self) -> None:
        try:
            self.r.close()
        except Exception:  # noqa: BLE001
            pass


def open_cache(spec: str | None, *, enabled: bool = True, command: str = "score"):
    if not enabled:
        return NoCache()
    if spec and spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisCache(spec, command)
    return SQLiteCache(spec or default_path())
