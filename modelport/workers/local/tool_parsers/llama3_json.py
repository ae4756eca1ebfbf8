"""Llama 3.x JSON format: ``{"name": ..., "parameters": {...}}``, optionally after ``<|python_tag|>``."""

from __future__ import annotations

import json

from modelport.core.tools import ToolCall
from modelport.workers.local.tool_parsers.base import register_tool_parser
from modelport.workers.local.tool_parsers.leading_json import LeadingJsonToolParser

__all__ = ["Llama3JsonToolParser"]


@register_tool_parser("llama3-json")
class Llama3JsonToolParser(LeadingJsonToolParser):
    """The answer is one JSON call (or several separated by ``;``)."""

    marker = "<|python_tag|>"

    def render_call(self, call: ToolCall) -> str:
        """Llama 3 writes ``parameters`` rather than ``arguments``."""
        try:
            params = json.loads(call.arguments or "{}")
        except ValueError:
            params = call.arguments
        return json.dumps({"name": call.name, "parameters": params}, ensure_ascii=False)
