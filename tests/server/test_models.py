"""/v1/models, /health and the offline docs."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest


def test_list_and_retrieve(client: Any) -> None:
    ids = [m.id for m in client.models.list()]
    assert {"smollm2-135m", "minilm-l6", "fake", "rag-bot"} <= set(ids)
    assert client.models.retrieve("minilm-l6").id == "minilm-l6"


def test_unknown_model_is_404_model_not_found(client: Any) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("nope")
    assert caught.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert "smollm2-135m" in caught.value.message


def test_health(base_url: str) -> None:
    body = httpx.get(base_url.removesuffix("/v1") + "/health").json()
    assert body["status"] == "ok" and body["models"] >= 4


def test_docs_work_offline(base_url: str) -> None:
    root = base_url.removesuffix("/v1")
    page = httpx.get(f"{root}/docs")
    assert page.status_code == 200
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links and all(link.startswith("/") for link in links), links  # nothing from a CDN
    for link in links:
        assert httpx.get(root + link).status_code == 200, link
    schema = httpx.get(f"{root}/openapi.json").json()
    assert "/v1/chat/completions" in schema["paths"]


def test_the_playground_is_served_and_can_be_turned_off() -> None:
    from fastapi.testclient import TestClient

    from modelport.server import create_app
    from modelport.workers import ModelEntry, ModelRegistry

    registry = ModelRegistry([ModelEntry("echo", "fake")])
    with TestClient(create_app(registry)) as client:
        page = client.get("/playground")
        assert page.status_code == 200 and 'data-testid="send"' in page.text
        assert client.get("/", follow_redirects=False).headers["location"] == "/playground"
    with TestClient(create_app(registry, playground=False)) as client:
        assert client.get("/playground").status_code == 404
