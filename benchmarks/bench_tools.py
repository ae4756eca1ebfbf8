"""Tool-calling accuracy on the eval set, the auto-mode decision, and what they cost.

Accuracy (reported figures), per local worker, greedy, max_tokens 200:
- auto: the model decides (``modelport.workers.local.tool_choice``). Call cases score "right tool"
  when the first call names the expected tool and "exact" when the calls and their arguments
  are exactly the expected ones; no-call cases score when the answer makes no call. Cases that
  need two calls are sent with ``parallel_tool_calls: true``. Every emitted call is validated
  against its tool's schema (target: all of them).
- forced: tool_choice="required" on the call cases, one call expected.
- threshold: the decision margin of every case (read from the worker's debug log), swept
  over thresholds: call recall against correct no-call, drawn with ``--plot``.

Cost, on a prompt the model answers in prose: tokens/s of auto mode with tools against
``tool_choice: "none"`` and against auto mode with the decision off (threshold +inf), and of a
JSON-schema-constrained answer against a free one; interleaved rounds, median and best.

    python benchmarks/bench_tools.py [--workers smollm2-135m,smollm2-135m-hf] [--rounds 5]
        [--skip-accuracy] [--plot benchmarks/tool_threshold.png]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from modelport.core import ChatRequest, ChatResult, ResponseFormat, ToolSpec, UserMessage
from modelport.workers import ChatWorker, ModelRegistry
from modelport.workers.local.tool_choice import DEFAULT_THRESHOLD

EVAL_FILE = Path(__file__).resolve().parents[1] / "tests" / "data" / "tool_eval.jsonl"
LONG_SCHEMA = {
    "type": "object",
    "properties": {
        "facts": {"type": "array", "items": {"type": "string", "maxLength": 40}, "minItems": 6, "maxItems": 6}
    },
    "required": ["facts"],
}
PROSE = "Describe a walk through a forest in autumn, in detail."


def load_cases() -> list[dict[str, Any]]:
    return [json.loads(line) for line in EVAL_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


def expected_calls(case: dict[str, Any]) -> list[dict[str, Any]]:
    if case["expected"] is None:
        return []
    return list(case.get("expected_all") or [case["expected"]])


def matches(result: ChatResult, case: dict[str, Any]) -> bool:
    got = []
    for call in result.tool_calls:
        try:
            got.append((call.name, json.loads(call.arguments)))
        except ValueError:
            return False
    want = [(c["name"], c["arguments"]) for c in expected_calls(case)]
    return sorted(map(json.dumps, got)) == sorted(map(json.dumps, want))


def first_name(result: ChatResult) -> str | None:
    return result.tool_calls[0].name if result.tool_calls else None


def request_for(case: dict[str, Any], mode: str, **fields: Any) -> ChatRequest:
    return ChatRequest(
        [UserMessage(case["prompt"])],
        tools=[ToolSpec.from_dict(t) for t in case["tools"]],
        tool_choice="required" if mode == "forced" else "auto",
        parallel_tool_calls=True if case.get("expected_all") and mode == "auto" else None,
        temperature=0,
        max_tokens=200,
        **fields,
    )


class MarginLog(logging.Handler):
    """Collects the auto-mode decision margins, by the thread that made the request."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.current: dict[int, str] = {}
        self.margins: dict[str, float | None] = {}

    def emit(self, record: logging.LogRecord) -> None:
        case = self.current.get(record.thread or 0)
        if case is not None and record.args and len(record.args) == 3:
            self.margins[case] = float(record.args[1])  # type: ignore[arg-type, index]


def run_all(
    worker: ChatWorker,
    cases: list[dict[str, Any]],
    build: Callable[[dict[str, Any]], ChatRequest],
    log: MarginLog | None = None,
) -> list[ChatResult]:
    def one(case: dict[str, Any]) -> ChatResult:
        if log is not None:
            log.current[threading.get_ident()] = case["id"]
        return worker.invoke(build(case))

    # Concurrently, as users would send them: the workers batch them.
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, cases))


def accuracy(worker: ChatWorker, cases: list[dict[str, Any]], log: MarginLog) -> dict[str, Any]:
    results = run_all(worker, cases, lambda c: request_for(c, "auto"), log)
    calls = [(c, r) for c, r in zip(cases, results, strict=True) if c["expected"] is not None]
    silent = [(c, r) for c, r in zip(cases, results, strict=True) if c["expected"] is None]
    emitted = valid = 0
    for case, result in zip(cases, results, strict=True):
        specs = {t["function"]["name"]: t["function"]["parameters"] for t in case["tools"]}
        for call in result.tool_calls:
            emitted += 1
            try:
                jsonschema.validate(json.loads(call.arguments), specs[call.name])
                valid += 1
            except (ValueError, KeyError, jsonschema.ValidationError):
                pass
    two = [(c, r) for c, r in calls if c.get("expected_all")]
    return {
        "right_tool": (
            sum(first_name(r) == c["expected"]["name"] for c, r in calls),
            len(calls),
        ),
        "no_call": (sum(not r.tool_calls for _, r in silent), len(silent)),
        "exact": (sum(matches(r, c) for c, r in zip(cases, results, strict=True)), len(cases)),
        "two_calls_exact": (sum(matches(r, c) for c, r in two), len(two)),
        "valid_calls": (valid, emitted),
    }


def forced(worker: ChatWorker, cases: list[dict[str, Any]]) -> tuple[int, int, int]:
    calls = [c for c in cases if c["expected"] is not None and not c.get("expected_all")]
    results = run_all(worker, calls, lambda c: request_for(c, "forced"))
    exact = sum(matches(r, c) for c, r in zip(calls, results, strict=True))
    named = sum(first_name(r) == c["expected"]["name"] for c, r in zip(calls, results, strict=True))
    return exact, named, len(calls)


def sweep(cases: list[dict[str, Any]], margins: dict[str, float | None]) -> list[tuple[float, float, float]]:
    """(threshold, call recall, correct no-call) over the thresholds that change the outcome."""
    known = [m for m in margins.values() if m is not None]
    points = [*sorted(set(known)), max(known, default=0) + 1]
    calls = [c["id"] for c in cases if c["expected"] is not None]
    silent = [c["id"] for c in cases if c["expected"] is None]
    out = []
    for t in points:
        decided = {k: m is not None and m >= t for k, m in margins.items()}
        recall = sum(decided.get(i, False) for i in calls) / len(calls)
        declined = sum(not decided.get(i, False) for i in silent) / len(silent)
        out.append((t, recall, declined))
    return out


def plot(curves: dict[str, list[tuple[float, float, float]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for name, points in curves.items():
        line = ax.plot([p[2] for p in points], [p[1] for p in points], marker=".", label=name)[0]
        # The outcome at the default: that of the smallest margin at or above it.
        chosen = min((p for p in points if p[0] >= DEFAULT_THRESHOLD), key=lambda p: p[0], default=points[-1])
        ax.plot([chosen[2]], [chosen[1]], marker="o", markersize=10, fillstyle="none", color=line.get_color())
    ax.annotate(f"default threshold {DEFAULT_THRESHOLD}", (0.55, 0.9), xycoords="axes fraction")
    ax.set_xlabel("no-call cases answered without a call")
    ax.set_ylabel("call cases that call (recall)")
    ax.set_title("auto tool choice: the threshold's trade-off (eval set)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def rate(worker: ChatWorker, request: ChatRequest) -> float:
    started = time.perf_counter()
    result = worker.invoke(request)
    return result.usage.completion_tokens / (time.perf_counter() - started)


def cost(worker: ChatWorker, cases: list[dict[str, Any]], rounds: int) -> dict[str, list[float]]:
    tools = [ToolSpec.from_dict(t) for t in cases[0]["tools"]]
    prose = [UserMessage(PROSE)]
    requests = {
        "none": ChatRequest(prose, tools=tools, tool_choice="none", temperature=0, max_tokens=128),
        "auto": ChatRequest(prose, tools=tools, tool_choice="auto", temperature=0, max_tokens=128),
        "auto, decision off": ChatRequest(
            prose, tools=tools, tool_choice="auto", temperature=0, max_tokens=128, tool_call_threshold=float("inf")
        ),
        "free": ChatRequest([UserMessage("List six short facts about the Moon.")], temperature=0, max_tokens=96),
        "constrained": ChatRequest(
            [UserMessage("List six short facts about the Moon.")],
            temperature=0,
            max_tokens=400,
            response_format=ResponseFormat("json_schema", LONG_SCHEMA),
        ),
    }
    for request in requests.values():
        worker.invoke(request)  # warm up; grammars compile once
    rates: dict[str, list[float]] = {key: [] for key in requests}
    for _ in range(rounds):  # interleaved, so drift hits every side alike
        for key, request in requests.items():
            rates[key].append(rate(worker, request))
    return rates


def fraction(pair: tuple[int, int]) -> str:
    return f"{pair[0]}/{pair[1]} = {pair[0] / max(pair[1], 1):.1%}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", default="smollm2-135m,smollm2-135m-hf")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--plot", default=None, help="write a PNG of the threshold trade-off")
    args = parser.parse_args()
    cases = load_cases()
    registry = ModelRegistry.builtin()
    log = MarginLog()
    logging.getLogger("modelport.tool_choice").addHandler(log)
    logging.getLogger("modelport.tool_choice").setLevel(logging.DEBUG)
    print(f"# bench_tools  cases={len(cases)}  cpus={os.cpu_count()}  threshold={DEFAULT_THRESHOLD}")
    curves = {}
    for name in args.workers.split(","):
        worker = registry.chat(name)
        if not args.skip_accuracy:
            log.margins = {}
            scores = accuracy(worker, cases, log)
            print(f"{name:18} auto    " + "   ".join(f"{k} {fraction(v)}" for k, v in scores.items()))
            exact, named, total = forced(worker, cases)
            print(f"{name:18} forced  exact {fraction((exact, total))}   right tool {fraction((named, total))}")
            curves[name] = sweep(cases, dict(log.margins))
            for t, recall, declined in curves[name][:: max(1, len(curves[name]) // 12)]:
                print(f"{name:18} threshold {t:+.3f}: call recall {recall:.1%}, no-call correct {declined:.1%}")
        rates = cost(worker, cases, args.rounds)
        med = {k: statistics.median(v) for k, v in rates.items()}
        best = {k: max(v) for k, v in rates.items()}
        for key in rates:
            print(f"{name:18} {key:20} median {med[key]:6.1f} tok/s   best {best[key]:6.1f} tok/s")
        print(
            f"{name:18} auto / none {med['auto'] / med['none']:.3f} (best {best['auto'] / best['none']:.3f});"
            f" auto / decision off {med['auto'] / med['auto, decision off']:.3f}"
            f" (best {best['auto'] / best['auto, decision off']:.3f}); target >= 0.90"
        )
        print(
            f"{name:18} constrained / free {med['constrained'] / med['free']:.3f}"
            f" (best {best['constrained'] / best['free']:.3f}); target >= 0.85"
        )
    if args.plot and curves:
        plot(curves, args.plot)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
