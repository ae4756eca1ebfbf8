"""The ``fake`` kind: scripted workers for tests, yours and ours."""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence

from modelport.core.capabilities import SAMPLING_FIELDS, Capabilities
from modelport.core.events import Finish, StreamEvent, TextDelta, ToolCallDelta, Usage
from modelport.core.messages import content_text
from modelport.core.request import ChatRequest, EmbeddingRequest, EmbeddingResult
from modelport.core.tools import new_tool_call_id
from modelport.workers.base import ChatWorker, EmbeddingWorker
from modelport.workers.registry import register_worker

__all__ = ["FakeChatWorker", "FakeEmbeddingWorker", "text_events", "tool_call_events"]

Script = Callable[[ChatRequest], Iterable[StreamEvent]]


def text_events(text: str, *, chunk: int = 4, reason: str = "stop") -> list[StreamEvent]:
    """Splits ``text`` into deltas of ``chunk`` characters, then a finish with usage."""
    events: list[StreamEvent] = [TextDelta(text[i : i + chunk]) for i in range(0, len(text), chunk)]
    events.append(Finish(reason, Usage(1, max(1, len(events)))))  # type: ignore[arg-type]
    return events


def tool_call_events(
    name: str, arguments: str = "{}", *, call_id: str | None = None, chunk: int = 8
) -> list[StreamEvent]:
    """A streamed tool call: id and name first, then argument fragments."""
    events: list[StreamEvent] = [ToolCallDelta(0, call_id or new_tool_call_id(), name)]
    events += [ToolCallDelta(0, arguments=arguments[i : i + chunk]) for i in range(0, len(arguments), chunk)]
    events.append(Finish("tool_calls", Usage(1, 1)))
    return events


def _echo(request: ChatRequest) -> list[StreamEvent]:
    last = content_text(request.messages[-1].content)
    return text_events(last)


@register_worker("fake")
class FakeChatWorker(ChatWorker):
    """A chat worker that plays back scripted answers.

    Args:
        responses: Answers given in turn (cycling); each is a string or a list of events.
        script: A function from request to events; overrides ``responses``.
        delay: Seconds to wait before each event (sleeps in sync, awaits in async).
        capabilities: What to declare; everything on by default.

    With neither ``responses`` nor ``script`` it echoes the last message.
    """

    def __init__(
        self,
        responses: Sequence[str | Sequence[StreamEvent]] = (),
        *,
        script: Script | None = None,
        delay: float = 0.0,
        capabilities: Capabilities | None = None,
    ) -> None:
        self._responses = list(responses)
        self._script = script
        self._turn = 0
        self.delay = delay
        self.requests: list[ChatRequest] = []
        self.capabilities = capabilities or Capabilities(
            tools=True,
            tool_call_streaming=True,
            tool_choice=True,
            structured_output=True,
            max_context=8192,
            sampling=SAMPLING_FIELDS,
        )

    def _play(self, request: ChatRequest) -> Iterable[StreamEvent]:
        self.check_request(request)
        self.requests.append(request)
        if self._script is not None:
            # Lazily, so that a script can fail part-way through, as a real stream can.
            return self._script(request)
        if not self._responses:
            return _echo(request)
        answer = self._responses[self._turn % len(self._responses)]
        self._turn += 1
        return text_events(answer) if isinstance(answer, str) else list(answer)

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Plays the next scripted answer."""
        for event in self._play(request):
            if self.delay:
                time.sleep(self.delay)
            yield event

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Plays the next scripted answer without blocking the loop."""
        for event in self._play(request):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield event


@register_worker("fake-embeddings")
class FakeEmbeddingWorker(EmbeddingWorker):
    """Deterministic embeddings from a hash of each text, for tests.

    Args:
        dimensions: Vector size.
    """

    def __init__(self, dimensions: int = 16) -> None:
        self.dimensions = dimensions
        self.capabilities = Capabilities(chat=False, embeddings=True, embedding_dimensions=dimensions)

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Hashes each text into a vector."""
        size = request.dimensions or self.dimensions
        vectors = []
        for text in request.texts:
            digest = hashlib.sha256(text.encode()).digest()
            vec = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(size)]
            if request.normalize:
                norm = math.sqrt(sum(v * v for v in vec)) or 1.0
                vec = [v / norm for v in vec]
            vectors.append(vec)
        return EmbeddingResult(vectors, sum(len(t.split()) for t in request.texts))

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Same as ``embed``: it is instant."""
        return self.embed(request)
