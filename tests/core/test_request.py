"""Chat and embedding requests: every field checked on construction, named when wrong."""

import pytest

from modelport.core import (
    AssistantMessage,
    BadRequestError,
    ChatRequest,
    ImagePart,
    NamedToolChoice,
    ResponseFormat,
    TextPart,
    ToolCall,
    ToolMessage,
    ToolSpec,
    UserMessage,
    message_from_dict,
    message_to_dict,
)

HI = [UserMessage("hi")]
WEATHER = ToolSpec("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}})


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("temperature", {"temperature": -0.1}),
        ("temperature", {"temperature": 2.5}),
        ("top_p", {"top_p": 0}),
        ("max_tokens", {"max_tokens": 0}),
        ("max_tokens", {"max_tokens": -3}),
        ("n", {"n": 0}),
        ("stop", {"stop": [""]}),
        ("tool_choice", {"tool_choice": "sometimes", "tools": [WEATHER]}),
        ("tool_choice", {"tool_choice": {"type": "function", "function": {"name": "nope"}}, "tools": [WEATHER]}),
        ("tool_choice", {"tool_choice": "required"}),
        ("tools", {"tools": [WEATHER, WEATHER]}),
        ("messages", {}),
    ],
)
def test_bad_fields_are_named(field: str, kwargs: dict) -> None:
    messages = [] if field == "messages" else HI
    with pytest.raises(BadRequestError) as info:
        ChatRequest(messages, **kwargs)
    assert info.value.param == field
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("any", "required"),
        (True, "required"),
        ("get_weather", NamedToolChoice("get_weather")),
        ({"type": "function", "function": {"name": "get_weather"}}, NamedToolChoice("get_weather")),
        ({"type": "any"}, "required"),
        (None, None),
    ],
)
def test_tool_choice_forms(value: object, expected: object) -> None:
    assert ChatRequest(HI, tools=[WEATHER], tool_choice=value).tool_choice == expected


def test_stop_string_becomes_tuple() -> None:
    assert ChatRequest(HI, stop="END").stop == ("END",)


def test_message_round_trip() -> None:
    messages = [
        UserMessage((TextPart("look"), ImagePart("data:image/png;base64,AA", "low"))),
        AssistantMessage(None, (ToolCall("call_1", "get_weather", '{"city": "Paris"}'),)),
        ToolMessage("sunny", "call_1", "get_weather"),
    ]
    for message in messages:
        assert message_from_dict(message_to_dict(message)) == message


def test_unknown_role_is_named() -> None:
    with pytest.raises(BadRequestError) as info:
        message_from_dict({"role": "robot", "content": "x"}, where="messages[2]")
    assert info.value.param == "messages[2].role"


def test_response_format_json_schema_needs_schema() -> None:
    with pytest.raises(BadRequestError) as info:
        ResponseFormat.from_dict({"type": "json_schema", "json_schema": {"name": "x"}})
    assert info.value.param == "response_format.json_schema.schema"
    fmt = ResponseFormat.from_dict({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}})
    assert fmt.to_dict()["json_schema"]["schema"] == {"type": "object"}
