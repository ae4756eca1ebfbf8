"""The anthropic worker end to end against a real Messages API: modelport's own, serving the GGUF."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelport.core import ChatRequest, SystemMessage, ToolMessage, ToolSpec, UserMessage
from modelport.core.accumulator import Accumulator
from modelport.core.errors import ModelNotFoundError
from modelport.core.events import Finish, TextDelta
from modelport.server import create_app
from modelport.workers import ModelRegistry
from modelport.workers.kinds.anthropic import AnthropicWorker
from tests.loopback import serve

KEY = "sk-local-anthropic-7e2"
WEATHER = ToolSpec(
    "get_weather",
    "Current weather in a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture(scope="module")
def messages_api(registry: ModelRegistry) -> Iterator[str]:
    served = ModelRegistry()
    served.add_worker("smollm2-135m", registry.chat("smollm2-135m"), kind="llama-cpp", aliases=["claude-*"])
    with serve(create_app(served, api_keys=[KEY])) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="module")
def worker(messages_api: str) -> Iterator[AnthropicWorker]:
    w = AnthropicWorker("claude-sonnet-4-5", base_url=messages_api, api_key=KEY, timeout=120)
    yield w
    w.close()


def greedy(text: str, **kwargs: object) -> ChatRequest:
    messages = [SystemMessage("You are a helpful assistant."), UserMessage(text)]
    options: dict[str, object] = {"temperature": 0.0, "max_tokens": 24, **kwargs}
    return ChatRequest(messages, **options)  # type: ignore[arg-type]


def test_the_stream_joins_to_the_whole_answer(worker: AnthropicWorker, messages_api: str) -> None:
    events = list(worker.stream(greedy("Name three colours.")))
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(texts) > 1 and isinstance(events[-1], Finish)
    whole = AnthropicWorker("claude-sonnet-4-5", base_url=messages_api, api_key=KEY, streaming=False, timeout=120)
    result = whole.invoke(greedy("Name three colours."))
    assert "".join(texts) == result.text
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert result.finish_reason in ("stop", "length")


def test_max_tokens_and_stop_sequences_come_back(worker: AnthropicWorker) -> None:
    assert worker.invoke(greedy("Write a long story about a dragon.", max_tokens=5)).finish_reason == "length"
    cut = list(worker.stream(greedy("Count: one, two, three, four, five.", max_tokens=40, stop=["three"])))
    finish = cut[-1]
    assert isinstance(finish, Finish)
    assert "three" not in Accumulator.collect(cut).text
    if finish.stop_sequence is not None:  # the model said it (else it stopped on its own or hit the limit)
        assert finish.stop_sequence == "three" and finish.reason == "stop"


async def test_a_forced_tool_call_and_its_result_round_trip(worker: AnthropicWorker) -> None:
    ask = greedy("What is the weather in Paris?", tools=[WEATHER], tool_choice="required", max_tokens=64)
    first = await Accumulator.acollect(worker.astream(ask))
    (call,) = first.tool_calls
    assert call.name == "get_weather" and "city" in call.parsed_arguments()
    assert first.finish_reason == "tool_calls"
    turn = [*ask.messages, first.message, ToolMessage("18 C and sunny", tool_call_id=call.id)]
    second = await Accumulator.acollect(worker.astream(ChatRequest(turn, tools=[WEATHER], max_tokens=32)))
    assert second.text.strip() and "<tool_call>" not in second.text


def test_an_unknown_model_is_a_typed_error(messages_api: str) -> None:
    lost = AnthropicWorker("mistral-large", base_url=messages_api, api_key=KEY, max_retries=0)
    with pytest.raises(ModelNotFoundError) as caught:
        lost.invoke(greedy("hi"))
    assert caught.value.name == "mistral-large" and KEY not in str(caught.value)


def test_health_checks_read_the_model_list(worker: AnthropicWorker) -> None:
    worker.check_health(5)  # GET /v1/models with the x-api-key header: raises if refused
