"""Conformance suite: every registered tool-call parser against one shared fixture set."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

import pytest

from modelport.core import Accumulator, Finish, TextDelta, ToolCall, ToolCallDelta
from modelport.workers.tool_parsers import ToolParser, get_tool_parser, register_tool_parser, tool_parser_names
from modelport.workers.tool_parsers.markup import MarkupToolParser


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


@pytest.mark.parametrize("name", tool_parser_names())
@pytest.mark.parametrize(
    "broken", ['{"name": "get_weather", "arguments": {"city": "Par', '{"nom": 1}', "not json at all {"]
)
def test_broken_calls_come_back_as_text_and_never_raise(name: str, broken: str) -> None:
    parser_cls = get_tool_parser(name)
    text = parser_cls.call_prefix + broken
    for pieces in chunkings(text).values():
        events = run(parser_cls, pieces)
        assert not any(isinstance(e, ToolCallDelta) for e in events)
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == text


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
