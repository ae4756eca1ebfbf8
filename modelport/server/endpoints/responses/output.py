"""The worker's events as Responses output items, and as the stream events that build them.

One ``OutputBuilder`` serves both forms of an answer: a stream sends the events it returns as
they come; a whole answer folds the same events and keeps only the finished response. Items
open and close in OpenAI's order (``output_item.added``, the content part, deltas, their
``done`` events, ``output_item.done``), every event numbered by ``sequence_number``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelport.core.events import Finish, ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta
from modelport.core.events import TokenLogprob as CoreLogprob
from modelport.core.events import Usage as CoreUsage

__all__ = ["OutputBuilder", "item_id", "sse_event", "wire_usage"]


def item_id(prefix: str) -> str:
    """A new item id (``msg_...``, ``fc_...``, ``rs_...``)."""
    return f"{prefix}_{secrets.token_hex(12)}"


def sse_event(event: dict[str, Any]) -> bytes:
    """One server-sent event, named by its type as OpenAI names them."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def wire_usage(value: CoreUsage | None) -> dict[str, Any]:
    """``ResponseUsage``: every field the spec requires."""
    value = value or CoreUsage()
    return {
        "input_tokens": value.prompt_tokens,
        "input_tokens_details": {"cached_tokens": value.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": value.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": value.reasoning_tokens},
        "total_tokens": value.total_tokens,
    }


def _logprobs(items: tuple[CoreLogprob, ...]) -> list[dict[str, Any]]:
    return [
        {
            "token": item.token,
            "logprob": item.logprob,
            "bytes": list(item.token.encode()),
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in item.top],
        }
        for item in items
    ]


@dataclass
class _Open:
    """An output item being built."""

    index: int
    item: dict[str, Any]
    text: list[str] = field(default_factory=list)
    logprobs: list[dict[str, Any]] = field(default_factory=list)


class OutputBuilder:
    """Folds core events into a response's output, returning the stream events on the way.

    Args:
        response: The response object without its outcome (id, model, echoed parameters);
            ``status``, ``output``, ``usage`` and the rest are filled here.
        seal: Seals a reasoning item's text into ``encrypted_content``, or ``None`` not to.
        call_name: Splits a model-side tool name into the client's ``(namespace, name)``.
    """

    def __init__(
        self,
        response: dict[str, Any],
        *,
        seal: Callable[[str], str] | None = None,
        call_name: Callable[[str], tuple[str | None, str]] = lambda n: (None, n),
    ) -> None:
        self.response = response
        self.output: list[dict[str, Any]] = []
        self.usage: CoreUsage | None = None
        self.finish: str | None = None
        self._seal = seal
        self._call_name = call_name
        self._sequence = 0
        self._message: _Open | None = None
        self._reasoning: _Open | None = None
        self._calls: dict[int, _Open] = {}
        self.reasoning_texts: list[str] = []

    # -- events --------------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def snapshot(self, status: str) -> dict[str, Any]:
        """The response object now, with ``status``."""
        out = {**self.response, "status": status, "output": [dict(i) for i in self.output]}
        if status == "completed":
            out["completed_at"] = int(time.time())
        if self.usage is not None or status in ("completed", "incomplete"):
            out["usage"] = wire_usage(self.usage)
        return out

    def start(self) -> list[dict[str, Any]]:
        """``response.created`` and ``response.in_progress``."""
        snapshot = self.snapshot("in_progress")
        return [
            self._event("response.created", response=snapshot),
            self._event("response.in_progress", response=snapshot),
        ]

    def feed(self, event: StreamEvent) -> list[dict[str, Any]]:
        """The stream events of one core event (the first choice's; others are not asked for)."""
        if event.choice != 0:
            return []
        if isinstance(event, ReasoningDelta):
            return self._reasoning_delta(event.text)
        if isinstance(event, TextDelta):
            return self._text_delta(event)
        if isinstance(event, ToolCallDelta):
            return self._call_delta(event)
        if isinstance(event, Finish):
            self.finish = event.reason
            if event.usage is not None:
                self.usage = event.usage
            return self._close_all()
        return []

    def end(self) -> tuple[str, list[dict[str, Any]]]:
        """The status and the last events: ``response.completed`` or ``response.incomplete``."""
        events = self._close_all()
        status = "incomplete" if self.finish in ("length", "content_filter") else "completed"
        if status == "incomplete":
            reason = "max_output_tokens" if self.finish == "length" else "content_filter"
            self.response["incomplete_details"] = {"reason": reason}
        snapshot = self.snapshot(status)
        events.append(self._event(f"response.{status}", response=snapshot))
        return status, events

    def fail(self, code: str, message: str, param: str | None) -> list[dict[str, Any]]:
        """An ``error`` event (with the error's own code), then ``response.failed``.

        The failed response's ``error.code`` is one of the spec's ``ResponseErrorCode`` values:
        ``rate_limit_exceeded`` as it is, ``invalid_prompt`` for a bad request, else ``server_error``.
        """
        events = self._close_all()
        if code != "rate_limit_exceeded":
            code_of_response = (
                "invalid_prompt" if code in ("invalid_request_error", "context_length_exceeded") else "server_error"
            )
        else:
            code_of_response = code
        self.response["error"] = {"code": code_of_response, "message": message}
        events.append(self._event("error", code=code, message=message, param=param))
        events.append(self._event("response.failed", response=self.snapshot("failed")))
        return events

    # -- items ---------------------------------------------------------------------------

    def _add(self, item: dict[str, Any]) -> tuple[_Open, dict[str, Any]]:
        opened = _Open(len(self.output), item)
        self.output.append(item)
        return opened, self._event("response.output_item.added", output_index=opened.index, item=dict(item))

    def _reasoning_delta(self, text: str) -> list[dict[str, Any]]:
        events = self._close_message()
        if self._reasoning is None:
            opened, added = self._add({"id": item_id("rs"), "type": "reasoning", "summary": []})
            self._reasoning = opened
            part = {"type": "summary_text", "text": ""}
            events += [
                added,
                self._event(
                    "response.reasoning_summary_part.added",
                    item_id=opened.item["id"],
                    output_index=opened.index,
                    summary_index=0,
                    part=part,
                ),
            ]
        self._reasoning.text.append(text)
        events.append(
            self._event(
                "response.reasoning_summary_text.delta",
                item_id=self._reasoning.item["id"],
                output_index=self._reasoning.index,
                summary_index=0,
                delta=text,
            )
        )
        return events

    def _close_reasoning(self) -> list[dict[str, Any]]:
        opened, self._reasoning = self._reasoning, None
        if opened is None:
            return []
        text = "".join(opened.text)
        self.reasoning_texts.append(text)
        part = {"type": "summary_text", "text": text}
        opened.item["summary"] = [part]
        if self._seal is not None:
            opened.item["encrypted_content"] = self._seal(text)
        where = {"item_id": opened.item["id"], "output_index": opened.index, "summary_index": 0}
        return [
            self._event("response.reasoning_summary_text.done", **where, text=text),
            self._event("response.reasoning_summary_part.done", **where, part=part),
            self._event("response.output_item.done", output_index=opened.index, item=dict(opened.item)),
        ]

    def _text_delta(self, delta: TextDelta) -> list[dict[str, Any]]:
        if not delta.text and not delta.logprobs:
            return []
        events = self._close_reasoning()
        if self._message is None:
            item = {
                "id": item_id("msg"),
                "type": "message",
                "role": "assistant",
                "status": "in_progress",
                "content": [],
            }
            opened, added = self._add(item)
            self._message = opened
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events += [
                added,
                self._event(
                    "response.content_part.added",
                    item_id=item["id"],
                    output_index=opened.index,
                    content_index=0,
                    part=part,
                ),
            ]
        message = self._message
        message.text.append(delta.text)
        logprobs = _logprobs(delta.logprobs)
        message.logprobs += logprobs
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=message.item["id"],
                output_index=message.index,
                content_index=0,
                delta=delta.text,
                logprobs=logprobs,
            )
        )
        return events

    def _close_message(self) -> list[dict[str, Any]]:
        opened, self._message = self._message, None
        if opened is None:
            return []
        text = "".join(opened.text)
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": opened.logprobs}
        opened.item["content"] = [part]
        opened.item["status"] = "incomplete" if self.finish in ("length", "content_filter") else "completed"
        where = {"item_id": opened.item["id"], "output_index": opened.index, "content_index": 0}
        return [
            self._event("response.output_text.done", **where, text=text, logprobs=opened.logprobs),
            self._event("response.content_part.done", **where, part=part),
            self._event("response.output_item.done", output_index=opened.index, item=dict(opened.item)),
        ]

    def _call_delta(self, delta: ToolCallDelta) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        opened = self._calls.get(delta.index)
        if opened is None:
            events += self._close_reasoning() + self._close_message()
            namespace, name = self._call_name(delta.name or "")
            item: dict[str, Any] = {
                "id": item_id("fc"),
                "type": "function_call",
                "status": "in_progress",
                "call_id": delta.id or item_id("call"),
                "name": name,
                "arguments": "",
            }
            if namespace is not None:
                item["namespace"] = namespace
            opened, added = self._add(item)
            self._calls[delta.index] = opened
            events.append(added)
        if delta.arguments:
            opened.text.append(delta.arguments)
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=opened.item["id"],
                    output_index=opened.index,
                    delta=delta.arguments,
                )
            )
        return events

    def _close_calls(self) -> list[dict[str, Any]]:
        events = []
        # A call cut by the budget stays a call, marked incomplete (never text).
        status = "incomplete" if self.finish == "length" else "completed"
        for opened in self._calls.values():
            arguments = "".join(opened.text)
            opened.item["arguments"] = arguments
            opened.item["status"] = status
            events.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=opened.item["id"],
                    output_index=opened.index,
                    name=opened.item["name"],
                    arguments=arguments,
                )
            )
            events.append(self._event("response.output_item.done", output_index=opened.index, item=dict(opened.item)))
        self._calls.clear()
        return events

    def _close_all(self) -> list[dict[str, Any]]:
        return self._close_reasoning() + self._close_message() + self._close_calls()
