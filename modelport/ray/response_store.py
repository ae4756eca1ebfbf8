"""``RayStore``: stored responses in one named, detached actor that every ingress replica shares.

Under ``--backend ray`` the ingress runs as several replicas, possibly on several nodes, and any
of them may answer the next turn of a conversation. They all reach one actor by its name, which
keeps the entries in a ``MemoryStore`` (or, given ``path``, a ``SqliteStore`` that outlives the
actor). The actor is detached, so it outlives the replicas that created it and a redeploy keeps
the conversations; it reserves no CPU.
"""

from __future__ import annotations

import math
from typing import Any

import ray

from modelport.server.endpoints.responses.store import MemoryStore, ResponseStore, SqliteStore, StoredResponse

__all__ = ["NAMESPACE", "RayStore", "StoreActor"]

# Detached actors are found by name within a namespace; Serve's replicas run in their own.
NAMESPACE = "modelport"


class StoreActor:
    """The actor's body: a local store, spoken to in JSON text.

    Args:
        max_entries: The most entries kept.
        max_bytes: The most bytes kept.
        ttl_s: Seconds an entry lives (``inf``: until evicted).
        path: A SQLite file to keep the entries in, so that they survive the actor.
    """

    def __init__(self, max_entries: int, max_bytes: int, ttl_s: float, path: str | None = None) -> None:
        if path:
            self._store: ResponseStore = SqliteStore(path, max_entries, max_bytes, ttl_s)
        else:
            self._store = MemoryStore(max_entries, max_bytes, ttl_s)

    def put(self, text: str) -> None:
        """Keeps the entry ``StoredResponse.to_json`` wrote."""
        self._store.put(StoredResponse.from_json(text))

    def get(self, response_id: str, owner: str) -> str | None:
        """The entry's JSON text, if ``owner`` has it."""
        entry = self._store.get(response_id, owner)
        return entry.to_json() if entry is not None else None

    def delete(self, response_id: str, owner: str) -> bool:
        """Removes ``owner``'s entry."""
        return self._store.delete(response_id, owner)


class RayStore(ResponseStore):
    """A client of the named store actor, created by the first replica that asks for it.

    Args:
        name: The actor's name (one per application).
        max_entries: The most entries kept (used by whichever replica creates the actor).
        max_bytes: The most bytes kept.
        ttl_s: Seconds an entry lives.
        path: A SQLite file the actor keeps its entries in.
    """

    def __init__(
        self,
        name: str,
        max_entries: int = 10_000,
        max_bytes: int = 256 * 1024 * 1024,
        ttl_s: float = math.inf,
        path: str | None = None,
    ) -> None:
        self.name = name
        actor: Any = ray.remote(StoreActor)
        self._actor = actor.options(
            name=name,
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            num_cpus=0,
            # Back after a crash; with a path it reopens its file, without one it starts empty.
            max_restarts=-1,
        ).remote(max_entries, max_bytes, ttl_s, path)

    def put(self, entry: StoredResponse) -> None:
        """Keeps ``entry`` in the actor."""
        ray.get(self._actor.put.remote(entry.to_json()))

    def get(self, response_id: str, owner: str) -> StoredResponse | None:
        """The entry, from the actor."""
        text = ray.get(self._actor.get.remote(response_id, owner))
        return StoredResponse.from_json(text) if text is not None else None

    def delete(self, response_id: str, owner: str) -> bool:
        """Removes ``owner``'s entry in the actor."""
        return bool(ray.get(self._actor.delete.remote(response_id, owner)))
