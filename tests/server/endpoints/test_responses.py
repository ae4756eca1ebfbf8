"""/v1/responses through the official ``openai`` SDK, on the built-in GGUF and scripted fakes.

Every response body and streamed event is checked against the OpenAI spec's Responses schemas
(the conftest's ``SpecCheck``).
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from modelport.core.messages import content_text
from tests.server.conftest import KEYS, REASONER_SEEN

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}


def test_a_plain_answer(client: Any) -> None:
    response = client.responses.create(
        model="smollm2-135m", input="Name the capital of France.", max_output_tokens=24, temperature=0
    )
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status in ("completed", "incomplete")
    assert "Paris" in response.output_text
    message = response.output[0]
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "output_text" and message.content[0].annotations == []
    usage = response.usage
    assert usage.input_tokens > 5 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert response.temperature == 0 and response.max_output_tokens == 24 and response.store is True
    assert "user" not in response.model_dump(exclude_unset=True)


def test_a_forced_call_is_a_function_call_item(client: Any) -> None:
    response = client.responses.create(
        model="smollm2-135m",
        input="What is the weather in Paris?",
        tools=[WEATHER, {"type": "web_search", "external_web_access": False}],
        tool_choice="required",
        max_output_tokens=64,
    )
    calls = [item for item in response.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather"]
    assert isinstance(json.loads(calls[0].arguments)["city"], str)
    assert calls[0].call_id and calls[0].status == "completed"
    assert response.output_text == ""


def test_hosted_tools_are_left_out_and_reported(base_url: str) -> None:
    body = {
        "model": "fake",
        "input": "hello",
        "tools": [{"type": "web_search", "external_web_access": False}, WEATHER],
    }
    answer = httpx.post(f"{base_url}/responses", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-modelport-dropped-tools"] == "web_search"


def test_a_call_cut_by_the_budget_is_an_incomplete_call_never_text(client: Any) -> None:
    response = client.responses.create(
        model="smollm2-135m",
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        max_output_tokens=3,
    )
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    calls = [item for item in response.output if item.type == "function_call"]
    assert calls and calls[0].status == "incomplete" and calls[0].name == "get_weather"
    assert "<" not in response.output_text and "{" not in response.output_text


def test_json_schema_text_format(client: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
        "additionalProperties": False,
    }
    response = client.responses.create(
        model="smollm2-135m",
        input="Name a city and its country.",
        text={"format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}},
        max_output_tokens=60,
    )
    assert set(json.loads(response.output_text)) == {"city", "country"}


class Person(BaseModel):
    name: str
    age: int


def test_parse_with_a_pydantic_model(client: Any) -> None:
    parsed = client.responses.parse(
        model="smollm2-135m", input="Invent a person.", text_format=Person, max_output_tokens=60
    )
    assert isinstance(parsed.output_parsed, Person)


def test_the_stream_helper_builds_the_same_answer(client: Any) -> None:
    kinds: list[str] = []
    deltas: list[str] = []
    with client.responses.stream(
        model="smollm2-135m", input="Name the capital of France.", max_output_tokens=24, temperature=0
    ) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    order = [k for k in kinds if not k.endswith(".delta")]
    assert order[2:6] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
    ]
    assert "".join(deltas) == final.output_text and "Paris" in final.output_text


def test_previous_response_id_carries_the_conversation_for_three_turns(client: Any) -> None:
    first = client.responses.create(model="smollm2-135m", input="My name is Ada.", max_output_tokens=16)
    second = client.responses.create(
        model="smollm2-135m", input="I live in Paris.", previous_response_id=first.id, max_output_tokens=16
    )
    third = client.responses.create(
        model="smollm2-135m", input="What is my name?", previous_response_id=second.id, max_output_tokens=16
    )
    # Each turn's input holds the earlier turns: input, output and the new message.
    assert first.usage.input_tokens < second.usage.input_tokens < third.usage.input_tokens
    assert third.previous_response_id == second.id
    assert client.responses.retrieve(second.id).output_text == second.output_text
    items = client.responses.input_items.list(third.id)
    assert [i.type for i in items.data] == ["message"] and items.data[0].content[0].text == "What is my name?"
    assert client.responses.delete(first.id) is None
    import openai

    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_an_unknown_previous_response_is_a_404(base_url: str) -> None:
    body = {"model": "fake", "input": "hi", "previous_response_id": "resp_nope"}
    answer = httpx.post(f"{base_url}/responses", json=body, timeout=30)
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["param"] == "previous_response_id" and error["code"] == "previous_response_not_found"


def test_a_stored_response_is_seen_only_by_its_key(keyed_url: str) -> None:
    first, second = (f"Bearer {k}" for k in KEYS[:2])
    made = httpx.post(
        f"{keyed_url}/responses", json={"model": "fake", "input": "mine"}, headers={"Authorization": first}
    )
    assert made.status_code == 200, made.text
    rid = made.json()["id"]
    assert httpx.get(f"{keyed_url}/responses/{rid}", headers={"Authorization": first}).status_code == 200
    other = httpx.get(f"{keyed_url}/responses/{rid}", headers={"Authorization": second})
    assert other.status_code == 404
    follow = {"model": "fake", "input": "more", "previous_response_id": rid}
    assert httpx.post(f"{keyed_url}/responses", json=follow, headers={"Authorization": second}).status_code == 404


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"background": True}, "background"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"tools": [{"type": "custom", "name": "x"}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "name": "f", "parameters": {"type": "objekt"}}]}, "tools[0].parameters"),
        ({"input": [{"type": "message", "role": "robot", "content": "x"}]}, "input[0].role"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
    ],
)
def test_what_cannot_be_honoured_is_refused_by_name(base_url: str, extra: dict[str, Any], param: str) -> None:
    answer = httpx.post(f"{base_url}/responses", json={"model": "fake", "input": "hi", **extra}, timeout=30)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param


def test_an_over_long_input_names_input(base_url: str) -> None:
    body = {"model": "smollm2-135m", "input": "lighthouse " * 5000}
    answer = httpx.post(f"{base_url}/responses", json=body, timeout=60)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "input", answer.text


def test_namespaced_tools_are_called_by_namespace_and_name(client: Any) -> None:
    crm = {
        "type": "namespace",
        "name": "crm",
        "description": "Customer records.",
        "tools": [{**WEATHER, "name": "lookup", "description": "Look a customer up by city."}],
    }
    response = client.responses.create(
        model="smollm2-135m",
        input="Find the customer in Paris.",
        tools=[crm],
        tool_choice="required",
        max_output_tokens=64,
    )
    call = next(item for item in response.output if item.type == "function_call")
    dumped = call.model_dump()
    assert dumped["name"] == "lookup" and dumped["namespace"] == "crm"
    # Given back, the call and its output continue the conversation.
    follow = client.responses.create(
        model="fake",
        input=[
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": "lookup",
                "namespace": "crm",
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "Ada Lovelace"},
        ],
        tools=[crm],
    )
    assert follow.status == "completed"


def test_sealed_reasoning_survives_a_stateless_turn(client: Any) -> None:
    first = client.responses.create(
        model="fake-reasoner", input="the sea", store=False, include=["reasoning.encrypted_content"]
    )
    reasoning = next(item for item in first.output if item.type == "reasoning")
    assert reasoning.summary[0].text == "thinking about the sea"
    assert reasoning.encrypted_content and "sea" not in reasoning.encrypted_content
    assert first.usage.output_tokens_details.reasoning_tokens == 2
    import openai

    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)  # store: false keeps nothing
    REASONER_SEEN.clear()
    given_back = [{**reasoning.model_dump(exclude_none=True), "summary": []}]  # the text only sealed
    client.responses.create(
        model="fake-reasoner",
        input=[
            {"type": "message", "role": "user", "content": "the sea"},
            *given_back,
            {"type": "message", "role": "assistant", "content": "the answer"},
            {"type": "message", "role": "user", "content": "and the sky?"},
        ],
        store=False,
    )
    # The session's fake model is shared: pick this turn's request out of what it saw.
    turn = next(r for r in REASONER_SEEN if content_text(r.messages[-1].content) == "and the sky?")
    assistant = [m for m in turn.messages if m.role == "assistant"]
    assert assistant and assistant[0].reasoning == "thinking about the sea"


def test_a_stream_that_fails_midway_ends_with_an_error_then_failed(base_url: str) -> None:
    body = {"model": "fake", "input": "fail midway", "stream": True}
    kinds = []
    with httpx.stream("POST", f"{base_url}/responses", json=body, timeout=30) as answer:
        for line in answer.iter_lines():
            if line.startswith("data: "):
                kinds.append(json.loads(line[6:])["type"])
    assert kinds[-2:] == ["error", "response.failed"]
    assert "response.output_text.delta" in kinds


def test_input_tokens_counts_what_a_response_would_send(client: Any, base_url: str) -> None:
    body = {"model": "smollm2-135m", "input": "Name the capital of France.", "instructions": "Be brief."}
    counted = httpx.post(f"{base_url}/responses/input_tokens", json=body, timeout=30)
    assert counted.status_code == 200, counted.text
    made = client.responses.create(**body, max_output_tokens=5)
    assert counted.json() == {"object": "response.input_tokens", "input_tokens": made.usage.input_tokens}


def test_langchain_chat_openai_in_responses_mode(base_url: str) -> None:
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI

    @tool
    def get_weather(city: str) -> str:
        """Get the current weather for a city."""
        return f"sunny in {city}"

    llm = ChatOpenAI(
        model="smollm2-135m", base_url=base_url, api_key="unused", use_responses_api=True, max_tokens=48, temperature=0
    )
    assert "Paris" in llm.invoke("Name the capital of France.").text
    chunks = list(llm.stream("Name the capital of France."))
    assert "Paris" in "".join(c.text for c in chunks)
    called = llm.bind_tools([get_weather], tool_choice="any").invoke("Weather in Paris?")
    assert [c["name"] for c in called.tool_calls] == ["get_weather"]
    person = llm.with_structured_output(Person, method="json_schema").invoke("Invent a person.")
    assert isinstance(person, Person)


def test_cache_key_and_effort_reach_the_worker_from_both_endpoints(client: Any) -> None:
    REASONER_SEEN.clear()
    client.responses.create(
        model="fake-reasoner", input="hi", prompt_cache_key="conv-9", reasoning={"effort": "low"}, store=False
    )
    client.chat.completions.create(
        model="fake-reasoner",
        messages=[{"role": "user", "content": "hi"}],
        prompt_cache_key="conv-9",
        reasoning_effort="high",
    )
    assert [(r.cache_key, r.reasoning_effort) for r in REASONER_SEEN] == [("conv-9", "low"), ("conv-9", "high")]
