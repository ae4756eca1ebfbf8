"""Tool-call parsers, one module per format, registered by name.

Part of the local pipeline. May import ``core`` and ``workers.local.constrained``.
"""

from modelport.workers.local.tool_parsers.base import (
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
