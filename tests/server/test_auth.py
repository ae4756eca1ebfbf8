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
    from modelport.server.auth import ApiKeys

    assert KEYS[0] not in repr(ApiKeys(KEYS))
