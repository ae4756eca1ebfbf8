"""Bearer keys: several accepted, compared in constant time, never logged; /health stays open."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.server.conftest import KEYS


def test_every_configured_key_works(keyed_url: str) -> None:
    from openai import OpenAI

    for key in KEYS:
        out = OpenAI(base_url=keyed_url, api_key=key, max_retries=0).chat.completions.create(
            model="fake", messages=[{"role": "user", "content": "in"}]
        )
        assert out.choices[0].message.content == "in"


def test_a_bad_key_is_the_sdks_authentication_error(keyed_url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=keyed_url, api_key="key-one-8c1", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.models.list()
    assert caught.value.status_code == 401


def test_a_missing_key_is_401(keyed_url: str) -> None:
    response = httpx.post(f"{keyed_url}/embeddings", json={"model": "minilm-l6", "input": "x"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["www-authenticate"] == "Bearer"


def test_health_and_docs_need_no_key(keyed_url: str) -> None:
    root = keyed_url.removesuffix("/v1")
    assert httpx.get(f"{root}/health").status_code == 200
    assert httpx.get(f"{root}/docs").status_code == 200


def test_keys_never_reach_the_logs(keyed_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    httpx.post(
        f"{keyed_url}/chat/completions",
        json={"model": "fake", "messages": [{"role": "user", "content": "fail before"}]},
        headers=headers,
    )
    httpx.get(f"{keyed_url}/models", headers={"Authorization": "Bearer wrong-key-123"})
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert KEYS[0] not in logged and "wrong-key-123" not in logged


def test_repr_of_the_key_store_hides_keys(app: Any) -> None:
    from modelport.server.ops.auth import ApiKeys

    assert KEYS[0] not in repr(ApiKeys(KEYS))


@pytest.fixture(scope="module")
def limited_url(server_registry: Any) -> Any:
    import hashlib

    from modelport.server import create_app
    from modelport.server.ops.auth import ApiKey
    from tests.loopback import serve

    keys = [
        ApiKey.from_secret("alice", "sk-alice-secret", rpm=3),
        ApiKey.from_secret("dave", "sk-dave-secret", models=frozenset({"fake"})),
        ApiKey.from_secret("bob", "sk-bob-secret", rpm=100),
        ApiKey("carol", hashlib.sha256(b"sk-carol-secret").digest(), tpm=5),
        ApiKey.from_secret("erin", "sk-erin-secret", tpm=300),
    ]
    with serve(create_app(server_registry, keys=keys, api_keys=["sk-flat"])) as url:
        yield f"{url}/v1"


def _chat(url: str, key: str, model: str = "fake", text: str = "hello there") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{url}/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"})


def test_one_key_over_its_rpm_gets_429_and_the_others_do_not(
    limited_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert [_chat(limited_url, "sk-alice-secret").status_code for _ in range(3)] == [200, 200, 200]
    over = _chat(limited_url, "sk-alice-secret")
    assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
    error = over.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and "alice" in error["message"]
    assert _chat(limited_url, "sk-bob-secret").status_code == 200
    assert _chat(limited_url, "sk-flat").status_code == 200
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "alice" in logged  # by name...
    assert "sk-alice-secret" not in logged and "sk-bob-secret" not in logged  # ...never by secret
    assert "sk-alice-secret" not in over.text


def test_a_hashed_key_authenticates_and_its_tpm_limits_it(limited_url: str) -> None:
    first = _chat(limited_url, "sk-carol-secret", text="one two three four five six")
    assert first.status_code == 200 and first.json()["usage"]["total_tokens"] >= 5
    over = _chat(limited_url, "sk-carol-secret")
    assert over.status_code == 429 and "tokens per minute" in over.json()["error"]["message"]


def test_the_most_a_request_may_use_counts_against_tpm_before_any_work(limited_url: str) -> None:
    headers = {"Authorization": "Bearer sk-erin-secret"}
    ask = {"model": "smollm2-135m", "messages": [{"role": "user", "content": "Name a colour."}]}
    # No max_tokens: the answer may fill the context (4,096 tokens), past the key's 300 a minute.
    whole = httpx.post(f"{limited_url}/chat/completions", json=ask, headers=headers, timeout=60)
    assert whole.status_code == 429 and "may use 4096 tokens" in whole.json()["error"]["message"], whole.text
    # A max_tokens past the context is clamped first: the same 4,096, not 100,000.
    huge = httpx.post(f"{limited_url}/chat/completions", json={**ask, "max_tokens": 100_000}, headers=headers)
    assert huge.status_code == 429 and "may use 4096 tokens" in huge.json()["error"]["message"]
    # n x max_tokens: 2 x 120 fits beside the prompt; 4 x 100 does not.
    assert (
        httpx.post(
            f"{limited_url}/chat/completions", json={**ask, "n": 4, "max_tokens": 100}, headers=headers
        ).status_code
        == 429
    )
    # The answers run their whole budget (end-of-text banned), so the key's room stays taken.
    body = {**ask, "n": 2, "max_tokens": 120, "stream": True, "logit_bias": {"0": -100, "2": -100}}
    with httpx.stream("POST", f"{limited_url}/chat/completions", json=body, headers=headers, timeout=60) as first:
        assert first.status_code == 200
        lines = first.iter_lines()
        next(lines)
        # While it runs, its reservation holds the key's room: a second one waits its turn.
        second = httpx.post(f"{limited_url}/chat/completions", json={**ask, "n": 2, "max_tokens": 120}, headers=headers)
        assert second.status_code == 429 and "tokens per minute" in second.json()["error"]["message"]
        assert int(second.headers["retry-after"]) >= 1
        for _ in lines:
            pass


def test_an_allow_list_hides_other_models(limited_url: str) -> None:
    assert _chat(limited_url, "sk-dave-secret").status_code == 200
    assert _chat(limited_url, "sk-bob-secret", model="fake-nologprobs").status_code == 200
    refused = _chat(limited_url, "sk-dave-secret", model="fake-nologprobs")
    assert refused.status_code == 404 and "fake-nologprobs" in refused.json()["error"]["message"]
    hidden = httpx.post(
        f"{limited_url}/embeddings",
        json={"model": "minilm-l6", "input": "x"},
        headers={"Authorization": "Bearer sk-dave-secret"},
    )
    assert hidden.status_code == 404 and "minilm-l6" in hidden.json()["error"]["message"]
    assert hidden.json()["error"]["code"] == "model_not_found"
    assert "minilm-l6" not in hidden.json()["error"]["message"].split("Known models:")[1]
    listed = httpx.get(f"{limited_url}/models", headers={"Authorization": "Bearer sk-dave-secret"}).json()
    assert [m["id"] for m in listed["data"]] == ["fake"]
