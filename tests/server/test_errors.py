"""Every failure in OpenAI's error shape, with a 4xx (or a 502-504 for upstream trouble)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

USER = [{"role": "user", "content": "hi"}]


def post(base_url: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{base_url}{path}", timeout=60, **kwargs)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return dict(body["error"])


def test_malformed_json_is_400(base_url: str) -> None:
    response = post(
        base_url, "/chat/completions", content=b'{"model": "fake", ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400 and "JSON" in error_of(response)["message"]


def test_a_body_that_is_not_an_object_is_400(base_url: str) -> None:
    response = post(base_url, "/chat/completions", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert response.status_code == 400
    error_of(response)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "fake"}, "messages"),
        ({"messages": USER}, "model"),
        ({"model": "fake", "messages": USER, "temperature": "hot"}, "temperature"),
        ({"model": "fake", "messages": USER, "temperature": 3}, "temperature"),
        ({"model": "fake", "messages": USER, "top_p": 0}, "top_p"),
        ({"model": "fake", "messages": USER, "n": 0}, "n"),
        ({"model": "fake", "messages": USER, "n": 129}, "n"),
        ({"model": "fake", "messages": USER, "max_tokens": -1}, "max_tokens"),
        ({"model": "fake", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": "fake", "messages": []}, "messages"),
        (
            {"model": "fake", "messages": USER, "tools": [{"type": "function", "function": {}}]},
            "tools[0].function.name",
        ),
        ({"model": "fake", "messages": USER, "tool_choice": "required"}, "tool_choice"),
        ({"model": "fake", "messages": USER, "presence_penalty": 0.5}, "presence_penalty"),
        ({"model": "fake", "messages": USER, "logit_bias": {"1": 5}}, "logit_bias"),
        (
            {"model": "fake", "messages": USER, "response_format": {"type": "json_schema"}},
            "response_format.json_schema",
        ),
        ({"model": "fake", "messages": USER, "response_format": {"type": "yaml"}}, "response_format.type"),
    ],
)
def test_validation_errors_name_the_field(base_url: str, body: dict[str, Any], param: str) -> None:
    response = post(base_url, "/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["param"] == param and error["type"] == "invalid_request_error"


def test_unknown_model_is_404(base_url: str) -> None:
    response = post(base_url, "/chat/completions", json={"model": "gpt-9", "messages": USER})
    assert response.status_code == 404 and error_of(response)["code"] == "model_not_found"


def test_prompt_too_long_is_context_length_exceeded(base_url: str) -> None:
    long = [{"role": "user", "content": "lighthouse " * 9000}]
    response = post(base_url, "/chat/completions", json={"model": "smollm2-135m", "messages": long})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "context_length_exceeded" and "4096" in error["message"]


def test_max_tokens_beyond_the_context_is_clamped_not_refused(base_url: str) -> None:
    # As llama.cpp's server and Ollama do (a model entry's context_overflow: error gives the 400).
    # Greedy, on a question with a short answer: a sampled "hi" once rambled on for 4,000 tokens.
    question = [{"role": "user", "content": "Name the capital of France."}]
    body = {"model": "smollm2-135m", "messages": question, "max_tokens": 100000, "temperature": 0}
    response = post(base_url, "/chat/completions", json=body)
    assert response.status_code == 200
    assert response.json()["choices"][0]["finish_reason"] in ("stop", "length")


@pytest.mark.parametrize(("prompt", "status"), [("fail before", 503), ("time out", 504)])
def test_upstream_failures_keep_their_status(base_url: str, prompt: str, status: int) -> None:
    body = {"model": "fake", "messages": [{"role": "user", "content": prompt}]}
    for stream in (False, True):
        response = post(base_url, "/chat/completions", json={**body, "stream": stream})
        assert response.status_code == status, response.text
        assert error_of(response)["message"]


def test_a_failure_mid_stream_sends_an_error_event_then_done(base_url: str) -> None:
    body = {"model": "fake", "messages": [{"role": "user", "content": "fail midway"}], "stream": True}
    response = post(base_url, "/chat/completions", json=body)
    assert response.status_code == 200
    events = [line[len("data: ") :] for line in response.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert "connection to the upstream model lost" in error["message"] and error["code"] == "upstream_unavailable"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content") or "" for e in events[:-2])
    assert text == "partial answer"


def test_the_sdk_raises_on_a_mid_stream_error(client: Any) -> None:
    import openai

    with pytest.raises(openai.APIError, match="upstream model lost"):
        for _ in client.chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "fail midway"}], stream=True
        ):
            pass


def test_legacy_and_embedding_errors(base_url: str) -> None:
    checks = [
        ("/completions", {"model": "fake", "prompt": [1, 2, 3]}, "prompt"),
        ("/completions", {"model": "fake", "prompt": "x", "echo": True}, "echo"),
        ("/completions", {"model": "fake", "prompt": "x", "logprobs": 2}, "logprobs"),
        ("/embeddings", {"model": "minilm-l6", "input": []}, "input"),
        ("/embeddings", {"model": "minilm-l6", "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ("/embeddings", {"model": "minilm-l6", "input": "x", "dimensions": 0}, "dimensions"),
    ]
    for path, body, param in checks:
        response = post(base_url, path, json=body)
        assert response.status_code == 400, (path, body, response.text)
        assert error_of(response)["param"] == param, (path, body)


def test_unknown_path_is_404_in_openai_shape(base_url: str) -> None:
    response = httpx.get(f"{base_url}/assistants")
    assert response.status_code in (404, 405)
    error_of(response)


BAD_SCHEMA = {"type": "objekt", "properties": {"city": {"type": "strin"}}, "required": "city"}


@pytest.mark.parametrize("model", ["fake", "smollm2-135m"])
@pytest.mark.parametrize("tool_choice", ["auto", "required"])
def test_an_invalid_tool_schema_is_400_naming_it(base_url: str, model: str, tool_choice: str) -> None:
    tools = [
        {"type": "function", "function": {"name": "ok", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "get_weather", "parameters": BAD_SCHEMA}},
    ]
    body = {"model": model, "messages": USER, "tools": tools, "tool_choice": tool_choice, "max_tokens": 8}
    response = post(base_url, "/chat/completions", json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == "tools[1].function.parameters"
    assert "invalid JSON Schema" in error["message"] and "objekt" in error["message"]


LONG = "tokens " * 400  # past MiniLM's 256


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "minilm-l6", "input": ["short", LONG]}, "input[1]"),
        ({"model": "minilm-l6", "input": LONG}, "input[0]"),
        ({"model": "minilm-l6", "input": ["fine", ""]}, "input[1]"),
        ({"model": "minilm-l6", "input": ""}, "input"),
        ({"model": "fake-embeddings", "input": ["x"] * 2049}, "input"),
        ({"model": "minilm-l6", "input": ["word " * 200] * 1600}, "input"),
    ],
)
def test_embedding_inputs_past_the_limits_are_400_naming_them(base_url: str, body: dict[str, Any], param: str) -> None:
    response = post(base_url, "/embeddings", json=body)
    assert response.status_code == 400, response.text
    assert error_of(response)["param"] == param


def test_an_over_long_embedding_input_is_cut_when_asked(base_url: str) -> None:
    cut = post(base_url, "/embeddings", json={"model": "minilm-l6", "input": ["short", LONG], "truncate": True})
    assert cut.status_code == 200
    assert cut.json()["usage"]["prompt_tokens"] <= 256 + 8
