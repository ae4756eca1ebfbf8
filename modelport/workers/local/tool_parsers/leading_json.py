"""Formats where the whole answer is JSON when the model calls a tool."""

from __future__ import annotations

import json
from typing import Any

from modelport.core.events import TextDelta
from modelport.workers.local.tool_parsers.base import ParsedEvent, ToolParser

__all__ = ["LeadingJsonToolParser"]


class LeadingJsonToolParser(ToolParser):
    """Decides from the first characters whether the answer is a call.

    An answer that begins (after whitespace and an optional ``marker``) with ``{``
    or ``[`` is held to the end and decoded as calls; anything else streams out as
    text at once. If the held answer does not decode, it is given back as text.
    """

    marker = ""
    separators: tuple[str, ...] = (";",)
    call_separator = "; "
    text_before_calls = False
    text_after_calls = False

    def __init__(self) -> None:
        super().__init__()
        self._head = ""
        self._mode: str | None = None  # None until decided, then "text" or "json"

    def _decide(self) -> None:
        head = self._head.lstrip()
        if (self.marker and head.startswith(self.marker)) or head.startswith("```") or head[:1] in ("{", "["):
            self._mode = "json"
        elif head and not (self.marker and self.marker.startswith(head)) and not "```".startswith(head):
            self._mode = "text"

    def feed(self, text: str) -> list[ParsedEvent]:
        """Streams text once the answer is known not to be a call."""
        if self._mode == "text":
            return [TextDelta(text)]
        self._head += text
        if self._mode is None:
            self._decide()
            if self._mode == "text":
                out, self._head = self._head, ""
                return [TextDelta(out)]
        return []

    def _payloads(self, body: str) -> list[Any] | None:
        body = body.strip()
        if self.marker and body.startswith(self.marker):
            body = body[len(self.marker) :].strip()
        if body.startswith("```"):
            body = body.strip("`").removeprefix("json").strip()
        # Several calls may follow each other, separated by ";" or newlines; decode them one by one
        # so a separator inside a string argument is never mistaken for a boundary.
        decoder = json.JSONDecoder()
        values: list[Any] = []
        pos = 0
        while pos < len(body):
            while pos < len(body) and (body[pos].isspace() or body[pos] in self.separators):
                pos += 1
            if pos == len(body):
                break
            try:
                value, pos = decoder.raw_decode(body, pos)
            except ValueError:
                return None
            values.extend(value if isinstance(value, list) else [value])
        return values or None

    def finish(self) -> list[ParsedEvent]:
        """Decodes a held answer into calls, or gives it back as text."""
        head, self._head = self._head, ""
        if not head:
            return []
        payloads = self._payloads(head) if self._mode != "text" else None
        if payloads:
            events: list[ParsedEvent] = []
            for payload in payloads:
                call = self._call_events(payload)
                if call is None:
                    # JSON that is not a call (a JSON answer to a JSON question) stays text.
                    self._next_index = 0
                    return [TextDelta(head)]
                events += call
            return events
        if self._mode == "json" and self._looks_like_call(head):
            return self.incomplete_call_events(self._strip_frame(head))
        return [TextDelta(head)]

    def _strip_frame(self, body: str) -> str:
        body = body.strip()
        if self.marker and body.startswith(self.marker):
            body = body[len(self.marker) :].strip()
        return body.strip("`").removeprefix("json").strip() if body.startswith("```") else body

    def _looks_like_call(self, head: str) -> bool:
        """An undecodable head is a cut call when it opens with the marker or a call's first key."""
        if self.marker and head.lstrip().startswith(self.marker):
            return True
        body = self._strip_frame(head).lstrip("[").lstrip()
        if not body.startswith("{"):
            return False
        key = body[1:].lstrip()
        return key.startswith('"name"') or '"name"'.startswith(key)
