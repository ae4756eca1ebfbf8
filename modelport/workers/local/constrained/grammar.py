"""JSON schema to a GBNF grammar that always terminates.

One converter serves every local engine: llama.cpp reads GBNF, and xgrammar reads
the same syntax as EBNF, so forced tool calls and JSON response formats mean the
same thing on both. Unlike a plain converter it bounds what a weak model could
otherwise repeat forever (strings, arrays, digits), so a constrained answer ends
well inside max_tokens and always parses; limits the schema sets itself are kept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["MAX_ARRAY_ITEMS", "MAX_STRING_LENGTH", "literal", "schema_to_gbnf"]

MAX_STRING_LENGTH = 64
MAX_ARRAY_ITEMS = 8
MAX_INTEGER_DIGITS = 12
MAX_FRACTION_DIGITS = 6
MAX_ENUMERATED_RANGE = 256
MAX_GENERIC_DEPTH = 2

_COMMON = {
    "ws": '" "?',
    # One character class, no escape sequences: a repeated plain class is what grammar engines
    # precompute token masks for; an alternation inside the repetition costs xgrammar ~150x.
    "char": r'[^"\\\x7F\x00-\x1F]',
    "boolean": '"true" | "false"',
    "null": '"null"',
}


def literal(text: str) -> str:
    """Quotes ``text`` as a GBNF string literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    escaped = escaped.replace("\t", "\\t")
    return f'"{escaped}"'


def _json_literal(value: Any) -> str:
    return literal(json.dumps(value, ensure_ascii=False))


class _Converter:
    def __init__(self) -> None:
        self.rules: dict[str, str] = {}

    def rule(self, hint: str, body: str) -> str:
        name = re.sub(r"[^a-zA-Z0-9-]+", "-", hint).strip("-").lower() or "r"
        # Identical bodies share one rule; different bodies get distinct names.
        for existing, existing_body in self.rules.items():
            if existing_body == body and existing.startswith(name):
                return existing
        candidate, n = name, 1
        while candidate in self.rules or candidate in _COMMON or candidate == "root":
            n += 1
            candidate = f"{name}{n}"
        self.rules[candidate] = body
        return candidate

    def string(self, schema: Mapping[str, Any]) -> str:
        low = int(schema.get("minLength", 0))
        high = int(schema.get("maxLength", max(MAX_STRING_LENGTH, low)))
        return f'"\\"" char{{{low},{high}}} "\\"" '

    def integer(self, schema: Mapping[str, Any]) -> str:
        low, high = schema.get("minimum"), schema.get("maximum")
        if isinstance(schema.get("exclusiveMinimum"), int):
            low = schema["exclusiveMinimum"] + 1
        if isinstance(schema.get("exclusiveMaximum"), int):
            high = schema["exclusiveMaximum"] - 1
        if isinstance(low, int) and isinstance(high, int) and 0 <= high - low < MAX_ENUMERATED_RANGE:
            # Longest first, so "12" is not cut short as "1".
            values = sorted(range(low, high + 1), key=lambda v: -len(str(v)))
            return " | ".join(literal(str(v)) for v in values)
        digits = f"[0-9]{{0,{MAX_INTEGER_DIGITS - 1}}}"
        if isinstance(low, (int, float)) and low >= 1:
            return f"[1-9] {digits}"
        positive = f'"0" | [1-9] {digits}'
        if isinstance(low, (int, float)) and low >= 0:
            return positive
        return f'"-"? ({positive})'

    def number(self, schema: Mapping[str, Any]) -> str:
        whole = self.integer({k: v for k, v in schema.items() if k in ("minimum",) and v >= 0})
        return f'({whole}) ("." [0-9]{{1,{MAX_FRACTION_DIGITS}}})?'

    def array(self, schema: Mapping[str, Any], hint: str, depth: int) -> str:
        prefix = schema.get("prefixItems")
        if isinstance(prefix, Sequence) and prefix:
            items = ' "," ws '.join(self.visit(s, f"{hint}-{i}", depth + 1) for i, s in enumerate(prefix))
            return f'"[" ws {items} ws "]"'
        item = self.visit(schema.get("items", {}), f"{hint}-item", depth + 1)
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(MAX_ARRAY_ITEMS, low)))
        if high == 0:
            return '"[" ws "]"'
        more = f'("," ws {item}){{{max(low - 1, 0)},{high - 1}}}'
        body = f"{item} {more}"
        return f'"[" ws {body} ws "]"' if low > 0 else f'"[" ws ({body})? ws "]"'

    def object(self, schema: Mapping[str, Any], hint: str, depth: int) -> str:
        props = schema.get("properties")
        if isinstance(props, Mapping) and not props:
            return '"{" ws "}"'  # a tool without arguments
        if not isinstance(props, Mapping):
            return self.generic_object(depth)
        required = [n for n in schema.get("required", []) if n in props]
        optional = [n for n in props if n not in required]
        kv = {n: f'{_json_literal(n)} ws ":" ws {self.visit(props[n], f"{hint}-{n}", depth + 1)}' for n in props}
        parts = [kv[n] for n in required]
        head = ' "," ws '.join(parts)
        tail = " ".join(f'("," ws {self.rule(f"{hint}-{n}-kv", kv[n])})?' for n in optional)
        if required:
            return f'"{{" ws {head} {tail} ws "}}"'
        # No required key: any non-empty ordered subset of the optional keys, or none.
        starts = [
            f"{self.rule(f'{hint}-{n}-kv', kv[n])} "
            + " ".join(f'("," ws {self.rule(f"{hint}-{m}-kv", kv[m])})?' for m in optional[i + 1 :])
            for i, n in enumerate(optional)
        ]
        return f'"{{" ws ({" | ".join(starts)})? ws "}}"'

    def generic_object(self, depth: int) -> str:
        value = self.rule(f"value-{depth + 1}", self.generic_value(depth + 1))
        key = self.string({})
        pair = f'{key} ws ":" ws {value}'
        return f'"{{" ws ({pair} ("," ws {pair}){{0,{MAX_ARRAY_ITEMS - 1}}})? ws "}}"'

    def generic_value(self, depth: int) -> str:
        scalars = [self.string({}), self.number({}), "boolean", "null"]
        if depth < MAX_GENERIC_DEPTH:
            scalars += [self.rule(f"object-{depth}", self.generic_object(depth))]
            item = self.rule(f"value-{depth + 1}", self.generic_value(depth + 1))
            scalars += [f'"[" ws ({item} ("," ws {item}){{0,{MAX_ARRAY_ITEMS - 1}}})? ws "]"']
        return " | ".join(f"({s})" for s in scalars)

    def visit(self, schema: Any, hint: str, depth: int = 0) -> str:
        if not isinstance(schema, Mapping) or not schema:
            return self.rule("value", self.generic_value(depth))
        if "const" in schema:
            return _json_literal(schema["const"])
        if "enum" in schema:
            return "(" + " | ".join(_json_literal(v) for v in schema["enum"]) + ")"
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), Sequence):
                options = [
                    self.visit({**schema, key: None, **s}, f"{hint}-{i}", depth) for i, s in enumerate(schema[key])
                ]
                return self.rule(hint, " | ".join(options))
        kind = schema.get("type")
        if isinstance(kind, list):
            return self.rule(hint, " | ".join(self.visit({**schema, "type": t}, f"{hint}-{t}", depth) for t in kind))
        build: Callable[[], str] | None = {
            "string": lambda: self.string(schema),
            "integer": lambda: self.integer(schema),
            "number": lambda: self.number(schema),
            "boolean": lambda: "boolean",
            "null": lambda: "null",
            "array": lambda: self.array(schema, hint, depth),
            "object": lambda: self.object(schema, hint, depth),
        }.get(kind or ("object" if "properties" in schema else ""))
        if build is None:
            return self.rule("value", self.generic_value(depth))
        return self.rule(hint, build())


def schema_to_gbnf(schema: Mapping[str, Any], *, prefix: str = "", suffix: str = "", root: str | None = None) -> str:
    """Returns a GBNF grammar for ``prefix`` + JSON matching ``schema`` + ``suffix``.

    Args:
        schema: The JSON schema of the value.
        prefix: Literal text before the value.
        suffix: Literal text after it.
        root: A root rule of one's own instead, where ``{value}`` stands for the value (for
            several tool calls in one answer, say); ``prefix`` and ``suffix`` are then unused.
    """
    converter = _Converter()
    payload = converter.visit(schema, "payload")
    if root is not None:
        root = root.replace("{value}", payload)
    else:
        root = " ".join([*([literal(prefix)] if prefix else []), payload, *([literal(suffix)] if suffix else [])])
    lines = [f"root ::= {root}"]
    lines += [f"{name} ::= {body}" for name, body in converter.rules.items()]
    lines += [f"{name} ::= {body}" for name, body in _COMMON.items()]
    return "\n".join(lines) + "\n"
