"""The worker's events as an Anthropic message, whole or as its stream events.

One ``MessageBuilder`` serves both: it opens a content block when a new kind of output starts
(``thinking`` from reasoning, ``text``, one ``tool_use`` per call), closes it when the next
begins, and keeps the message it describes, so a whole answer is what its stream adds up to.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from modelport.core.events import Finish, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta

__all__ = ["MessageBuilder", "partial_input", "sse_event"]

_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


def sse_event(event: dict[str, Any]) -> bytes:
    """One event as Anthropic sends it: its type on the ``event:`` line, then its data."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def partial_input(arguments: str) -> dict[str, Any]:
    """A call's arguments as an object, closing what a cut left open (``{"city": "Par`` -> ``{"city": "Par"}``).

    A call cut by ``max_tokens`` keeps what was generated; what cannot be read is left out.
    """
    text = arguments.strip() or "{}"
    for attempt in (text, *_closings(text)):
        try:
            value = json.loads(attempt)
        except json.JSONDecodeError:
            continue
        return value if isinstance(value, dict) else {}
    return {}


def _closings(text: str) -> list[str]:
    """Candidate completions of a JSON prefix: close the open string, drop a dangling key, close brackets."""
    stack, in_string, escaped = [], False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]" and stack:
            stack.pop()
    base = text.removesuffix("\\") + ('"' if in_string else "")
    close = "".join(reversed(stack))
    trimmed = base.rstrip().rstrip(",:")
    # Without the last, unfinished member (a key with no value yet).
    cut = trimmed[: max(trimmed.rfind(","), trimmed.rfind("{") + 1, 0)].rstrip(",")
    return [base + close, trimmed + close, cut + close]


class MessageBuilder:
    """Builds one message from events.

    Args:
        message_id: ``msg_...``.
        model: The model name the client asked for.
        seal: Seals a thinking block's text into its ``signature`` (the server's key).
    """

    def __init__(self, message_id: str, model: str, seal: Callable[[str], str] | None = None) -> None:
        self.message: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 0,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        self._seal = seal
        self._open: dict[str, Any] | None = None  # the block being written
        self._calls: dict[int, int] = {}  # a call's index -> its block's index
        self._arguments: dict[int, str] = {}  # a block's index -> its input JSON so far
        self.finish: Finish | None = None

    def start(self) -> list[dict[str, Any]]:
        """``message_start`` with the empty message, then a ``ping``, as Anthropic begins."""
        head = json.loads(json.dumps(self.message))
        return [{"type": "message_start", "message": head}, {"type": "ping"}]

    def _begin(self, block: dict[str, Any]) -> list[dict[str, Any]]:
        events = self._close()
        index = len(self.message["content"])
        self.message["content"].append(block)
        self._open = block
        events.append({"type": "content_block_start", "index": index, "content_block": json.loads(json.dumps(block))})
        return events

    def _close(self) -> list[dict[str, Any]]:
        block, self._open = self._open, None
        if block is None:
            return []
        index = self.message["content"].index(block)
        events: list[dict[str, Any]] = []
        if block["type"] == "thinking":
            block["signature"] = self._seal(block["thinking"]) if self._seal else ""
            events.append(
                {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "signature_delta", "signature": block["signature"]},
                }
            )
        elif block["type"] == "tool_use":
            block["input"] = partial_input(self._arguments.get(index, ""))
        events.append({"type": "content_block_stop", "index": index})
        return events

    def feed(self, event: StreamEvent) -> list[dict[str, Any]]:
        """The stream events for one worker event (a finish is kept for ``end``)."""
        if isinstance(event, Finish):
            self.finish = event
            return []
        if isinstance(event, TextDelta):
            if not event.text:
                return []
            events = [] if self._is_open("text") else self._begin({"type": "text", "text": ""})
            block = self._open
            assert block is not None
            block["text"] += event.text
            index = len(self.message["content"]) - 1
            events.append(
                {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": event.text}}
            )
            return events
        if isinstance(event, ReasoningDelta):
            if not event.text:
                return []
            events = (
                [] if self._is_open("thinking") else self._begin({"type": "thinking", "thinking": "", "signature": ""})
            )
            block = self._open
            assert block is not None
            block["thinking"] += event.text
            index = len(self.message["content"]) - 1
            delta = {"type": "thinking_delta", "thinking": event.text}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
            return events
        if isinstance(event, ToolCallDelta):
            events = []
            if event.index not in self._calls:
                block = {
                    "type": "tool_use",
                    "id": event.id or f"toolu_{len(self._calls)}",
                    "name": event.name or "",
                    "input": {},
                }
                events += self._begin(block)
                self._calls[event.index] = len(self.message["content"]) - 1
            index = self._calls[event.index]
            if event.arguments:
                self._arguments[index] = self._arguments.get(index, "") + event.arguments
                delta = {"type": "input_json_delta", "partial_json": event.arguments}
                events.append({"type": "content_block_delta", "index": index, "delta": delta})
            return events
        return []

    def _is_open(self, kind: str) -> bool:
        return self._open is not None and self._open["type"] == kind

    def end(self) -> list[dict[str, Any]]:
        """Closes the last block; ``message_delta`` with the stop reason and usage, then ``message_stop``."""
        events = self._close()
        finish = self.finish
        stop_reason = _STOP_REASONS.get(finish.reason if finish is not None else "stop", "end_turn")
        stop_sequence = finish.stop_sequence if finish is not None and stop_reason == "end_turn" else None
        if stop_sequence is not None:
            stop_reason = "stop_sequence"
        usage = self.message["usage"]
        if finish is not None and finish.usage is not None:
            usage["input_tokens"] = finish.usage.prompt_tokens
            usage["output_tokens"] = finish.usage.completion_tokens
            usage["cache_read_input_tokens"] = finish.usage.cached_tokens
        self.message["stop_reason"], self.message["stop_sequence"] = stop_reason, stop_sequence
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": dict(usage),
            }
        )
        events.append({"type": "message_stop"})
        return events
