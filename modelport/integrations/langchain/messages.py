"""Conversions between LangChain messages and modelport's core types and events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import invalid_tool_call, tool_call, tool_call_chunk
from langchain_core.outputs import ChatGeneration

from modelport.core import (
    AssistantMessage,
    BadRequestError,
    ChatResult,
    Content,
    Finish,
    ImagePart,
    Message,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from modelport.core import SystemMessage as CoreSystem
from modelport.core import ToolMessage as CoreTool
from modelport.core import UserMessage as CoreUser

__all__ = [
    "chunk_from_event",
    "events_from_chunk",
    "from_core_messages",
    "generation_from_choice",
    "to_core_messages",
    "usage_metadata",
]

PROVIDER = "modelport"


def _content(content: str | list[Any]) -> Content:
    if isinstance(content, str):
        return content
    parts: list[TextPart | ImagePart] = []
    for block in content:
        if isinstance(block, str):
            parts.append(TextPart(block))
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(TextPart(str(block.get("text", ""))))
        elif kind == "image_url":
            image = block["image_url"]
            parts.append(ImagePart(image["url"] if isinstance(image, dict) else str(image)))
        elif kind == "image":
            if block.get("url"):
                parts.append(ImagePart(str(block["url"])))
            elif block.get("base64"):
                mime = block.get("mime_type", "image/png")
                parts.append(ImagePart(f"data:{mime};base64,{block['base64']}"))
        # Other block kinds (tool_use, reasoning...) carry nothing a prompt needs.
    if all(isinstance(p, TextPart) for p in parts):
        return "".join(p.text for p in parts if isinstance(p, TextPart))
    return tuple(parts)


def _ai(message: AIMessage) -> AssistantMessage:
    calls = tuple(
        ToolCall(tc.get("id") or f"call_{i}", tc["name"], json.dumps(tc.get("args", {}), ensure_ascii=False))
        for i, tc in enumerate(message.tool_calls)
    )
    calls += tuple(
        ToolCall(tc.get("id") or f"call_invalid_{i}", tc.get("name") or "", tc.get("args") or "{}")
        for i, tc in enumerate(message.invalid_tool_calls)
        if tc.get("name")
    )
    content = _content(message.content) if message.content else None
    return AssistantMessage(content or None, calls)


def to_core_messages(messages: Sequence[BaseMessage]) -> list[Message]:
    """Converts LangChain messages to core messages.

    Raises:
        BadRequestError: For a message type modelport cannot send to a model.
    """
    out: list[Message] = []
    for i, message in enumerate(messages):
        if isinstance(message, SystemMessage):
            out.append(CoreSystem(_content(message.content)))
        elif isinstance(message, HumanMessage):
            out.append(CoreUser(_content(message.content)))
        elif isinstance(message, AIMessage):
            out.append(_ai(message))
        elif isinstance(message, ToolMessage):
            out.append(
                CoreTool(
                    _content(message.content), message.tool_call_id, message.name, is_error=message.status == "error"
                )
            )
        elif isinstance(message, ChatMessage) and message.role in ("system", "user", "assistant"):
            content = _content(message.content)
            roles: dict[str, Message] = {
                "system": CoreSystem(content),
                "user": CoreUser(content),
                "assistant": AssistantMessage(content),
            }
            out.append(roles[message.role])
        else:
            raise BadRequestError(f"unsupported message type {type(message).__name__}", param=f"messages[{i}]")
    return out


def usage_metadata(usage: Usage) -> dict[str, Any]:
    """LangChain's ``usage_metadata`` for ``usage``."""
    meta: dict[str, Any] = {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.reasoning_tokens:
        meta["output_token_details"] = {"reasoning": usage.reasoning_tokens}
    if usage.cached_tokens:
        meta["input_token_details"] = {"cache_read": usage.cached_tokens}
    return meta


def chunk_from_event(event: StreamEvent, model_name: str) -> AIMessageChunk:
    """One ``AIMessageChunk`` per stream event; the finish becomes the ``last`` chunk."""
    if isinstance(event, TextDelta):
        return AIMessageChunk(content=event.text)
    if isinstance(event, ReasoningDelta):
        return AIMessageChunk(content="", additional_kwargs={"reasoning_content": event.text})
    if isinstance(event, ToolCallDelta):
        return AIMessageChunk(
            content="",
            tool_call_chunks=[tool_call_chunk(name=event.name, args=event.arguments, id=event.id, index=event.index)],
        )
    assert isinstance(event, Finish)
    return AIMessageChunk(
        content="",
        usage_metadata=usage_metadata(event.usage) if event.usage else None,  # type: ignore[arg-type]
        response_metadata={"finish_reason": event.reason, "model_name": model_name, "model_provider": PROVIDER},
        chunk_position="last",
    )


def generation_from_choice(result: ChatResult, index: int, model_name: str) -> ChatGeneration:
    """Builds a ``ChatGeneration`` whose AIMessage sorts calls into valid and invalid."""
    choice = result.choices[index]
    message = choice.message
    calls, invalid = [], []
    for call in message.tool_calls:
        try:
            args = json.loads(call.arguments or "{}")
            if not isinstance(args, dict):
                raise ValueError("arguments are not an object")
            calls.append(tool_call(name=call.name, args=args, id=call.id))
        except ValueError as error:
            invalid.append(invalid_tool_call(name=call.name, args=call.arguments, id=call.id, error=str(error)))
    text = message.content if isinstance(message.content, str) else ""
    extra = {"reasoning_content": message.reasoning} if message.reasoning else {}
    ai = AIMessage(
        content=text,
        tool_calls=calls,
        invalid_tool_calls=invalid,
        additional_kwargs=extra,
        usage_metadata=usage_metadata(result.usage) if index == 0 else None,  # type: ignore[arg-type]
        response_metadata={"finish_reason": choice.finish_reason, "model_name": model_name, "model_provider": PROVIDER},
    )
    return ChatGeneration(message=ai, generation_info={"finish_reason": choice.finish_reason})


def _lc_content(content: Content | None) -> str | list[str | dict[str, Any]]:
    if content is None or isinstance(content, str):
        return content or ""
    blocks: list[str | dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            blocks.append({"type": "text", "text": part.text})
        else:
            blocks.append({"type": "image_url", "image_url": {"url": part.url}})
    return blocks


def from_core_messages(messages: Sequence[Message]) -> list[BaseMessage]:
    """Converts core messages to LangChain messages."""
    out: list[BaseMessage] = []
    for message in messages:
        if isinstance(message, CoreSystem):
            out.append(SystemMessage(_lc_content(message.content)))
        elif isinstance(message, CoreUser):
            out.append(HumanMessage(_lc_content(message.content)))
        elif isinstance(message, AssistantMessage):
            calls = []
            for call in message.tool_calls:
                try:
                    args = json.loads(call.arguments or "{}")
                except ValueError:
                    args = {}
                calls.append(tool_call(name=call.name, args=args, id=call.id))
            out.append(AIMessage(_lc_content(message.content), tool_calls=calls))
        else:
            status = "error" if message.is_error else "success"
            out.append(ToolMessage(_lc_content(message.content), tool_call_id=message.tool_call_id, status=status))
    return out


def events_from_chunk(chunk: AIMessageChunk | AIMessage) -> list[StreamEvent]:
    """The text and tool-call deltas carried by a LangChain message chunk."""
    events: list[StreamEvent] = []
    text = chunk.text if isinstance(chunk.text, str) else str(chunk.text)
    if text:
        events.append(TextDelta(text))
    if isinstance(chunk, AIMessageChunk):
        for piece in chunk.tool_call_chunks:
            events.append(
                ToolCallDelta(piece.get("index") or 0, piece.get("id"), piece.get("name"), piece.get("args") or "")
            )
    else:
        for i, call in enumerate(chunk.tool_calls):
            args = json.dumps(call.get("args", {}), ensure_ascii=False)
            events.append(ToolCallDelta(i, call.get("id"), call["name"], args))
    return events
