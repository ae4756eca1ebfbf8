"""The openai worker against a scripted upstream that speaks OpenAI's documented wire format."""

from __future__ import annotations

import base64
import logging
import struct
import time
from typing import Any

import pytest

from modelport.core import (
    AuthenticationError,
    BadRequestError,
    ChatRequest,
    EmbeddingRequest,
    RateLimitedError,
    TimeoutError,
    ToolSpec,
    UpstreamUnavailableError,
    UserMessage,
)
from modelport.core.accumulator import Accumulator
from modelport.core.events import Finish, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta
from modelport.core.request import ResponseFormat
from modelport.workers.kinds.openai import OpenAIWorker
from tests.loopback import Reply, Upstream, drain, sse

WEATHER = ToolSpec(
    "get_weather",
    "Current weather",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def ask(text: str = "hi", **kwargs: Any) -> ChatRequest:
    return ChatRequest([UserMessage(text)], **kwargs)


def chunk(
    delta: dict[str, Any] | None = None, finish: str | None = None, index: int = 0, **extra: Any
) -> dict[str, Any]:
    choice = {"index": index, "delta": delta or {}, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m", "choices": [choice], **extra}


def usage_chunk(prompt: int = 7, completion: int = 3) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


@pytest.fixture
def worker(upstream_url: str) -> OpenAIWorker:
    w = OpenAIWorker("m", base_url=f"{upstream_url}/v1", api_key="sk-test-key", timeout=5, max_retries=2)
    yield w  # type: ignore[misc]
    w.close()


# -- streaming ---------------------------------------------------------------------------------


def test_text_stream_with_a_final_usage_only_chunk(worker: OpenAIWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            events=sse(
                chunk({"role": "assistant", "content": "Hel"}),
                chunk({"content": "lo"}),
                chunk(finish="stop"),
                usage_chunk(),
            )
        )
    )
    events = list(worker.stream(ask()))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo"]
    assert events[-1] == Finish("stop", events[-1].usage)  # type: ignore[union-attr]
    finish = events[-1]
    assert isinstance(finish, Finish) and finish.usage is not None
    assert (finish.usage.prompt_tokens, finish.usage.completion_tokens) == (7, 3)
    body = upstream.seen[0].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert upstream.seen[0].path == "v1/chat/completions"
    assert upstream.seen[0].headers["authorization"] == "Bearer sk-test-key"


def test_tool_call_split_across_chunks(worker: OpenAIWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            events=sse(
                chunk(
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_a",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": ""},
                            }
                        ],
                    }
                ),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Par'}}]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'is"}'}}]}),
                chunk(finish="tool_calls"),
                usage_chunk(),
            )
        )
    )
    events = list(worker.stream(ask("weather?", tools=[WEATHER])))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[0].index == 0 and deltas[0].id == "call_a" and deltas[0].name == "get_weather"
    assert all(d.id is None and d.name is None for d in deltas[1:])
    result = Accumulator.collect(events)
    (call,) = result.tool_calls
    assert (call.id, call.name, call.parsed_arguments()) == ("call_a", "get_weather", {"city": "Paris"})
    assert result.finish_reason == "tool_calls"


def test_whole_tool_calls_in_one_chunk(worker: OpenAIWorker, upstream: Upstream) -> None:
    calls = [
        {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
        },
        {
            "index": 1,
            "id": "call_2",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
        },
    ]
    upstream.add(Reply(events=sse(chunk({"tool_calls": calls}, finish="tool_calls"))))
    result = Accumulator.collect(worker.stream(ask(tools=[WEATHER])))
    assert [(c.id, c.parsed_arguments()["city"]) for c in result.tool_calls] == [("call_1", "Oslo"), ("call_2", "Rome")]


def test_servers_that_repeat_id_and_name_or_omit_them_still_give_one_call(
    worker: OpenAIWorker, upstream: Upstream
) -> None:
    upstream.add(
        Reply(
            events=sse(
                chunk(
                    {
                        "tool_calls": [
                            {"index": 0, "id": "call_x", "function": {"name": "get_weather", "arguments": '{"city"'}}
                        ]
                    }
                ),
                chunk(
                    {
                        "tool_calls": [
                            {"index": 0, "id": "call_x", "function": {"name": "get_weather", "arguments": ': "Lima"}'}}
                        ]
                    }
                ),
                chunk({"tool_calls": [{"function": {"name": "get_weather", "arguments": '{"city": "Quito"}'}}]}),
                chunk(finish="tool_calls"),
            )
        )
    )
    result = Accumulator.collect(worker.stream(ask(tools=[WEATHER])))
    assert [c.name for c in result.tool_calls] == ["get_weather", "get_weather"]  # never "get_weatherget_weather"
    assert [c.parsed_arguments()["city"] for c in result.tool_calls] == ["Lima", "Quito"]
    assert result.tool_calls[0].id == "call_x" and result.tool_calls[1].id.startswith("call_")


def test_reasoning_content_becomes_reasoning_deltas(worker: OpenAIWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            events=sse(
                chunk({"reasoning_content": "Think."}),
                chunk({"reasoning": " More."}),
                chunk({"content": "Answer"}, finish="stop"),
            )
        )
    )
    events = list(worker.stream(ask()))
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == "Think. More."
    assert Accumulator.collect(events).message.reasoning == "Think. More."


def test_logprobs_and_n_choices(worker: OpenAIWorker, upstream: Upstream) -> None:
    lp = {
        "content": [
            {
                "token": "A",
                "logprob": -0.1,
                "top_logprobs": [{"token": "A", "logprob": -0.1}, {"token": "B", "logprob": -2.0}],
            }
        ]
    }
    upstream.add(
        Reply(
            events=sse(
                {
                    **chunk({"content": "A"}, index=0),
                    "choices": [{"index": 0, "delta": {"content": "A"}, "logprobs": lp, "finish_reason": "stop"}],
                },
                chunk({"content": "B"}, finish="length", index=1),
                usage_chunk(),
            )
        )
    )
    result = Accumulator.collect(worker.stream(ask(n=2, logprobs=True, top_logprobs=2)))
    assert [c.message.content for c in result.choices] == ["A", "B"]
    assert [c.finish_reason for c in result.choices] == ["stop", "length"]
    assert result.choices[0].logprobs[0].top[1] == ("B", -2.0)
    body = upstream.seen[0].body
    assert (body["n"], body["logprobs"], body["top_logprobs"]) == (2, True, 2)


def test_request_body_carries_every_option(worker: OpenAIWorker, upstream: Upstream) -> None:
    upstream.add(Reply(events=sse(chunk({"content": "{}"}, finish="stop"))))
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    request = ask(
        temperature=0.2,
        top_p=0.9,
        max_tokens=33,
        stop=["END"],
        seed=5,
        tools=[WEATHER],
        tool_choice="get_weather",
        response_format=ResponseFormat("json_schema", schema, "answer"),
        parallel_tool_calls=False,
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        repetition_penalty=1.1,
        logit_bias={50256: -100},
        min_p=0.05,
        extra={"top_k": 3},
    )
    list(worker.stream(request))
    body = upstream.seen[0].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["tools"][0]["function"]["name"] == "get_weather"
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    expected = {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 33,
        "stop": ["END"],
        "seed": 5,
        "parallel_tool_calls": False,
        "top_k": 3,
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "repetition_penalty": 1.1,
        "logit_bias": {"50256": -100.0},
        "min_p": 0.05,
    }
    assert {k: body[k] for k in expected} == expected


async def test_async_stream_is_native_and_equal(worker: OpenAIWorker, upstream: Upstream) -> None:
    script = sse(
        chunk({"content": "x"}),
        chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "get_weather", "arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Bern"}'}}]}, finish="tool_calls"),
        usage_chunk(),
    )
    upstream.add(Reply(events=script), Reply(events=script))
    sync_events = list(worker.stream(ask(tools=[WEATHER])))
    async_events = [e async for e in worker.astream(ask(tools=[WEATHER]))]
    assert async_events == sync_events


def test_non_streaming_mode(upstream_url: str, upstream: Upstream) -> None:
    worker = OpenAIWorker("m", base_url=upstream_url, streaming=False)
    upstream.add(
        Reply(
            body={
                "id": "x",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": "whole", "reasoning_content": "r"},
                    }
                ],
                "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
            }
        )
    )
    result = worker.invoke(ask())
    assert (result.text, result.message.reasoning, result.usage.completion_tokens) == (
        "whole",
        "r",
        1,
    )
    assert "stream" not in upstream.seen[0].body


# -- failures ----------------------------------------------------------------------------------


def test_429_with_retry_after_is_honoured(worker: OpenAIWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(429, {"error": {"message": "slow down", "type": "rate_limit_error"}}, headers={"Retry-After": "0.3"}),
        Reply(events=sse(chunk({"content": "ok"}, finish="stop"))),
    )
    started = time.monotonic()
    assert worker.invoke(ask()).text == "ok"
    assert time.monotonic() - started >= 0.3
    assert len(upstream.seen) == 2


def test_500_is_retried_up_to_max_retries_then_raised(worker: OpenAIWorker, upstream: Upstream) -> None:
    boom = Reply(500, {"error": {"message": "boom"}})
    upstream.add(boom, boom, boom, Reply(events=sse(chunk({"content": "late"}, finish="stop"))))
    with pytest.raises(UpstreamUnavailableError, match="500"):
        worker.invoke(ask())
    assert len(upstream.seen) == 3  # the first try and max_retries=2


def test_a_retry_after_beyond_the_time_bound_raises_at_once(upstream_url: str, upstream: Upstream) -> None:
    worker = OpenAIWorker("m", base_url=upstream_url, max_retries=5, retry_timeout=1.0)
    upstream.add(Reply(429, {"error": {"message": "quota"}}, headers={"Retry-After": "30"}))
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as caught:
        worker.invoke(ask())
    assert caught.value.retry_after == pytest.approx(30)
    assert time.monotonic() - started < 1.0 and len(upstream.seen) == 1


def test_retries_stop_at_the_total_time_bound(upstream_url: str, upstream: Upstream) -> None:
    worker = OpenAIWorker("m", base_url=upstream_url, max_retries=50, retry_timeout=1.5)
    upstream.add(*[Reply(503, {"error": {"message": "busy"}}, headers={"Retry-After": "0.4"}) for _ in range(50)])
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailableError):
        worker.invoke(ask())
    assert time.monotonic() - started <= 1.5 + 0.5
    assert 2 <= len(upstream.seen) <= 5


def test_4xx_is_not_retried_and_names_the_field(worker: OpenAIWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(400, {"error": {"message": "bad temperature", "type": "invalid_request_error", "param": "temperature"}})
    )
    with pytest.raises(BadRequestError) as caught:
        worker.invoke(ask())
    assert caught.value.param == "temperature" and len(upstream.seen) == 1


def test_malformed_json_mid_stream_raises_after_the_delivered_deltas(worker: OpenAIWorker, upstream: Upstream) -> None:
    upstream.add(Reply(events=[*sse(chunk({"content": "kept"}), done=False), "data: {not json\n\n"]))
    events, error = drain(worker.stream(ask()))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["kept"]
    assert isinstance(error, UpstreamUnavailableError) and "malformed JSON" in str(error)


def test_malformed_json_body_raises(upstream_url: str, upstream: Upstream) -> None:
    worker = OpenAIWorker("m", base_url=upstream_url, streaming=False)
    upstream.add(Reply(raw=b"<html>gateway</html>"))
    with pytest.raises(UpstreamUnavailableError, match="not JSON"):
        worker.invoke(ask())


def test_connection_reset_mid_stream_raises_after_the_delivered_deltas(
    worker: OpenAIWorker, upstream: Upstream
) -> None:
    upstream.add(
        Reply(events=sse(chunk({"content": "one "}), chunk({"content": "two"}), chunk(finish="stop")), break_after=2)
    )
    events, error = drain(worker.stream(ask()))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "one two"
    assert not any(isinstance(e, Finish) for e in events)
    assert isinstance(error, UpstreamUnavailableError)
    assert len(upstream.seen) == 1  # never retried once deltas were delivered


def test_a_stream_that_ends_without_finishing_is_an_error(worker: OpenAIWorker, upstream: Upstream) -> None:
    upstream.add(Reply(events=sse(chunk({"content": "cut"}), done=False)))
    events, error = drain(worker.stream(ask()))
    assert events == [TextDelta("cut")]
    assert isinstance(error, UpstreamUnavailableError) and "before the answer was complete" in str(error)


def test_a_first_byte_slower_than_the_timeout(upstream_url: str, upstream: Upstream) -> None:
    worker = OpenAIWorker("m", base_url=upstream_url, timeout=0.3, max_retries=1)
    slow = Reply(events=sse(chunk({"content": "late"}, finish="stop")), delay=1.0)
    upstream.add(slow, slow)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        worker.invoke(ask())
    assert time.monotonic() - started < 3 and len(upstream.seen) == 2


async def test_async_failures_are_typed_too(worker: OpenAIWorker, upstream: Upstream) -> None:
    upstream.add(Reply(events=sse(chunk({"content": "a"}), chunk({"content": "b"})), break_after=1))
    seen: list[StreamEvent] = []
    with pytest.raises(UpstreamUnavailableError):
        async for event in worker.astream(ask()):
            seen.append(event)
    assert seen == [TextDelta("a")]


def test_unreachable_server_is_upstream_unavailable() -> None:
    worker = OpenAIWorker("m", base_url="http://127.0.0.1:9/v1", max_retries=1, retry_timeout=5)
    with pytest.raises(UpstreamUnavailableError, match="cannot reach"):
        worker.invoke(ask())


def test_the_api_key_never_appears_in_logs_errors_or_reprs(
    upstream_url: str, upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-live-Zq8XmN3vK5pL0sTopSecret"
    caplog.set_level(logging.DEBUG)
    worker = OpenAIWorker("m", base_url=upstream_url, api_key=key, max_retries=1)
    upstream.add(
        Reply(500, {"error": {"message": f"internal error for key {key}"}}),
        Reply(401, {"error": {"message": f"Incorrect API key provided: {key}", "code": "invalid_api_key"}}),
    )
    with pytest.raises(AuthenticationError) as caught:
        worker.invoke(ask())
    assert upstream.seen[0].headers["authorization"] == f"Bearer {key}"  # it was sent...
    texts = [str(caught.value), repr(caught.value), repr(worker), repr(worker.client), str(vars(worker))]
    texts += [r.getMessage() for r in caplog.records]
    assert caplog.records, "the retry should have been logged"
    assert not [t for t in texts if key in t]  # ...and shown nowhere


def test_openai_url_without_a_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        OpenAIWorker("gpt-4o-mini")


# -- embeddings --------------------------------------------------------------------------------


def _b64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def test_embeddings_send_text_decode_base64_and_batch(upstream_url: str, upstream: Upstream) -> None:
    worker = OpenAIWorker("emb", base_url=upstream_url, embedding_batch_size=2)
    vectors = [[float(i), 1.0, 0.0] for i in range(5)]

    def page(start: int, count: int) -> Reply:
        data = [
            {"object": "embedding", "index": j, "embedding": _b64(vectors[start + j])} for j in reversed(range(count))
        ]
        return Reply(body={"object": "list", "data": data, "usage": {"prompt_tokens": count, "total_tokens": count}})

    upstream.add(page(0, 2), page(2, 2), page(4, 1))
    result = worker.embed(EmbeddingRequest([f"t{i}" for i in range(5)], dimensions=3, normalize=False))
    assert result.vectors == vectors and result.prompt_tokens == 5
    assert [s.body["input"] for s in upstream.seen] == [["t0", "t1"], ["t2", "t3"], ["t4"]]
    assert all(s.body["encoding_format"] == "base64" and s.body["dimensions"] == 3 for s in upstream.seen)


async def test_async_embeddings_accept_float_lists_and_normalise(upstream_url: str, upstream: Upstream) -> None:
    worker = OpenAIWorker("emb", base_url=upstream_url, embedding_encoding="float")
    upstream.add(Reply(body={"data": [{"index": 0, "embedding": [3.0, 4.0]}], "usage": {"prompt_tokens": 1}}))
    result = await worker.aembed(EmbeddingRequest(["x"]))
    assert result.vectors == [[0.6, 0.8]]


def test_embeddings_with_a_wrong_count_are_an_error(upstream_url: str, upstream: Upstream) -> None:
    worker = OpenAIWorker("emb", base_url=upstream_url)
    upstream.add(Reply(body={"data": [{"index": 0, "embedding": [1.0]}]}))
    with pytest.raises(UpstreamUnavailableError, match="asked for 2"):
        worker.embed(EmbeddingRequest(["a", "b"]))
