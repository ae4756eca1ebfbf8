"""Hermes / Qwen format: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``."""

from __future__ import annotations

from modelport.workers.local.tool_parsers.base import register_tool_parser
from modelport.workers.local.tool_parsers.markup import MarkupToolParser

__all__ = ["HermesToolParser"]


@register_tool_parser("hermes")
class HermesToolParser(MarkupToolParser):
    """Each call is one JSON object between ``<tool_call>`` tags; several may follow each other."""

    start = "<tool_call>"
    end = "</tool_call>"
    call_prefix = "<tool_call>\n"
    call_suffix = "\n</tool_call>"
