"""Closing a constrained JSON answer or tool call before max_tokens cuts it: the reader, then the real models."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from modelport.core import ChatRequest, ResponseFormat, ToolSpec, UserMessage
from modelport.workers import ChatWorker
from modelport.workers.local.constrained.budget_closer import completion, smallest

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "setup": {"type": "string"},
        "punchline": {"type": "string", "minLength": 2},
        "n": {"type": "integer", "minimum": 3},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "mood": {"enum": ["happy", "sad"]},
        "note": {"type": ["string", "null"]},
        "where": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
        "free": {},
    },
    "required": ["setup", "punchline", "n", "tags", "mood"],
}

WHOLE = [
    '{"setup" : "Why did the cat", "punchline": "Because", "n": 42, "tags": ["a", "b"], "mood": "sad",'
    ' "note": null, "where": {"x": -1.5}, "free": {"k": [true, false, null, 1e3]}}',
    '{"setup":"","punchline":"xy","n":3,"tags":["q"],"mood":"happy","where":{"x":2}}',
    '{ "setup": "a", "punchline": "bb", "n": 10, "tags": [ "t" ], "mood": "happy", "note": "n" }',
]


@pytest.mark.parametrize("whole", WHOLE)
def test_every_prefix_of_an_answer_completes_to_a_valid_one(whole: str) -> None:
    jsonschema.validate(json.loads(whole), SCHEMA)
    for end in range(len(whole) + 1):
        text = whole[:end]
        tail = completion(SCHEMA, text)
        assert tail is not None, text
        jsonschema.validate(json.loads(text + tail), SCHEMA)
    assert completion(SCHEMA, whole) == ""


def test_smallest_values_follow_the_schema() -> None:
    jsonschema.validate(json.loads(smallest(SCHEMA)), SCHEMA)
    assert smallest({"type": "integer", "minimum": 5}) == "5"
    assert smallest({"anyOf": [{"type": "null"}, {"type": "string"}]}) == "null"
    assert smallest({"type": "array", "prefixItems": [{"type": "boolean"}, {"const": "x"}]}) == '[false,"x"]'


def test_text_outside_the_grammar_is_not_guessed() -> None:
    assert completion(SCHEMA, '{"unknown') is None  # no key of the schema starts so
    assert completion(SCHEMA, '{"setup": 5') is None  # a number where a string must be
    assert completion(SCHEMA, '{"setup": "a"} trailing') is None


@pytest.mark.parametrize("max_tokens", [12, 24, 40])
def test_a_json_schema_answer_closes_within_max_tokens(chat_worker: ChatWorker, max_tokens: int) -> None:
    schema = {
        "type": "object",
        "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}},
        "required": ["setup", "punchline"],
    }
    request = ChatRequest(
        [UserMessage("Tell me a long joke about cats.")],
        temperature=0,
        max_tokens=max_tokens,
        response_format=ResponseFormat("json_schema", schema),
    )
    result = chat_worker.invoke(request)
    assert result.usage.completion_tokens <= max_tokens
    jsonschema.validate(json.loads(result.text), schema)
    assert result.finish_reason == "stop"


def test_a_budget_too_small_for_any_valid_answer_is_still_cut(llama_worker: ChatWorker) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["a", "b"],
    }
    request = ChatRequest(
        [UserMessage("Fill it in.")], temperature=0, max_tokens=3, response_format=ResponseFormat("json_schema", schema)
    )
    result = llama_worker.invoke(request)
    assert result.finish_reason == "length" and result.usage.completion_tokens == 3


JOKE = ToolSpec(
    "Joke",
    "Joke to tell user.",
    {
        "type": "object",
        "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}},
        "required": ["setup", "punchline"],
    },
)


@pytest.mark.parametrize("parallel", [False, True])
def test_a_forced_call_under_sampling_closes_within_max_tokens(chat_worker: ChatWorker, parallel: bool) -> None:
    # Default sampling writes long argument strings; 40 tokens hold the call only if it closes in time.
    prompt = [UserMessage("Tell me a long joke about cats. Make sure to call the Joke function.")]
    for seed in range(3):
        request = ChatRequest(
            prompt, tools=[JOKE], tool_choice="Joke", max_tokens=40, seed=seed, parallel_tool_calls=parallel
        )
        result = chat_worker.invoke(request)
        assert result.finish_reason == "tool_calls" and result.text == "", (seed, result)
        assert result.usage.completion_tokens <= 40
        for call in result.tool_calls:
            assert set(json.loads(call.arguments)) == {"setup", "punchline"}


@pytest.mark.parametrize("max_tokens", [12, 20])
def test_a_budget_too_small_for_any_valid_call_still_cuts_it(llama_worker: ChatWorker, max_tokens: int) -> None:
    # The smallest Joke call takes more than 20 tokens with its opening: the model writes on and
    # the budget cuts its own text (a call, as OpenAI returns a cut one, never text).
    request = ChatRequest(
        [UserMessage("Tell me a joke.")], tools=[JOKE], tool_choice="Joke", temperature=0, max_tokens=max_tokens
    )
    result = llama_worker.invoke(request)
    assert result.finish_reason == "length" and result.text == ""
    assert [c.name for c in result.tool_calls] == ["Joke"]
    with pytest.raises((ValueError, jsonschema.ValidationError)):
        jsonschema.validate(json.loads(result.tool_calls[0].arguments), dict(JOKE.parameters))
