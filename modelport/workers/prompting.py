"""Turns a chat request into what a chat template takes: message dicts and tools."""

from __future__ import annotations

import json
from typing import Any

from modelport.core.messages import AssistantMessage, ToolMessage, content_text
from modelport.core.request import ChatRequest

__all__ = ["template_inputs"]


def _arguments(raw: str) -> Any:
    # Templates expect arguments as a mapping (they apply ``tojson`` themselves).
    try:
        return json.loads(raw or "{}")
    except ValueError:
        return raw


def template_inputs(request: ChatRequest) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """Returns the messages (OpenAI dicts with text content) and tools for a template."""
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        item: dict[str, Any] = {"role": message.role, "content": content_text(message.content)}
        if isinstance(message, AssistantMessage) and message.tool_calls:
            item["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": _arguments(c.arguments)}}
                for c in message.tool_calls
            ]
        elif isinstance(message, ToolMessage):
            item["tool_call_id"] = message.tool_call_id
            if message.name:
                item["name"] = message.name
        messages.append(item)
    tools = [t.to_dict() for t in request.tools] if request.wants_tools else None
    return messages, tools
