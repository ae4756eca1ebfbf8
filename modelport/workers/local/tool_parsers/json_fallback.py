"""Generic fallback: a bare JSON object (or list, or fenced JSON) with ``name`` and ``arguments``."""

from __future__ import annotations

from modelport.workers.local.tool_parsers.base import register_tool_parser
from modelport.workers.local.tool_parsers.leading_json import LeadingJsonToolParser

__all__ = ["JsonToolParser"]


@register_tool_parser("json")
class JsonToolParser(LeadingJsonToolParser):
    """For models with no trained format: answers that are JSON calls become tool calls."""

    separators = ("\n", ";")
    call_separator = "\n"
