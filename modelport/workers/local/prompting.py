"""Turns a chat request into what a chat template takes: message dicts and tools.

When the template renders tools itself, tools and tool-call histories go to it
in the format transformers documents. When it does not (SmolLM2-135M's has no
tool support), a fallback writes the tool list and the call format into the
system prompt, writes past calls the way the model is asked to write them, and
hands tool results back as ``<tool_response>`` user turns, which any template
renders.

Tools offered with ``tool_choice: "none"`` are rendered too, as OpenAI and vLLM do: the
model still knows what it could call, and the prompt is the one ``auto`` renders, so a
prompt cache serves both (the output parser ends the answer where a call would open).
"""

from __future__ import annotations

import json
from typing import Any

from modelport.core.messages import AssistantMessage, Message, ToolMessage, content_text
from modelport.core.request import ChatRequest
from modelport.core.tools import NamedToolChoice
from modelport.workers.local.tool_parsers.base import ToolParser

__all__ = ["template_inputs"]


def _arguments(raw: str) -> Any:
    # Templates expect arguments as a mapping (they apply ``tojson`` themselves).
    try:
        return json.loads(raw or "{}")
    except ValueError:
        return raw


def _native(message: Message) -> dict[str, Any]:
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
        if message.is_error:
            item["content"] = f"Error: {item['content']}"
    return item


def _tool_result(message: ToolMessage) -> str:
    # The result's own text, as Qwen's and Hermes' templates write it: a JSON envelope
    # (ids, names) gave small models something to copy into their answer.
    text = content_text(message.content)
    if message.is_error:
        text = f"Error: {text}"
    return f"<tool_response>\n{text}\n</tool_response>"


def _fallback(request: ChatRequest, parser: ToolParser) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if isinstance(message, AssistantMessage) and message.tool_calls:
            calls = parser.render_calls(message.tool_calls)
            text = content_text(message.content)
            messages.append({"role": "assistant", "content": f"{text}\n{calls}" if text else calls})
        elif isinstance(message, ToolMessage):
            result = _tool_result(message)
            if messages and messages[-1].get("tool_results"):
                messages[-1]["content"] += "\n" + result  # several results of one turn: one user turn
            else:
                messages.append({"role": "user", "content": result, "tool_results": True})
        else:
            messages.append({"role": message.role, "content": content_text(message.content)})
    for item in messages:
        item.pop("tool_results", None)
    if request.tools:
        instructions = parser.format_instructions(request.tools)
        choice = request.tool_choice
        if isinstance(choice, NamedToolChoice):
            instructions += f"\nYou must call the tool {choice.name} now."
        elif choice == "required":
            instructions += "\nYou must call one of the tools now."
        if messages and messages[0]["role"] == "system":
            messages[0]["content"] = f"{messages[0]['content']}\n\n{instructions}"
        else:
            messages.insert(0, {"role": "system", "content": instructions})
    return messages


def template_inputs(
    request: ChatRequest, parser: ToolParser, *, native_tools: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """Returns the messages (OpenAI dicts with text content) and tools for a template.

    Args:
        request: The chat request.
        parser: The model's tool-call parser (it knows the call format).
        native_tools: Whether the chat template renders tools itself.
    """
    has_tool_history = any(
        isinstance(m, ToolMessage) or (isinstance(m, AssistantMessage) and m.tool_calls) for m in request.messages
    )
    if native_tools or not (request.tools or has_tool_history):
        tools = [t.to_dict() for t in request.tools] if request.tools else None
        return [_native(m) for m in request.messages], tools
    return _fallback(request, parser), None
