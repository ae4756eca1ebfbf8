"""Liveness and readiness, and a model that fails to load: 503 naming it, never 400 or 500."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from modelport.server import create_app
from modelport.workers import ModelEntry, ModelRegistry


def test_readiness_waits_for_preloads_and_names_a_model_that_failed(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")  # exists, so the config check passes; loading fails
    registry = ModelRegistry(
        [ModelEntry("broken", "llama-cpp", {"model_path": str(broken)}), ModelEntry("echo", "fake")]
    )
    app = create_app(registry, preload=["echo", "broken"])
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/health/ready").json().get("loading") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/health").status_code == 200  # alive all along
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert "broken" in ready.json()["failed"] and "echo" not in ready.json()["failed"]
        body = {"model": "broken", "messages": [{"role": "user", "content": "hi"}]}
        answer = client.post("/v1/chat/completions", json=body)
        assert answer.status_code == 503
        error = answer.json()["error"]
        assert error["code"] == "model_unavailable" and "'broken'" in error["message"]
        echo = client.post("/v1/chat/completions", json={**body, "model": "echo"})
        assert echo.status_code == 200  # the other model serves on


def test_ready_once_every_preload_is_in() -> None:
    app = create_app(ModelRegistry([ModelEntry("echo", "fake")]), preload=["echo"])
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while client.get("/health/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert client.get("/health/ready").json() == {"status": "ready"}


def test_health(base_url: str) -> None:
    body = httpx.get(base_url.removesuffix("/v1") + "/health").json()
    assert body["status"] == "ok" and body["models"] >= 4


def test_a_preloaded_model_that_keep_alive_unloads_leaves_the_server_ready() -> None:
    from modelport.workers.residency import ResidencyPolicy

    registry = ModelRegistry([ModelEntry("echo", "fake"), ModelEntry("held", "fake", pin=True)])
    app = create_app(registry, preload=["echo", "held"], residency=ResidencyPolicy(keep_alive_s=0.2))
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while registry.residency.state("echo").value != "unloaded":  # preloaded, then idle, then gone
            assert time.monotonic() < deadline, registry.residency.describe("echo")
            time.sleep(0.05)
        assert registry.residency.describe("echo")["loads"] == 1
        assert client.get("/health/ready").status_code == 200
        assert registry.is_loaded("held")  # pinned: keep_alive does not apply
        assert client.get("/health").json()["loaded"] == ["held"]
        body = {"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
        assert client.post("/v1/chat/completions", json=body).status_code == 200  # loads again
        assert registry.residency.describe("echo")["loads"] == 2
