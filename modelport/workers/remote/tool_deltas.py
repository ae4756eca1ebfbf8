"""Turns the tool-call fragments that real servers send into well-formed deltas.

Servers disagree: some repeat the id and name on every fragment, some send a
whole call at once, some omit the index or the id, and some send the name a
fragment after the id. Whatever arrives, the output follows the core contract:
the first delta of each call carries index, id and name; later ones only
argument text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelport.core.events import ToolCallDelta
from modelport.core.tools import new_tool_call_id

__all__ = ["ToolDeltaNormalizer"]


@dataclass(slots=True)
class _Call:
    index: int
    id: str | None = None
    name: str | None = None
    started: bool = False
    pending: list[str] = field(default_factory=list)


class ToolDeltaNormalizer:
    """Normalises the ``tool_calls`` lists of one choice's stream of deltas."""

    def __init__(self, choice: int = 0) -> None:
        self._choice = choice
        self._calls: dict[int, _Call] = {}
        self._by_id: dict[str, int] = {}

    def _slot(self, item: Mapping[str, Any], position: int) -> _Call:
        raw_index = item.get("index")
        call_id = item.get("id") or None
        if isinstance(raw_index, int):
            index = raw_index
        elif call_id and call_id in self._by_id:
            index = self._by_id[call_id]
        elif call_id:
            # A new id without an index starts the next call.
            index = len(self._calls)
        elif not self._calls:
            index = position
        else:
            # No index and no id: a name after a started call opens the next call (servers that
            # repeat names also repeat the index); anything else continues the latest call.
            latest = max(self._calls)
            named = isinstance(item.get("function"), Mapping) and bool(item["function"].get("name"))
            index = latest + 1 if named and self._calls[latest].started else latest
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = _Call(index)
        if call_id and call.id is None:
            call.id = call_id
            self._by_id[call_id] = index
        return call

    def feed(self, items: Any) -> Iterator[ToolCallDelta]:
        """Consumes one chunk's ``tool_calls`` list and yields normalised deltas."""
        if not isinstance(items, list):
            return
        for position, item in enumerate(items):
            if not isinstance(item, Mapping):
                continue
            call = self._slot(item, position)
            raw = item.get("function")
            function: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            name = function.get("name")
            arguments = function.get("arguments")
            if isinstance(arguments, (dict, list)):  # some servers send parsed arguments
                arguments = json.dumps(arguments, ensure_ascii=False)
            text = arguments if isinstance(arguments, str) else ""
            if not call.started:
                if isinstance(name, str) and name:
                    call.name = name
                if call.name is None:
                    if text:
                        call.pending.append(text)
                    continue
                call.started = True
                pending = "".join(call.pending) + text
                call.pending = []
                yield ToolCallDelta(call.index, call.id or new_tool_call_id(), call.name, pending, choice=self._choice)
            elif text:
                yield ToolCallDelta(call.index, arguments=text, choice=self._choice)

    def unfinished(self) -> list[int]:
        """Indexes of calls that never received a name."""
        return [c.index for c in self._calls.values() if not c.started]
