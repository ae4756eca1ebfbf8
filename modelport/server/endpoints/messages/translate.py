"""Messages API requests onto the core: system and blocks to messages, tools, tool_choice, thinking.

Every refusal names the field where it stands (``messages[2].content[0].tool_use_id``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
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
from modelport.core.tools import ToolCall, ToolSpec

__all__ = ["messages_from_wire", "reasoning_effort", "system_message", "tool_choice", "tools_from_wire"]

# Tools that run on Anthropic's side; a local model has nothing to run them with.
_SERVER_TOOL_PREFIXES = (
    "web_search",
    "web_fetch",
    "code_execution",
    "computer",
    "bash",
    "text_editor",
    "memory",
    "tool_search",
    "mcp",
)
# Block types that come back from Anthropic's own tools: a local model never made them.
_SERVER_RESULT_BLOCKS = ("server_tool_use", "web_search_tool_result", "mcp_tool_use", "mcp_tool_result")


def _text(block: Mapping[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise BadRequestError("a text block needs its text", param=f"{where}.text")
    return text


def _image(block: Mapping[str, Any], where: str) -> ImagePart:
    source = block.get("source")
    if not isinstance(source, Mapping):
        raise BadRequestError("an image block needs a source", param=f"{where}.source")
    kind = source.get("type")
    if kind == "base64":
        media, data = source.get("media_type"), source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise BadRequestError("needs media_type and data", param=f"{where}.source")
        return ImagePart(f"data:{media};base64,{data}")
    if kind == "url" and isinstance(source.get("url"), str):
        return ImagePart(source["url"])
    raise BadRequestError(f"unsupported image source {kind!r} (base64 or url)", param=f"{where}.source.type")


def _content(parts: list[ContentPart]) -> Any:
    """Text parts as one string (what every chat template takes); with an image, the parts."""
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    return tuple(parts)


def system_message(system: str | Sequence[Mapping[str, Any]] | None, where: str = "system") -> SystemMessage | None:
    """``system``, a string or text blocks (their ``cache_control`` ignored), as one message."""
    if system is None:
        return None
    if isinstance(system, str):
        return SystemMessage(system) if system else None
    texts = []
    for i, block in enumerate(system):
        if block.get("type") != "text":
            raise BadRequestError("system blocks must be text blocks", param=f"{where}[{i}].type")
        texts.append(_text(block, f"{where}[{i}]"))
    joined = "\n\n".join(t for t in texts if t)
    return SystemMessage(joined) if joined else None


def _tool_result(block: Mapping[str, Any], where: str, known: set[str]) -> ToolMessage:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or call_id not in known:
        raise BadRequestError(
            f"tool_result block refers to {call_id!r}, which no earlier tool_use block has",
            param=f"{where}.tool_use_id",
        )
    content = block.get("content", "")
    parts: list[ContentPart] = []
    if isinstance(content, str):
        parts.append(TextPart(content))
    elif isinstance(content, list):
        for j, inner in enumerate(content):
            at = f"{where}.content[{j}]"
            kind = inner.get("type") if isinstance(inner, Mapping) else None
            if kind == "text":
                parts.append(TextPart(_text(inner, at)))
            elif kind == "image":
                parts.append(_image(inner, at))
            else:
                raise BadRequestError(f"unsupported block type {kind!r} in a tool result", param=f"{at}.type")
    else:
        raise BadRequestError("must be a string or a list of blocks", param=f"{where}.content")
    return ToolMessage(_content(parts), call_id, is_error=bool(block.get("is_error")))


def _user(content: Sequence[Any], where: str, known: set[str]) -> list[Message]:
    out: list[Message] = []
    parts: list[ContentPart] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            parts.append(TextPart(_text(block, at)))
        elif kind == "image":
            parts.append(_image(block, at))
        elif kind == "tool_result":
            out.append(_tool_result(block, at, known))
        else:
            raise BadRequestError(f"unsupported block type {kind!r} in a user message", param=f"{at}.type")
    if parts:
        out.append(UserMessage(_content(parts)))
    return out


def _assistant(content: Sequence[Any], where: str, known: set[str]) -> AssistantMessage:
    texts: list[str] = []
    calls: list[ToolCall] = []
    thinking: list[str] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            texts.append(_text(block, at))
        elif kind == "tool_use":
            call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
            if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(arguments, Mapping):
                raise BadRequestError("a tool_use block needs an id, a name and an input object", param=at)
            known.add(call_id)
            calls.append(ToolCall(call_id, name, json.dumps(arguments, ensure_ascii=False)))
        elif kind == "thinking":
            if isinstance(block.get("thinking"), str):
                thinking.append(block["thinking"])
        elif kind == "redacted_thinking":
            continue  # opaque by design: nothing a local model can read
        elif kind in _SERVER_RESULT_BLOCKS:
            raise BadRequestError(f"{kind} blocks come from server tools, which this server does not run", param=at)
        else:
            raise BadRequestError(f"unsupported block type {kind!r} in an assistant message", param=f"{at}.type")
    return AssistantMessage("".join(texts) or None, tuple(calls), "".join(thinking) or None)


def messages_from_wire(system: Any, messages: Sequence[Mapping[str, Any]]) -> list[Message]:
    """The conversation: ``system`` first, then each turn (tool results as tool messages).

    Messages with the ``system`` role (Claude Code sends its environment as one, after the first
    user turn) join the system prompt, in order: many chat templates take a system message only
    at the start.

    Raises:
        BadRequestError: Naming the block, e.g. a ``tool_result`` without its ``tool_use``.
    """
    out: list[Message] = []
    instructions: list[str] = []
    lead = system_message(system)
    if lead is not None:
        instructions.append(str(lead.content))
    known: set[str] = set()
    if not messages:
        raise BadRequestError("at least one message is required", param="messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role, content = message.get("role"), message.get("content")
        if role == "system":
            joined = system_message(content if isinstance(content, str | list) else None, f"{where}.content")
            if content is not None and not isinstance(content, str | list):
                raise BadRequestError("must be a string or a list of text blocks", param=f"{where}.content")
            if joined is not None:
                instructions.append(str(joined.content))
            continue
        if role not in ("user", "assistant"):
            raise BadRequestError(f"role must be user, assistant or system, got {role!r}", param=f"{where}.role")
        if isinstance(content, str):
            out.append(UserMessage(content) if role == "user" else AssistantMessage(content))
            continue
        if not isinstance(content, list):
            raise BadRequestError("must be a string or a list of blocks", param=f"{where}.content")
        if role == "user":
            out += _user(content, where, known)
        else:
            out.append(_assistant(content, where, known))
    if not out:
        raise BadRequestError("at least one user or assistant message is required", param="messages")
    return [SystemMessage("\n\n".join(instructions)), *out] if instructions else out


def tools_from_wire(tools: Sequence[Mapping[str, Any]] | None) -> list[ToolSpec]:
    """Custom tools (``name``, ``description``, ``input_schema``); server tools are refused by name.

    ``cache_control``, ``defer_loading`` and the like change nothing here and are ignored.
    """
    specs = []
    for i, tool in enumerate(tools or ()):
        kind = tool.get("type")
        if kind not in (None, "custom"):
            server = any(str(kind).startswith(p) for p in _SERVER_TOOL_PREFIXES)
            why = "server tools run on Anthropic's side; this server cannot run them" if server else "unknown type"
            raise BadRequestError(f"{why}: {kind!r}", param=f"tools[{i}].type")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise BadRequestError("a tool needs a name", param=f"tools[{i}].name")
        schema = tool.get("input_schema")
        if not isinstance(schema, Mapping):
            raise BadRequestError("a tool needs an input_schema object", param=f"tools[{i}].input_schema")
        try:
            specs.append(ToolSpec(name, str(tool.get("description") or ""), schema))
        except BadRequestError as error:
            raise BadRequestError(
                error.message.split(": ", 1)[-1], param=f"tools[{i}].input_schema", code=error.code
            ) from None
    return specs


def tool_choice(choice: Mapping[str, Any] | None, tools: Sequence[ToolSpec]) -> tuple[Any, bool | None]:
    """``tool_choice`` as the core's (``auto``, ``required``, ``none`` or a named function).

    Returns:
        The choice, and ``parallel_tool_calls`` (``False`` with ``disable_parallel_tool_use``).
    """
    if choice is None:
        return None, None
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if kind in ("auto", "any", "tool") and not tools:
        raise BadRequestError("tool_choice needs tools", param="tool_choice")
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", parallel
    if kind == "tool":
        name = choice.get("name")
        if name not in {t.name for t in tools}:
            raise BadRequestError(f"no tool named {name!r}", param="tool_choice.name")
        return {"type": "function", "function": {"name": name}}, parallel
    raise BadRequestError(f"unknown tool_choice type {kind!r} (auto, any, tool, none)", param="tool_choice.type")


def reasoning_effort(thinking: Mapping[str, Any] | None) -> str | None:
    """``thinking`` as a reasoning effort, for workers whose models reason (others ignore it)."""
    if not thinking:
        return None
    kind = thinking.get("type")
    if kind == "disabled":
        return "none"
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1:
            raise BadRequestError("needs a positive budget_tokens", param="thinking.budget_tokens")
        return "low" if budget < 4096 else "medium" if budget < 16384 else "high"
    if kind == "adaptive":
        return None
    raise BadRequestError(f"unknown thinking type {kind!r} (enabled, adaptive, disabled)", param="thinking.type")
