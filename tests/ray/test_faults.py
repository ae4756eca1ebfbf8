"""Replicas that die and deployments that change, under load, on one local cluster.

Four clients stream throughout each test; every request ends up counted as served, cut mid-way
(which must end with an error event, then ``[DONE]``) or refused (which must not happen).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.ray.conftest import NO_CPU, Cluster, builtin, local_cluster

TEXT = "tick " * 40  # 50 deltas of 4 characters, 0.03 s apart: a stream of about 1.5 s


def config(*, reply: str = TEXT, n_ctx: int = 1024) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": "slow",
                "kind": "fake",
                "params": {"responses": [reply], "delay": 0.03},
                "replicas": 2,
                "ray": {"max_ongoing_requests": 8},
            },
            builtin("smollm2-135m", n_ctx=n_ctx, n_parallel=2),
        ],
        "ray": {"ingress": NO_CPU, "deployment_defaults": NO_CPU},
    }


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    from ray import serve

    from modelport.ray import build_app

    with local_cluster() as running:
        serve.run(build_app(config()), name="modelport", route_prefix="/")
        yield running


def stream_once(url: str, model: str, max_tokens: int | None = None) -> tuple[str, str]:
    """One streamed request: ("served" | "cut" | "refused", the text it got)."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "go"}], "stream": True}
    if max_tokens is not None:
        body |= {"max_tokens": max_tokens, "temperature": 0}
    text, error, done = "", None, False
    try:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=60) as response:
            if response.status_code != 200:
                return "refused", f"{response.status_code} {response.read().decode()[:200]}"
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[len("data: ") :]
                if data == "[DONE]":
                    done = True
                    continue
                chunk = json.loads(data)
                if "error" in chunk:
                    error = chunk["error"]["message"]
                elif chunk["choices"]:
                    text += chunk["choices"][0]["delta"].get("content") or ""
    except httpx.HTTPError as failure:
        return ("cut" if text else "refused"), f"transport: {failure!r}"
    if error is not None:
        assert done, "an error event must be followed by [DONE]"
        return ("cut" if text else "refused"), error
    return ("served" if done else "cut"), text


class Load:
    """``clients`` threads sending ``send()`` in a loop until stopped; counts the outcomes.

    ``texts`` holds each served answer with the time its request was sent.
    """

    def __init__(self, send: Callable[[], tuple[str, str]], clients: int = 4) -> None:
        self.outcomes: Counter[str] = Counter()
        self.texts: list[tuple[float, str]] = []
        self.problems: list[str] = []
        self._send = send
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        while not self._stop.is_set():
            sent = time.monotonic()
            outcome, text = self._send()
            self.outcomes[outcome] += 1
            if outcome == "served":
                self.texts.append((sent, text))
            else:
                self.problems.append(f"{outcome}: {text}")

    def wait_for(self, served: int, timeout: float = 60) -> None:
        """Blocks until ``served`` more answers have come back (the clients are in full swing)."""
        target = self.outcomes["served"] + served
        deadline = time.monotonic() + timeout
        while self.outcomes["served"] < target:
            assert time.monotonic() < deadline, f"the load did not get going: {dict(self.outcomes)}"
            time.sleep(0.05)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(90)


def replica_actors(deployment: str) -> list[str]:
    import ray

    return sorted(
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["name"].startswith(f"SERVE_REPLICA::modelport#{deployment}#")
    )


def wait_healthy(deployment: str, replicas: int, timeout: float = 90) -> list[str]:
    from ray import serve

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = serve.status().applications["modelport"].deployments[deployment]
        names = replica_actors(deployment)
        if status.status == "HEALTHY" and len(names) == replicas:
            return names
        time.sleep(0.5)
    raise AssertionError(f"{deployment} did not come back to {replicas} healthy replicas")


def test_a_killed_replica_is_restarted_and_only_its_running_streams_are_cut(cluster: Cluster) -> None:
    import ray

    before = wait_healthy("slow", 2)
    with Load(lambda: stream_once(cluster.url, "slow")) as load:
        # Every client on its second stream or later: all four streaming, on both replicas.
        load.wait_for(4)
        time.sleep(0.5)
        ray.kill(ray.get_actor(before[0], namespace="serve"), no_restart=True)
        load.wait_for(8)
    after = wait_healthy("slow", 2)
    print(f"\nreplica killed under 4 streaming clients: {dict(load.outcomes)}")
    assert before[0] not in after, "Serve should have started a new replica in place of the killed one"
    assert load.outcomes["refused"] == 0, load.problems
    assert load.outcomes["cut"] >= 1, "the killed replica was serving streams; they end with an error event"
    assert load.outcomes["served"] >= 8
    assert all(text == TEXT for _, text in load.texts)


def test_a_rolling_replace_refuses_nothing(cluster: Cluster) -> None:
    from ray import serve

    from modelport.ray import build_app

    before = wait_healthy("smollm2-135m", 1)
    handle = serve.get_deployment_handle("smollm2-135m", app_name="modelport")
    assert handle.describe.remote().result()["capabilities"].max_context == 1024
    with Load(lambda: stream_once(cluster.url, "smollm2-135m", max_tokens=8)) as load:
        load.wait_for(4)
        serve.run(build_app(config(n_ctx=2048)), name="modelport", route_prefix="/")  # blocks until rolled
        load.wait_for(4)
    print(f"\nrolling replace under 4 clients: {dict(load.outcomes)}")
    assert load.outcomes["refused"] == 0 and load.outcomes["cut"] == 0, load.problems
    assert load.outcomes["served"] >= 4
    assert replica_actors("smollm2-135m") != before
    assert handle.describe.remote().result()["capabilities"].max_context == 2048


def test_parameters_that_need_no_reload_change_in_place(cluster: Cluster) -> None:
    from ray import serve

    from modelport.ray import build_app

    before = wait_healthy("slow", 2)
    with Load(lambda: stream_once(cluster.url, "slow")) as load:
        load.wait_for(4)
        serve.run(build_app(config(reply="tock " * 40)), name="modelport", route_prefix="/")
        # Serve reconfigures the replicas once the application is updated; from then on, every
        # new request gets the new reply.
        wait_healthy("slow", 2)
        deadline = time.monotonic() + 60
        while [stream_once(cluster.url, "slow")[1] for _ in range(4)] != ["tock " * 40] * 4:
            assert time.monotonic() < deadline, "the new replies never arrived"
        reconfigured = time.monotonic()
        load.wait_for(8)
    print(f"\nin-place reconfigure under 4 clients: {dict(load.outcomes)}")
    assert load.outcomes["refused"] == 0 and load.outcomes["cut"] == 0, load.problems
    assert replica_actors("slow") == before, "user_config changes must not restart replicas"
    late = [text for sent, text in load.texts if sent > reconfigured]
    assert late and all(text == "tock " * 40 for text in late)
