"""A front ``modelport serve`` routing one name over two back-end ``modelport serve`` processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.loopback import ServeProcess, free_port, serve_process

ADMIN = "admin-routing-3"
PERIOD_S = 1.0


def front_config(tmp_path: Path, ports: tuple[int, int]) -> Path:
    entries = "".join(
        f"  - name: smol\n    kind: openai\n    id: back-{n}\n"
        f"    params: {{model: smollm2-135m, base_url: 'http://127.0.0.1:{port}/v1', api_key: x, max_retries: 0}}\n"
        for n, port in zip("ab", ports, strict=True)
    )
    config = tmp_path / "front.yaml"
    config.write_text(
        f"models:\n{entries}"
        f"router: {{health_check_period_s: {PERIOD_S}, health_check_timeout_s: 1, allowed_fails: 1, cooldown_s: 30}}\n"
    )
    return config


def states(front: ServeProcess) -> dict[str, str]:
    data = httpx.get(f"{front.base}/admin/models", headers={"Authorization": f"Bearer {ADMIN}"}).json()["data"]
    return {r["id"]: r["state"] for m in data if m["name"] == "smol" for r in m["replicas"]}


def stream_once(base: str) -> tuple[bool, bool]:
    """(whether text had arrived, whether the answer completed)."""
    body = {
        "model": "smol",
        "messages": [{"role": "user", "content": "Count from one to ten."}],
        "max_tokens": 24,
        "stream": True,
    }
    started = done = False
    try:
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=60) as response:
            if response.status_code != 200:
                return False, False
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    done = done or started
                    continue
                event = json.loads(line.removeprefix("data: "))
                if "error" in event:
                    return started, False
                if event["choices"] and event["choices"][0]["delta"].get("content"):
                    started = True
    except httpx.HTTPError:
        return started, False
    return started, done


def served_by(back: ServeProcess) -> float:
    text = httpx.get(f"{back.base}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("modelport_request_success_total")
    )


def test_a_killed_back_end_fails_no_unstarted_request_and_comes_back(tmp_path: Path) -> None:
    port_a = free_port()
    with serve_process(port=port_a) as back_a, serve_process() as back_b:
        config = front_config(tmp_path, (port_a, int(back_b.base.rsplit(":", 1)[1])))
        with serve_process("--config", str(config), "--admin-key", ADMIN) as front:
            # Loads the model on both back ends. Least-busy breaks ties at random, so sequential
            # requests may all go to one of them for a while (1 in 8 for four requests).
            for _ in range(20):
                assert stream_once(front.base) == (True, True)
                if served_by(back_a) > 0 and served_by(back_b) > 0:
                    break
            assert served_by(back_a) > 0 and served_by(back_b) > 0

            outcomes: list[tuple[bool, bool]] = []
            stop = threading.Event()

            def client() -> None:
                while not stop.is_set():
                    outcomes.append(stream_once(front.base))

            clients = [threading.Thread(target=client) for _ in range(8)]
            for thread in clients:
                thread.start()
            time.sleep(2)
            back_a.proc.kill()
            killed = time.monotonic()
            while states(front)["back-a"] != "unhealthy":
                # The next probe finds it: a closed port refuses at once, well inside the timeout.
                assert time.monotonic() - killed < PERIOD_S + 0.75, states(front)
                time.sleep(0.05)
            gauge = 'modelport_replica_state{model_name="smol",replica="back-a",state="unhealthy"} 1.0'
            assert gauge in httpx.get(f"{front.base}/metrics").text
            time.sleep(2)
            stop.set()
            for thread in clients:
                thread.join()
            unstarted_failures = [o for o in outcomes if not o[0] and not o[1]]
            assert len(outcomes) > 8 and not unstarted_failures, outcomes

            with serve_process(port=port_a) as back_a_again:
                deadline = time.monotonic() + 30
                while states(front)["back-a"] != "ready":
                    assert time.monotonic() < deadline, states(front)
                    time.sleep(0.1)
                # Ties break at random, so eight requests all went to back-b once in 256 runs:
                # send until back-a has served one (30 in a row elsewhere is one in 10**9).
                for _ in range(30):
                    assert stream_once(front.base) == (True, True)
                    if served_by(back_a_again) > 0:
                        break
                assert served_by(back_a_again) > 0, front.output[-3000:]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_replace_a_local_model_under_load_frees_its_memory() -> None:
    with serve_process("--admin-key", ADMIN) as server:
        body: dict[str, Any] = {
            "model": "smollm2-135m",
            "messages": [{"role": "user", "content": "Name the capital of France."}],
            "max_tokens": 8,
        }
        assert httpx.post(f"{server.base}/v1/chat/completions", json=body, timeout=60).status_code == 200
        loaded = rss_mib(server.proc.pid)
        statuses: list[int] = []
        stop = threading.Event()

        def client() -> None:
            while not stop.is_set():
                statuses.append(httpx.post(f"{server.base}/v1/chat/completions", json=body, timeout=60).status_code)

        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        time.sleep(1)
        new = {"models": [{"name": "smollm2-135m", "kind": "fake", "id": "v2", "params": {"delay": 0.01}}]}
        headers = {"Authorization": f"Bearer {ADMIN}"}
        replaced = httpx.post(f"{server.base}/admin/models/smollm2-135m/replace", json=new, headers=headers)
        assert replaced.status_code == 202
        deadline = time.monotonic() + 60
        while True:
            data = httpx.get(f"{server.base}/admin/models", headers=headers).json()["data"]
            replicas = next(m["replicas"] for m in data if m["name"] == "smollm2-135m")
            if [r["id"] for r in replicas] == ["v2"]:
                break
            assert time.monotonic() < deadline, replicas
            time.sleep(0.1)
        time.sleep(1)
        stop.set()
        for thread in clients:
            thread.join()
        assert statuses and set(statuses) == {200}, [s for s in statuses if s != 200][:5]
        listed = subprocess.run(
            [sys.executable, "-m", "modelport.cli", "models", "--url", server.base, "--admin-key", ADMIN],
            capture_output=True,
            text=True,
            timeout=60,
        )
        row = next(line.split() for line in listed.stdout.splitlines() if line.startswith("smollm2-135m "))
        assert row[:4] == ["smollm2-135m", "v2", "fake", "ready"], listed.stdout
        answer = httpx.post(f"{server.base}/v1/chat/completions", json=body, timeout=60).json()
        assert answer["choices"][0]["message"]["content"] == "Name the capital of France."  # the fake echoes
        # The llama.cpp model and its KV cache are gone from the process.
        assert rss_mib(server.proc.pid) < loaded - 200, (loaded, rss_mib(server.proc.pid))
