"""Model lifecycle: cold start against warm, the swap under a budget, footprints estimated and measured.

For each built-in model, interleaved rounds of: unload it, time a request to its first token (a
cold start: the load, then the prefill), then time the same request again (warm). Then, under a
budget that holds one model, the time to swap one model for another: the request for the second
model unloads the first, loads the second and answers. Finally each model's footprint, estimated
from its files before any load, against what its second load measured.

    python benchmarks/bench_lifecycle.py [--rounds 3] [--hf-rounds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modelport.core import ChatRequest, EmbeddingRequest, UserMessage
from modelport.core.events import TextDelta
from modelport.workers import ModelRegistry
from modelport.workers.base import ChatWorker, EmbeddingWorker
from modelport.workers.residency import ResidencyPolicy

MIB = 1024 * 1024
REQUEST = ChatRequest([UserMessage("Say hello in one short sentence.")], temperature=0, max_tokens=8)


def first_token(registry: ModelRegistry, name: str) -> float:
    """Seconds from asking for ``name`` to its first answer token (or its embedding)."""
    started = time.perf_counter()
    lease = registry.lease(name)
    try:
        worker = lease.worker
        if isinstance(worker, EmbeddingWorker) and not isinstance(worker, ChatWorker):
            worker.embed(EmbeddingRequest(["a cat sat on the mat"]))
            return time.perf_counter() - started
        for event in worker.stream(REQUEST):
            if isinstance(event, TextDelta) and event.text:
                break
        return time.perf_counter() - started
    finally:
        lease.release()


def cold_and_warm(registry: ModelRegistry, name: str, rounds: int) -> tuple[list[float], list[float]]:
    cold, warm = [], []
    for _ in range(rounds):
        registry.residency.unload(name, reason="admin", grace_s=0)
        cold.append(first_token(registry, name))
        warm.append(first_token(registry, name))
    return cold, warm


def swap(rounds: int, first: str, second: str) -> tuple[list[float], list[float]]:
    """TTFT of ``second`` while ``first`` holds the only place, against ``second`` cold alone."""
    registry = ModelRegistry.builtin(policy=ResidencyPolicy(max_loaded_models=1))
    swaps, alone = [], []
    for _ in range(rounds):
        first_token(registry, first)  # first is in; second must take its place
        swaps.append(first_token(registry, second))
        registry.residency.unload(second, reason="admin", grace_s=0)
        alone.append(first_token(registry, second))  # nothing to unload first
        registry.residency.unload(second, reason="admin", grace_s=0)
    registry.close()
    return swaps, alone


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ({min(values) * 1000:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hf-rounds", type=int, default=2, help="rounds for the transformers model (20 s a load)")
    args = parser.parse_args()
    registry = ModelRegistry.builtin()
    names = ["smollm2-135m", "gemma3-270m", "minilm-l6", "smollm2-135m-hf"]
    estimates = {n: registry.estimate(n) or 0 for n in names}
    print("| model | cold TTFT ms, median (best) | warm TTFT ms, median (best) | cold / warm |")
    print("|---|---|---|---|")
    for name in names:
        rounds = args.hf_rounds if name.endswith("-hf") else args.rounds
        first_token(registry, name)  # the library's first import and thread pools are not the model's
        cold, warm = cold_and_warm(registry, name, rounds)
        ratio = statistics.median(cold) / statistics.median(warm)
        print(f"| {name} | {fmt(cold)} | {fmt(warm)} | {ratio:.0f}x |", flush=True)
    print()
    print("| model | estimated MiB | measured MiB | estimate / measured |")
    print("|---|---|---|---|")
    for name in names:
        measured = registry.residency.describe(name)["footprint"]["measured"] or 0
        print(f"| {name} | {estimates[name] / MIB:.0f} | {measured / MIB:.0f} | {estimates[name] / measured:.2f} |")
    registry.close()
    print()
    print("| swap (max_loaded_models: 1) | TTFT ms with the swap, median (best) | cold alone | cost of the unload |")
    print("|---|---|---|---|")
    for first, second in (("smollm2-135m", "gemma3-270m"), ("gemma3-270m", "smollm2-135m")):
        swaps, alone = swap(args.rounds, first, second)
        cost = (statistics.median(swaps) - statistics.median(alone)) * 1000
        print(f"| {first} -> {second} | {fmt(swaps)} | {fmt(alone)} | {cost:+.0f} ms |", flush=True)


if __name__ == "__main__":
    main()
