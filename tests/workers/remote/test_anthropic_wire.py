"""The anthropic worker against a scripted upstream that speaks the Messages API's documented wire format.

The streams follow Anthropic's documented event sequence (message_start, content blocks with
their deltas, ping, message_delta, message_stop) and its error shape.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelport.core import (
    AssistantMessage,
    BadRequestError,
    ChatRequest,
    ModelNotFoundError,
    SystemMessage,
    ToolCall,
    ToolMessage,
    ToolSpec,
    UpstreamUnavailableError,
    UserMessage,
)
from modelport.core.accumulator import Accumulator
from modelport.core.errors import AuthenticationError, OverloadedError
from modelport.core.events import Finish, ReasoningDelta, TextDelta, ToolCallDelta
from modelport.core.messages import ImagePart, TextPart
from modelport.core.tools import NamedToolChoice
from modelport.workers.kinds.anthropic import AnthropicWorker
from tests.loopback import Reply, Upstream, drain

KEY = "sk-ant-test-3f9c"
WEATHER = ToolSpec(
    "get_weather",
    "Current weather",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def events(*payloads: dict[str, Any]) -> list[str]:
    """Anthropic's SSE: each event named by its type, with its JSON."""
    return [f"event: {p['type']}\ndata: {json.dumps(p)}\n\n" for p in payloads]


def start(input_tokens: int = 12, cached: int = 0) -> dict[str, Any]:
    usage = {"input_tokens": input_tokens, "output_tokens": 1, "cache_read_input_tokens": cached}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x", "content": []}
    return {"type": "message_start", "message": {**message, "stop_reason": None, "usage": usage}}


def block(index: int, content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": content}


def delta(index: int, **fields: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": fields}


def stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def end(reason: str, output_tokens: int = 5, sequence: str | None = None) -> list[dict[str, Any]]:
    message_delta = {"stop_reason": reason, "stop_sequence": sequence}
    return [
        {"type": "message_delta", "delta": message_delta, "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop"},
    ]


def ask(*messages: Any, **kwargs: Any) -> ChatRequest:
    return ChatRequest(list(messages) or [UserMessage("hi")], **kwargs)


@pytest.fixture
def worker(upstream_url: str) -> AnthropicWorker:
    w = AnthropicWorker("claude-x", base_url=f"{upstream_url}/v1", api_key=KEY, timeout=5, max_retries=2)
    yield w  # type: ignore[misc]
    w.close()


def test_a_text_stream_with_thinking_and_usage(worker: AnthropicWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            events=events(
                start(input_tokens=10, cached=30),
                block(0, {"type": "thinking", "thinking": ""}),
                delta(0, type="thinking_delta", thinking="Paris is "),
                delta(0, type="thinking_delta", thinking="the capital."),
                delta(0, type="signature_delta", signature="c2ln"),
                stop(0),
                {"type": "ping"},
                block(1, {"type": "text", "text": ""}),
                delta(1, type="text_delta", text="It is "),
                delta(1, type="text_delta", text="Paris."),
                stop(1),
                *end("end_turn", output_tokens=9),
            )
        )
    )
    seen = list(worker.stream(ask(SystemMessage("Be brief."), UserMessage("Capital of France?"))))
    assert [e.text for e in seen if isinstance(e, ReasoningDelta)] == ["Paris is ", "the capital."]
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["It is ", "Paris."]
    finish = seen[-1]
    assert isinstance(finish, Finish) and finish.reason == "stop" and finish.usage is not None
    # OpenAI's prompt count holds the cached part; Anthropic's input_tokens does not.
    assert (finish.usage.prompt_tokens, finish.usage.cached_tokens, finish.usage.completion_tokens) == (40, 30, 9)
    sent = upstream.seen[0]
    assert sent.path == "v1/messages" and sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01" and "authorization" not in sent.headers
    assert sent.body["system"] == "Be brief." and sent.body["stream"] is True
    assert sent.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]}]
    assert sent.body["max_tokens"] == 4096  # the API requires a limit: the worker's default


def test_tool_use_streams_as_a_call_with_its_input(worker: AnthropicWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            events=events(
                start(),
                block(0, {"type": "text", "text": ""}),
                delta(0, type="text_delta", text="Let me check."),
                stop(0),
                block(1, {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}),
                delta(1, type="input_json_delta", partial_json=""),
                delta(1, type="input_json_delta", partial_json='{"city": '),
                delta(1, type="input_json_delta", partial_json='"Paris"}'),
                stop(1),
                *end("tool_use"),
            )
        )
    )
    request = ask(
        UserMessage("Weather in Paris?"),
        tools=[WEATHER],
        tool_choice=NamedToolChoice("get_weather"),
        parallel_tool_calls=False,
        temperature=0.2,
        top_k=5,
        stop=["END"],
        max_tokens=300,
    )
    seen = list(worker.stream(request))
    calls = [e for e in seen if isinstance(e, ToolCallDelta)]
    assert calls[0] == ToolCallDelta(0, id="toolu_01", name="get_weather")
    result = Accumulator.collect(seen)
    (call,) = result.tool_calls
    assert (call.id, call.name, call.parsed_arguments()) == ("toolu_01", "get_weather", {"city": "Paris"})
    assert result.finish_reason == "tool_calls" and result.text == "Let me check."
    body = upstream.seen[0].body
    assert body["tools"] == [
        {"name": "get_weather", "description": "Current weather", "input_schema": WEATHER.parameters}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    assert (body["temperature"], body["top_k"], body["stop_sequences"], body["max_tokens"]) == (0.2, 5, ["END"], 300)


def test_a_tool_round_trip_is_sent_as_alternating_blocks(worker: AnthropicWorker, upstream: Upstream) -> None:
    upstream.add(Reply(events=events(start(), *end("end_turn"))))
    png = "data:image/png;base64,iVBORw0KGgo="
    history = [
        UserMessage((TextPart("What is this?"), ImagePart(png), ImagePart("https://example.org/cat.jpg"))),
        AssistantMessage("Checking.", tool_calls=(ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),)),
        ToolMessage("18 C", tool_call_id="toolu_1"),
        UserMessage("And tomorrow?"),
    ]
    list(worker.stream(ask(*history, tools=[WEATHER], tool_choice="required", reasoning_effort="low")))
    body = upstream.seen[0].body
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    first, assistant, results = body["messages"]
    assert first["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert first["content"][2] == {"type": "image", "source": {"type": "url", "url": "https://example.org/cat.jpg"}}
    assert assistant["content"][1] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert results["content"][0]["type"] == "tool_result" and results["content"][0]["tool_use_id"] == "toolu_1"
    assert results["content"][1] == {"type": "text", "text": "And tomorrow?"}
    assert body["tool_choice"] == {"type": "any"}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}


def test_a_whole_message_when_not_streaming(upstream_url: str, upstream: Upstream) -> None:
    message = {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "Hmm.", "signature": "c2ln"},
            {"type": "text", "text": "Calling."},
            {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Oslo"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 7},
    }
    upstream.add(Reply(body=message))
    worker = AnthropicWorker("claude-x", base_url=f"{upstream_url}/v1", api_key=KEY, streaming=False)
    result = worker.invoke(ask(tools=[WEATHER]))
    assert (result.message.reasoning, result.text, result.finish_reason) == ("Hmm.", "Calling.", "tool_calls")
    assert result.tool_calls[0].parsed_arguments() == {"city": "Oslo"}
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (20, 7)
    assert "stream" not in upstream.seen[0].body


@pytest.mark.parametrize(
    ("reason", "sequence", "finish"),
    [("max_tokens", None, "length"), ("stop_sequence", "END", "stop"), ("refusal", None, "content_filter")],
)
def test_stop_reasons_map_onto_finish_reasons(
    worker: AnthropicWorker, upstream: Upstream, reason: str, sequence: str | None, finish: str
) -> None:
    upstream.add(
        Reply(events=events(start(), block(0, {"type": "text", "text": "x"}), stop(0), *end(reason, sequence=sequence)))
    )
    last = list(worker.stream(ask()))[-1]
    assert isinstance(last, Finish) and last.reason == finish and last.stop_sequence == sequence


def test_overloaded_is_retried_then_typed(worker: AnthropicWorker, upstream: Upstream) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    upstream.add(Reply(status=529, body=overloaded), Reply(events=events(start(), *end("end_turn"))))
    assert isinstance(list(worker.stream(ask()))[-1], Finish)
    assert len(upstream.seen) == 2  # retried once, then answered
    upstream.reset()
    upstream.add(*[Reply(status=529, body=overloaded)] * 3)
    with pytest.raises(OverloadedError):
        list(worker.stream(ask()))


@pytest.mark.parametrize(
    ("status", "kind", "error"),
    [
        (400, "invalid_request_error", BadRequestError),
        (401, "authentication_error", AuthenticationError),
        (404, "not_found_error", ModelNotFoundError),
    ],
)
def test_errors_are_typed_and_never_hold_the_key(
    worker: AnthropicWorker, upstream: Upstream, status: int, kind: str, error: type[Exception]
) -> None:
    body = {"type": "error", "error": {"type": kind, "message": f"model: claude-x (key {KEY} refused)"}}
    upstream.add(Reply(status=status, body=body))
    with pytest.raises(error) as caught:
        list(worker.stream(ask()))
    assert KEY not in str(caught.value) and KEY not in repr(worker)
    assert len(upstream.seen) == 1  # a client error is not retried


def test_an_error_event_mid_stream_raises_after_the_text(worker: AnthropicWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            events=events(
                start(),
                block(0, {"type": "text", "text": ""}),
                delta(0, type="text_delta", text="partial"),
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            )
        )
    )
    seen, error = drain(worker.stream(ask()))
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["partial"]
    assert isinstance(error, OverloadedError)


def test_a_stream_cut_before_message_stop_is_an_error(worker: AnthropicWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(events=events(start(), block(0, {"type": "text", "text": ""}), delta(0, type="text_delta", text="cut")))
    )
    seen, error = drain(worker.stream(ask()))
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["cut"]  # what came is kept
    assert isinstance(error, UpstreamUnavailableError) and "message_stop" in str(error)


async def test_the_async_stream_matches(worker: AnthropicWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            events=events(
                start(),
                block(0, {"type": "text", "text": "Hi"}),
                delta(0, type="text_delta", text=" there"),
                stop(0),
                *end("end_turn"),
            )
        )
    )
    result = await Accumulator.acollect(worker.astream(ask()))
    assert result.text == "Hi there" and result.finish_reason == "stop"


def test_what_the_api_cannot_do_is_refused_by_name(worker: AnthropicWorker) -> None:
    with pytest.raises(BadRequestError) as caught:
        list(worker.stream(ask(logprobs=True)))
    assert caught.value.param == "logprobs"
    with pytest.raises(BadRequestError) as caught:
        list(worker.stream(ask(frequency_penalty=0.5)))
    assert caught.value.param == "frequency_penalty"
