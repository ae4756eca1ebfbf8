"""The openai worker end to end against a real OpenAI-compatible server: llama-cpp-python's."""

from __future__ import annotations

import pytest

from modelport.core import ChatRequest, EmbeddingRequest, SystemMessage, UpstreamUnavailableError, UserMessage
from modelport.core.accumulator import Accumulator
from modelport.core.events import Finish, TextDelta
from modelport.workers.kinds.openai import OpenAIWorker


@pytest.fixture(scope="module")
def worker(llama_server: str) -> OpenAIWorker:
    w = OpenAIWorker("smollm2", base_url=llama_server, timeout=120)
    yield w  # type: ignore[misc]
    w.close()


def greedy(text: str, **kwargs: object) -> ChatRequest:
    messages = [SystemMessage("You are a helpful assistant."), UserMessage(text)]
    options: dict[str, object] = {"temperature": 0.0, "max_tokens": 24, "seed": 1, **kwargs}
    return ChatRequest(messages, **options)  # type: ignore[arg-type]


def test_chat(worker: OpenAIWorker) -> None:
    result = worker.invoke(greedy("What is the capital of France?"))
    assert result.text.strip()
    assert result.finish_reason in ("stop", "length")


def test_stream_deltas_join_to_the_whole_answer(worker: OpenAIWorker, llama_server: str) -> None:
    events = list(worker.stream(greedy("Name three colours.")))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(texts) > 1, "the answer should arrive in several deltas"
    assert isinstance(events[-1], Finish)
    whole = OpenAIWorker("smollm2", base_url=llama_server, streaming=False, timeout=120)
    result = whole.invoke(greedy("Name three colours."))
    assert "".join(texts) == result.text
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0


async def test_async_stream(worker: OpenAIWorker) -> None:
    result = await Accumulator.acollect(worker.astream(greedy("Say hello.")))
    assert result.text.strip()


def test_max_tokens_reports_length(worker: OpenAIWorker) -> None:
    result = worker.invoke(greedy("Write a long story about a dragon.", max_tokens=5))
    assert result.finish_reason == "length"


def test_per_token_embeddings_are_a_clear_error(llama_server: str) -> None:
    # llama-cpp-python's server cannot pool a causal LM's states (its settings have no
    # pooling_type), so it answers one vector per token. The worker must say so, not guess.
    worker = OpenAIWorker("smollm2-embed", base_url=llama_server, embedding_encoding="float", timeout=120)
    with pytest.raises(UpstreamUnavailableError, match="one vector per token"):
        worker.embed(EmbeddingRequest(["a cat", "a dog"]))
