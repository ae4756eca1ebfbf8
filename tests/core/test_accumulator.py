"""The accumulator: stream events folded into whole results, choices and tool calls intact."""

import pytest

from modelport.core import (
    Accumulator,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    UpstreamUnavailableError,
    Usage,
)


def test_folds_text_reasoning_and_tool_calls() -> None:
    events = [
        ReasoningDelta("think "),
        ReasoningDelta("hard"),
        TextDelta("Hel"),
        TextDelta("lo"),
        ToolCallDelta(0, "call_a", "get_weather"),
        ToolCallDelta(1, "call_b", "get_time"),
        ToolCallDelta(0, arguments='{"city": '),
        ToolCallDelta(1, arguments="{}"),
        ToolCallDelta(0, arguments='"Paris"}'),
        Finish("tool_calls", Usage(10, 5)),
    ]
    result = Accumulator.collect(events)
    assert result.text == "Hello"
    assert result.message.reasoning == "think hard"
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [
        ("call_a", "get_weather", '{"city": "Paris"}'),
        ("call_b", "get_time", "{}"),
    ]
    assert result.finish_reason == "tool_calls"
    assert result.usage.total_tokens == 15


def test_several_choices_and_usage_on_last() -> None:
    events = [
        TextDelta("a", choice=0),
        TextDelta("b", choice=1),
        Finish("stop", None, choice=0),
        Finish("length", Usage(3, 2), choice=1),
    ]
    result = Accumulator.collect(events)
    assert [c.message.content for c in result.choices] == ["a", "b"]
    assert [c.finish_reason for c in result.choices] == ["stop", "length"]
    assert result.usage == Usage(3, 2)


def test_stream_without_finish_is_an_error_not_a_short_answer() -> None:
    with pytest.raises(UpstreamUnavailableError):
        Accumulator.collect([TextDelta("cut o")])


def test_tool_only_answer_has_no_content() -> None:
    result = Accumulator.collect([ToolCallDelta(0, "c", "f"), Finish("tool_calls")])
    assert result.message.content is None
    assert result.tool_calls[0].arguments == "{}"
