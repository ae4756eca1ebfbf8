"""Aliases over HTTP: one model answers the names clients hard-code, on every endpoint."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from modelport.server import create_app
from modelport.server.ops.auth import ApiKey
from modelport.workers import ModelRegistry
from modelport.workers.kinds.fake import FakeChatWorker, FakeEmbeddingWorker
from tests.loopback import serve
from tests.server.ops.test_metrics import scrape
from tests.server.spec import SpecCheck

MAIN_KEY, LISTED_KEY = "sk-main-only", "sk-alias-listed"


@pytest.fixture(scope="module")
def root() -> Iterator[str]:
    models = ModelRegistry()
    models.add_worker("main", FakeChatWorker(), kind="fake", aliases=["claude-*", "gpt-4o"])
    models.add_worker("fast", FakeChatWorker(), kind="fake", aliases=["claude-haiku-*"])
    models.add_worker("vectors", FakeEmbeddingWorker(8), kind="fake-embeddings", aliases=["text-embedding-*"])
    keys = [
        ApiKey.from_secret("main-only", MAIN_KEY, models=frozenset({"main", "vectors"})),
        # An allow-list names models: an alias in it lets nothing through.
        ApiKey.from_secret("alias-listed", LISTED_KEY, models=frozenset({"claude-haiku-*", "fast"})),
    ]
    with serve(SpecCheck(create_app(models, keys=keys))) as url:
        yield url


def post(root: str, path: str, body: dict[str, Any], key: str = MAIN_KEY) -> httpx.Response:
    return httpx.post(f"{root}{path}", json=body, headers={"x-api-key": key, "authorization": f"Bearer {key}"})


def test_every_endpoint_answers_an_alias_with_its_model(root: str) -> None:
    import anthropic
    import openai

    client = openai.OpenAI(base_url=f"{root}/v1", api_key=MAIN_KEY, max_retries=0)
    chat = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello"}])
    assert chat.model == "main" and chat.choices[0].message.content
    assert client.completions.create(model="claude-x", prompt="hi", max_tokens=4).model == "main"
    assert client.responses.create(model="claude-opus-4-1", input="hi").model == "main"
    assert client.embeddings.create(model="text-embedding-3-small", input="hi").model == "vectors"
    claude = anthropic.Anthropic(base_url=root, api_key=MAIN_KEY, max_retries=0)
    message = claude.messages.create(
        model="claude-sonnet-4-5", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.model == "main" and message.content


def test_exact_beats_glob_and_the_longest_glob_wins(root: str) -> None:
    # Claude Code asks for a main model and a fast one: two local models can answer them.
    body = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    fast = post(root, "/v1/messages", {**body, "model": "claude-haiku-4-5-20251001"}, LISTED_KEY)
    assert fast.status_code == 200 and fast.json()["model"] == "fast"
    main = post(root, "/v1/messages", {**body, "model": "claude-sonnet-4-5"})
    assert main.status_code == 200 and main.json()["model"] == "main"


def test_allow_lists_match_the_resolved_model(root: str) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    assert post(root, "/v1/chat/completions", {**body, "model": "claude-x"}).status_code == 200
    refused = post(root, "/v1/chat/completions", {**body, "model": "claude-haiku-4"})  # fast: not on main-only's list
    assert refused.status_code == 404 and "claude-haiku-4" in refused.json()["error"]["message"]
    assert "fast" not in refused.json()["error"]["message"]  # the 404 lists only the key's models
    # alias-listed's list holds the pattern, not a model: the glob's model is reached, the other model is not.
    assert post(root, "/v1/chat/completions", {**body, "model": "claude-x"}, LISTED_KEY).status_code == 404
    unknown = post(root, "/v1/messages", {**body, "model": "mistral", "max_tokens": 4})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"


def test_models_are_listed_once_and_an_alias_retrieves_its_model(root: str) -> None:
    headers = {"authorization": f"Bearer {MAIN_KEY}"}
    listed = httpx.get(f"{root}/v1/models", headers=headers).json()["data"]
    assert [(m["id"], m["aliases"]) for m in listed] == [
        ("main", ["claude-*", "gpt-4o"]),
        ("vectors", ["text-embedding-*"]),
    ]
    card = httpx.get(f"{root}/v1/models/claude-opus-4-1", headers=headers)
    assert card.status_code == 200 and card.json()["id"] == "main"
    hidden = httpx.get(f"{root}/v1/models/claude-haiku-4", headers=headers)  # fast, outside the key's list
    assert hidden.status_code == 404


def test_metrics_label_the_pattern_and_the_access_log_keeps_the_name_sent(
    root: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = scrape(root, {"authorization": f"Bearer {MAIN_KEY}"})
    with caplog.at_level(logging.INFO, logger="modelport.access"):
        for name in ("claude-one", "claude-two", "main"):
            body = {"model": name, "messages": [{"role": "user", "content": "hi"}]}
            assert post(root, "/v1/chat/completions", body).status_code == 200
    after = scrape(root, {"authorization": f"Bearer {MAIN_KEY}"})

    def grew(key: str) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert grew("modelport_request_success_total{finished_reason=stop,model_alias=claude-*,model_name=main}") == 2
    assert grew("modelport_request_success_total{finished_reason=stop,model_name=main}") == 1
    assert not [k for k in after if "claude-one" in k or "claude-two" in k]  # raw names never become labels
    lines = [r.getMessage() for r in caplog.records if r.name == "modelport.access"]
    assert any("model=main requested_model=claude-one" in line for line in lines), lines
    assert any("model=main" in line and "requested_model" not in line for line in lines), lines
