"""Tool-call parsers, one module per format, registered by name."""

from modelport.workers.tool_parsers.base import (
    ENTRY_POINT_GROUP,
    ParsedEvent,
    ToolParser,
    get_tool_parser,
    register_tool_parser,
    tool_parser_names,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ParsedEvent",
    "ToolParser",
    "get_tool_parser",
    "register_tool_parser",
    "tool_parser_names",
]
