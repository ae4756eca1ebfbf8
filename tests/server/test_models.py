"""/v1/models: list and retrieve, and a 404 that names the known models."""

from __future__ import annotations

from typing import Any

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
