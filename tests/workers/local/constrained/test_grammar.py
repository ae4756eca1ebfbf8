"""The schema-to-grammar converter, checked by xgrammar's matcher and llama.cpp's parser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelport.workers.local.constrained.grammar import MAX_STRING_LENGTH, schema_to_gbnf

xgr = pytest.importorskip("xgrammar")
testing = pytest.importorskip("xgrammar.testing")

EVAL = [json.loads(line) for line in (Path(__file__).parents[3] / "data" / "tool_eval.jsonl").read_text().splitlines()]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for case in EVAL for t in case["tools"]}


def accepts(grammar: str, text: str) -> bool:
    return bool(testing._is_grammar_accept_string(grammar, text))


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_eval_schema_compiles_for_both_engines(name: str) -> None:
    from llama_cpp.llama_grammar import LlamaGrammar

    grammar = schema_to_gbnf(SCHEMAS[name], prefix="<tool_call>\n", suffix="\n</tool_call>")
    LlamaGrammar.from_string(grammar, verbose=False)
    xgr.Grammar.from_ebnf(grammar)


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"type": "object", "properties": {}}, ["{}", "{ }"], ['{"a": 1}']),
        (
            {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}, "required": ["a"]},
            ['{"a": 1}', '{"a": -12, "b": "x"}'],
            ['{"b": "x"}', '{"a": 1.5}', '{"a": "1"}', '{"a": 1, "b": "line\nbreak"}'],
        ),
        ({"type": "integer", "minimum": 1}, ["1", "42"], ["0", "-3"]),
        ({"type": "integer", "minimum": 1, "maximum": 10}, ["1", "10"], ["0", "11"]),
        ({"type": "string", "enum": ["c", "f"]}, ['"c"', '"f"'], ['"k"']),
        ({"type": "array", "items": {"type": "boolean"}, "minItems": 1}, ["[true]", "[true, false]"], ["[]"]),
        ({"anyOf": [{"type": "null"}, {"type": "number"}]}, ["null", "3.25"], ['"x"']),
        ({"type": "object"}, ["{}", '{"k": [1, "a"], "o": {"n": null}}'], ["[]"]),
        ({"const": {"x": "é"}}, ['{"x": "é"}'], ['{"x": "e"}']),
        ({"type": "object", "properties": {"p": {"type": "string"}, "q": {"type": "integer"}}}, ["{}", '{"q": 1}'], []),
    ],
)
def test_grammar_accepts_valid_and_rejects_invalid(schema: dict, good: list[str], bad: list[str]) -> None:
    grammar = schema_to_gbnf(schema)
    for text in good:
        assert accepts(grammar, text), text
    for text in bad:
        assert not accepts(grammar, text), text


def test_unbounded_strings_are_bounded_but_stated_bounds_win() -> None:
    grammar = schema_to_gbnf({"type": "string"})
    assert accepts(grammar, json.dumps("x" * MAX_STRING_LENGTH))
    assert not accepts(grammar, json.dumps("x" * (MAX_STRING_LENGTH + 1)))
    assert accepts(schema_to_gbnf({"type": "string", "maxLength": 500}), json.dumps("x" * 300))


def test_prefix_and_suffix_frame_the_payload() -> None:
    grammar = schema_to_gbnf({"type": "object", "properties": {}}, prefix="<tool_call>\n", suffix="\n</tool_call>")
    assert accepts(grammar, "<tool_call>\n{}\n</tool_call>")
    assert not accepts(grammar, "{}")


@pytest.mark.parametrize("name", ["hermes", "mistral", "json", "llama3-json"])
def test_call_constraints_end_at_the_json_or_allow_more_calls(name: str) -> None:
    from llama_cpp.llama_grammar import LlamaGrammar

    from modelport.core import ToolSpec
    from modelport.workers.local.tool_parsers import get_tool_parser
    from modelport.workers.local.tool_parsers.base import MAX_PARALLEL_CALLS

    parser = get_tool_parser(name)()
    tool = ToolSpec("f", parameters={"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]})
    values = [json.dumps({"name": "f", "arguments": {"x": i}}) for i in range(MAX_PARALLEL_CALLS + 1)]
    prefix, suffix, separator = parser.call_prefix, parser.call_suffix, parser.call_separator

    def written(n: int) -> str:
        if name == "mistral":  # one list holds every call
            return prefix + ", ".join(values[:n]) + suffix
        return separator.join(prefix + v + suffix for v in values[:n])

    # No token goes to a closing marker the parser does not need (Mistral's list must close).
    bare = written(1) if name == "mistral" else prefix + values[0]
    single = parser.call_constraint([tool], parallel=False).gbnf()
    parallel = parser.call_constraint([tool], parallel=True).gbnf()
    for grammar in (single, parallel):
        LlamaGrammar.from_string(grammar, verbose=False)
        xgr.Grammar.from_ebnf(grammar)
    assert accepts(single, bare)
    assert not accepts(single, written(2))
    assert accepts(parallel, bare)
    for n in range(2, MAX_PARALLEL_CALLS + 1):
        assert accepts(parallel, written(n)), n
    assert not accepts(parallel, written(MAX_PARALLEL_CALLS + 1))
    events = parser.feed(written(2)) + parser.finish()
    assert [json.loads(e.arguments) for e in events if getattr(e, "arguments", "")] == [{"x": 0}, {"x": 1}]
