"""/v1/embeddings through the official SDK (base64 by default) and langchain-openai."""

from __future__ import annotations

import math
from typing import Any

import pytest

from modelport.core import EmbeddingRequest
from modelport.workers import ModelRegistry


def test_sdk_default_base64_decodes_to_the_workers_vectors(client: Any, registry: ModelRegistry) -> None:
    texts = ["a lighthouse", "sourdough bread"]
    out = client.embeddings.create(model="minilm-l6", input=texts)
    direct = registry.embedder("minilm-l6").embed(EmbeddingRequest(texts)).vectors
    assert [d.index for d in out.data] == [0, 1]
    for got, want in zip(out.data, direct, strict=True):
        assert got.embedding == pytest.approx(want, abs=1e-6)
    assert out.usage.prompt_tokens > 0


def test_float_format_and_dimensions(client: Any) -> None:
    out = client.embeddings.create(model="minilm-l6", input="one text", encoding_format="float", dimensions=64)
    vector = out.data[0].embedding
    assert len(vector) == 64 and math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-3)


def test_token_arrays_are_refused_by_name(client: Any) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="minilm-l6", input=[[1, 2, 3]])
    assert caught.value.body["param"] == "input"


def test_langchain_openai_embeddings(base_url: str, registry: ModelRegistry) -> None:
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(
        model="minilm-l6", base_url=base_url, api_key="unused", check_embedding_ctx_length=False
    )
    docs = embeddings.embed_documents(["a lighthouse", "bread"])
    query = embeddings.embed_query("a lighthouse")
    assert len(docs) == 2 and len(docs[0]) == 384
    assert query == pytest.approx(docs[0], abs=1e-5)


def test_a_chat_model_is_not_an_embedder(client: Any) -> None:
    import openai

    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="fake", input="x")
