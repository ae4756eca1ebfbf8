"""Per-model concurrency with a bounded queue, and cancellation when a client goes away."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelport.server import Limits, create_app
from modelport.workers import ModelRegistry
from modelport.workers.local.worker import LocalChatWorker
from tests.loopback import serve

STORY = [{"role": "user", "content": "Write a very long story about a lighthouse keeper."}]


@pytest.fixture
def tight_url(server_registry: ModelRegistry) -> Iterator[str]:
    app = create_app(server_registry, model_limits={"fake-slow": Limits(max_concurrency=1, max_queue=1)})
    with serve(app) as url:
        yield f"{url}/v1"


async def _read_all(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> None:
    async with client.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        async for _ in response.aiter_lines():
            pass


async def test_a_full_queue_answers_429_with_retry_after(tight_url: str) -> None:
    body = {"model": "fake-slow", "messages": STORY, "stream": True}
    async with httpx.AsyncClient(timeout=30) as client:
        running = asyncio.create_task(_read_all(client, f"{tight_url}/chat/completions", body))
        await asyncio.sleep(0.3)
        queued = asyncio.create_task(client.post(f"{tight_url}/chat/completions", json=body))
        await asyncio.sleep(0.3)
        refused = await client.post(f"{tight_url}/chat/completions", json=body)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert "busy" in refused.json()["error"]["message"]
        running.cancel()
        queued.cancel()
        # Another model is not affected by this one's queue.
        other = await client.post(f"{tight_url}/chat/completions", json={"model": "fake", "messages": STORY})
        assert other.status_code == 200


def _slot_free(worker: LocalChatWorker) -> bool:
    # The llama.cpp worker batches: its engine, not a lock, says whether a sequence still runs.
    stats = worker.engine.stats  # type: ignore[attr-defined]
    return bool(stats.running == 0 and stats.waiting == 0)


def test_twenty_cancelled_streams_free_every_slot(base_url: str, app: Any, server_registry: ModelRegistry) -> None:
    worker = server_registry.chat("smollm2-135m")
    assert isinstance(worker, LocalChatWorker)
    limiter = app.state.modelport.limiter
    body = {"model": "smollm2-135m", "messages": STORY, "stream": True, "max_tokens": 2000, "temperature": 0.8}
    stop_times = []
    with httpx.Client(timeout=60) as client:
        for _ in range(20):
            with client.stream("POST", f"{base_url}/chat/completions", json=body) as response:
                for line in response.iter_lines():
                    if '"content":"' in line and '"content":""' not in line:
                        break
            # Leaving the block closed the connection mid-answer.
            closed = time.monotonic()
            while not (_slot_free(worker) and limiter.in_use("smollm2-135m") == 0):
                assert time.monotonic() - closed < 1.0, "generation did not stop within 1 s of the disconnect"
                time.sleep(0.005)
            stop_times.append(time.monotonic() - closed)
        started = time.monotonic()
        with client.stream("POST", f"{base_url}/chat/completions", json={**body, "max_tokens": 8}) as response:
            first = next(json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {"))
            assert first["choices"][0]["delta"]["role"] == "assistant"
        assert time.monotonic() - started < 2.0, "the next request waited"
    assert max(stop_times) < 1.0


def test_a_whole_answer_stops_when_its_client_leaves(base_url: str, app: Any) -> None:
    limiter = app.state.modelport.limiter
    body = {"model": "fake-slow", "messages": STORY}  # about 20 s of scripted output
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{base_url}/chat/completions", json=body, timeout=0.5)
    while limiter.in_use("fake-slow"):
        assert time.monotonic() - started < 2.5, "the slot was not freed after the client left"
        time.sleep(0.02)
