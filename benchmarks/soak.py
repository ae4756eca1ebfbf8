"""Soak: many concurrent clients against a real ``modelport serve`` on loopback, every request accounted for.

The server runs the built-in SmolLM2 (llama.cpp) and MiniLM with two keys: one without limits
for the load, one with a small requests-per-minute limit. Each client loops until the time is up
on a mix of streamed and whole chat, tool calls, embeddings, streams it drops part-way,
malformed bodies, and requests on the limited key. Every request must end as one of:

- a complete answer (a whole body with a finish reason, or a stream that ends with one and
  ``[DONE]``, tool-call arguments that parse, one vector per input);
- a 4xx in OpenAI's error shape (429 only with ``Retry-After``, which the client then honours,
  capped at 5 s, as the official SDKs do);
- a stream the client itself dropped.

Anything else (a 5xx, a connection error, an error event in a stream, a 429 without
``Retry-After``) is counted as unaccounted. After the load the server must go idle (running =
waiting = 0 on ``/metrics``) and its RSS must grow by at most 10% from the first window of the
run to the last.

    python benchmarks/soak.py [--duration 300] [--clients 100] [--window 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

LOAD_KEY, LIMITED_KEY = "sk-soak-load", "sk-soak-limited"
CHAT, EMBED = "smollm2-135m", "minilm-l6"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CONFIG = f"""
server:
  max_queue: 40
  keys:
    - {{name: load, key: {LOAD_KEY}}}
    - {{name: limited, key: {LIMITED_KEY}, rpm: 5}}
"""
# Scenario weights: most traffic is chat, as in a real deployment; a tenth is malformed.
MIX = {
    "chat": 24,
    "stream": 24,
    "tools": 10,
    "embed": 14,
    "drop": 10,
    "malformed": 10,
    "limited": 8,
}


@dataclass
class Tally:
    """What happened to every request, by scenario and outcome."""

    outcomes: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    unaccounted: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))

    def add(self, scenario: str, outcome: str, seconds: float, problem: str | None = None) -> None:
        self.outcomes[(scenario, outcome)] += 1
        if outcome == "ok":
            self.latencies[scenario].append(seconds)
        if problem is not None:
            self.unaccounted.append(f"{scenario}: {problem}"[:300])


def _error_shaped(response: httpx.Response) -> bool:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(error, dict) and {"message", "type", "param", "code"} <= set(error)


def _refusal(response: httpx.Response) -> tuple[str, str | None]:
    """Classifies a non-200 answer: an accounted 4xx, or a problem."""
    if not 400 <= response.status_code < 500 or not _error_shaped(response):
        return "unaccounted", f"{response.status_code} {response.text[:200]}"
    if response.status_code == 429 and not response.headers.get("retry-after"):
        return "unaccounted", "429 without Retry-After"
    return f"{response.status_code}", None


def _chat_body(rng: random.Random, *, stream: bool = False, tools: bool = False) -> dict[str, Any]:
    topics = ["the sea", "a dragon", "bread", "the moon", "trains", "a garden", "rain", "music"]
    body: dict[str, Any] = {
        "model": CHAT,
        "messages": [{"role": "user", "content": f"Write two sentences about {rng.choice(topics)}."}],
        "max_tokens": rng.choice((8, 16, 24)),
        "temperature": 0.7,
    }
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if tools:
        city = rng.choice(["Paris", "Lima", "Oslo", "Tokyo"])
        body["messages"] = [{"role": "user", "content": f"What is the weather in {city}?"}]
        body["tools"] = [WEATHER]
        body["tool_choice"] = rng.choice(("auto", "required"))
        body["max_tokens"] = 48
    return body


def _check_whole(body: dict[str, Any]) -> str | None:
    choice = body["choices"][0]
    if choice["finish_reason"] not in ("stop", "length", "tool_calls"):
        return f"finish_reason {choice['finish_reason']}"
    for call in choice["message"].get("tool_calls") or ():
        json.loads(call["function"]["arguments"])
    if body.get("usage", {}).get("completion_tokens") is None:
        return "no usage"
    return None


async def _stream(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str], drop_after: int | None
) -> tuple[httpx.Response, str | None, bool]:
    """Reads a stream; returns (status, problem or None, dropped)."""
    async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
        if response.status_code != 200:
            await response.aread()
            return response, None, False
        finish, done, chunks = None, False, 0
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                done = True
                continue
            event = json.loads(data)
            if "error" in event:
                return response, f"error event: {event['error']}", False
            for choice in event.get("choices") or ():
                finish = choice.get("finish_reason") or finish
            chunks += 1
            if drop_after is not None and chunks >= drop_after:
                return response, None, True  # leaving the block closes the connection mid-stream
        if not done or finish is None:
            return response, f"stream ended without {'[DONE]' if not done else 'a finish reason'}", False
        return response, None, False


async def _one(client: httpx.AsyncClient, scenario: str, rng: random.Random, tally: Tally) -> float:
    """Sends one request of ``scenario``; returns how long the server asked the client to wait."""
    headers = {"Authorization": f"Bearer {LIMITED_KEY if scenario == 'limited' else LOAD_KEY}"}
    started = time.perf_counter()
    try:
        if scenario in ("stream", "drop"):
            drop = rng.randint(1, 3) if scenario == "drop" else None
            response, problem, dropped = await _stream(client, _chat_body(rng, stream=True), headers, drop)
            if response.status_code != 200:
                outcome, problem = _refusal(response)
            else:
                outcome = "dropped" if dropped else ("unaccounted" if problem else "ok")
        elif scenario == "malformed":
            kind = rng.randrange(3)
            if kind == 0:
                response = await client.post(
                    "/v1/chat/completions",
                    content=b'{"model": "smollm2-135m", "messages": [',
                    headers={**headers, "Content-Type": "application/json"},
                )
            elif kind == 1:
                response = await client.post("/v1/chat/completions", json={"model": CHAT}, headers=headers)
            else:
                bad = {"model": CHAT, "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}
                response = await client.post("/v1/chat/completions", json=bad, headers=headers)
            outcome, problem = _refusal(response) if response.status_code != 200 else ("unaccounted", "accepted")
            if outcome == "429":  # a malformed body must be refused as such, not rate limited
                outcome, problem = "unaccounted", "malformed body answered 429"
        elif scenario == "embed":
            texts = [f"sentence {rng.randrange(10**6)} about things" for _ in range(rng.randint(1, 8))]
            response = await client.post("/v1/embeddings", json={"model": EMBED, "input": texts}, headers=headers)
            if response.status_code == 200:
                data = response.json()["data"]
                good = len(data) == len(texts) and all(len(d["embedding"]) == 384 for d in data)
                outcome, problem = ("ok", None) if good else ("unaccounted", "wrong vectors")
            else:
                outcome, problem = _refusal(response)
        else:
            body = _chat_body(rng, tools=scenario == "tools")
            response = await client.post("/v1/chat/completions", json=body, headers=headers)
            if response.status_code == 200:
                problem = _check_whole(response.json())
                outcome = "unaccounted" if problem else "ok"
            else:
                outcome, problem = _refusal(response)
    except (httpx.HTTPError, ValueError, KeyError) as error:
        outcome, problem = "unaccounted", f"{type(error).__name__}: {error}"
    tally.add(scenario, outcome, time.perf_counter() - started, problem)
    if outcome == "429":
        return float(response.headers["retry-after"])
    return 0.0


async def _client(base: str, deadline: float, seed: int, tally: Tally) -> None:
    rng = random.Random(seed)
    names, weights = list(MIX), list(MIX.values())
    async with httpx.AsyncClient(base_url=base, timeout=180) as client:
        while time.monotonic() < deadline:
            wait = await _one(client, rng.choices(names, weights)[0], rng, tally)
            if wait:
                # As the official SDKs do: honour Retry-After (capped), with jitter.
                await asyncio.sleep(min(wait, 5.0) * rng.uniform(0.5, 1.0))


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _sample_rss(pid: int, stop: asyncio.Event, samples: list[tuple[float, int]]) -> None:
    start = time.monotonic()
    while not stop.is_set():
        samples.append((time.monotonic() - start, _rss_kib(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)


def _gauges(base: str) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {LOAD_KEY}"}, timeout=30).text
    out: dict[str, float] = collections.defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ("modelport_num_requests_running", "modelport_num_requests_waiting"):
                out[sample.name] += sample.value
            elif sample.name == "modelport_request_failure_total" and sample.labels.get("status", "").startswith("5"):
                out["5xx"] += sample.value
    return out


def start_server(port: int) -> tuple[subprocess.Popen[str], Any, str]:
    """Starts ``modelport serve`` with the soak config and waits until it is ready."""
    folder = Path(tempfile.mkdtemp(prefix="modelport-soak-"))
    config = folder / "soak.yaml"
    config.write_text(CONFIG)
    log = (folder / "server.log").open("w+")
    command = [sys.executable, "-m", "modelport.cli", "serve", "--config", str(config), "--port", str(port)]
    command += ["--log-level", "warning"]
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.seek(0)
            raise RuntimeError(f"modelport serve did not start:\n{log.read()[-3000:]}")
        time.sleep(0.3)
    # Load both models before the clock starts, so the first window measures serving, not loading.
    auth = {"Authorization": f"Bearer {LOAD_KEY}"}
    warm = {"model": CHAT, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    httpx.post(f"{base}/v1/chat/completions", json=warm, headers=auth, timeout=120).raise_for_status()
    httpx.post(f"{base}/v1/embeddings", json={"model": EMBED, "input": "hi"}, headers=auth, timeout=120)
    return proc, log, base


def run(duration: float, clients: int, window: float, port: int) -> dict[str, Any]:
    """Runs the soak and returns its figures (``passed`` says whether every check held)."""
    proc, log, base = start_server(port)
    tally = Tally()
    samples: list[tuple[float, int]] = []
    try:

        async def main() -> None:
            stop = asyncio.Event()
            sampler = asyncio.create_task(_sample_rss(proc.pid, stop, samples))
            deadline = time.monotonic() + duration
            await asyncio.gather(*(_client(base, deadline, seed, tally) for seed in range(clients)))
            stop.set()
            await sampler

        started = time.monotonic()
        asyncio.run(main())
        elapsed = time.monotonic() - started
        idle_deadline = time.monotonic() + 30
        gauges = _gauges(base)
        while gauges["modelport_num_requests_running"] or gauges["modelport_num_requests_waiting"]:
            if time.monotonic() > idle_deadline:
                break
            time.sleep(0.5)
            gauges = _gauges(base)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    log.seek(0)
    server_log = log.read()
    first = [kib for t, kib in samples if t <= window]
    last = [kib for t, kib in samples if t >= samples[-1][0] - window] if samples else []
    rss_first, rss_last = statistics.median(first or [0]), statistics.median(last or [0])
    growth = rss_last / rss_first - 1 if rss_first else float("nan")
    total = sum(tally.outcomes.values())
    figures: dict[str, Any] = {
        "clients": clients,
        "duration_s": round(elapsed, 1),
        "requests": total,
        "requests_per_s": round(total / elapsed, 2),
        "outcomes": {f"{s} {o}": n for (s, o), n in sorted(tally.outcomes.items())},
        "unaccounted": len(tally.unaccounted),
        "unaccounted_examples": tally.unaccounted[:10],
        "server_5xx": gauges["5xx"],
        "idle_after": gauges["modelport_num_requests_running"] == gauges["modelport_num_requests_waiting"] == 0,
        "rss_first_window_mib": round(rss_first / 1024, 1),
        "rss_last_window_mib": round(rss_last / 1024, 1),
        "rss_growth": round(growth, 4),
        "latency_median_s": {s: round(statistics.median(v), 3) for s, v in sorted(tally.latencies.items())},
        "server_exit": proc.returncode,
        "server_tracebacks": server_log.count("Traceback"),
        "server_log": log.name,
    }
    figures["passed"] = (
        figures["unaccounted"] == 0
        and figures["server_5xx"] == 0
        and figures["idle_after"]
        and growth <= 0.10
        and figures["server_exit"] == 0
        and figures["server_tracebacks"] == 0
    )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--window", type=float, default=60.0, help="RSS is compared over the first and last window")
    parser.add_argument("--port", type=int, default=8795)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    figures = run(args.duration, args.clients, args.window, args.port)
    for key, value in figures.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"    {k:28} {v}")
        else:
            print(f"{key:32} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
