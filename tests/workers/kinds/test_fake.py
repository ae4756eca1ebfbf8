"""The fake kind: scripted and echoed answers, tool calls, declared capabilities."""

import pytest

from modelport.core import ChatRequest, Finish, TextDelta, UserMessage
from modelport.workers.kinds.fake import FakeChatWorker, tool_call_events

REQ = ChatRequest([UserMessage("ping")])


def test_scripted_answers_cycle() -> None:
    worker = FakeChatWorker(["one", "two"])
    assert [worker.invoke(REQ).text for _ in range(3)] == ["one", "two", "one"]
    assert worker.requests[0] is REQ


def test_echo_by_default_and_stream_matches_invoke() -> None:
    worker = FakeChatWorker()
    events = list(worker.stream(REQ))
    assert isinstance(events[-1], Finish)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == worker.invoke(REQ).text == "ping"


async def test_async_and_tool_calls() -> None:
    worker = FakeChatWorker([tool_call_events("get_weather", '{"city": "Paris"}')])
    result = await worker.ainvoke(REQ)
    assert result.tool_calls[0].name == "get_weather"
    assert result.tool_calls[0].parsed_arguments() == {"city": "Paris"}


def test_script_function() -> None:
    worker = FakeChatWorker(script=lambda r: [TextDelta(str(len(r.messages))), Finish("stop")])
    assert worker.invoke(REQ).text == "1"


def test_fake_kind_from_registry() -> None:
    from modelport.workers import ModelEntry, ModelRegistry

    registry = ModelRegistry([ModelEntry("f", "fake", {"responses": ["hello"]})])
    assert registry.chat("f").invoke(REQ).text == "hello"


def test_declared_capabilities_are_enforced() -> None:
    from modelport.core import BadRequestError, Capabilities

    worker = FakeChatWorker(capabilities=Capabilities())
    with pytest.raises(BadRequestError) as info:
        worker.invoke(ChatRequest([UserMessage("x")], logprobs=True))
    assert info.value.param == "logprobs"
