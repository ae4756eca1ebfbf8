"""ChatModelPort and RunnableWorker behaviour beyond the standard suites."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableLambda

from modelport.core import ChatRequest, Finish, TextDelta, ToolCallDelta, Usage, UserMessage
from modelport.integrations.langchain import ChatModelPort
from modelport.integrations.langchain.runnable_worker import RunnableWorker
from modelport.workers import ModelEntry, ModelRegistry
from modelport.workers.kinds.fake import FakeChatWorker, tool_call_events


def get_weather(city: str) -> str:
    """Get the weather for a city."""
    return "sunny"


@pytest.mark.parametrize(
    "choice", ["get_weather", "any", "required", True, {"type": "function", "function": {"name": "get_weather"}}]
)
def test_every_tool_choice_form_forces_the_call(choice: object) -> None:
    llm = ChatModelPort(model="smollm2-135m", temperature=0, max_tokens=60)
    message = llm.bind_tools([get_weather], tool_choice=choice).invoke("What's the weather in Paris?")  # type: ignore[arg-type]
    assert [c["name"] for c in message.tool_calls] == ["get_weather"]
    assert message.response_metadata["finish_reason"] == "tool_calls"


def test_none_and_auto_tool_choice_are_accepted() -> None:
    llm = ChatModelPort(model="smollm2-135m", temperature=0, max_tokens=20)
    for choice in ("none", "auto"):
        message = llm.bind_tools([get_weather], tool_choice=choice).invoke("Hello")
        assert isinstance(message, AIMessage)


def test_stream_carries_tool_chunks_usage_and_last_position() -> None:
    worker = FakeChatWorker([tool_call_events("get_weather", '{"city": "Paris"}', chunk=5)])
    chunks = list(ChatModelPort(worker=worker).stream("hi"))
    assert chunks[-1].chunk_position == "last"
    full = chunks[0]
    for chunk in chunks[1:]:
        full = full + chunk
    assert isinstance(full, AIMessageChunk)
    assert full.tool_calls[0]["args"] == {"city": "Paris"}
    assert full.usage_metadata and full.usage_metadata["total_tokens"] == 2
    assert full.response_metadata["model_provider"] == "modelport"


def test_unparsable_arguments_become_an_invalid_tool_call() -> None:
    events = [ToolCallDelta(0, "c1", "get_weather", '{"city": "Par'), Finish("tool_calls", Usage(1, 1))]
    message = ChatModelPort(worker=FakeChatWorker([events])).invoke("hi")
    assert message.tool_calls == []
    assert message.invalid_tool_calls[0]["name"] == "get_weather"
    assert message.invalid_tool_calls[0]["args"] == '{"city": "Par'


def test_tool_message_histories_reach_the_worker() -> None:
    worker = FakeChatWorker(["ok"])
    history = [
        SystemMessage("sys"),
        HumanMessage("weather?"),
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}]),
        ToolMessage([{"type": "text", "text": "sunny"}], tool_call_id="c1"),
        ToolMessage("boom", tool_call_id="c2", status="error"),
    ]
    ChatModelPort(worker=worker, stop=["x"], seed=3).invoke(history, temperature=0.5, max_tokens=7)
    request = worker.requests[-1]
    assert request.messages[3].content == "sunny" and request.messages[4].is_error  # type: ignore[union-attr]
    assert request.messages[2].tool_calls[0].arguments == '{"city": "Paris"}'  # type: ignore[union-attr]
    assert (request.temperature, request.max_tokens, request.seed, request.stop) == (0.5, 7, 3, ("x",))


def test_profile_comes_from_capabilities() -> None:
    profile = ChatModelPort(model="smollm2-135m").profile
    assert profile is not None
    assert profile["tool_calling"] and profile["tool_choice"] and profile["max_input_tokens"] == 4096
    assert not profile["image_inputs"]


def test_bad_request_names_the_field() -> None:
    from modelport.core import BadRequestError

    with pytest.raises(BadRequestError) as info:
        ChatModelPort(model="smollm2-135m").invoke("hi", temperature=-1)
    assert info.value.param == "temperature"


def test_runnable_worker_wraps_chains_strings_dicts_and_messages() -> None:
    request = ChatRequest([UserMessage("ping")])
    echo = RunnableWorker(RunnableLambda(lambda msgs: msgs[-1].text.upper()))
    assert echo.invoke(request).text == "PING"
    keyed = RunnableWorker(RunnableLambda(lambda d: {"answer": d["q"] + "!"}), input_key="q")
    assert keyed.invoke(request).text == "ping!"
    ai = RunnableWorker(
        RunnableLambda(lambda _: AIMessage("", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "t1"}]))
    )
    result = ai.invoke(request)
    assert result.tool_calls[0].name == "f" and result.finish_reason == "tool_calls"


async def test_runnable_worker_streams_a_chat_model_chain() -> None:
    chain = ChatModelPort(model="smollm2-135m", temperature=0, max_tokens=12)
    worker = RunnableWorker(chain)
    events = [e async for e in worker.astream(ChatRequest([UserMessage("Hi")]))]
    assert sum(isinstance(e, TextDelta) for e in events) > 1
    assert isinstance(events[-1], Finish)


def test_runnable_kind_from_config_factory() -> None:
    registry = ModelRegistry([ModelEntry("echo-chain", "runnable", {"factory": "tests.integrations.chains:echo"})])
    assert registry.chat("echo-chain").invoke(ChatRequest([UserMessage("hey")])).text == "hey"


def test_bad_factory_is_a_named_error() -> None:
    from modelport.core import BadRequestError

    with pytest.raises(BadRequestError) as info:
        RunnableWorker(factory="no_such_module:thing")
    assert info.value.param == "factory"


async def test_runnable_usage_adds_up_every_model_call_inside() -> None:
    from langchain_core.messages import HumanMessage

    from modelport.core import Accumulator
    from modelport.workers.kinds.fake import FakeChatWorker

    llm = ChatModelPort(worker=FakeChatWorker(["first answer", "second, longer answer"]))
    chain = llm | RunnableLambda(lambda m: [HumanMessage(m.text)]) | llm
    worker = RunnableWorker(chain)
    result = worker.invoke(ChatRequest([UserMessage("go")]))
    # FakeChatWorker reports 1 prompt token and one completion token per 4-character delta.
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (2, 3 + 6)
    again = await Accumulator.acollect(worker.astream(ChatRequest([UserMessage("go")])))
    assert again.usage.prompt_tokens == 2 and again.usage.completion_tokens == 9


def test_sampling_fields_reach_the_worker() -> None:
    worker = FakeChatWorker(["ok"])
    llm = ChatModelPort(worker=worker, presence_penalty=0.5, logit_bias={7: -100.0}, top_k=5)
    llm.invoke("hi", frequency_penalty=1.0, min_p=0.1)
    request = worker.requests[-1]
    assert (request.presence_penalty, request.frequency_penalty, request.top_k, request.min_p) == (0.5, 1.0, 5, 0.1)
    assert request.logit_bias == {7: -100.0}


def test_a_penalty_changes_a_local_models_loop() -> None:
    loop = "Repeat the word 'apple' fifty times, separated by spaces."
    plain = ChatModelPort(model="smollm2-135m", temperature=0, max_tokens=40).invoke(loop).content
    # A frequency penalty grows with each repeat, so it breaks the loop; under SmolLM2's default
    # system prompt "apple" leads by more than the flat 2.0 a presence penalty could take off.
    penalised = ChatModelPort(model="smollm2-135m", temperature=0, max_tokens=40, frequency_penalty=1.0).invoke(loop)
    assert penalised.content != plain
    assert str(penalised.content).count("apple") < str(plain).count("apple")


def test_json_mode_takes_no_schema_as_chatopenai_does() -> None:
    worker = FakeChatWorker(['{"city": "Paris", "sunny": true}'])
    structured = ChatModelPort(worker=worker).with_structured_output(None, method="json_mode")
    assert structured.invoke("Weather in Paris, as JSON.") == {"city": "Paris", "sunny": True}
    with pytest.raises(ValueError, match="needs a schema"):
        ChatModelPort(worker=worker).with_structured_output(None)


def test_a_tool_with_an_invalid_schema_is_a_typed_error_naming_it() -> None:
    from modelport.core import BadRequestError

    bad = {"type": "function", "function": {"name": "weather", "parameters": {"type": "objekt"}}}
    llm = ChatModelPort(worker=FakeChatWorker(["x"]))
    with pytest.raises(BadRequestError) as info:
        llm.bind_tools([bad]).invoke("weather?")
    assert info.value.param == "tools[0].function.parameters" and "objekt" in info.value.message
