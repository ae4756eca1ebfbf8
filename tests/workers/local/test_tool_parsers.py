"""Conformance suite: every registered tool-call parser against one shared fixture set."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import pytest

from modelport.core import Accumulator, Finish, TextDelta, ToolCall, ToolCallDelta
from modelport.workers.local.tool_parsers import ToolParser, get_tool_parser, register_tool_parser, tool_parser_names
from modelport.workers.local.tool_parsers.base import KNOWN_MARKUP
from modelport.workers.local.tool_parsers.markup import MarkupToolParser


@dataclass(frozen=True)
class Case:
    name: str
    before: str
    calls: tuple[tuple[str, dict], ...]
    after: str = ""


CASES = [
    Case("text-only", "The capital of France is Paris. 🙂", ()),
    Case("one-call", "", (("get_weather", {"city": "Paris"}),)),
    Case("zero-args", "", (("list_files", {}),)),
    Case("nested", "", (("create_order", {"items": [{"sku": "A1", "quantity": 2}], "ship": {"express": True}}),)),
    Case("unicode", "", (("translate", {"text": "où est la gare ; {ici} ?", "lang": "日本語"}),)),
    Case("two-calls", "", (("get_weather", {"city": "Oslo"}), ("get_time", {"tz": "Europe/Oslo"}))),
    Case("text-before", "Let me check that for you.\n", (("get_weather", {"city": "Rome"}),)),
    Case("text-around", "Checking. ", (("add", {"a": 1, "b": -2}),), " Done."),
    Case("markup-in-arguments", "", (("echo", {"text": "a </tool_call> b [TOOL_CALLS] c <|python_tag|>"}),)),
    Case("json-like-text", "Use {braces} and <tags> freely.", ()),
]


def applicable(parser: type[ToolParser], case: Case) -> bool:
    if case.calls and case.before and not parser.text_before_calls:
        return False
    if case.calls and case.after and not parser.text_after_calls:
        return False
    # A text-only answer that itself looks like JSON is a call candidate for leading-JSON formats.
    return not (not case.calls and not parser.text_before_calls and case.before.lstrip()[:1] in "{[")


def render(parser: type[ToolParser], case: Case) -> str:
    calls = [ToolCall(f"c{i}", n, json.dumps(a, ensure_ascii=False)) for i, (n, a) in enumerate(case.calls)]
    return case.before + (parser().render_calls(calls) if calls else "") + case.after


def expected_text(parser: type[ToolParser], case: Case) -> str:
    # Between closed blocks the separator is ordinary text, and ordinary text passes through.
    between = (
        parser.call_separator * (len(case.calls) - 1) if issubclass(parser, MarkupToolParser) and parser.end else ""
    )
    return case.before + between + case.after


def chunkings(text: str) -> dict[str, list[str]]:
    rng = random.Random(len(text))
    out = {"whole": [text], "per-char": list(text)}
    for k in range(3):
        cuts = sorted(rng.sample(range(1, len(text)), min(len(text) - 1, rng.randint(1, 12)))) if len(text) > 1 else []
        out[f"random-{k}"] = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    return out


def run(parser_cls: type[ToolParser], pieces: list[str]) -> list[TextDelta | ToolCallDelta]:
    parser = parser_cls()
    events: list[TextDelta | ToolCallDelta] = []
    for piece in pieces:
        events += parser.feed(piece)
    return events + parser.finish()


PARAMS = [
    pytest.param(name, case, id=f"{name}-{case.name}")
    for name in tool_parser_names()
    for case in CASES
    if applicable(get_tool_parser(name), case)
]


def test_every_builtin_format_is_registered() -> None:
    assert {"hermes", "llama3-json", "mistral", "json"} <= set(tool_parser_names())


@pytest.mark.parametrize(("name", "case"), PARAMS)
def test_conformance(name: str, case: Case) -> None:
    parser_cls = get_tool_parser(name)
    text = render(parser_cls, case)
    results = {}
    for how, pieces in chunkings(text).items():
        events = run(parser_cls, pieces)
        calls = [e for e in events if isinstance(e, ToolCallDelta)]
        # id and name exactly once per call, on its first delta; indexes count up from 0.
        firsts = [e for e in calls if e.id is not None]
        assert [e.index for e in firsts] == list(range(len(case.calls))), how
        assert all(e.name for e in firsts), how
        assert all(e.name is None for e in calls if e.id is None), how
        for index in range(len(case.calls)):
            mine = [e for e in calls if e.index == index]
            assert mine[0].id is not None and sum(e.id is not None for e in mine) == 1
        result = Accumulator.collect([*events, Finish("stop")])
        got = [(c.name, json.loads(c.arguments)) for c in result.tool_calls]
        assert got == list(case.calls), how
        text_out = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert text_out == expected_text(parser_cls, case), how
        results[how] = (got, text_out)
    assert len({json.dumps(v, ensure_ascii=False) for v in results.values()}) == 1


def markup_of(parser_cls: type[ToolParser]) -> list[str]:
    markers = [getattr(parser_cls, a, None) for a in ("start", "end", "marker")]
    return [*KNOWN_MARKUP, *(m for m in markers if m)]


# Broken call bodies, with the name and the end of the arguments an incomplete call must keep.
BROKEN = {
    '{"name": "get_weather", "arguments": {"city": "Par': ("get_weather", '{"city": "Par'),
    '{"name": "get_wea': ("get_wea", ""),
    "{": ("", "{"),
    '{"nom": 1}': ("", '{"nom": 1}'),
    "not json at all {": ("", "not json at all {"),
}


@pytest.mark.parametrize("name", tool_parser_names())
@pytest.mark.parametrize("broken", list(BROKEN))
def test_broken_calls_never_put_markup_in_the_text_and_lose_nothing(name: str, broken: str) -> None:
    parser_cls = get_tool_parser(name)
    text = parser_cls.call_prefix + broken
    for how, pieces in chunkings(text).items():
        events = run(parser_cls, pieces)
        text_out = "".join(e.text for e in events if isinstance(e, TextDelta))
        calls = [e for e in events if isinstance(e, ToolCallDelta)]
        assert not any(marker in text_out for marker in markup_of(parser_cls)), how
        if text_out:  # a leading-JSON format whose answer is not a call: plain text, untouched
            assert text_out == text and not calls and not parser_cls.call_prefix, how
            continue
        # Otherwise one incomplete call holds what the model wrote.
        assert [e.index for e in calls if e.id is not None] == [0], how
        call_name, arguments_end = BROKEN[broken]
        assert [e.name for e in calls if e.id is not None] == [call_name], how
        assert "".join(e.arguments for e in calls).endswith(arguments_end), how


@pytest.mark.parametrize("name", tool_parser_names())
def test_a_call_cut_in_its_closing_marker_is_whole(name: str) -> None:
    parser_cls = get_tool_parser(name)
    call = parser_cls().render_call(ToolCall("c", "Joke", json.dumps({"setup": "a", "punchline": "b"})))
    for cut in range(1, len(parser_cls.call_suffix)):
        events = run(parser_cls, [call[:-cut]])
        result = Accumulator.collect([*events, Finish("length")])
        assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
            ("Joke", {"setup": "a", "punchline": "b"})
        ]
        assert result.text == ""


def test_a_call_cut_in_its_arguments_keeps_its_name_and_text() -> None:
    parser = get_tool_parser("hermes")()
    events = parser.feed('<tool_call>\n{"name": "Joke", "arguments": {"setup": "Why did') + parser.finish()
    assert parser.incomplete_calls == 1
    result = Accumulator.collect([*events, Finish("length")])
    assert result.text == ""
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("Joke", '{"setup": "Why did')]


def test_arguments_complete_but_for_the_calls_closing_brace_are_kept_whole() -> None:
    parser = get_tool_parser("json")()
    events = parser.feed('{"name": "f", "arguments": {"x": 1}') + parser.finish()
    assert [e.arguments for e in events if isinstance(e, ToolCallDelta) and e.arguments] == ['{"x": 1}']


def test_string_arguments_pass_through_as_written() -> None:
    # Some models write arguments as a JSON string; an unparsable one stays visible to the caller.
    parser = get_tool_parser("hermes")()
    events = parser.feed('<tool_call>{"name": "f", "arguments": "{oops"}</tool_call>') + parser.finish()
    assert [e.arguments for e in events if isinstance(e, ToolCallDelta) and e.arguments] == ["{oops"]


def test_custom_parser_registration() -> None:
    @register_tool_parser("test-bang")
    class Bang(get_tool_parser("hermes")):  # type: ignore[misc]
        start, end = "!!", "!!"

    assert get_tool_parser("test-bang") is Bang
    events = run(Bang, ['hi !!{"name": "f", "arguments": {}}!!'])
    assert [type(e).__name__ for e in events] == ["TextDelta", "ToolCallDelta", "ToolCallDelta"]


def test_unknown_parser_is_a_named_error() -> None:
    from modelport.core import BadRequestError

    with pytest.raises(BadRequestError) as info:
        get_tool_parser("nope")
    assert info.value.param == "tool_parser" and "hermes" in str(info.value)


def _output_events(request: Any, pieces: list[str]) -> list[Any]:
    from modelport.workers.local.output_parser import output_parser_for

    output = output_parser_for(request, get_tool_parser("hermes"))
    events = [e for piece in pieces for e in output.feed(piece, 0)]
    return [*events, *output.finish(0)]


def _joke_request(choice: str, **fields: Any) -> Any:
    from modelport.core import ChatRequest, ToolSpec, UserMessage

    joke = ToolSpec("Joke", parameters={"type": "object", "properties": {"setup": {"type": "string"}}})
    return ChatRequest([UserMessage("a joke")], tools=[joke, ToolSpec("Other")], tool_choice=choice, **fields)


@pytest.mark.parametrize("cut", ["<", "<tool", "<tool_call>", '<tool_call>\n{"na', '<tool_call>\n{"name": "Jo'])
def test_a_forced_answer_cut_anywhere_is_a_call_never_text(cut: str) -> None:
    events = _output_events(_joke_request("Joke"), list(cut))
    result = Accumulator.collect([*events, Finish("length")])
    assert result.text == ""
    assert [c.name for c in result.tool_calls] == ["Joke"]


def test_stray_markup_is_taken_out_of_auto_text_as_it_streams() -> None:
    text = "Here is the result: <tool_response>\n42\n</tool_response> and </tool_call> done."
    events = _output_events(_joke_request("auto"), list(text))
    result = Accumulator.collect([*events, Finish("stop")])
    assert result.text == "Here is the result: 42 and  done."
    assert not result.tool_calls


@pytest.mark.parametrize("size", [1, 2, 3, 7, 100])
def test_an_echoed_tool_response_leaves_only_its_text(size: int) -> None:
    # What a small model writes after a tool result: the result turn copied, tags included.
    text = "<tool_response>\nIt is 22 degrees.\n</tool_response>\n<tool_response>"
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    result = Accumulator.collect([*_output_events(_joke_request("auto"), pieces), Finish("stop")])
    assert result.text == "It is 22 degrees."


def test_a_repeated_call_is_dropped_and_flagged() -> None:
    from modelport.workers.local.output_parser import output_parser_for

    output = output_parser_for(_joke_request("required", parallel_tool_calls=True), get_tool_parser("hermes"))
    one = '<tool_call>\n{"name": "Joke", "arguments": {"setup": "a"}}\n</tool_call>'
    events = list(output.feed(one + "\n" + one, 0)) + list(output.finish(0))
    result = Accumulator.collect([*events, Finish("tool_calls")])
    assert len(result.tool_calls) == 1 and result.text == ""
    assert output.ended


@pytest.mark.parametrize("chunks", [["Sure. <tool_call>\n{}"], list("Sure. <tool_call>\n{"), ["Sure. [TOOL_CALLS][{"]])
def test_a_call_opened_under_tool_choice_none_ends_the_text_there(chunks: list[str]) -> None:
    from modelport.workers.local.output_parser import output_parser_for

    output = output_parser_for(_joke_request("none"), get_tool_parser("hermes"))
    events = [e for chunk in chunks for e in output.feed(chunk, 0)] + list(output.finish(0))
    result = Accumulator.collect([*events, Finish("stop")])
    assert result.text == "Sure. " and not result.tool_calls
    assert output.ended and output.constraint is None


def test_tools_offered_with_tool_choice_none_are_in_the_prompt_auto_renders() -> None:
    from modelport.workers.local.prompting import template_inputs

    parser = get_tool_parser("hermes")()
    for native in (False, True):
        none = template_inputs(_joke_request("none"), parser, native_tools=native)
        assert none == template_inputs(_joke_request("auto"), parser, native_tools=native)
    messages, _ = template_inputs(_joke_request("none"), parser, native_tools=False)
    assert '"name": "Joke"' in messages[0]["content"]
