"""Closing a constrained JSON answer or tool call before ``max_tokens`` cuts it.

A JSON answer or call cut by the token budget does not parse, and a client asking for a schema
gets nothing. So near the end of the budget the engines ask ``BudgetCloser`` whether the shortest
text that completes the value still fits; once it barely does, they emit that text's tokens
(and the end of the answer) instead of sampling: open strings end, missing required keys get
their smallest valid values (``""``, ``0``, ``false``, ``[]``, the first enum member), and every
open container closes, in the order the grammar of ``modelport.workers.local.constrained.grammar`` allows. The
result parses and validates.

``completion`` reads a prefix of a JSON value written under that grammar (no escapes inside
strings, one optional space between tokens) and returns the shortest text that completes it,
or ``None`` when it cannot tell.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelport.workers.local.constrained.constraints import JsonConstraint

__all__ = ["BudgetCloser", "completion", "smallest"]

Schema = Mapping[str, Any]


def _options(schema: Schema) -> list[Schema]:
    """The alternatives a value may take, as the grammar spells them (anyOf, oneOf, type lists)."""
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), Sequence):
            return [o for s in schema[key] for o in _options({**schema, key: None, **s})]
    kind = schema.get("type")
    if isinstance(kind, list):
        return [o for t in kind for o in _options({**schema, "type": t})]
    return [schema]


def _literals(schema: Schema) -> list[str] | None:
    if "const" in schema:
        return [json.dumps(schema["const"], ensure_ascii=False)]
    if "enum" in schema:
        return [json.dumps(v, ensure_ascii=False) for v in schema["enum"]]
    return None


def _kind(schema: Schema) -> str:
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind
    return "object" if "properties" in schema else ""


def smallest(schema: Schema) -> str:
    """The shortest JSON text of a value matching ``schema`` (under the grammar's bounds)."""
    schema = _options(schema)[0] if isinstance(schema, Mapping) and schema else {}
    literals = _literals(schema)
    if literals:
        return literals[0]
    kind = _kind(schema)
    if kind == "string":
        return '"' + "a" * int(schema.get("minLength", 0)) + '"'
    if kind in ("integer", "number"):
        low = schema.get("minimum")
        if isinstance(schema.get("exclusiveMinimum"), int):
            low = schema["exclusiveMinimum"] + 1
        high = schema.get("maximum")
        if isinstance(low, (int, float)) and low > 0:
            return str(int(low)) if float(low).is_integer() else str(low)
        if isinstance(high, (int, float)) and high < 0:
            return str(int(high))
        return "0"
    if kind == "boolean":
        return "false"
    if kind == "null" or not kind:
        return "null"
    if kind == "array":
        prefix = schema.get("prefixItems")
        if isinstance(prefix, Sequence) and prefix:
            return "[" + ",".join(smallest(s) for s in prefix) + "]"
        return "[" + ",".join([smallest(schema.get("items", {}))] * int(schema.get("minItems", 0))) + "]"
    props = schema.get("properties")
    if not isinstance(props, Mapping):
        return "{}"
    required = [n for n in schema.get("required", []) if n in props]
    return "{" + ",".join(f"{json.dumps(n, ensure_ascii=False)}:{smallest(props[n])}" for n in required) + "}"


@dataclass
class _Frame:
    schema: Schema
    kind: str  # "object", "array", "string", "scalar", "literal"
    state: str = "start"  # object: start/key/colon/value/after/next; array: start/value/after
    raw: str = ""  # a string's, scalar's, literal's or key's characters so far
    seen: list[str] = field(default_factory=list)  # an object's keys so far
    items: int = 0  # an array's items so far
    key: str = ""  # the key whose value is being written


def _value_frame(schema: Schema, first: str) -> _Frame | None:
    """The frame a value starting with ``first`` opens, picking the alternative it fits."""
    for option in _options(schema) if schema else [{}]:
        literals = _literals(option)
        if literals is not None:
            if any(v.startswith(first) for v in literals):
                return _Frame(option, "literal", raw=first)
            continue
        kind = _kind(option)
        if first == "{" and kind in ("object", ""):
            return _Frame(option, "object")
        if first == "[" and kind in ("array", ""):
            return _Frame(option, "array")
        if first == '"' and kind in ("string", ""):
            return _Frame(option, "string")
        if (first.isdigit() or first == "-") and kind in ("integer", "number", ""):
            return _Frame(option, "scalar", raw=first)
        if first in "tfn" and kind in ("boolean", "null", ""):
            return _Frame(option, "scalar", raw=first)
    return None


def _next_keys(frame: _Frame) -> list[str]:
    """The keys the grammar allows next in an object frame, in its order."""
    props = frame.schema.get("properties")
    if not isinstance(props, Mapping):
        return []
    required = [n for n in frame.schema.get("required", []) if n in props]
    missing = [n for n in required if n not in frame.seen]
    if missing:
        return missing[:1]
    optional = [n for n in props if n not in required]
    last = max((optional.index(k) for k in frame.seen if k in optional), default=-1)
    return optional[last + 1 :]


def _prop(frame: _Frame, key: str) -> Schema:
    props = frame.schema.get("properties")
    return props.get(key, {}) if isinstance(props, Mapping) else {}


def _close_object(frame: _Frame) -> str:
    props = frame.schema.get("properties")
    required = [n for n in frame.schema.get("required", []) if isinstance(props, Mapping) and n in props]
    missing = [n for n in required if n not in frame.seen]
    pairs = [f"{json.dumps(n, ensure_ascii=False)}:{smallest(_prop(frame, n))}" for n in missing]
    lead = "," if frame.seen and pairs else ""
    return lead + ",".join(pairs) + "}"


def _close_array(frame: _Frame, need_item: bool) -> str:
    item = frame.schema.get("items", {})
    wanted = max(int(frame.schema.get("minItems", 0)) - frame.items, 1 if need_item else 0)
    lead = "," if frame.items and wanted and not need_item else ""
    return lead + ",".join([smallest(item)] * wanted) + "]"


def _finish_scalar(schema: Schema, raw: str) -> str | None:
    for word in ("true", "false", "null"):
        if word.startswith(raw):
            return word[len(raw) :]
    tail = "0" if raw.endswith(("-", ".", "e", "E", "+")) else ""
    low = schema.get("minimum")
    # A positive number under the minimum grows by digits, which the grammar allows.
    while isinstance(low, (int, float)) and raw[:1].isdigit() and "." not in raw and len(raw + tail) < 12:
        if float(raw + tail) >= low:
            break
        tail += "0"
    return tail


def completion(schema: Schema, text: str) -> str | None:
    """The shortest text that completes ``text`` into a JSON value matching ``schema``.

    Returns:
        The text (``""`` when ``text`` is whole already), or ``None`` when ``text`` is not a
        prefix this reader understands.
    """
    stack: list[_Frame] = []
    done = False

    def value_done() -> None:
        nonlocal done
        stack.pop()
        if not stack:
            done = True
            return
        parent = stack[-1]
        if parent.kind == "object":
            parent.state = "after"
        else:
            parent.items += 1
            parent.state = "after"

    def open_value(schema: Schema, char: str) -> bool:
        frame = _value_frame(schema, char)
        if frame is None:
            return False
        stack.append(frame)
        literals = _literals(frame.schema) or []
        if (
            frame.kind == "literal"
            and frame.raw in literals
            and not any(v != frame.raw and v.startswith(frame.raw) for v in literals)
        ):
            value_done()
        return True

    def feed(char: str) -> bool:
        if done:
            return char.isspace()
        if not stack:
            return char.isspace() or open_value(schema, char)
        top = stack[-1]
        if top.kind == "string":
            if char == '"':
                value_done()
            else:
                top.raw += char
            return True
        if top.kind == "literal":
            top.raw += char
            options = [v for v in _literals(top.schema) or [] if v.startswith(top.raw)]
            if top.raw in options and len(options) == 1:
                value_done()
            return bool(options)
        if top.kind == "scalar":
            if char in ",]}" or char.isspace():
                value_done()
                return feed(char)  # the character belongs to the container
            top.raw += char
            return True
        if top.kind == "object" and top.state == "key":
            if char == '"':
                top.key, top.state = top.raw, "colon"
                top.seen.append(top.raw)
            else:
                top.raw += char
            return True
        if char.isspace():
            return True
        if top.kind == "object":
            if top.state in ("start", "next") and char == '"':
                top.state, top.raw = "key", ""
            elif top.state in ("start", "after") and char == "}":
                value_done()
            elif top.state == "colon" and char == ":":
                top.state = "value"
            elif top.state == "value":
                return open_value(_prop(top, top.key), char)
            elif top.state == "after" and char == ",":
                top.state = "next"
            else:
                return False
            return True
        if top.state in ("start", "after") and char == "]":
            value_done()
        elif top.state == "after" and char == ",":
            top.state = "value"
        elif top.state in ("start", "value"):
            return open_value(top.schema.get("items", {}), char)
        else:
            return False
        return True

    for char in text:
        if not feed(char):
            return None
    if done:
        return ""
    return _closing(stack) if stack else smallest(schema)


def _closing(stack: list[_Frame]) -> str | None:
    out = ""
    for depth in range(len(stack) - 1, -1, -1):
        frame = stack[depth]
        if depth + 1 < len(stack):  # the child just closed is this frame's latest value
            if frame.kind == "array":
                frame.items += 1
            frame.state = "after"
        if frame.kind == "string":
            out += "a" * max(int(frame.schema.get("minLength", 0)) - len(frame.raw), 0) + '"'
        elif frame.kind == "literal":
            options = [v for v in _literals(frame.schema) or [] if v.startswith(frame.raw)]
            if not options:
                return None
            out += options[0][len(frame.raw) :]
        elif frame.kind == "scalar":
            tail = _finish_scalar(frame.schema, frame.raw)
            if tail is None:
                return None
            out += tail
        elif frame.kind == "object":
            if frame.state == "key":
                keys = [k for k in _next_keys(frame) if k.startswith(frame.raw)]
                if not keys and isinstance(frame.schema.get("properties"), Mapping):
                    return None
                key = keys[0] if keys else frame.raw
                frame.seen.append(key)
                out += json.dumps(key, ensure_ascii=False)[1 + len(frame.raw) :] + ":" + smallest(_prop(frame, key))
            elif frame.state == "colon":
                out += ":" + smallest(_prop(frame, frame.key))
            elif frame.state == "value":
                out += smallest(_prop(frame, frame.key))
            elif frame.state == "next":
                keys = _next_keys(frame)
                if not keys:
                    return None
                frame.seen.append(keys[0])
                out += f"{json.dumps(keys[0], ensure_ascii=False)}:{smallest(_prop(frame, keys[0]))}"
            out += _close_object(frame)
        elif frame.kind == "array":
            out += _close_array(frame, need_item=frame.state == "value")
    return out


class BudgetCloser:
    """Decides, token by token, when a constrained JSON answer must start closing.

    Args:
        schema: The JSON schema of the value to close.
        suffix: Literal text the grammar wants after the value.
        tokenize: Text to token ids (no special tokens, no BOS).
        detokenize: Token ids to the text they spell.
        after: The value begins after this marker's last occurrence (``""``: at the start).
        end: The token that ends the answer, emitted after the closing text so that nothing
            sampled follows it (another call, say).
        horizon: Tokens before the end of the budget at which checking starts.
        margin: Tokens kept in hand, since one sampled token can lengthen the closing text.
    """

    def __init__(
        self,
        schema: Schema,
        suffix: str,
        tokenize: Callable[[str], list[int]],
        detokenize: Callable[[list[int]], str],
        *,
        after: str = "",
        end: int | None = None,
        horizon: int = 48,
        margin: int = 6,
    ) -> None:
        self._schema = schema
        self._suffix = suffix
        self._tokenize = tokenize
        self._detokenize = detokenize
        self._after = after
        self._end = end
        self._horizon = horizon
        self._margin = margin
        self._emitted: list[int] = []
        self._forced: list[int] | None = None

    @classmethod
    def for_constraint(
        cls,
        constraint: JsonConstraint | None,
        tokenize: Callable[[str], list[int]],
        detokenize: Callable[[list[int]], str],
        end: int | None,
    ) -> BudgetCloser | None:
        """The closer ``constraint`` asks for, or ``None`` when it closes nothing."""
        if constraint is None or not constraint.closes_in_budget:
            return None
        schema = constraint.closing_schema if constraint.closing_schema is not None else constraint.schema
        return cls(schema, constraint.suffix, tokenize, detokenize, after=constraint.closing_after, end=end)

    def next(self, remaining: int) -> int | None:
        """The token to emit instead of sampling, with ``remaining`` tokens of budget left."""
        if remaining > self._horizon:
            return None
        if self._forced is None:
            text = self._detokenize(self._emitted)
            if self._after:
                at = text.rfind(self._after)
                if at < 0:  # the marker is not written yet: nothing to close
                    return None
                text = text[at + len(self._after) :]
            tail = completion(self._schema, text)
            if tail is None:
                return None
            tokens = self._tokenize(tail + self._suffix) if tail or self._suffix else []
            # One more token ends the answer: ``end`` when known, else the model's own pick. Where
            # even the closing does not fit, the model writes on and the budget cuts its own text.
            if not remaining - self._margin <= len(tokens) + 1 <= remaining:
                return None
            self._forced = tokens if self._end is None else [*tokens, self._end]
        return self._forced.pop(0) if self._forced else None

    def took(self, token: int, forced: int | None) -> None:
        """Notes the token emitted (a forced token the grammar refused: closing starts afresh)."""
        self._emitted.append(token)
        if forced is not None and token != forced:
            self._forced = None
