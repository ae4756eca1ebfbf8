"""Local Ray clusters for the tests: one per module, on loopback, without the dashboard."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Token authentication everywhere: ``ray start --head`` turns it on, and a driver or node that
# joins must use it too. Ray reads the mode once, on import, so it is set before that.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
pytest.importorskip("ray.serve", reason="the ray extra is not installed")

from modelport.ray.cluster import connect
from modelport.workers.model_registry import BUILTIN_MODELS
from tests.loopback import free_port

ROOT = Path(__file__).resolve().parents[2]
# Two cores: replicas reserve no CPU, or the ingress and two models would not fit.
NO_CPU = {"ray_actor_options": {"num_cpus": 0}}


@dataclass(frozen=True)
class Cluster:
    """A running local cluster with Serve's HTTP proxy on ``url``."""

    url: str
    port: int


@contextmanager
def local_cluster(**init: Any) -> Iterator[Cluster]:
    """Starts Ray (2 CPUs, loopback, no dashboard) and Serve; shuts both down afterwards."""
    import ray
    from ray import serve

    # Chain factories in configs ("examples.rag:build_chain") import from the repository root.
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    runtime_env = {"env_vars": {"PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}}
    connect(num_cpus=2, _node_ip_address="127.0.0.1", log_to_driver=False, runtime_env=runtime_env, **init)
    port = free_port()
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield Cluster(f"http://127.0.0.1:{port}", port)
    finally:
        serve.shutdown()
        ray.shutdown()


def builtin(name: str, **overrides: Any) -> dict[str, Any]:
    """A built-in model as a config entry (the Ray backend deploys only what the file lists)."""
    entry = next(e for e in BUILTIN_MODELS if e.name == name)
    return {"name": name, "kind": entry.kind, "params": {**entry.params, **overrides}}
