"""Tool-calling accuracy on the eval set, and the cost of constrained decoding.

Accuracy (reported figures, not gates), per local worker:
- auto: the model decides; a case scores when it calls the expected tool with exactly
  the expected arguments, or, for no-call cases, answers without a call;
- forced: tool_choice="required" on the cases that expect a call; exact match as above.

Cost: tokens/s of the same worker with and without a JSON-schema constraint, side by
side, interleaved; the ratio should stay at or above 0.85.

    python benchmarks/bench_tools.py [--workers smollm2-135m,smollm2-135m-hf] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modelport.core import ChatRequest, ChatResult, ResponseFormat, ToolSpec, UserMessage
from modelport.workers import ChatWorker, ModelRegistry

EVAL_FILE = Path(__file__).resolve().parents[1] / "tests" / "data" / "tool_eval.jsonl"
LONG_SCHEMA = {
    "type": "object",
    "properties": {
        "facts": {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 6, "maxItems": 6}
    },
    "required": ["facts"],
}


def load_cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EVAL_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def matches(result: ChatResult, expected: dict[str, Any] | None) -> bool:
    if expected is None:
        return not result.tool_calls
    if len(result.tool_calls) != 1 or result.tool_calls[0].name != expected["name"]:
        return False
    try:
        return bool(json.loads(result.tool_calls[0].arguments) == expected["arguments"])
    except ValueError:
        return False


def accuracy(worker: ChatWorker, cases: list[dict[str, Any]], mode: str) -> tuple[int, int, int]:
    exact = named = total = 0
    for case in cases:
        if mode == "forced" and case["expected"] is None:
            continue
        tools = [ToolSpec.from_dict(t) for t in case["tools"]]
        request = ChatRequest(
            [UserMessage(case["prompt"])],
            tools=tools,
            tool_choice="required" if mode == "forced" else "auto",
            temperature=0,
            max_tokens=200,
        )
        result = worker.invoke(request)
        total += 1
        exact += matches(result, case["expected"])
        expected_name = (case["expected"] or {}).get("name")
        named += [c.name for c in result.tool_calls][:1] == ([expected_name] if expected_name else [])
    return exact, named, total


def cost(worker: ChatWorker, rounds: int) -> tuple[float, float]:
    prompt = [UserMessage("List six short facts about the Moon.")]
    free = ChatRequest(prompt, temperature=0, max_tokens=96)
    bound = ChatRequest(
        prompt, temperature=0, max_tokens=400, response_format=ResponseFormat("json_schema", LONG_SCHEMA)
    )
    worker.invoke(free), worker.invoke(bound)  # warm up; the grammar compiles once
    rates: dict[str, list[float]] = {"free": [], "bound": []}
    for _ in range(rounds):
        for key, request in (("free", free), ("bound", bound)):
            started = time.perf_counter()
            result = worker.invoke(request)
            rates[key].append(result.usage.completion_tokens / (time.perf_counter() - started))
    return max(rates["free"]), max(rates["bound"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", default="smollm2-135m,smollm2-135m-hf")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    cases = load_cases()
    registry = ModelRegistry.builtin()
    print(f"# bench_tools  cases={len(cases)}  cpus={os.cpu_count()}")
    for name in args.workers.split(","):
        worker = registry.chat(name)
        if not args.skip_accuracy:
            for mode in ("auto", "forced"):
                exact, named, total = accuracy(worker, cases, mode)
                print(
                    f"{name:18} {mode:6}  exact {exact}/{total} = {exact / total:.1%}   "
                    f"right tool {named}/{total} = {named / total:.1%}"
                )
        free, bound = cost(worker, args.rounds)
        print(f"{name:18} cost    free {free:.1f} tok/s   constrained {bound:.1f} tok/s   ratio {bound / free:.3f}")


if __name__ == "__main__":
    main()
