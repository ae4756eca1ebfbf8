"""/v1/models: list and retrieve, and a 404 that names the known models."""

from __future__ import annotations

from typing import Any

import httpx
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


@pytest.mark.parametrize("model_id", ["%0A%2F", "%0A", "x%0A%2F"])
def test_a_model_id_ending_in_a_newline_and_slash_is_404_not_a_redirect(base_url: str, model_id: str) -> None:
    # Found by test_fuzz: Starlette's pattern matched the slashless path (``$`` before a final
    # newline) and the server answered 307 to it.
    response = httpx.get(f"{base_url}/models/{model_id}", follow_redirects=False)
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
