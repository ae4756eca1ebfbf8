"""Routing: how requests/s scale with replicas, and what one replica behind the router costs.

A real ``modelport serve`` on loopback serves the ``fake`` kind with a fixed delay per event
(I/O-bound, like a remote model) and one request at a time per replica, as:
``direct`` (a plain model), ``r1``, ``r2`` and ``r4`` (replica sets of 1, 2 and 4 replicas).

- Scaling: many concurrent clients against ``r1``, ``r2`` and ``r4`` in interleaved rounds;
  requests/s at 2 and 4 replicas against 1 (targets: >= 1.8x and >= 3.4x).
- Overhead: one client, alternating ``direct`` and ``r1``; the difference of median latencies
  (target: <= 2 ms).

    python benchmarks/bench_router.py [--rounds 5] [--seconds 4] [--clients 32] [--delay 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BODY = {"messages": [{"role": "user", "content": "hi"}]}


def config(delay: float) -> str:
    member = f"kind: fake\n    params: {{delay: {delay}}}\n    limits: {{max_concurrency: 1, max_queue: 1000}}\n"
    lines = ["models:", f"  - name: direct\n    {member}"]
    for n in (1, 2, 4):
        lines += [f"  - name: r{n}\n    replicas: {n}\n    {member}"]
    lines += ["router: {per_model: {r1: least_busy}}"]  # routing of its own: one replica, still a set
    return "\n".join(lines) + "\n"


def start(delay: float, port: int) -> subprocess.Popen[str]:
    folder = Path(tempfile.mkdtemp(prefix="modelport-router-"))
    (folder / "router.yaml").write_text(config(delay))
    command = [sys.executable, "-m", "modelport.cli", "serve", "--config", str(folder / "router.yaml")]
    command += ["--port", str(port), "--log-level", "warning", "--max-queue", "1000"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("modelport serve did not start")
        time.sleep(0.2)


async def throughput(client: httpx.AsyncClient, model: str, clients: int, seconds: float) -> float:
    done = 0
    deadline = time.monotonic() + seconds

    async def one() -> None:
        nonlocal done
        while time.monotonic() < deadline:
            response = await client.post("/v1/chat/completions", json={**BODY, "model": model})
            response.raise_for_status()
            done += 1

    started = time.monotonic()
    await asyncio.gather(*(one() for _ in range(clients)))
    return done / (time.monotonic() - started)


async def latencies(client: httpx.AsyncClient, models: list[str], n: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {m: [] for m in models}
    for _ in range(n):
        for model in models:  # alternated, so drift hits both alike
            started = time.perf_counter()
            (await client.post("/v1/chat/completions", json={**BODY, "model": model})).raise_for_status()
            out[model].append(time.perf_counter() - started)
    return out


async def measure(base: str, rounds: int, seconds: float, clients: int) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients + 8)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        for model in ("direct", "r1", "r2", "r4"):  # warm-up: load every replica
            await latencies(client, [model], 3)
        rates: dict[str, list[float]] = {"r1": [], "r2": [], "r4": []}
        for _ in range(rounds):
            for model in rates:
                rates[model].append(await throughput(client, model, clients, seconds))
        lat = await latencies(client, ["direct", "r1"], 200)
    best = {m: max(v) for m, v in rates.items()}
    median = {m: statistics.median(v) for m, v in rates.items()}
    direct, routed = statistics.median(lat["direct"]), statistics.median(lat["r1"])
    return {
        "requests_per_s_best": {m: round(v, 1) for m, v in best.items()},
        "requests_per_s_median": {m: round(v, 1) for m, v in median.items()},
        "scaling_2_best": round(best["r2"] / best["r1"], 2),
        "scaling_4_best": round(best["r4"] / best["r1"], 2),
        "scaling_2_median": round(median["r2"] / median["r1"], 2),
        "scaling_4_median": round(median["r4"] / median["r1"], 2),
        "latency_direct_median_ms": round(direct * 1000, 2),
        "latency_router_median_ms": round(routed * 1000, 2),
        "router_overhead_ms": round((routed - direct) * 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per event of the fake model")
    parser.add_argument("--port", type=int, default=8797)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    proc = start(args.delay, args.port)
    try:
        figures = asyncio.run(measure(f"http://127.0.0.1:{args.port}", args.rounds, args.seconds, args.clients))
    finally:
        proc.terminate()
        proc.wait(30)
    for key, value in figures.items():
        print(f"{key:28} {value}")
    ok = figures["scaling_2_best"] >= 1.8 and figures["scaling_4_best"] >= 3.4 and figures["router_overhead_ms"] <= 2
    print("targets met" if ok else "targets MISSED")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
