"""A LangChain runnable (the RAG example) served as if it were a model."""

from __future__ import annotations

from typing import Any


def test_the_rag_chain_answers_like_a_model(client: Any) -> None:
    models = [m.id for m in client.models.list()]
    assert "rag-bot" in models
    question = [{"role": "user", "content": "How tall is the Harbour Lighthouse?"}]
    whole = client.chat.completions.create(model="rag-bot", messages=question)
    assert whole.choices[0].message.content.strip()
    chunks = list(client.chat.completions.create(model="rag-bot", messages=question, stream=True))
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) > 1, "a served chain streams token by token"
    assert chunks[-1].choices[0].finish_reason == "stop"
