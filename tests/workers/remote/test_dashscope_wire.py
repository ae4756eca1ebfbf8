"""The dashscope worker against a scripted upstream that speaks DashScope's documented native format."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from modelport.core import (
    AuthenticationError,
    ChatRequest,
    EmbeddingRequest,
    RateLimitedError,
    TimeoutError,
    ToolSpec,
    UpstreamUnavailableError,
    UserMessage,
)
from modelport.core.accumulator import Accumulator
from modelport.core.events import Finish, ReasoningDelta, TextDelta, ToolCallDelta
from modelport.workers.kinds.dashscope import DashScopeWorker
from modelport.workers.remote.dashscope_format import REGIONS
from tests.loopback import Reply, Upstream, drain

KEY = "sk-dashscope-f00dfeedTopSecret"
WEATHER = ToolSpec("get_weather", "Current weather", {"type": "object", "properties": {"city": {"type": "string"}}})


def ask(text: str = "你好", **kwargs: Any) -> ChatRequest:
    return ChatRequest([UserMessage(text)], **kwargs)


def result(message: dict[str, Any], finish: str = "null", output_tokens: int = 1) -> dict[str, Any]:
    return {
        "output": {"choices": [{"message": {"role": "assistant", **message}, "finish_reason": finish}]},
        "usage": {"input_tokens": 9, "output_tokens": output_tokens, "total_tokens": 9 + output_tokens},
        "request_id": "req-1",
    }


def events(*payloads: dict[str, Any], status: int = 200, kind: str = "result") -> list[str]:
    """DashScope's SSE framing: id, event, an HTTP_STATUS comment, then data."""
    return [
        f"id:{i}\nevent:{kind}\n:HTTP_STATUS/{status}\ndata:{json.dumps(p, ensure_ascii=False)}\n\n"
        for i, p in enumerate(payloads, 1)
    ]


@pytest.fixture
def worker(upstream_url: str, monkeypatch: pytest.MonkeyPatch) -> DashScopeWorker:
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    return DashScopeWorker("qwen-plus", base_url=f"{upstream_url}/api/v1", timeout=5, max_retries=2)


def test_incremental_text_stream_and_the_native_request(worker: DashScopeWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            events=events(
                result({"content": "你"}),
                result({"content": "好"}, output_tokens=2),
                result({"content": ""}, "stop", output_tokens=2),
            )
        )
    )
    got = list(worker.stream(ask(temperature=0.5, max_tokens=20, stop=["x"], seed=3)))
    assert "".join(e.text for e in got if isinstance(e, TextDelta)) == "你好"
    finish = got[-1]
    assert isinstance(finish, Finish) and finish.reason == "stop"
    assert finish.usage is not None and (finish.usage.prompt_tokens, finish.usage.completion_tokens) == (9, 2)
    seen = upstream.seen[0]
    assert seen.path == "api/v1/services/aigc/text-generation/generation"
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.headers["x-dashscope-sse"] == "enable"
    assert seen.body["input"]["messages"] == [{"role": "user", "content": "你好"}]
    params = seen.body["parameters"]
    assert params["result_format"] == "message" and params["incremental_output"] is True
    assert (params["temperature"], params["max_tokens"], params["stop"], params["seed"]) == (0.5, 20, ["x"], 3)


def test_parallel_tool_calls_streamed_in_fragments(worker: DashScopeWorker, upstream: Upstream) -> None:
    def call(index: int, id_: str, name: str, args: str) -> dict[str, Any]:
        return {"index": index, "id": id_, "type": "function", "function": {"name": name, "arguments": args}}

    upstream.add(
        Reply(
            events=events(
                result({"content": "", "tool_calls": [call(0, "call_a", "get_weather", '{"city":')]}),
                result({"content": "", "tool_calls": [call(0, "", "", ' "杭州"}')]}),
                result({"content": "", "tool_calls": [call(1, "call_b", "get_weather", '{"city": "Paris"}')]}),
                result({"content": ""}, "tool_calls"),
            )
        )
    )
    request = ask("天气?", tools=[WEATHER], tool_choice="auto", parallel_tool_calls=True)
    got = list(worker.stream(request))
    firsts = [e for e in got if isinstance(e, ToolCallDelta) and e.name]
    assert [(e.index, e.id) for e in firsts] == [(0, "call_a"), (1, "call_b")]
    answer = Accumulator.collect(got)
    assert [c.parsed_arguments()["city"] for c in answer.tool_calls] == ["杭州", "Paris"]
    assert answer.finish_reason == "tool_calls"
    params = upstream.seen[0].body["parameters"]
    assert params["tools"][0]["function"]["name"] == "get_weather"
    assert params["tool_choice"] == "auto" and params["parallel_tool_calls"] is True


def test_enable_thinking_gives_reasoning_deltas(upstream_url: str, upstream: Upstream) -> None:
    worker = DashScopeWorker("qwen3-plus", base_url=upstream_url, api_key=KEY, enable_thinking=True)
    upstream.add(
        Reply(
            events=events(
                result({"content": "", "reasoning_content": "想一想"}),
                result({"content": "答案"}, "stop"),
            )
        )
    )
    got = list(worker.stream(ask()))
    assert [e.text for e in got if isinstance(e, ReasoningDelta)] == ["想一想"]
    assert upstream.seen[0].body["parameters"]["enable_thinking"] is True


def test_whole_answers_when_streaming_is_off(upstream_url: str, upstream: Upstream) -> None:
    worker = DashScopeWorker("qwen-plus", base_url=upstream_url, api_key=KEY, streaming=False)
    upstream.add(Reply(body=result({"content": "整段"}, "stop", output_tokens=2)))
    answer = worker.invoke(ask())
    assert (answer.text, answer.usage.completion_tokens) == ("整段", 2)
    assert "x-dashscope-sse" not in upstream.seen[0].headers
    assert "incremental_output" not in upstream.seen[0].body["parameters"]


def test_response_format_is_sent(worker: DashScopeWorker, upstream: Upstream) -> None:
    from modelport.core import ResponseFormat

    upstream.add(Reply(events=events(result({"content": "{}"}, "stop"))))
    list(worker.stream(ask(response_format=ResponseFormat("json_object"))))
    assert upstream.seen[0].body["parameters"]["response_format"] == {"type": "json_object"}


# -- errors ------------------------------------------------------------------------------------


def test_a_bad_key_is_an_authentication_error(worker: DashScopeWorker, upstream: Upstream) -> None:
    upstream.add(Reply(401, {"code": "InvalidApiKey", "message": "Invalid API-key provided.", "request_id": "r"}))
    with pytest.raises(AuthenticationError, match="Invalid API-key"):
        worker.invoke(ask())
    assert len(upstream.seen) == 1


def test_throttling_is_retried_then_rate_limited(worker: DashScopeWorker, upstream: Upstream) -> None:
    throttled = Reply(429, {"code": "Throttling.RateQuota", "message": "Requests rate limit exceeded"})
    upstream.add(throttled, throttled, throttled)
    with pytest.raises(RateLimitedError):
        worker.invoke(ask())
    assert len(upstream.seen) == 3


def test_data_inspection_failure_is_finish_reason_content_filter(worker: DashScopeWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(400, {"code": "DataInspectionFailed", "message": "Input data may contain inappropriate content."})
    )
    answer = worker.invoke(ask())
    assert answer.finish_reason == "content_filter" and answer.text == ""


def test_data_inspection_mid_stream_keeps_what_came_before(worker: DashScopeWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            events=[
                *events(result({"content": "开头"})),
                *events(
                    {"code": "DataInspectionFailed", "message": "Output data may contain inappropriate content."},
                    status=400,
                    kind="error",
                ),
            ]
        )
    )
    answer = worker.invoke(ask())
    assert (answer.text, answer.finish_reason) == ("开头", "content_filter")


def test_an_error_event_mid_stream_raises_after_the_deltas(worker: DashScopeWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(
            events=[
                *events(result({"content": "部分"})),
                *events({"code": "InternalError", "message": "internal"}, status=500, kind="error"),
            ]
        )
    )
    got, error = drain(worker.stream(ask()))
    assert got == [TextDelta("部分")]
    assert isinstance(error, UpstreamUnavailableError)


def test_connection_reset_mid_stream(worker: DashScopeWorker, upstream: Upstream) -> None:
    upstream.add(
        Reply(events=events(result({"content": "a"}), result({"content": "b"}), result({}, "stop")), break_after=2)
    )
    got, error = drain(worker.stream(ask()))
    assert [e.text for e in got if isinstance(e, TextDelta)] == ["a", "b"]
    assert isinstance(error, UpstreamUnavailableError) and len(upstream.seen) == 1


def test_malformed_json_in_the_stream(worker: DashScopeWorker, upstream: Upstream) -> None:
    upstream.add(Reply(events=[*events(result({"content": "a"})), "id:2\nevent:result\ndata:{oops\n\n"]))
    got, error = drain(worker.stream(ask()))
    assert got == [TextDelta("a")] and isinstance(error, UpstreamUnavailableError)


def test_a_slow_first_byte_times_out(upstream_url: str, upstream: Upstream) -> None:
    worker = DashScopeWorker("qwen-plus", base_url=upstream_url, api_key=KEY, timeout=0.3, max_retries=0)
    upstream.add(Reply(events=events(result({"content": "late"}, "stop")), delay=1.0))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        worker.invoke(ask())
    assert time.monotonic() - started < 1.0


# -- settings ----------------------------------------------------------------------------------


def test_regions_and_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASHSCOPE_HTTP_BASE_URL", raising=False)
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="DASHSCOPE_API_KEY"):
        DashScopeWorker("qwen-plus")
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    assert DashScopeWorker("qwen-plus").client.base_url == REGIONS["cn"]
    intl = DashScopeWorker("qwen-plus", region="intl")
    assert intl.client.base_url == REGIONS["intl"] and "intl" in intl.client.base_url
    assert KEY not in repr(intl) and KEY not in repr(intl.client)


# -- embeddings --------------------------------------------------------------------------------


def test_embeddings_are_split_into_batches_dashscope_accepts(upstream_url: str, upstream: Upstream) -> None:
    worker = DashScopeWorker("text-embedding-v4", base_url=upstream_url, api_key=KEY)
    texts = [f"文本{i}" for i in range(23)]

    def page(start: int, count: int) -> Reply:
        items = [{"text_index": j, "embedding": [float(start + j), 1.0]} for j in reversed(range(count))]
        return Reply(body={"output": {"embeddings": items}, "usage": {"total_tokens": count}, "request_id": "r"})

    upstream.add(page(0, 10), page(10, 10), page(20, 3))
    answer = worker.embed(EmbeddingRequest(texts, input_type="query", dimensions=2, normalize=False))
    assert [v[0] for v in answer.vectors] == [float(i) for i in range(23)]
    assert answer.prompt_tokens == 23
    assert [len(s.body["input"]["texts"]) for s in upstream.seen] == [10, 10, 3]
    assert upstream.seen[0].path == "services/embeddings/text-embedding/text-embedding"
    assert upstream.seen[0].body["parameters"] == {"dimension": 2, "text_type": "query"}


async def test_async_chat_and_embeddings(upstream_url: str, upstream: Upstream) -> None:
    worker = DashScopeWorker("text-embedding-v2", base_url=upstream_url, api_key=KEY)
    assert worker.embedding_batch_size == 25
    upstream.add(
        Reply(events=events(result({"content": "异"}), result({"content": "步"}, "stop"))),
        Reply(
            body={"output": {"embeddings": [{"text_index": 0, "embedding": [3.0, 4.0]}]}, "usage": {"total_tokens": 1}}
        ),
    )
    answer = await worker.ainvoke(ask())
    assert answer.text == "异步"
    vectors = (await worker.aembed(EmbeddingRequest(["x"], input_type="document"))).vectors
    assert vectors == [[0.6, 0.8]]
