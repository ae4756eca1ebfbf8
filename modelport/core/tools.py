"""Tool specs, tool calls and tool_choice."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from modelport.core.errors import BadRequestError

__all__ = [
    "NamedToolChoice",
    "check_json_schema",
    "ToolCall",
    "ToolChoice",
    "ToolSpec",
    "new_tool_call_id",
    "parse_tool_choice",
]


def new_tool_call_id() -> str:
    """Returns a fresh id in OpenAI's ``call_...`` style."""
    return "call_" + uuid.uuid4().hex[:24]


def check_json_schema(schema: Mapping[str, Any], *, param: str) -> None:
    """Checks ``schema`` against the JSON Schema meta-schema (its own ``$schema``, else 2020-12).

    Raises:
        BadRequestError: Naming ``param`` and what the meta-schema refuses, as OpenAI's 400 does.
    """
    try:
        text = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):
        raise BadRequestError("is not JSON", param=param) from None
    problem = _schema_problem(text)
    if problem is not None:
        raise BadRequestError(f"invalid JSON Schema: {problem}", param=param)


@functools.lru_cache(maxsize=256)
def _schema_problem(text: str) -> str | None:
    # Imported here: jsonschema is only needed once tools arrive, not at ``import modelport``.
    import jsonschema

    schema = json.loads(text)
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    error = jsonschema.exceptions.best_match(validator(validator.META_SCHEMA).iter_errors(schema))
    if error is None:
        return None
    where = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{error.message} (at {where.lstrip('.') or 'the root'})"


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call: a name, a description and JSON-schema parameters."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None

    def __post_init__(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise BadRequestError("a tool needs a non-empty name", param="tools.function.name")
        check_json_schema(self.parameters, param="tools.function.parameters")

    def to_dict(self) -> dict[str, Any]:
        """Returns the OpenAI ``{"type": "function", "function": ...}`` form."""
        fn: dict[str, Any] = {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}
        if self.strict is not None:
            fn["strict"] = self.strict
        return {"type": "function", "function": fn}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "tools", flat: bool = False) -> ToolSpec:
        """Parses the OpenAI tool form (or a bare function object).

        Args:
            data: The tool.
            where: Its path in the request, for errors.
            flat: The Responses API's form, whose fields stand at the top (a nested
                ``function`` is not read): errors name ``where.parameters`` rather than chat's
                ``where.function.parameters``.
        """
        if data.get("type", "function") != "function":
            fn: Any = None
        else:  # the Responses form has no nested function object: a chat-form tool lacks its name
            fn = data if flat else data.get("function", data)
        if not isinstance(fn, Mapping):
            raise BadRequestError(f"unsupported tool type {data.get('type')!r}", param=f"{where}.type")
        at = where if flat else f"{where}.function"
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequestError("a tool needs a name", param=f"{at}.name")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, Mapping):
            raise BadRequestError("parameters must be a JSON schema object", param=f"{at}.parameters")
        check_json_schema(params, param=f"{at}.parameters")
        return cls(name, str(fn.get("description") or ""), dict(params), fn.get("strict"))


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model made. ``arguments`` is the raw JSON text, as OpenAI sends it."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """Decodes ``arguments``.

        Raises:
            ValueError: If the arguments are not a JSON object.
        """
        value = json.loads(self.arguments or "{}")
        if not isinstance(value, dict):
            raise ValueError("tool arguments are not a JSON object")
        return value

    def to_dict(self) -> dict[str, Any]:
        """Returns the OpenAI ``tool_calls`` item form."""
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "tool_calls") -> ToolCall:
        """Parses the OpenAI ``tool_calls`` item form."""
        fn = data.get("function")
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise BadRequestError("a tool call needs function.name", param=f"{where}.function.name")
        args = fn.get("arguments", "{}")
        if not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        return cls(str(data.get("id") or new_tool_call_id()), fn["name"], args)


@dataclass(frozen=True, slots=True)
class NamedToolChoice:
    """Forces a call to the tool called ``name``."""

    name: str


ToolChoice: TypeAlias = Literal["auto", "none", "required"] | NamedToolChoice


def parse_tool_choice(value: Any, tools: Sequence[ToolSpec] = ()) -> ToolChoice | None:
    """Normalises every tool_choice form that OpenAI and LangChain send.

    Accepts ``None``, ``"auto"``, ``"none"``, ``"required"``, LangChain's ``"any"``
    and ``True`` (both mean required), a tool's name, ``{"type": "function",
    "function": {"name": ...}}`` and ``{"type": "auto"|"none"|"required"|"any"}``.

    Raises:
        BadRequestError: For an unknown value, or a name that is not among ``tools``.
    """
    if value is None or isinstance(value, NamedToolChoice):
        choice: ToolChoice | None = value
    elif value is True:
        choice = "required"
    elif value is False:
        choice = "none"
    elif isinstance(value, str):
        if value in ("auto", "none", "required"):
            choice = value  # type: ignore[assignment]
        elif value == "any":
            choice = "required"
        elif any(t.name == value for t in tools):
            choice = NamedToolChoice(value)
        else:
            raise BadRequestError(
                f"unknown tool_choice {value!r}; use auto, none, required, any or a tool's name",
                param="tool_choice",
            )
    elif isinstance(value, Mapping):
        fn = value.get("function")
        if isinstance(fn, Mapping) and isinstance(fn.get("name"), str):
            choice = NamedToolChoice(fn["name"])
        elif isinstance(value.get("name"), str):
            choice = NamedToolChoice(value["name"])
        elif value.get("type") in ("auto", "none", "required", "any"):
            return parse_tool_choice(value["type"], tools)
        else:
            raise BadRequestError(f"unknown tool_choice {dict(value)!r}", param="tool_choice")
    else:
        raise BadRequestError(f"unknown tool_choice {value!r}", param="tool_choice")
    if isinstance(choice, NamedToolChoice) and not any(t.name == choice.name for t in tools):
        raise BadRequestError(f"tool_choice names {choice.name!r}, which is not among the tools", param="tool_choice")
    if choice == "required" and not tools:
        raise BadRequestError("tool_choice requires a tool call but no tools were given", param="tool_choice")
    return choice
