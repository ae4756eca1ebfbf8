"""Conversions between LlamaIndex chat messages and modelport's core types."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ImageBlock,
    MessageRole,
    TextBlock,
    ThinkingBlock,
    ToolCallBlock,
)
from llama_index.core.llms.llm import ToolSelection

from modelport.core import (
    AssistantMessage,
    ImagePart,
    Message,
    SystemMessage,
    TextPart,
    ToolCall,
    ToolMessage,
    UserMessage,
    new_tool_call_id,
)

__all__ = ["assistant_message", "parse_arguments", "to_core_messages", "tool_selections"]


def _text(message: ChatMessage) -> str:
    return "\n".join(b.text for b in message.blocks if isinstance(b, TextBlock))


def _image_url(block: ImageBlock) -> str | None:
    if block.url is not None:
        return str(block.url)
    raw = block.image
    if raw is not None and not isinstance(raw, bytes):
        raw = raw.read()
    if raw is None and block.path is not None:
        raw = block.path.read_bytes()
    if raw is None:
        return None
    # ImageBlock keeps bytes base64-encoded once resolved; a data URL needs that text.
    try:
        base64.b64decode(raw, validate=True)
        data = raw.decode("ascii")
    except (ValueError, UnicodeDecodeError):
        data = base64.b64encode(raw).decode("ascii")
    return f"data:{block.image_mimetype or 'image/png'};base64,{data}"


def _user_content(message: ChatMessage) -> str | tuple[TextPart | ImagePart, ...]:
    if all(isinstance(b, TextBlock) for b in message.blocks):
        return _text(message)
    parts: list[TextPart | ImagePart] = []
    for block in message.blocks:
        if isinstance(block, TextBlock):
            parts.append(TextPart(block.text))
        elif isinstance(block, ImageBlock):
            url = _image_url(block)
            if url is not None:
                parts.append(ImagePart(url, block.detail))
    return tuple(parts)


def _tool_calls(message: ChatMessage) -> tuple[ToolCall, ...]:
    calls = []
    for block in message.blocks:
        if isinstance(block, ToolCallBlock):
            args = block.tool_kwargs if isinstance(block.tool_kwargs, str) else json.dumps(block.tool_kwargs)
            calls.append(ToolCall(block.tool_call_id or new_tool_call_id(), block.tool_name, args))
    if calls:
        return tuple(calls)
    # Messages built by hand (or by older code) carry OpenAI-style dicts instead.
    for item in message.additional_kwargs.get("tool_calls") or ():
        if isinstance(item, dict):
            calls.append(ToolCall.from_dict(item))
    return tuple(calls)


def to_core_messages(messages: Sequence[ChatMessage]) -> list[Message]:
    """LlamaIndex messages as core messages (tool results need ``tool_call_id`` in additional_kwargs)."""
    out: list[Message] = []
    names: dict[str, str] = {}  # tool-call id -> tool name, to name results that arrive without one
    for message in messages:
        role = message.role
        if role in (MessageRole.SYSTEM, MessageRole.DEVELOPER):
            out.append(SystemMessage(_text(message)))
        elif role in (MessageRole.ASSISTANT, MessageRole.MODEL, MessageRole.CHATBOT):
            reasoning = "".join(b.content or "" for b in message.blocks if isinstance(b, ThinkingBlock)) or None
            calls = _tool_calls(message)
            names.update((c.id, c.name) for c in calls)
            out.append(AssistantMessage(_text(message) or None, calls, reasoning=reasoning))
        elif role in (MessageRole.TOOL, MessageRole.FUNCTION):
            call_id = message.additional_kwargs.get("tool_call_id") or ""
            name = message.additional_kwargs.get("name") or names.get(str(call_id))
            out.append(ToolMessage(_text(message), str(call_id), name=name))
        else:
            out.append(UserMessage(_user_content(message)))
    return out


def parse_arguments(arguments: str) -> dict[str, Any]:
    """Tool arguments as a dict; text that is not (yet) a JSON object gives ``{}``, never an error."""
    try:
        value = json.loads(arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def assistant_message(text: str, calls: Sequence[ToolCall], reasoning: str = "") -> ChatMessage:
    """An assistant message with tool calls both as blocks and in ``additional_kwargs``."""
    blocks: list[Any] = []
    if reasoning:
        blocks.append(ThinkingBlock(content=reasoning))
    blocks.append(TextBlock(text=text))
    blocks += [
        ToolCallBlock(tool_call_id=c.id, tool_name=c.name, tool_kwargs=parse_arguments(c.arguments)) for c in calls
    ]
    extra: dict[str, Any] = {}
    if calls:
        extra["tool_calls"] = [c.to_dict() for c in calls]
    return ChatMessage(role=MessageRole.ASSISTANT, blocks=blocks, additional_kwargs=extra)


def tool_selections(message: ChatMessage) -> list[ToolSelection]:
    """The tool calls of an assistant message, partial streamed ones included, as ToolSelections."""
    selections = []
    for call in _tool_calls(message):
        selections.append(
            ToolSelection(tool_id=call.id, tool_name=call.name, tool_kwargs=parse_arguments(call.arguments))
        )
    return selections
