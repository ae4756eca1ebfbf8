"""Tool calling and structured output on the real local workers, over the eval set."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from modelport.core import (
    AssistantMessage,
    ChatRequest,
    Finish,
    ResponseFormat,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    ToolSpec,
    UserMessage,
)
from modelport.workers import ChatWorker

EVAL = [json.loads(line) for line in (Path(__file__).parents[2] / "data" / "tool_eval.jsonl").read_text().splitlines()]
ANSWER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
MAX_TOKENS = 200


def invoke_all(worker: ChatWorker, requests: list[ChatRequest]) -> list[Any]:
    # Concurrently, as users would send them: the workers batch them (8 at a time), which
    # keeps these eval-wide checks within their share of the test run.
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(worker.invoke, requests))


def tools_of(case: dict[str, Any]) -> list[ToolSpec]:
    return [ToolSpec.from_dict(t) for t in case["tools"]]


def check_call(call: ToolCall, tools: list[ToolSpec]) -> None:
    spec = next(t for t in tools if t.name == call.name)
    jsonschema.validate(json.loads(call.arguments), dict(spec.parameters))


def eval_for(worker: ChatWorker) -> list[dict[str, Any]]:
    """The whole eval on llama.cpp; every fourth case (all categories) on transformers.

    Both run the same parsers and grammars; transformers decodes about four times slower on
    these CPUs, and the whole eval on it took 11 of CI's 45 minutes.
    """
    from modelport.workers.kinds.transformers import TransformersWorker

    return EVAL[::4] if isinstance(worker, TransformersWorker) else EVAL


def test_eval_set_covers_what_it_should() -> None:
    assert len(EVAL) >= 80
    assert sum(c["expected"] is None for c in EVAL) >= 20
    assert sum(c["category"] == "two-calls" for c in EVAL) >= 10
    categories = {c["category"] for c in EVAL}
    assert {"nested", "arrays", "enum", "integers", "optional", "unicode", "zero-args", "no-call"} <= categories
    assert {len(c["tools"]) for c in EVAL} >= {1, 2, 3, 4, 5}


@pytest.mark.parametrize("mode", ["required", "named"])
def test_forced_calls_always_parse_and_validate(chat_worker: ChatWorker, mode: str) -> None:
    failures = []
    runs = []
    for case in eval_for(chat_worker):
        tools = tools_of(case)
        if mode == "named" and len(tools) == 1 and case["expected"]:
            # With one tool, naming it gives the very grammar "required" gives, so greedy decoding
            # repeats the "required" run exactly; those cases are covered there.
            continue
        target = (case["expected"] or {"name": tools[0].name})["name"]
        choice = "required" if mode == "required" else target
        request = ChatRequest(
            [UserMessage(case["prompt"])], tools=tools, tool_choice=choice, temperature=0, max_tokens=MAX_TOKENS
        )
        runs.append((case, tools, target, request))
    results = invoke_all(chat_worker, [r for *_, r in runs])
    for (case, tools, target, _), result in zip(runs, results, strict=True):
        try:
            assert len(result.tool_calls) == 1 and result.text == ""
            if case["expected"] is None and result.finish_reason == "length":
                # Forced onto a tool that does not fit, the model invents arguments and may fill a
                # bounded array to its bound past max_tokens: the cut call still comes back as a call.
                continue
            assert result.finish_reason == "tool_calls", result.finish_reason
            check_call(result.tool_calls[0], tools)
            if mode == "named":
                assert result.tool_calls[0].name == target
        except (AssertionError, ValueError, jsonschema.ValidationError) as error:
            failures.append((case["id"], result.text, result.tool_calls, str(error)[:200]))
    assert failures == []


def test_structured_output_always_validates(chat_worker: ChatWorker) -> None:
    failures = []
    runs = []
    for case in eval_for(chat_worker):
        schema = case["tools"][0]["function"]["parameters"] if case["expected"] else ANSWER_SCHEMA
        if not schema.get("properties"):
            schema = ANSWER_SCHEMA
        request = ChatRequest(
            [UserMessage(case["prompt"])],
            response_format=ResponseFormat("json_schema", schema),
            temperature=0,
            max_tokens=MAX_TOKENS,
        )
        runs.append((case, schema, request))
    results = invoke_all(chat_worker, [r for *_, r in runs])
    for (case, schema, _), result in zip(runs, results, strict=True):
        try:
            jsonschema.validate(json.loads(result.text), schema)
        except (ValueError, jsonschema.ValidationError) as error:
            failures.append((case["id"], result.text, str(error)[:200]))
    assert failures == []


def test_json_object_mode(chat_worker: ChatWorker) -> None:
    request = ChatRequest(
        [UserMessage("Describe a cat as JSON.")], response_format=ResponseFormat("json_object"), max_tokens=MAX_TOKENS
    )
    assert isinstance(json.loads(chat_worker.invoke(request).text), dict)


def test_auto_mode_never_raises(chat_worker: ChatWorker) -> None:
    requests = [
        ChatRequest([UserMessage(case["prompt"])], tools=tools_of(case), temperature=0, max_tokens=80)
        for case in eval_for(chat_worker)[::5]
    ]
    for result in invoke_all(chat_worker, requests):
        assert result.text or result.tool_calls


def test_tool_choice_none_gives_text(chat_worker: ChatWorker) -> None:
    case = EVAL[0]
    request = ChatRequest([UserMessage(case["prompt"])], tools=tools_of(case), tool_choice="none", max_tokens=30)
    result = chat_worker.invoke(request)
    assert result.tool_calls == () and result.finish_reason in ("stop", "length")


@pytest.mark.parametrize("case", [c for c in EVAL if c["expected"]][:6], ids=lambda c: c["id"])
def test_streamed_and_whole_calls_agree(chat_worker: ChatWorker, case: dict[str, Any]) -> None:
    request = ChatRequest(
        [UserMessage(case["prompt"])],
        tools=tools_of(case),
        tool_choice="required",
        temperature=0,
        max_tokens=MAX_TOKENS,
    )
    events = list(chat_worker.stream(request))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas and deltas[0].id and deltas[0].name and deltas[0].index == 0
    assert isinstance(events[-1], Finish) and events[-1].reason == "tool_calls"
    streamed = [(d.name, d.arguments) for d in deltas if d.name] and "".join(d.arguments for d in deltas)
    whole = chat_worker.invoke(request).tool_calls
    assert [deltas[0].name] == [c.name for c in whole]
    assert streamed == whole[0].arguments


def test_history_with_calls_and_results_renders(chat_worker: ChatWorker) -> None:
    tools = [*tools_of(EVAL[0]), ToolSpec("get_time", "time", {"type": "object", "properties": {}})]
    history = [
        UserMessage("Weather in Paris and the time?"),
        AssistantMessage(None, (ToolCall("c1", "get_weather", '{"city": "Paris"}'), ToolCall("c2", "get_time", "{}"))),
        ToolMessage("22 C and sunny", "c1", "get_weather"),
        ToolMessage("clock unavailable", "c2", "get_time", is_error=True),
    ]
    request = ChatRequest(history, tools=tools, temperature=0, max_tokens=40)
    prompt = chat_worker._render(request).text  # type: ignore[attr-defined]
    assert prompt.count("<tool_call>") >= 2 + 1  # two past calls, plus the format example
    assert "22 C and sunny" in prompt and "Error: clock unavailable" in prompt
    result = chat_worker.invoke(request)
    assert result.text or result.tool_calls
