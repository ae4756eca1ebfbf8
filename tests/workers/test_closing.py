"""Closing a constrained JSON answer before max_tokens cuts it: the reader, then the real models."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from modelport.core import ChatRequest, ResponseFormat, UserMessage
from modelport.workers import ChatWorker
from modelport.workers.closing import completion, smallest

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
