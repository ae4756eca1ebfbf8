"""/v1/models: list and retrieve, and a 404 that names the known models."""

from __future__ import annotations

from typing import Any

import pytest


def test_list_and_retrieve(client: Any) -> None:
    ids = [m.id for m in client.models.list()]
    assert {"smollm2-135m", "minilm-l6", "fake", "rag-bot"} <= set(ids)
    assert client.models.retrieve("minilm-l6").id == "minilm-l6"


def test_cards_say_what_each_model_serves_and_mark_base_models(client: Any) -> None:
    cards = {m.id: m.model_dump() for m in client.models.list()}
    assert cards["minilm-l6"]["task"] == "embedding" and cards["smollm2-135m"]["task"] == "chat"
    assert cards["gemma3-270m"]["base_model"] is True
    assert cards["smollm2-135m"]["base_model"] is False and cards["rag-bot"]["base_model"] is False
    assert client.models.retrieve("gemma3-270m").model_dump()["base_model"] is True


def test_unknown_model_is_404_model_not_found(client: Any) -> None:
    import openai

    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("nope")
    assert caught.value.body["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    assert "smollm2-135m" in caught.value.message
