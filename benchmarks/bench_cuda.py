"""The transformers worker on an accelerator: batched streams against one, and against raw generate.

Run where a CUDA device exists (CI has none; this is a by-hand check). The model folder needs a
config and a tokenizer; ``--random-init`` builds random weights from the config, for machines
that cannot reach the real ones (throughput does not depend on the weights' values, and a
grammar makes even a random model's tool calls valid).

    python benchmarks/bench_cuda.py --model DIR [--random-init] [--device cuda] [--streams 8]

It prints, side by side in interleaved rounds (best and median):
- one stream through the worker against raw ``model.generate``;
- ``--streams`` concurrent streams through the worker against one stream, and against raw
  ``generate`` on the same batch padded by hand;
- how many greedy answers are the same alone and in a batch;
- how many forced tool calls parse and carry the schema's required fields, and whether
  ``auto`` answers hold any tool markup.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modelport.core import ChatRequest, ToolSpec, UserMessage
from modelport.workers.kinds.transformers import TransformersWorker
from modelport.workers.local.tool_parsers.base import KNOWN_MARKUP

PROMPTS = [
    "Tell me a long story about a dragon who learns to bake bread.",
    "Explain how a bicycle works, part by part.",
    "Write a letter to a friend about a trip to the sea.",
    "Describe a busy market in the morning.",
    "List the steps to plant a tree and care for it.",
    "What makes a good cup of tea? Explain at length.",
    "Describe the life of a lighthouse keeper.",
    "Explain why the sky changes colour at sunset.",
]
WEATHER = ToolSpec(
    "get_weather",
    "Current weather for a city",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 24},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
)


def random_model(source: str, layers: int | None) -> str:
    """Saves random weights for ``source``'s config (with its tokenizer) and returns the folder."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(source)
    if layers:
        config.num_hidden_layers = layers
    torch.manual_seed(0)
    target = tempfile.mkdtemp(prefix="modelport-random-")
    AutoModelForCausalLM.from_config(config).save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


def rates(fn: Callable[[], int], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        tokens = fn()
        out.append(tokens / (time.perf_counter() - started))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--random-init", action="store_true")
    parser.add_argument("--layers", type=int, default=None, help="with --random-init: fewer layers")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    import torch

    source = random_model(args.model, args.layers) if args.random_init else args.model
    worker = TransformersWorker(source, device=args.device, dtype=args.dtype, n_parallel=args.streams)
    model = worker.model
    figures: dict[str, Any] = {"device": str(model.device), "dtype": str(model.dtype), "torch": torch.__version__}
    if model.device.type == "cuda":
        figures["gpu"] = torch.cuda.get_device_name(model.device)

    def request(prompt: str, **extra: Any) -> ChatRequest:
        return ChatRequest([UserMessage(prompt)], temperature=0, max_tokens=args.tokens, **extra)

    def rendered(prompt: str) -> list[int]:
        return worker._render(request(prompt)).ids

    def raw(prompts: list[str]) -> int:
        # Left-padded by hand, as the worker's batcher pads, with every row forced to full length.
        rows = [rendered(p) for p in prompts]
        width = max(map(len, rows))
        pad = worker._batcher._pad
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=model.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=model.device)
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=mask,
                max_new_tokens=args.tokens,
                min_new_tokens=args.tokens,
                do_sample=False,
                pad_token_id=pad,
            )
        return int((out.shape[1] - width) * len(rows))

    def ours(prompts: list[str]) -> int:
        with ThreadPoolExecutor(len(prompts)) as pool:
            results = list(pool.map(lambda p: worker.invoke(request(p)), prompts))
        return sum(r.usage.completion_tokens for r in results)

    batch = [PROMPTS[i % len(PROMPTS)] for i in range(args.streams)]
    cases: dict[str, Callable[[], int]] = {
        "raw 1": lambda: raw(batch[:1]),
        "worker 1": lambda: ours(batch[:1]),
        f"raw {args.streams}": lambda: raw(batch),
        f"worker {args.streams}": lambda: ours(batch),
    }
    for fn in cases.values():
        fn()  # warm-up: kernels, allocator, tokenizer caches
    measured: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):  # interleaved, so drift hits every case alike
        for name, fn in cases.items():
            measured[name] += rates(fn, 1)
    for name, values in measured.items():
        figures[f"{name} tokens/s best"] = round(max(values), 1)
        figures[f"{name} tokens/s median"] = round(statistics.median(values), 1)
    n = args.streams
    figures["worker 1 / raw 1"] = round(max(measured["worker 1"]) / max(measured["raw 1"]), 3)
    figures[f"worker {n} / worker 1"] = round(max(measured[f"worker {n}"]) / max(measured["worker 1"]), 3)
    figures[f"worker {n} / raw {n}"] = round(max(measured[f"worker {n}"]) / max(measured[f"raw {n}"]), 3)

    alone = [worker.invoke(request(p)).text for p in PROMPTS[:n]]
    with ThreadPoolExecutor(n) as pool:
        together = list(pool.map(lambda p: worker.invoke(request(p)).text, PROMPTS[:n]))
    figures["greedy same alone and batched"] = f"{sum(a == b for a, b in zip(alone, together, strict=True))}/{n}"

    cities = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Perth", "Quito", "Seoul"]
    asks = [f"What is the weather in {cities[i % len(cities)]}?" for i in range(n)]
    with ThreadPoolExecutor(n) as pool:
        forced = list(pool.map(lambda q: worker.invoke(request(q, tools=[WEATHER], tool_choice="required")), asks))
        auto = list(pool.map(lambda q: worker.invoke(request(q, tools=[WEATHER], tool_choice="auto")), asks))
    valid = 0
    for result in forced:
        calls = result.tool_calls
        if len(calls) == 1 and calls[0].name == "get_weather" and result.finish_reason == "tool_calls":
            arguments = json.loads(calls[0].arguments)
            valid += arguments.get("unit") in ("celsius", "fahrenheit") and isinstance(arguments.get("city"), str)
    figures["forced calls valid"] = f"{valid}/{n}"
    leaks = sum(any(m in r.text for m in KNOWN_MARKUP) for r in auto)
    figures["auto answers with markup"] = f"{leaks}/{n}"
    figures["auto answers that call"] = f"{sum(bool(r.tool_calls) for r in auto)}/{n}"
    if model.device.type == "cuda":
        figures["peak GPU memory MiB"] = round(torch.cuda.max_memory_allocated(model.device) / 2**20)
    worker.close()
    for key, value in figures.items():
        print(f"{key:40} {value}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
