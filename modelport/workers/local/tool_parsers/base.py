"""The tool-call parser interface and its registry.

A parser reads a model's raw output incrementally (``feed`` then ``finish``) and
returns text deltas and tool-call deltas. It also knows how its format is written,
so the same object can describe the format to a model whose chat template has no
tool support, render past calls into a history, and frame a forced call for
constrained decoding.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any, TypeVar

from modelport.core.errors import BadRequestError
from modelport.core.events import TextDelta, ToolCallDelta
from modelport.core.tools import ToolCall, ToolSpec, new_tool_call_id
from modelport.workers.local.constrained.constraints import JsonConstraint
from modelport.workers.local.constrained.grammar import literal

__all__ = [
    "ENTRY_POINT_GROUP",
    "CALL_OPENINGS",
    "KNOWN_MARKUP",
    "MAX_PARALLEL_CALLS",
    "ParsedEvent",
    "ToolParser",
    "get_tool_parser",
    "register_tool_parser",
    "tool_parser_names",
]

ENTRY_POINT_GROUP = "modelport.tool_parsers"
# Markers that open a call in the tool-call formats models are trained on.
CALL_OPENINGS = ("<tool_call>", "[TOOL_CALLS]", "<|python_tag|>")
# Every marker of those formats; none of them may reach an answer's text.
KNOWN_MARKUP = (*CALL_OPENINGS, "</tool_call>", "<tool_response>", "</tool_response>")
# Calls one constrained answer may hold when parallel calls are allowed.
MAX_PARALLEL_CALLS = 4
_PARTIAL_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)')
_PARTIAL_ARGUMENTS = re.compile(r'"(?:arguments|parameters)"\s*:\s*')

ParsedEvent = TextDelta | ToolCallDelta
P = TypeVar("P", bound="type[ToolParser]")

_PARSERS: dict[str, type[ToolParser]] = {}
_BUILTIN = {
    "hermes": "modelport.workers.local.tool_parsers.hermes",
    "llama3-json": "modelport.workers.local.tool_parsers.llama3_json",
    "mistral": "modelport.workers.local.tool_parsers.mistral",
    "json": "modelport.workers.local.tool_parsers.json_fallback",
}


class ToolParser:
    """Incremental tool-call parser; one instance parses one completion.

    Subclasses implement ``feed`` and ``finish`` and describe their format.

    Attributes:
        name: The registry name.
        call_prefix: Text written before a forced call's JSON.
        call_suffix: Text written after it.
        call_separator: What stands between several calls of one turn.
        text_before_calls: Whether the format allows prose before the calls.
        text_after_calls: Whether it allows prose after them.
    """

    name = ""
    call_prefix = ""
    call_suffix = ""
    call_separator = "\n"
    text_before_calls = True
    text_after_calls = True

    def __init__(self) -> None:
        self._next_index = 0
        self.incomplete_calls = 0

    def feed(self, text: str) -> list[ParsedEvent]:
        """Consumes a piece of output; returns the events it completes."""
        raise NotImplementedError

    def finish(self) -> list[ParsedEvent]:
        """Flushes held-back text at the end of the output."""
        raise NotImplementedError

    @property
    def calls_emitted(self) -> int:
        """How many tool calls were emitted so far."""
        return self._next_index

    # --- helpers for subclasses -------------------------------------------------

    def _call_events(self, payload: Any) -> list[ParsedEvent] | None:
        """Events for one decoded ``{"name", "arguments"}`` object, or ``None`` if it is not a call."""
        if not isinstance(payload, Mapping):
            return None
        name = payload.get("name")
        if not isinstance(name, str) or not name:
            return None
        args = payload.get("arguments", payload.get("parameters", {}))
        # A string is already JSON text, perhaps invalid: it is passed on as the model wrote it.
        text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
        index = self._next_index
        self._next_index += 1
        return [ToolCallDelta(index, new_tool_call_id(), name), ToolCallDelta(index, arguments=text)]

    def incomplete_call_events(self, body: str) -> list[ParsedEvent]:
        """Events for a call the output cut short, or wrote so that it does not decode.

        They carry whatever name and arguments text it holds: the caller sees an invalid call,
        never markup in the text.
        """
        body = body.strip()
        match = _PARTIAL_NAME.search(body)
        name = ""
        if match:
            try:
                name = json.loads(f'"{match.group(1)}"')
            except ValueError:
                name = match.group(1)
        start = _PARTIAL_ARGUMENTS.search(body)
        arguments = body[start.end() :] if start else ("" if match else body)
        if start:
            # The arguments are complete when only the call's own closing brace is missing.
            try:
                json.loads(arguments)
            except ValueError:
                trimmed = arguments.rstrip().removesuffix("}")
                if _is_json(trimmed):
                    arguments = trimmed
        index = self._next_index
        self._next_index += 1
        self.incomplete_calls += 1
        return [ToolCallDelta(index, new_tool_call_id(), name), ToolCallDelta(index, arguments=arguments)]

    # --- describing the format ----------------------------------------------------

    def render_call(self, call: ToolCall) -> str:
        """Writes a past call the way the model is asked to write one."""
        try:
            arguments: Any = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = call.arguments
        body = json.dumps({"name": call.name, "arguments": arguments}, ensure_ascii=False)
        return f"{self.call_prefix}{body}{self.call_suffix}"

    def render_calls(self, calls: Sequence[ToolCall]) -> str:
        """Writes the calls of one turn."""
        return self.call_separator.join(self.render_call(c) for c in calls)

    def format_instructions(self, tools: Sequence[ToolSpec]) -> str:
        """System-prompt text that lists the tools and the call format."""
        listing = "\n".join(json.dumps(t.to_dict()["function"], ensure_ascii=False) for t in tools)
        example = self.render_call(ToolCall("x", "function_name", '{"argument": "value"}'))
        return (
            "You can call these tools (JSON schemas):\n"
            f"{listing}\n\n"
            "To call a tool, answer with exactly this format and nothing else:\n"
            f"{example}\n"
            "Otherwise, answer the user directly."
        )

    def call_schema(self, tools: Sequence[ToolSpec]) -> dict[str, Any]:
        """The JSON schema of one call to any of ``tools`` (used to constrain decoding)."""
        options = [
            {
                "type": "object",
                "properties": {"name": {"const": t.name}, "arguments": dict(t.parameters) or {"type": "object"}},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for t in tools
        ]
        return options[0] if len(options) == 1 else {"anyOf": options}

    def call_constraint(self, tools: Sequence[ToolSpec], *, parallel: bool) -> JsonConstraint:
        """What a forced answer must be: one call to any of ``tools``, or several if ``parallel``.

        A call ends where its JSON closes: no token goes to a closing marker the parser does not
        need. With ``parallel``, the model may write the closing marker and then either stop or
        open another call (up to ``MAX_PARALLEL_CALLS``).
        """
        opening = literal(self.call_prefix) + " " if self.call_prefix else ""
        # Near the end of max_tokens the engine closes the call being written (the one after the
        # latest opening marker) rather than let the budget cut it.
        marker = self.call_prefix
        if not parallel:
            root = opening + "{value}"
            return JsonConstraint(self.call_schema(tools), root=root, closes_in_budget=True, closing_after=marker)
        closing = literal(self.call_suffix) + " " if self.call_suffix else ""
        again = f"( {closing}{literal(self.call_separator)} {opening}{{value}} ){{0,{MAX_PARALLEL_CALLS - 1}}}"
        tail = f" {literal(self.call_suffix)}?" if self.call_suffix else ""
        root = f"{opening}{{value}} {again}{tail}"
        return JsonConstraint(self.call_schema(tools), root=root, closes_in_budget=True, closing_after=marker)


def register_tool_parser(name: str) -> Callable[[P], P]:
    """Registers a parser class under ``name``."""

    def decorate(cls: P) -> P:
        cls.name = name
        _PARSERS[name] = cls
        return cls

    return decorate


def tool_parser_names() -> list[str]:
    """Every parser name: registered, built in, or from the entry-point group."""
    names = set(_PARSERS) | set(_BUILTIN)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def get_tool_parser(name: str) -> type[ToolParser]:
    """Returns the parser class called ``name``.

    Raises:
        BadRequestError: If there is none (the message lists the known ones).
    """
    if name not in _PARSERS and name in _BUILTIN:
        importlib.import_module(_BUILTIN[name])
    if name not in _PARSERS:
        for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
            _PARSERS[name] = ep.load()
    if name not in _PARSERS:
        raise BadRequestError(
            f"unknown tool parser {name!r}; known: {', '.join(tool_parser_names())}", param="tool_parser"
        )
    return _PARSERS[name]


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
