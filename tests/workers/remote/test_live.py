"""Live calls to the real services; they run only when the key is in the environment."""

from __future__ import annotations

import os

import pytest

from modelport.core import ChatRequest, EmbeddingRequest, UserMessage


@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY")
def test_openai_live() -> None:
    from modelport.workers.kinds.openai import OpenAIWorker

    chat = OpenAIWorker(os.environ.get("MODELPORT_LIVE_OPENAI_MODEL", "gpt-4o-mini"))
    answer = chat.invoke(ChatRequest([UserMessage("Say OK.")], max_tokens=5))
    assert answer.text and answer.usage.prompt_tokens > 0
    vectors = OpenAIWorker("text-embedding-3-small").embed(EmbeddingRequest(["hello"], dimensions=8)).vectors
    assert len(vectors[0]) == 8


@pytest.mark.skipif(not os.environ.get("DASHSCOPE_API_KEY"), reason="needs DASHSCOPE_API_KEY")
def test_dashscope_live() -> None:
    from modelport.workers.kinds.dashscope import DashScopeWorker

    region = os.environ.get("MODELPORT_LIVE_DASHSCOPE_REGION", "cn")
    answer = DashScopeWorker("qwen-turbo", region=region).invoke(ChatRequest([UserMessage("Say OK.")], max_tokens=5))
    assert answer.text
    vectors = DashScopeWorker("text-embedding-v4", region=region).embed(EmbeddingRequest(["hello"], dimensions=64))
    assert len(vectors.vectors[0]) == 64
