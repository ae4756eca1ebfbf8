"""Turns a local model's raw text into stream events.

Plain answers pass straight through. When tools are offered, the model's tool-call
parser finds calls in the text as it streams. Forced tool calls and JSON response
formats also carry a decoding constraint for the engine to enforce.

Tool-call markup never reaches an answer's text: a call the parser cannot decode
becomes an incomplete call, and stray markers (an echoed ``<tool_response>``, a
lone closing tag) are taken out of the text as it streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from modelport.core.events import StreamEvent, TextDelta, ToolCallDelta
from modelport.core.request import ChatRequest
from modelport.core.tools import NamedToolChoice
from modelport.workers.local.constrained.constraints import JsonConstraint
from modelport.workers.local.tool_parsers.base import CALL_OPENINGS, KNOWN_MARKUP, ToolParser
from modelport.workers.local.tool_parsers.markup import held_prefix

__all__ = [
    "MarkupScrubber",
    "OutputParser",
    "TextOutput",
    "ToolCallOutput",
    "output_parser_for",
]


class MarkupScrubber:
    """Takes markers out of streamed text, holding back a tail that may begin one.

    Args:
        markers: The strings to remove.
        stops: Markers that end the text: what follows the first of them is dropped, and
            ``stopped`` is set (a call opened where no call may be made).
    """

    def __init__(self, markers: tuple[str, ...] = KNOWN_MARKUP, stops: tuple[str, ...] = ()) -> None:
        self._stops = tuple(m for m in stops if m)
        # A marker goes with the line break beside it, as templates write them on lines of
        # their own: an echoed ``<tool_response>`` leaves no blank line behind.
        self._bare = tuple(sorted({m for m in markers if m}, key=len, reverse=True))
        spaced = {v for m in self._bare for v in (m, f"\n{m}", f"{m}\n", f"\n{m}\n")}
        self._markers = tuple(sorted({*spaced, *self._stops}, key=len, reverse=True))
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Returns the text that is safe to send now."""
        if self.stopped:
            return ""
        text = self._held + text
        ends = [at for at in (text.find(m) for m in self._stops) if at >= 0]
        if ends:
            text, self._held, self.stopped = text[: min(ends)], "", True
        waiting = ""
        if not self.stopped:
            # A marker at the very end waits for the next piece: a line break may follow it.
            for marker in self._bare:
                if text.endswith(marker):
                    cut = len(marker) + text[: -len(marker)].endswith("\n")
                    text, waiting = text[:-cut], text[-cut:]
                    break
        for marker in self._markers:
            text = text.replace(marker, "")
        if self.stopped:
            return text
        keep = max((held_prefix(text, marker) for marker in self._markers), default=0)
        self._held = text[len(text) - keep :] + waiting
        return text[: len(text) - keep]

    def flush(self) -> str:
        """The held tail at the end: dropped when it is a cut marker, longer than one character."""
        held, self._held = self._held, ""
        return held if len(held) <= 1 else ""


class OutputParser:
    """Consumes generated text and yields events.

    Attributes:
        constraint: What the engine must enforce while decoding, or ``None``.
    """

    # In auto tool mode, a call the worker may weigh against a free answer.
    auto_call: JsonConstraint | None = None
    # Set when generation should stop here: the output repeats a call it already made, or
    # opens one where no call may be made (``tool_choice: "none"``).
    ended = False

    def __init__(self, constraint: JsonConstraint | None = None) -> None:
        self.constraint = constraint

    @property
    def tool_calls(self) -> int:
        """How many tool calls were found so far."""
        return 0

    @property
    def incomplete_calls(self) -> int:
        """How many of them the output cut short (or wrote so they do not decode)."""
        return 0

    def feed(self, text: str, choice: int) -> Iterator[StreamEvent]:
        """Consumes one piece of text."""
        yield TextDelta(text, choice=choice)

    def finish(self, choice: int) -> Iterator[StreamEvent]:
        """Flushes whatever is held back at the end of generation."""
        return iter(())


class TextOutput(OutputParser):
    """Passes text through (a JSON-constrained answer untouched, other text without markup)."""

    def __init__(self, constraint: JsonConstraint | None = None, stops: tuple[str, ...] = ()) -> None:
        super().__init__(constraint)
        self._scrubber = None if constraint is not None else MarkupScrubber(stops=stops)

    def feed(self, text: str, choice: int) -> Iterator[StreamEvent]:
        """Passes the text on, less any markup; a stop marker ends it."""
        if self._scrubber is not None:
            text = self._scrubber.feed(text)
            self.ended = self._scrubber.stopped
        if text:
            yield TextDelta(text, choice=choice)

    def finish(self, choice: int) -> Iterator[StreamEvent]:
        """Flushes a held tail that turned out not to be markup."""
        tail = self._scrubber.flush() if self._scrubber is not None else ""
        if tail:
            yield TextDelta(tail, choice=choice)


class ToolCallOutput(OutputParser):
    """Runs a tool-call parser over the text.

    Args:
        parser: The model's tool-call parser.
        constraint: The forced call's constraint, if any.
        names: The tools the answer may call; an incomplete call whose name was cut short
            takes the one it can only be.
        auto_call: In ``auto`` mode, the constraint of a call to any of the tools, which a
            local worker weighs against a free answer (see ``modelport.workers.local.tool_choice``).
    """

    def __init__(
        self,
        parser: ToolParser,
        constraint: JsonConstraint | None = None,
        names: tuple[str, ...] = (),
        auto_call: JsonConstraint | None = None,
    ) -> None:
        super().__init__(constraint)
        self.parser = parser
        self.names = names
        self.auto_call = auto_call
        markers = [getattr(parser, "start", ""), getattr(parser, "end", None) or "", getattr(parser, "marker", "")]
        self._scrubber = MarkupScrubber((*KNOWN_MARKUP, *markers))
        self._space = ""  # whitespace held back: between or after calls it is dropped
        self._forced_text = ""  # a forced answer is all call: text the parser gives back
        self._seen: set[tuple[str, str]] = set()

    @property
    def tool_calls(self) -> int:
        """How many tool calls the parser emitted."""
        return self.parser.calls_emitted

    @property
    def incomplete_calls(self) -> int:
        """How many of them did not decode."""
        return self.parser.incomplete_calls

    def _events(self, events: list[StreamEvent], choice: int) -> Iterator[StreamEvent]:
        for event in self._without_repeats(events):
            if isinstance(event, TextDelta) and self.constraint is not None:
                self._forced_text += event.text
                continue
            if isinstance(event, TextDelta):
                text = self._scrubber.feed(event.text)
                if not text.strip():
                    self._space += text
                    continue
                event = replace(event, text=self._space + text)
                self._space = ""
            elif isinstance(event, ToolCallDelta):
                self._space = ""  # whitespace before or between calls is only layout
                if event.id is not None and event.name not in self.names:
                    event = replace(event, name=self._complete_name(event.name or ""))
            yield replace(event, choice=choice) if choice else event

    def _without_repeats(self, events: list[StreamEvent]) -> list[StreamEvent]:
        """Drops a call identical to one this answer already made, and flags the repeat.

        Small models asked for one call often write it again after closing it; parsers emit
        each call whole (name and arguments in one batch of events), so a repeat is caught here.
        """
        calls: dict[int, list[ToolCallDelta]] = {}
        for event in events:
            if isinstance(event, ToolCallDelta):
                calls.setdefault(event.index, []).append(event)
        dropped: set[int] = set()
        for index, deltas in calls.items():
            key = (deltas[0].name or "", "".join(d.arguments for d in deltas))
            if key in self._seen:
                dropped.add(index)
                self.ended = True
            self._seen.add(key)
        if not dropped:
            return events
        return [e for e in events if not (isinstance(e, ToolCallDelta) and e.index in dropped)]

    def _complete_name(self, name: str) -> str:
        candidates = [n for n in self.names if n.startswith(name)]
        return candidates[0] if len(candidates) == 1 else name

    def feed(self, text: str, choice: int) -> Iterator[StreamEvent]:
        """Feeds the parser."""
        yield from self._events(list(self.parser.feed(text)), choice)

    def finish(self, choice: int) -> Iterator[StreamEvent]:
        """Flushes the parser."""
        yield from self._events(list(self.parser.finish()), choice)
        if self.constraint is not None and not self.tool_calls:
            # Cut before the parser saw a call (inside its opening marker, say): still a call.
            body = self._forced_text
            for marker in sorted((*KNOWN_MARKUP, self.parser.call_prefix.strip()), key=len, reverse=True):
                if marker and marker.startswith(body.strip()):
                    body = ""
                body = body.replace(marker, "") if marker else body
            yield from self._events(list(self.parser.incomplete_call_events(body)), choice)
        tail = self._space + self._scrubber.flush()
        self._space = ""
        if tail and not (self.tool_calls and not tail.strip()):
            yield TextDelta(tail, choice=choice)


def output_parser_for(request: ChatRequest, parser: type[ToolParser]) -> OutputParser:
    """Picks the output handling, and any decoding constraint, for ``request``."""
    if request.wants_tools:
        # OpenAI's default is true, but small local models given the choice add calls nobody
        # asked for (benchmarks/RESULTS.md): several calls only when asked for explicitly.
        parallel = request.parallel_tool_calls is True
        tool_parser = parser()
        choice = request.tool_choice
        if isinstance(choice, NamedToolChoice):
            forced = [t for t in request.tools if t.name == choice.name]
        elif choice == "required":
            forced = list(request.tools)
        else:
            auto = tool_parser.call_constraint(request.tools, parallel=parallel)
            return ToolCallOutput(tool_parser, names=tuple(t.name for t in request.tools), auto_call=auto)
        constraint = tool_parser.call_constraint(forced, parallel=parallel)
        return ToolCallOutput(tool_parser, constraint, names=tuple(t.name for t in forced))
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        return TextOutput(JsonConstraint(dict(fmt.schema) if fmt.schema else {"type": "object"}, closes_in_budget=True))
    if request.tools:
        # Offered with tool_choice "none", the tools are still in the prompt (see
        # ``modelport.workers.local.prompting``): a call the model opens anyway ends the answer there.
        return TextOutput(stops=(parser().call_prefix.strip(), *CALL_OPENINGS))
    return TextOutput()
