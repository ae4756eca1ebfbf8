"""The Ray backend against itself and against plain ``modelport serve``, side by side in one run.

One local Ray cluster (2 CPUs, no dashboard, usage statistics off) serves one application:

- Scaling: the ``fake`` kind with a fixed delay per event (I/O-bound, one request at a time per
  replica) as ``io1`` (1 replica) and ``io2`` (2 replicas); many clients, interleaved rounds;
  requests/s at 2 replicas against 1 (target: >= 1.8x).
- Overhead: the built-in GGUF (SmolLM2 through llama.cpp) as a Ray deployment and in a plain
  ``modelport serve`` on loopback with the same entry; one stream at a time, alternating between
  the two; tokens/s after the first token (target: Ray >= 0.9x) and time to first token (target:
  Ray adds <= 30 ms).

    python benchmarks/bench_ray.py [--rounds 7] [--seconds 5] [--clients 8] [--delay 0.05] [--tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from modelport.workers.model_registry import BUILTIN_MODELS

PROMPT = "Write a long story about a lighthouse keeper and a storm."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def smollm2() -> dict[str, Any]:
    entry = next(e for e in BUILTIN_MODELS if e.name == "smollm2-135m")
    return {"name": "smollm2-135m", "kind": entry.kind, "params": dict(entry.params)}


def config(delay: float) -> dict[str, Any]:
    io = {"kind": "fake", "params": {"responses": ["ok"], "delay": delay}}
    one_at_a_time = {"max_ongoing_requests": 1, "max_queued_requests": -1, "ray_actor_options": {"num_cpus": 0}}
    return {
        "models": [
            {"name": "io1", **io, "ray": {**one_at_a_time, "num_replicas": 1}},
            {"name": "io2", **io, "ray": {**one_at_a_time, "num_replicas": 2}},
            smollm2(),
        ],
        "ray": {
            "ingress": {"ray_actor_options": {"num_cpus": 0}},
            "deployment_defaults": {"ray_actor_options": {"num_cpus": 0}},
        },
    }


def start_plain(port: int) -> subprocess.Popen[bytes]:
    folder = Path(tempfile.mkdtemp(prefix="modelport-bench-ray-"))
    (folder / "plain.yaml").write_text(yaml.safe_dump({"models": [smollm2()]}))
    command = [sys.executable, "-m", "modelport.cli", "serve", "--config", str(folder / "plain.yaml")]
    command += ["--port", str(port), "--log-level", "warning", "--preload"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("modelport serve did not start")
        time.sleep(0.3)


async def throughput(client: httpx.AsyncClient, model: str, clients: int, seconds: float) -> float:
    done = 0
    deadline = time.monotonic() + seconds
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}

    async def one() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            (await client.post("/v1/chat/completions", json=body)).raise_for_status()
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(clients)))
    return done / (time.monotonic() - started)


@dataclass
class Stream:
    ttft: float
    rate: float  # completion tokens per second after the first one
    tokens: int


async def stream(client: httpx.AsyncClient, base: str, tokens: int) -> Stream:
    body = {
        "model": "smollm2-135m",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first = last = None
    used = 0
    async with client.stream("POST", f"{base}/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            assert "error" not in chunk, chunk
            if any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or ()):
                last = time.perf_counter()
                first = first or last
            if chunk.get("usage"):
                used = chunk["usage"]["completion_tokens"]
    assert first is not None and last is not None and used > 1
    return Stream(first - started, (used - 1) / (last - first), used)


def summary(values: list[float], scale: float = 1.0, digits: int = 1) -> dict[str, float]:
    return {"median": round(statistics.median(values) * scale, digits), "best": round(max(values) * scale, digits)}


async def measure(ray_url: str, plain_url: str, args: argparse.Namespace) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.clients + 8, max_keepalive_connections=args.clients + 8)
    rates: dict[str, list[float]] = {"io1": [], "io2": []}
    async with httpx.AsyncClient(base_url=ray_url, timeout=300, limits=limits) as client:
        for model in ("io1", "io2") if args.scaling else ():
            await throughput(client, model, args.clients, 1.0)  # warm-up
        for r in range(args.rounds if args.scaling else 0):
            for model in ("io1", "io2") if r % 2 == 0 else ("io2", "io1"):
                rates[model].append(await throughput(client, model, args.clients, args.seconds))
        streams: dict[str, list[Stream]] = {"ray": [], "plain": []}
        bases = {"ray": ray_url, "plain": plain_url}
        for name in bases:
            await stream(client, bases[name], 16)  # warm-up
        for r in range(args.rounds):
            for name in ("ray", "plain") if r % 2 == 0 else ("plain", "ray"):
                streams[name].append(await stream(client, bases[name], args.tokens))
    out: dict[str, Any] = {}
    if args.scaling:
        out["requests_per_s"] = {m: summary(v) for m, v in rates.items()}
        out["scaling_1_to_2"] = {
            "median": round(statistics.median(rates["io2"]) / statistics.median(rates["io1"]), 2),
            "best": round(max(rates["io2"]) / max(rates["io1"]), 2),
        }
    tps = {n: [s.rate for s in v] for n, v in streams.items()}
    ttft = {n: [s.ttft for s in v] for n, v in streams.items()}
    out["tokens_per_s"] = {n: summary(v) for n, v in tps.items()}
    out["ttft_ms"] = {
        n: {"median": round(statistics.median(v) * 1000, 1), "best": round(min(v) * 1000, 1)} for n, v in ttft.items()
    }
    out["tokens"] = {n: sorted({s.tokens for s in v}) for n, v in streams.items()}
    out["ray_over_plain_tokens_per_s"] = {
        "median": round(statistics.median(tps["ray"]) / statistics.median(tps["plain"]), 3),
        "best": round(max(tps["ray"]) / max(tps["plain"]), 3),
    }
    out["ray_added_ttft_ms"] = {
        "median": round((statistics.median(ttft["ray"]) - statistics.median(ttft["plain"])) * 1000, 1),
        "best": round((min(ttft["ray"]) - min(ttft["plain"])) * 1000, 1),
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds before each fake event (2 per request)")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--no-scaling", dest="scaling", action="store_false", help="only the GGUF streams")
    args = parser.parse_args()

    import ray
    from ray import serve

    from modelport.ray import build_app
    from modelport.ray.cluster import connect

    connect(num_cpus=2, _node_ip_address="127.0.0.1", log_to_driver=False)
    ray_port, plain_port = free_port(), free_port()
    plain = start_plain(plain_port)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": ray_port})
        serve.run(build_app(config(args.delay)), name="modelport", route_prefix="/")
        result = asyncio.run(measure(f"http://127.0.0.1:{ray_port}", f"http://127.0.0.1:{plain_port}", args))
    finally:
        plain.terminate()
        plain.wait(30)
        serve.shutdown()
        ray.shutdown()
    result["settings"] = vars(args)
    print(json.dumps(result, indent=2))
    ok = (
        (not args.scaling or result["scaling_1_to_2"]["median"] >= 1.8)
        and result["ray_over_plain_tokens_per_s"]["median"] >= 0.9
        and result["ray_added_ttft_ms"]["median"] <= 30
    )
    print("targets (medians): scaling >= 1.8x, tokens/s >= 0.9x, TTFT <= +30 ms:", "met" if ok else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
