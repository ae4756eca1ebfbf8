"""Chat messages: the neutral form every surface converts to and from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias

from modelport.core.errors import BadRequestError
from modelport.core.tools import ToolCall

__all__ = [
    "AssistantMessage",
    "Content",
    "ContentPart",
    "ImagePart",
    "Message",
    "SystemMessage",
    "TextPart",
    "ToolMessage",
    "UserMessage",
    "content_text",
    "message_from_dict",
    "message_to_dict",
]


@dataclass(frozen=True, slots=True)
class TextPart:
    """A piece of text inside multi-part content."""

    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image, by URL or ``data:`` URI."""

    url: str
    detail: str | None = None
    type: Literal["image"] = "image"


ContentPart: TypeAlias = TextPart | ImagePart
Content: TypeAlias = str | tuple[ContentPart, ...]


def content_text(content: Content | None) -> str:
    """Joins the text parts of ``content``; images are dropped."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.text for p in content if isinstance(p, TextPart))


@dataclass(frozen=True, slots=True)
class SystemMessage:
    """Instructions for the model."""

    content: Content
    role: ClassVar[Literal["system"]] = "system"


@dataclass(frozen=True, slots=True)
class UserMessage:
    """A user's turn; may hold images."""

    content: Content
    role: ClassVar[Literal["user"]] = "user"


@dataclass(frozen=True, slots=True)
class AssistantMessage:
    """A model's turn: text, tool calls, or both."""

    content: Content | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    role: ClassVar[Literal["assistant"]] = "assistant"


@dataclass(frozen=True, slots=True)
class ToolMessage:
    """The result of one tool call, matched by ``tool_call_id``."""

    content: Content
    tool_call_id: str
    name: str | None = None
    is_error: bool = False
    role: ClassVar[Literal["tool"]] = "tool"


Message: TypeAlias = SystemMessage | UserMessage | AssistantMessage | ToolMessage


def _content_to_wire(content: Content | None) -> Any:
    if content is None or isinstance(content, str):
        return content
    parts: list[dict[str, Any]] = []
    for p in content:
        if isinstance(p, TextPart):
            parts.append({"type": "text", "text": p.text})
        else:
            image: dict[str, Any] = {"url": p.url}
            if p.detail is not None:
                image["detail"] = p.detail
            parts.append({"type": "image_url", "image_url": image})
    return parts


def message_to_dict(message: Message) -> dict[str, Any]:
    """Converts a message to the OpenAI chat format (also what chat templates take)."""
    out: dict[str, Any] = {"role": message.role, "content": _content_to_wire(message.content)}
    if isinstance(message, AssistantMessage):
        if message.tool_calls:
            out["tool_calls"] = [tc.to_dict() for tc in message.tool_calls]
        if message.reasoning:
            out["reasoning_content"] = message.reasoning
    elif isinstance(message, ToolMessage):
        out["tool_call_id"] = message.tool_call_id
        if message.name is not None:
            out["name"] = message.name
    return out


def _content_from_wire(value: Any, where: str) -> Content:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence):
        parts: list[ContentPart] = []
        for i, part in enumerate(value):
            if not isinstance(part, Mapping):
                raise BadRequestError("content parts must be objects", param=f"{where}[{i}]")
            kind = part.get("type")
            if kind == "text":
                parts.append(TextPart(str(part.get("text", ""))))
            elif kind == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, Mapping) else image
                if not isinstance(url, str):
                    raise BadRequestError("image_url needs a url", param=f"{where}[{i}].image_url")
                detail = image.get("detail") if isinstance(image, Mapping) else None
                parts.append(ImagePart(url, detail))
            else:
                raise BadRequestError(f"unsupported content part type {kind!r}", param=f"{where}[{i}].type")
        return tuple(parts)
    raise BadRequestError("content must be a string or a list of parts", param=where)


def message_from_dict(data: Mapping[str, Any], *, where: str = "messages") -> Message:
    """Builds a message from the OpenAI chat format.

    Raises:
        BadRequestError: If the role is unknown or a required field is missing.
    """
    role = data.get("role")
    content = data.get("content")
    if role in ("system", "developer"):
        return SystemMessage(_content_from_wire(content or "", f"{where}.content"))
    if role == "user":
        if content is None:
            raise BadRequestError("user messages need content", param=f"{where}.content")
        return UserMessage(_content_from_wire(content, f"{where}.content"))
    if role == "assistant":
        calls = tuple(
            ToolCall.from_dict(tc, where=f"{where}.tool_calls[{i}]")
            for i, tc in enumerate(data.get("tool_calls") or ())
        )
        reasoning = data.get("reasoning_content")
        return AssistantMessage(
            None if content is None else _content_from_wire(content, f"{where}.content"),
            calls,
            reasoning if isinstance(reasoning, str) else None,
        )
    if role == "tool":
        call_id = data.get("tool_call_id")
        if not isinstance(call_id, str):
            raise BadRequestError("tool messages need a tool_call_id", param=f"{where}.tool_call_id")
        return ToolMessage(_content_from_wire(content or "", f"{where}.content"), call_id, data.get("name"))
    raise BadRequestError(f"unknown role {role!r}", param=f"{where}.role")
