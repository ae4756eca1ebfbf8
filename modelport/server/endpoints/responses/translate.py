"""A Responses request onto the core ``ChatRequest``: input items to messages, tools, formats.

Input items become messages: ``message`` items by role (``developer`` is a system message),
``function_call`` items an assistant turn's calls, ``function_call_output`` items tool results,
``reasoning`` items the reasoning of the assistant turn that follows them (read back from their
sealed ``encrypted_content`` when a stateless client returns them).

Tools: function tools as they are; a ``namespace`` tool's functions under ``NAMESPACE.NAME``
(split back into ``namespace`` and ``name`` on the way out); hosted tools the server cannot run
(``web_search`` and the like) are left out of what the model sees, and reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from modelport.core.errors import BadRequestError
from modelport.core.messages import (
    AssistantMessage,
    ContentPart,
    ImagePart,
    Message,
    SystemMessage,
    TextPart,
    ToolMessage,
    UserMessage,
)
from modelport.core.request import ResponseFormat
from modelport.core.tools import NamedToolChoice, ToolCall, ToolSpec, check_json_schema

__all__ = [
    "HOSTED_TOOLS",
    "Conversation",
    "ToolSet",
    "call_name",
    "messages_from_items",
    "normalize_input",
    "response_format",
    "tool_choice",
    "tools_from_wire",
]

# Tools OpenAI runs on its side; a server in front of a model cannot.
HOSTED_TOOLS = frozenset(
    {
        "web_search",
        "web_search_preview",
        "web_search_2025_08_26",
        "web_search_preview_2025_03_11",
        "file_search",
        "code_interpreter",
        "computer_use",
        "computer_use_preview",
        "image_generation",
        "mcp",
        "local_shell",
        "shell",
        "tool_search",
    }
)
_ROLES = {"user", "assistant", "system", "developer"}


def normalize_input(value: Any) -> list[dict[str, Any]]:
    """The request's ``input`` as a list of items (a string is one user message).

    Raises:
        BadRequestError: Naming ``input`` when it is neither.
    """
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
        return [dict(item) for item in value]
    raise BadRequestError("must be a string or a list of input items", param="input")


@dataclass
class ToolSet:
    """The tools the model sees, and what was left out.

    Attributes:
        specs: The function tools, namespaced ones under ``NAMESPACE.NAME``.
        dropped: Hosted tool types left out (the server cannot run them).
    """

    specs: list[ToolSpec] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def _function_tool(tool: Mapping[str, Any], where: str, prefix: str = "") -> ToolSpec:
    spec = ToolSpec.from_dict(tool, where=where, flat=True)
    return replace(spec, name=prefix + spec.name) if prefix else spec


def tools_from_wire(tools: Sequence[Any] | None, *, refuse_hosted: bool = False) -> ToolSet:
    """Reads ``tools``: functions, namespaces of functions, and hosted tools (dropped).

    Raises:
        BadRequestError: Naming ``tools[i]...`` for a bad tool, a type no model here can use,
            or a hosted tool when ``refuse_hosted`` is set.
    """
    out = ToolSet()
    for i, tool in enumerate(tools or ()):
        where = f"tools[{i}]"
        if not isinstance(tool, Mapping):
            raise BadRequestError("must be a tool object", param=where)
        kind = tool.get("type")
        if kind == "function":
            out.specs.append(_function_tool(tool, where))
        elif kind == "namespace":
            namespace = tool.get("name")
            if not isinstance(namespace, str) or not namespace:
                raise BadRequestError("a namespace needs a name", param=f"{where}.name")
            for j, inner in enumerate(tool.get("tools") or ()):
                inner_where = f"{where}.tools[{j}]"
                if not isinstance(inner, Mapping) or inner.get("type", "function") != "function":
                    kind_name = inner.get("type") if isinstance(inner, Mapping) else None
                    raise BadRequestError(f"unsupported tool type {kind_name!r}", param=f"{inner_where}.type")
                out.specs.append(_function_tool(inner, inner_where, prefix=f"{namespace}."))
        elif kind in HOSTED_TOOLS:
            if refuse_hosted:
                raise BadRequestError(f"the hosted tool {kind!r} cannot run on this server", param=f"{where}.type")
            out.dropped.append(str(kind))
        else:
            raise BadRequestError(f"unsupported tool type {kind!r}", param=f"{where}.type")
    names = [t.name for t in out.specs]
    if len(set(names)) != len(names):
        raise BadRequestError("tool names must be unique", param="tools")
    return out


def call_name(name: str, namespaces: Callable[[str], bool]) -> tuple[str | None, str]:
    """A model-side tool name as the client's ``(namespace, name)``."""
    if "." in name:
        namespace, _, inner = name.partition(".")
        if namespaces(namespace):
            return namespace, inner
    return None, name


def tool_choice(value: Any, tools: ToolSet) -> Any:
    """The core tool choice of ``tool_choice``.

    Raises:
        BadRequestError: Naming ``tool_choice`` for forms the server cannot honour.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if value not in ("auto", "none", "required"):
            raise BadRequestError(f"must be auto, none, required or a function, got {value!r}", param="tool_choice")
        if value == "required" and not tools.specs:
            raise BadRequestError("required needs at least one function tool", param="tool_choice")
        return value if tools.specs else None
    if isinstance(value, Mapping) and value.get("type") == "function" and isinstance(value.get("name"), str):
        name = str(value["name"])
        if isinstance(value.get("namespace"), str):
            name = f"{value['namespace']}.{name}"
        if name not in {t.name for t in tools.specs}:
            raise BadRequestError(f"no function tool is called {name!r}", param="tool_choice.name")
        return NamedToolChoice(name)
    kind = value.get("type") if isinstance(value, Mapping) else type(value).__name__
    raise BadRequestError(f"tool_choice of type {kind!r} is not supported", param="tool_choice")


def response_format(text: Any) -> ResponseFormat | None:
    """The core response format of ``text.format``.

    Raises:
        BadRequestError: Naming ``text.format...``.
    """
    if text is None:
        return None
    if not isinstance(text, Mapping):
        raise BadRequestError("must be an object", param="text")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, Mapping):
        raise BadRequestError("must be an object", param="text.format")
    kind = fmt.get("type", "text")
    if kind in ("text", "json_object"):
        return ResponseFormat(kind)
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, Mapping):
            raise BadRequestError("must be a JSON schema object", param="text.format.schema")
        check_json_schema(schema, param="text.format.schema")
        return ResponseFormat("json_schema", dict(schema), str(fmt.get("name") or "response"), fmt.get("strict"))
    raise BadRequestError(f"unsupported format type {kind!r}", param="text.format.type")


def _parts(content: Any, where: str) -> str | tuple[ContentPart, ...]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise BadRequestError("must be a string or a list of content parts", param=where)
    parts: list[ContentPart] = []
    for i, part in enumerate(content):
        at = f"{where}[{i}]"
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
            parts.append(TextPart(str(part.get("text") or "")))
        elif kind == "refusal":
            parts.append(TextPart(str(part.get("refusal") or "")))
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise BadRequestError("an image needs an image_url (file ids are not supported)", param=at)
            parts.append(ImagePart(url, part.get("detail")))
        else:
            raise BadRequestError(f"unsupported content type {kind!r}", param=f"{at}.type")
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    return tuple(parts)


def _text(content: str | tuple[ContentPart, ...]) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.text for p in content if isinstance(p, TextPart))


@dataclass
class Conversation:
    """Messages built from items, with the turn being assembled."""

    messages: list[Message] = field(default_factory=list)
    calls: dict[str, str] = field(default_factory=dict)  # call id -> model-side tool name
    pending_reasoning: list[str] = field(default_factory=list)

    def assistant(self, text: str | None = None, call: ToolCall | None = None) -> None:
        """Adds to the current assistant turn, or opens one."""
        reasoning = "\n".join(self.pending_reasoning) or None
        self.pending_reasoning.clear()
        last = self.messages[-1] if self.messages else None
        if isinstance(last, AssistantMessage) and call is not None:
            merged = AssistantMessage(last.content, (*last.tool_calls, call), last.reasoning or reasoning)
            self.messages[-1] = merged
            return
        self.messages.append(AssistantMessage(text, (call,) if call else (), reasoning))


def messages_from_items(
    items: Sequence[Mapping[str, Any]],
    *,
    unseal: Callable[[str], str | None],
    where: str = "input",
) -> list[Message]:
    """The messages of ``items``.

    Args:
        items: Input items, as the request (or a stored conversation) holds them.
        unseal: Reads a reasoning item's ``encrypted_content``; ``None`` when it is not ours.
        where: The field the items came from, for error paths.

    Raises:
        BadRequestError: Naming ``input[i]...`` for an item the server cannot read.
    """
    talk = Conversation()
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in _ROLES:
                raise BadRequestError(f"unsupported role {role!r}", param=f"{at}.role")
            content = _parts(item.get("content", ""), f"{at}.content")
            if role in ("system", "developer"):
                talk.messages.append(SystemMessage(_text(content)))
            elif role == "user":
                talk.messages.append(UserMessage(content))
            else:
                talk.assistant(_text(content))
        elif kind == "function_call":
            name, call_id = item.get("name"), item.get("call_id")
            if not isinstance(name, str) or not isinstance(call_id, str):
                raise BadRequestError("a function_call needs name and call_id", param=at)
            if isinstance(item.get("namespace"), str):
                name = f"{item['namespace']}.{name}"
            arguments = item.get("arguments", "{}")
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False)
            talk.calls[call_id] = name
            talk.assistant(call=ToolCall(call_id, name, arguments))
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str):
                raise BadRequestError("a function_call_output needs call_id", param=f"{at}.call_id")
            output = _text(_parts(item.get("output", ""), f"{at}.output"))
            talk.messages.append(ToolMessage(output, call_id, talk.calls.get(call_id)))
        elif kind == "reasoning":
            sealed = item.get("encrypted_content")
            text = unseal(sealed) if isinstance(sealed, str) else None
            if text is None:
                summary = item.get("summary") or []
                text = "\n".join(str(s.get("text") or "") for s in summary if isinstance(s, Mapping)) or None
            if text:
                talk.pending_reasoning.append(text)
        elif kind == "item_reference":
            raise BadRequestError("item references are not supported; send the item itself", param=f"{at}.type")
        else:
            raise BadRequestError(f"unsupported input item type {kind!r}", param=f"{at}.type")
    return _merge_leading_system(talk.messages)


def _merge_leading_system(messages: list[Message]) -> list[Message]:
    # Several system and developer messages up front (Codex sends two) become one: many chat
    # templates take a single system message, first.
    lead = 0
    while lead < len(messages) and isinstance(messages[lead], SystemMessage):
        lead += 1
    if lead < 2:
        return messages
    text = "\n\n".join(_text(m.content) for m in messages[:lead] if isinstance(m, SystemMessage))
    return [SystemMessage(text), *messages[lead:]]
