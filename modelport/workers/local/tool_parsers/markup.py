"""A parser for calls wrapped in start/end markers, the shape most formats share."""

from __future__ import annotations

import json
from typing import Any

from modelport.core.events import TextDelta
from modelport.workers.local.tool_parsers.base import ParsedEvent, ToolParser

__all__ = ["MarkupToolParser", "held_prefix"]


def held_prefix(text: str, marker: str) -> int:
    """Length of the longest tail of ``text`` that starts ``marker``."""
    for n in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-n:]):
            return n
    return 0


class MarkupToolParser(ToolParser):
    """Finds ``start ... end`` blocks; text around them passes through untouched.

    Subclasses set ``start`` and ``end`` (``None`` for "until the end of output")
    and may override ``decode_block`` to turn a block's body into call payloads.
    A block that does not decode to calls (cut short by ``max_tokens``, or badly written)
    becomes an incomplete call holding what the model wrote: never text with markup in it.
    """

    start = ""
    end: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self._buffer = ""
        self._inside = False
        self._searched = 0

    def decode_block(self, body: str) -> list[Any] | None:
        """Decodes a block body into call payloads; ``None`` if it is not valid."""
        try:
            value = json.loads(body)
        except ValueError:
            return None
        return value if isinstance(value, list) else [value]

    def _close_block(self, body: str) -> list[ParsedEvent]:
        payloads = self.decode_block(body.strip())
        if payloads:
            saved = self._next_index
            events: list[ParsedEvent] = []
            for payload in payloads:
                call = self._call_events(payload)
                if call is None:
                    self._next_index = saved
                    return self.incomplete_call_events(body)
                events += call
            return events
        return self.incomplete_call_events(body)

    def feed(self, text: str) -> list[ParsedEvent]:
        """Passes text through and collects complete blocks."""
        self._buffer += text
        events: list[ParsedEvent] = []
        while True:
            if not self._inside:
                at = self._buffer.find(self.start)
                if at < 0:
                    keep = held_prefix(self._buffer, self.start)
                    out = self._buffer[: len(self._buffer) - keep]
                    self._buffer = self._buffer[len(self._buffer) - keep :]
                    if out:
                        events.append(TextDelta(out))
                    return events
                if at:
                    events.append(TextDelta(self._buffer[:at]))
                self._buffer = self._buffer[at + len(self.start) :]
                self._inside = True
            if self.end is None:
                return events
            close = self._find_end()
            if close < 0:
                return events
            body = self._buffer[:close]
            self._buffer = self._buffer[close + len(self.end) :]
            self._inside = False
            self._searched = 0
            events += self._close_block(body)

    def _find_end(self) -> int:
        """Finds the end marker that closes a decodable block.

        The marker may also occur inside a JSON string of the call, so an end
        marker whose body does not decode is skipped. The search resumes where
        it left off, so each character is scanned once.
        """
        assert self.end is not None
        while True:
            close = self._buffer.find(self.end, self._searched)
            if close < 0:
                self._searched = max(0, len(self._buffer) - len(self.end) + 1)
                return -1
            if self.decode_block(self._buffer[:close].strip()):
                return close
            self._searched = close + 1

    def finish(self) -> list[ParsedEvent]:
        """Decodes an unterminated final block, or gives the rest back as text.

        A constrained call ends where its JSON closes, and a model often stops right before the
        end marker: such a block is accepted when it decodes. An answer cut inside the start
        marker itself was opening a call, and ends as an empty incomplete one.
        """
        rest, self._buffer = self._buffer, ""
        self._searched = 0
        if not self._inside:
            if len(rest) > 1 and self.start.startswith(rest):
                return self.incomplete_call_events("")
            return [TextDelta(rest)] if rest else []
        self._inside = False
        if self.end:
            # An end marker cut short by max_tokens is not part of the call.
            rest = rest[: len(rest) - held_prefix(rest, self.end)]
        return self._close_block(rest)
