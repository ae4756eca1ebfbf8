"""The stored responses: bounds, expiry, per-key isolation, SQLite across restarts and processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from modelport.server.endpoints.responses.store import MemoryStore, ResponseStore, SqliteStore, StoredResponse


def entry(rid: str, owner: str = "alice", size: int = 10) -> StoredResponse:
    return StoredResponse(rid, owner, {"id": rid, "pad": "x" * size}, [], [{"type": "message", "role": "user"}])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stores(tmp_path: Path, clock: Clock, **bounds: Any) -> list[ResponseStore]:
    return [MemoryStore(clock=clock, **bounds), SqliteStore(tmp_path / "r.db", clock=clock, **bounds)]


@pytest.mark.parametrize("kind", [0, 1], ids=["memory", "sqlite"])
def test_the_least_recently_used_goes_first_past_the_count(tmp_path: Path, kind: int) -> None:
    clock = Clock()
    store = stores(tmp_path, clock, max_entries=2)[kind]
    store.put(entry("a"))
    clock.now += 1
    store.put(entry("b"))
    clock.now += 1
    assert store.get("a", "alice") is not None  # a is now the most recently used
    clock.now += 1
    store.put(entry("c"))
    assert store.get("b", "alice") is None
    assert store.get("a", "alice") is not None and store.get("c", "alice") is not None


@pytest.mark.parametrize("kind", [0, 1], ids=["memory", "sqlite"])
def test_bytes_bound_the_store(tmp_path: Path, kind: int) -> None:
    clock = Clock()
    one = len(entry("a", size=1000).to_json().encode())
    store = stores(tmp_path, clock, max_bytes=one * 2 + 10)[kind]
    for rid in "abc":
        clock.now += 1
        store.put(entry(rid, size=1000))
    assert [store.get(r, "alice") is not None for r in "abc"] == [False, True, True]
    store.put(entry("huge", size=one * 3))  # larger than the whole store: not kept
    assert store.get("huge", "alice") is None


@pytest.mark.parametrize("kind", [0, 1], ids=["memory", "sqlite"])
def test_entries_expire_after_their_ttl(tmp_path: Path, kind: int) -> None:
    clock = Clock()
    store = stores(tmp_path, clock, ttl_s=60)[kind]
    store.put(entry("a"))
    clock.now += 59
    assert store.get("a", "alice") is not None
    clock.now += 2
    assert store.get("a", "alice") is None


@pytest.mark.parametrize("kind", [0, 1], ids=["memory", "sqlite"])
def test_another_key_sees_nothing(tmp_path: Path, kind: int) -> None:
    store = stores(tmp_path, Clock())[kind]
    store.put(entry("a", owner="alice"))
    assert store.get("a", "bob") is None
    assert not store.delete("a", "bob")
    assert store.get("a", "alice") is not None
    assert store.delete("a", "alice") and store.get("a", "alice") is None


def test_a_sqlite_store_survives_a_restart(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "r.db")
    first.put(entry("kept"))
    first.close()
    again = SqliteStore(tmp_path / "r.db")
    found = again.get("kept", "alice")
    assert found is not None and found.history == [{"type": "message", "role": "user"}]


def test_two_servers_sharing_a_sqlite_store_continue_each_others_conversations(tmp_path: Path) -> None:
    import yaml

    from tests.loopback import serve_process

    config = tmp_path / "shared.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "models": [{"name": "echo", "kind": "fake"}],
                "server": {"responses": {"store": "sqlite", "path": str(tmp_path / "shared.db")}},
            }
        )
    )
    with serve_process("--config", str(config)) as one, serve_process("--config", str(config)) as two:
        made = httpx.post(f"{one.base}/v1/responses", json={"model": "echo", "input": "first turn"}, timeout=30)
        assert made.status_code == 200, made.text
        follow = {"model": "echo", "input": "second turn", "previous_response_id": made.json()["id"]}
        answered = httpx.post(f"{two.base}/v1/responses", json=follow, timeout=30)
        assert answered.status_code == 200, answered.text
        assert httpx.get(f"{two.base}/v1/responses/{made.json()['id']}", timeout=30).status_code == 200
