"""Two Ray nodes on this machine: a head and a worker started with ``ray start`` on loopback.

The worker node advertises a custom resource; a model pinned to it through ``ray_actor_options``
answers through the ingress on the head. Ray advertises the host's own address even when told
127.0.0.1; between processes of one host, that traffic never leaves the machine either.
``ray stop`` at the end stops every Ray process on the machine, so this module must not run
beside another Ray user.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.loopback import free_port
from tests.ray.conftest import NO_CPU

RAY = str(Path(sys.executable).with_name("ray"))


def ray_start(*args: str) -> None:
    # Each node gets its own agent ports: two nodes on one host would otherwise share the defaults.
    ports = [
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
    ]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}  # RAY_AUTH_MODE=token: see conftest
    subprocess.run([RAY, "start", "--node-ip-address=127.0.0.1", *ports, *args], check=True, env=env, timeout=120)


@dataclass(frozen=True)
class Head:
    url: str  # Serve's proxy on the head
    address: str  # the cluster's GCS address


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """The two nodes, without Serve; yields the cluster's address."""
    import ray
    from ray import serve

    address = f"127.0.0.1:{free_port()}"
    try:
        ray_start("--head", f"--port={address.split(':')[1]}", "--num-cpus=1", "--include-dashboard=false")
        ray_start(f"--address={address}", "--num-cpus=1", '--resources={"edge": 1}')
        ray.init(address=address, log_to_driver=False)
        yield address
    finally:
        if ray.is_initialized():
            serve.shutdown()
            ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def head(cluster: str) -> Head:
    """Serve started on the cluster by its operator, with one proxy, on the head."""
    from ray import serve

    port = free_port()
    # One proxy, on the head: a second one on the same host would want the same port.
    serve.start(http_options={"host": "127.0.0.1", "port": port}, proxy_location="HeadOnly")
    return Head(f"http://127.0.0.1:{port}", cluster)


def _modelport_serve(config: dict[str, object], path: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    import yaml

    path.write_text(yaml.safe_dump(config))
    modelport = str(Path(sys.executable).with_name("modelport"))
    command = [modelport, "serve", "--backend", "ray", "--config", str(path), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def _first_answer(
    process: subprocess.Popen[str], url: str, body: dict[str, object], headers: dict[str, str], *, timeout_s: float
) -> httpx.Response:
    """Polls ``url`` until the application answers 200 (the process must stay up meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            response = httpx.post(url, json=body, headers=headers, timeout=30)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the application never answered"
        time.sleep(1)


def test_modelport_serve_joins_with_the_token_and_stops_the_serve_it_started(cluster: str, tmp_path: Path) -> None:
    # Runs first, before the head fixture starts Serve: here modelport starts it, so it stops it.
    import signal

    config = {
        "models": [{"name": "joined", "kind": "fake"}],
        "ray": {"app_name": "joined", "ingress": NO_CPU, "deployment_defaults": NO_CPU},
    }
    # What a user's shell has: a token in ~/.ray/auth_token (ray start wrote it), no RAY_AUTH_MODE.
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    wrong = _modelport_serve(
        config, tmp_path / "a.yaml", "--ray-address", cluster, env={**env, "RAY_AUTH_TOKEN": "0" * 32}
    )
    out, _ = wrong.communicate(timeout=180)
    assert wrong.returncode == 1, out
    assert "ray get-auth-token" in out and "Traceback" not in out, out

    port = free_port()
    process = _modelport_serve(config, tmp_path / "b.yaml", "--ray-address", cluster, "--port", str(port), env=env)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    body = {"model": "joined", "messages": [{"role": "user", "content": "joined with the token"}]}
    try:
        response = _first_answer(process, url, body, {}, timeout_s=150)
        assert response.json()["choices"][0]["message"]["content"] == "joined with the token"
        process.send_signal(signal.SIGTERM)
        assert process.wait(120) == 0
        # Serve's proxy went with it: nothing holds the port any more.
        with pytest.raises(httpx.ConnectError):
            httpx.post(url, json=body, timeout=10)
    finally:
        if process.poll() is None:
            process.kill()


def test_a_model_pinned_to_the_worker_node_answers_through_the_head(head: Head) -> None:
    import ray
    from ray import serve

    from modelport.ray import build_app

    config = {
        "models": [
            {
                "name": "edge-model",
                "kind": "fake",
                "ray": {"ray_actor_options": {"num_cpus": 0, "resources": {"edge": 1}}},
            },
            {"name": "head-model", "kind": "fake", "ray": NO_CPU},
        ],
        "ray": {"ingress": NO_CPU},
    }
    serve.run(build_app(config), name="modelport", route_prefix="/")
    nodes = {n["NodeID"]: n for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2
    edge_node = next(i for i, n in nodes.items() if "edge" in n["Resources"])
    where = serve.get_deployment_handle("edge-model", app_name="modelport").describe.remote().result()
    assert where["node_id"] == edge_node
    body = {"model": "edge-model", "messages": [{"role": "user", "content": "hello from the edge"}]}
    response = httpx.post(f"{head.url}/v1/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "hello from the edge"
    print(f"\nedge-model runs on node {edge_node[:8]} (the worker), answered through the head's proxy")


def test_a_serve_config_file_deploys_through_build_app(head: Head, tmp_path: Path) -> None:
    # What a Ray user writes: a Serve config whose application is modelport.ray:build_app, with
    # modelport's config as its args, deployed by Ray's own CLI into the running cluster.
    import yaml

    serve_config = {
        "applications": [
            {
                "name": "from-file",
                "route_prefix": "/from-file",
                "import_path": "modelport.ray:build_app",
                "args": {
                    "models": [{"name": "filed", "kind": "fake", "params": {"responses": ["deployed by serve run"]}}],
                    "ray": {"app_name": "from-file", "ingress": NO_CPU, "deployment_defaults": NO_CPU},
                },
            }
        ]
    }
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(serve_config))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(
        [RAY.replace("/ray", "/serve"), "run", str(path), f"--address={head.address}", "--non-blocking"],
        check=True,
        env=env,
        timeout=120,
        capture_output=True,
    )
    body = {"model": "filed", "messages": [{"role": "user", "content": "hi"}]}
    deadline = time.monotonic() + 90
    while True:
        response = httpx.post(f"{head.url}/from-file/v1/chat/completions", json=body, timeout=30)
        if response.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "deployed by serve run"


def test_modelport_serve_backend_ray_joins_the_cluster_and_leaves_on_sigterm(head: Head, tmp_path: Path) -> None:
    import signal

    import yaml

    config = {
        "models": [{"name": "cli-model", "kind": "fake"}],
        "server": {"api_keys": ["cli-key-3f0a"]},
        "ray": {"app_name": "cli", "route_prefix": "/cli", "ingress": NO_CPU, "deployment_defaults": NO_CPU},
    }
    path = tmp_path / "modelport.yaml"
    path.write_text(yaml.safe_dump(config))
    modelport = str(Path(sys.executable).with_name("modelport"))
    command = [modelport, "serve", "--backend", "ray", "--config", str(path), "--ray-address", head.address]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = {"model": "cli-model", "messages": [{"role": "user", "content": "via the cli"}]}
        headers = {"Authorization": "Bearer cli-key-3f0a"}
        response = _first_answer(process, f"{head.url}/cli/v1/chat/completions", body, headers, timeout_s=120)
        assert response.json()["choices"][0]["message"]["content"] == "via the cli"
        assert httpx.post(f"{head.url}/cli/v1/chat/completions", json=body, timeout=30).status_code == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(120) == 0
        # The application is gone; the cluster it joined runs on.
        assert httpx.post(f"{head.url}/cli/v1/chat/completions", json=body, timeout=30).status_code == 404
    finally:
        if process.poll() is None:
            process.kill()
