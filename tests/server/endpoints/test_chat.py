"""/v1/chat/completions through the official openai SDK, on real loopback HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest

SYSTEM = {"role": "system", "content": "You are a helpful assistant."}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def ask(text: str) -> list[dict[str, Any]]:
    return [SYSTEM, {"role": "user", "content": text}]


def test_create_on_the_real_model(client: Any) -> None:
    out = client.chat.completions.create(
        model="smollm2-135m", messages=ask("What is the capital of France?"), temperature=0, max_tokens=24
    )
    assert out.object == "chat.completion" and out.model == "smollm2-135m"
    assert out.choices[0].message.role == "assistant" and out.choices[0].message.content.strip()
    assert out.choices[0].finish_reason in ("stop", "length")
    assert out.usage.prompt_tokens > 0 and out.usage.completion_tokens > 0


def test_stream_matches_the_whole_answer(client: Any) -> None:
    kwargs: dict[str, Any] = {
        "model": "smollm2-135m",
        "messages": ask("Name three colours."),
        "temperature": 0,
        "max_tokens": 24,
        "seed": 7,
    }
    whole = client.chat.completions.create(**kwargs).choices[0].message.content
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finishes) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_without_include_usage_there_is_no_usage_chunk(client: Any) -> None:
    chunks = list(client.chat.completions.create(model="fake", messages=ask("hello"), stream=True))
    assert all(c.choices for c in chunks) and all(c.usage is None for c in chunks)


def test_stream_helper_with_tools(client: Any) -> None:
    with client.chat.completions.stream(model="fake", messages=ask("call get_weather"), tools=[WEATHER]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    (call,) = final.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id.startswith("call_") and final.choices[0].finish_reason == "tool_calls"


def test_streamed_tool_call_deltas_are_shaped_like_openais(client: Any) -> None:
    chunks = list(
        client.chat.completions.create(model="fake", messages=ask("call get_weather"), tools=[WEATHER], stream=True)
    )
    calls = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert calls[0].id and calls[0].function.name == "get_weather" and calls[0].type == "function"
    assert all(c.id is None and c.function.name is None and c.index == 0 for c in calls[1:])
    assert "".join(c.function.arguments or "" for c in calls) == '{"city": "Paris"}'


def test_forced_tool_call_on_the_real_model(client: Any) -> None:
    out = client.chat.completions.create(
        model="smollm2-135m",
        messages=ask("What's the weather in Paris?"),
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        temperature=0,
    )
    (call,) = out.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert isinstance(json.loads(call.function.arguments)["city"], str)
    assert out.choices[0].finish_reason == "tool_calls"


def test_tool_results_round_trip(client: Any) -> None:
    history = [
        *ask("What's the weather in Paris?"),
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
    ]
    out = client.chat.completions.create(
        model="smollm2-135m", messages=history, tools=[WEATHER], temperature=0, max_tokens=32
    )
    assert out.choices[0].message.content or out.choices[0].message.tool_calls


def test_json_schema_response_format_validates(client: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
        "required": ["city", "population"],
        "additionalProperties": False,
    }
    out = client.chat.completions.create(
        model="smollm2-135m",
        messages=ask("Describe Paris as JSON."),
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema, "strict": True}},
        temperature=0,
    )
    data = json.loads(out.choices[0].message.content)
    assert set(data) == {"city", "population"} and isinstance(data["population"], int)


def test_n_stop_seed_and_max_completion_tokens(client: Any) -> None:
    out = client.chat.completions.create(
        model="smollm2-135m",
        messages=ask("Count: one, two, three, four"),
        n=2,
        seed=3,
        temperature=1.0,
        max_completion_tokens=12,
        stop=["\n\n"],
    )
    assert [c.index for c in out.choices] == [0, 1]
    assert all(c.finish_reason in ("stop", "length") for c in out.choices)
    assert out.usage.completion_tokens <= 24


def test_logprobs_where_the_worker_supports_them(client: Any) -> None:
    out = client.chat.completions.create(model="fake", messages=ask("two words"), logprobs=True, top_logprobs=2)
    content = out.choices[0].logprobs.content
    assert [t.token for t in content] == ["two ", "words "]
    assert all(len(t.top_logprobs) == 2 and t.bytes == list(t.token.encode()) for t in content)
    chunks = list(client.chat.completions.create(model="fake", messages=ask("two words"), logprobs=True, stream=True))
    streamed = [t.token for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert streamed == ["two ", "words "]


def test_logprobs_on_the_real_model(client: Any) -> None:
    out = client.chat.completions.create(
        model="smollm2-135m", messages=ask("Hi"), logprobs=True, top_logprobs=2, max_tokens=6, temperature=0
    )
    content = out.choices[0].logprobs.content
    assert "".join(t.token for t in content) == out.choices[0].message.content
    assert all(len(t.top_logprobs) == 2 and t.logprob <= 0 for t in content)


def test_logprobs_elsewhere_are_a_clear_400(client: Any) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fake-nologprobs", messages=ask("Hi"), logprobs=True)
    assert caught.value.status_code == 400 and caught.value.body["param"] == "logprobs"


async def test_async_client_stream(aclient: Any) -> None:
    stream = await aclient.chat.completions.create(model="fake", messages=ask("async hello"), stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "async hello"


def test_legacy_completions(client: Any) -> None:
    out = client.completions.create(model="smollm2-135m", prompt="Say hi.", max_tokens=8, temperature=0)
    assert out.object == "text_completion" and out.choices[0].text
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(
            model="smollm2-135m", prompt="Say hi.", max_tokens=8, temperature=0, stream=True
        )
        if c.choices
    )
    assert streamed == out.choices[0].text
    several = client.completions.create(model="fake", prompt=["one", "two"], n=1)
    assert [c.text for c in several.choices] == ["one", "two"]


def test_auto_mode_calls_and_the_threshold_is_an_extra_body_field(client: Any) -> None:
    kwargs: dict[str, Any] = {
        "model": "smollm2-135m",
        "messages": [{"role": "user", "content": "What's the weather in Paris?"}],
        "tools": [WEATHER],
        "temperature": 0,
        "max_tokens": 64,
    }
    called = client.chat.completions.create(**kwargs)
    assert called.choices[0].finish_reason == "tool_calls"
    assert called.choices[0].message.content in (None, "")
    assert json.loads(called.choices[0].message.tool_calls[0].function.arguments)["city"] == "Paris"
    prose = client.chat.completions.create(**kwargs, extra_body={"tool_call_threshold": 1e9})
    assert not prose.choices[0].message.tool_calls and prose.choices[0].message.content


def test_a_bad_threshold_is_a_400_naming_it(client: Any) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="fake", messages=ask("hi"), tools=[WEATHER], extra_body={"tool_call_threshold": "high"}
        )
    assert info.value.param == "tool_call_threshold"
