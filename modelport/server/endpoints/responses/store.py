"""Stored responses: bounded by count, bytes and age, least recently used out first.

A stored response keeps what ``previous_response_id`` needs to continue the conversation (every
item so far: earlier input, output, tool calls and their outputs), its own input items for
``GET .../input_items``, and the key that created it: any other key is told it does not exist.

``MemoryStore`` serves one process; ``SqliteStore`` survives restarts and is shared by the
processes of one machine. Under Ray, ``modelport.ray`` provides a store in a named actor.
"""

from __future__ import annotations

import collections
import json
import math
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["MemoryStore", "ResponseStore", "SqliteStore", "StoredResponse"]


@dataclass(frozen=True)
class StoredResponse:
    """One stored response.

    Attributes:
        id: The response id (``resp_...``).
        owner: The name of the key that created it (``""`` on an open server).
        response: The response object, as it was returned.
        input_items: This request's input items, with their ids.
        history: Every item of the conversation up to and including this response's output.
    """

    id: str
    owner: str
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    history: list[dict[str, Any]]

    def to_json(self) -> str:
        """The entry as JSON text."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> StoredResponse:
        """An entry from ``to_json``'s text."""
        return cls(**json.loads(text))


class ResponseStore(ABC):
    """Where responses are kept for ``previous_response_id`` and the retrieval routes.

    Every method may block briefly (a file, a remote actor): the server calls them off its loop.
    """

    @abstractmethod
    def put(self, entry: StoredResponse) -> None:
        """Keeps ``entry``, evicting the least recently used past the bounds."""

    @abstractmethod
    def get(self, response_id: str, owner: str) -> StoredResponse | None:
        """The entry, if it exists, has not expired and belongs to ``owner``."""

    @abstractmethod
    def delete(self, response_id: str, owner: str) -> bool:
        """Removes the entry; whether ``owner`` had one by that id."""

    def close(self) -> None:  # noqa: B027 - optional: most stores hold nothing open
        """Releases what the store holds open."""


class MemoryStore(ResponseStore):
    """Entries in this process's memory.

    Args:
        max_entries: The most entries kept.
        max_bytes: The most bytes kept, counted as each entry's JSON.
        ttl_s: Seconds an entry lives after it was stored (``inf``: until evicted).
        clock: Seconds, monotonic; tests pass their own.
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        max_bytes: int = 256 * 1024 * 1024,
        ttl_s: float = math.inf,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries, self.max_bytes, self.ttl_s = max_entries, max_bytes, ttl_s
        self._clock = clock
        self._entries: collections.OrderedDict[str, tuple[str, int, float]] = collections.OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def size(self) -> tuple[int, int]:
        """Entries and bytes held."""
        return len(self._entries), self._bytes

    def _drop(self, response_id: str) -> None:
        _, size, _ = self._entries.pop(response_id)
        self._bytes -= size

    def put(self, entry: StoredResponse) -> None:
        """Keeps ``entry``; one larger than ``max_bytes`` alone is not kept."""
        text = entry.to_json()
        size = len(text.encode())
        with self._lock:
            if entry.id in self._entries:
                self._drop(entry.id)
            if size > self.max_bytes:
                return
            self._entries[entry.id] = (text, size, self._clock() + self.ttl_s)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def get(self, response_id: str, owner: str) -> StoredResponse | None:
        """The entry, refreshed as recently used; expired ones go."""
        with self._lock:
            found = self._entries.get(response_id)
            if found is not None and found[2] <= self._clock():
                self._drop(response_id)
                return None
            entry = self._owned(response_id, owner)
            if entry is not None:
                self._entries.move_to_end(response_id)
            return entry

    def delete(self, response_id: str, owner: str) -> bool:
        """Removes ``owner``'s entry."""
        with self._lock:
            if self._owned(response_id, owner) is None:
                return False
            self._drop(response_id)
            return True

    def _owned(self, response_id: str, owner: str) -> StoredResponse | None:
        found = self._entries.get(response_id)
        if found is None or found[2] <= self._clock():
            return None
        entry = StoredResponse.from_json(found[0])
        return entry if entry.owner == owner else None


class SqliteStore(ResponseStore):
    """Entries in a SQLite file: they survive restarts, and processes of one machine share them.

    Args:
        path: The database file (created with its folder).
        max_entries: The most entries kept.
        max_bytes: The most bytes kept, counted as each entry's JSON.
        ttl_s: Seconds an entry lives after it was stored (``inf``: until evicted).
        clock: Seconds since the epoch (shared by processes); tests pass their own.
    """

    def __init__(
        self,
        path: str | Path,
        max_entries: int = 10_000,
        max_bytes: int = 256 * 1024 * 1024,
        ttl_s: float = math.inf,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_entries, self.max_bytes, self.ttl_s = max_entries, max_bytes, ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses (id TEXT PRIMARY KEY, owner TEXT NOT NULL, body TEXT NOT NULL,"
            " size INTEGER NOT NULL, expires REAL NOT NULL, used REAL NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS responses_used ON responses (used)")

    def put(self, entry: StoredResponse) -> None:
        """Keeps ``entry``, then evicts the expired and the least recently used past the bounds."""
        text = entry.to_json()
        size = len(text.encode())
        now = self._clock()
        expires = now + self.ttl_s if math.isfinite(self.ttl_s) else 1e300
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM responses WHERE id = ?", (entry.id,))
                if size <= self.max_bytes:
                    self._db.execute(
                        "INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                        (entry.id, entry.owner, text, size, expires, now),
                    )
                self._db.execute("DELETE FROM responses WHERE expires <= ?", (now,))
                count, total = self._db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM responses").fetchone()
                rows = self._db.execute("SELECT id, size FROM responses ORDER BY used").fetchall()
                for response_id, row_size in rows:
                    if count <= self.max_entries and total <= self.max_bytes:
                        break
                    self._db.execute("DELETE FROM responses WHERE id = ?", (response_id,))
                    count, total = count - 1, total - row_size
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def get(self, response_id: str, owner: str) -> StoredResponse | None:
        """The entry, marked as recently used."""
        now = self._clock()
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM responses WHERE id = ? AND owner = ? AND expires > ?", (response_id, owner, now)
            ).fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE responses SET used = ? WHERE id = ?", (now, response_id))
        return StoredResponse.from_json(row[0])

    def delete(self, response_id: str, owner: str) -> bool:
        """Removes ``owner``'s entry."""
        with self._lock:
            done = self._db.execute(
                "DELETE FROM responses WHERE id = ? AND owner = ? AND expires > ?", (response_id, owner, self._clock())
            )
        return done.rowcount > 0

    def close(self) -> None:
        """Closes the database."""
        with self._lock:
            self._db.close()
