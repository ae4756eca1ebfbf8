"""Tool specs: names and JSON-schema parameters checked against the meta-schema, by field."""

from __future__ import annotations

import pytest

from modelport.core import BadRequestError, ToolSpec
from modelport.core.tools import check_json_schema


@pytest.mark.parametrize(
    ("schema", "said"),
    [
        ({"type": "objekt"}, "objekt"),
        ({"type": "object", "required": "city"}, "required"),
        ({"type": "object", "properties": {"city": {"type": "strin"}}}, "properties.city.type"),
        ({"type": "object", "properties": {"n": {"type": "integer", "minimum": "zero"}}}, "minimum"),
    ],
)
def test_a_schema_the_meta_schema_refuses_is_named(schema: dict[str, object], said: str) -> None:
    with pytest.raises(BadRequestError) as info:
        ToolSpec.from_dict({"type": "function", "function": {"name": "f", "parameters": schema}}, where="tools[3]")
    assert info.value.param == "tools[3].function.parameters"
    assert "invalid JSON Schema" in info.value.message and said in info.value.message


def test_the_constructor_checks_too() -> None:
    with pytest.raises(BadRequestError) as info:
        ToolSpec("f", parameters={"type": "objekt"})
    assert info.value.param == "tools.function.parameters"


@pytest.mark.parametrize(
    "schema",
    [
        {},
        {"type": "object", "properties": {}},
        {"type": "object", "properties": {"city": {"type": "string", "enum": ["a"]}}, "required": ["city"]},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "definitions": {}},
        {
            "type": "object",
            "properties": {"x": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/y"}]}},
            "$defs": {"y": {}},
        },
    ],
)
def test_valid_schemas_pass(schema: dict[str, object]) -> None:
    check_json_schema(schema, param="p")
    assert ToolSpec("f", parameters=schema).parameters == schema
