"""``RemoteWorker``: what the remote kinds share (the HTTP client, batched embeddings, a safe repr)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from dataclasses import fields
from typing import Any, ClassVar, Protocol

from modelport.core.capabilities import SAMPLING_FIELDS, Capabilities
from modelport.core.errors import BadRequestError
from modelport.core.events import StreamEvent
from modelport.core.request import EmbeddingRequest, EmbeddingResult
from modelport.core.rerank import RerankRequest, RerankResult
from modelport.workers.base import ChatWorker, EmbeddingWorker
from modelport.workers.remote.embedding_batches import batches, combine
from modelport.workers.remote.http import HttpClient

__all__ = ["REMOTE_CAPABILITIES", "RemoteChatWorker", "RemoteWorker", "StreamDecoder", "capabilities_from"]

# What a remote API can do unless a model entry says otherwise (``capabilities:`` in its params).
REMOTE_CAPABILITIES = Capabilities(
    chat=True,
    embeddings=True,
    rerank=True,
    tools=True,
    tool_call_streaming=True,
    tool_choice=True,
    structured_output=True,
    vision=True,
    logprobs=True,
    reasoning=True,
    sampling=SAMPLING_FIELDS,
)


def capabilities_from(base: Capabilities, overrides: Mapping[str, Any] | None) -> Capabilities:
    """``base`` with a model entry's ``capabilities:`` overrides applied.

    Raises:
        BadRequestError: For a key that is not a capability.
    """
    if not overrides:
        return base
    known = {f.name for f in fields(Capabilities)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise BadRequestError(f"unknown capabilities {unknown}; known: {sorted(known)}", param="capabilities")
    values = {f.name: getattr(base, f.name) for f in fields(Capabilities)}
    values.update(overrides)
    if not isinstance(values["sampling"], frozenset):
        values["sampling"] = frozenset(values["sampling"] or ())
    unknown = sorted(values["sampling"] - SAMPLING_FIELDS)
    if unknown:
        raise BadRequestError(
            f"unknown sampling fields {unknown}; known: {sorted(SAMPLING_FIELDS)}", param="capabilities"
        )
    return Capabilities(**values)


class StreamDecoder(Protocol):
    """What a wire format's stream decoder offers: lines in, events out, and the end checked."""

    done: bool

    def feed_line(self, line: str) -> Iterable[StreamEvent]: ...  # noqa: D102

    def finish(self) -> Iterator[StreamEvent]: ...  # noqa: D102


class RemoteChatWorker(ChatWorker):
    """A chat worker that talks to an HTTP API: the client, the health check and a safe repr.

    Subclasses set ``model`` and ``client`` in their constructor.
    """

    model: str
    client: HttpClient

    # The path a health check GETs (OpenAI-compatible servers list their models there); a kind
    # whose API has no cheap GET sets None and relies on passive checks alone.
    health_path: ClassVar[str | None] = "models"

    def check_health(self, timeout: float) -> None:
        """Checks that the server answers (``GET {base_url}/{health_path}``); raises if it does not."""
        if self.health_path is not None:
            self.client.probe(self.health_path, timeout)

    def _events(
        self,
        path: str,
        body: dict[str, Any],
        decoder: StreamDecoder | None,
        whole: Callable[[Any], Iterator[StreamEvent]],
    ) -> Iterator[StreamEvent]:
        """Posts ``body`` and yields its events: streamed through ``decoder``, or a whole answer read by ``whole``."""
        if decoder is None:
            yield from whole(self.client.post_json(path, body))
            return
        with self.client.stream_lines(path, body) as lines:
            for line in lines:
                yield from decoder.feed_line(line)
                if decoder.done:
                    break
        yield from decoder.finish()

    async def _aevents(
        self,
        path: str,
        body: dict[str, Any],
        decoder: StreamDecoder | None,
        whole: Callable[[Any], Iterator[StreamEvent]],
    ) -> AsyncGenerator[StreamEvent, None]:
        """``_events`` with ``httpx.AsyncClient``; no thread is involved."""
        if decoder is None:
            for event in whole(await self.client.apost_json(path, body)):
                yield event
            return
        async with self.client.astream_lines(path, body) as lines:
            async for line in lines:
                for event in decoder.feed_line(line):
                    yield event
                if decoder.done:
                    break
        for event in decoder.finish():
            yield event

    def __repr__(self) -> str:
        # Never the key: the client keeps it, and its repr leaves it out.
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.client.base_url!r})"

    def close(self) -> None:
        """Closes the HTTP connections."""
        self.client.close()


class RemoteWorker(RemoteChatWorker, EmbeddingWorker):
    """A chat and embedding worker that talks to an HTTP API.

    Subclasses also set ``embedding_batch_size`` in their constructor, name
    ``embeddings_path``, and say how one batch is asked for and read.
    """

    embeddings_path: ClassVar[str]
    embedding_batch_size: int
    # Where the API scores documents when the entry says ``rerank: true``; ``None`` reranks by
    # the cosine of embeddings (``EmbeddingWorker.score``).
    rerank_path: str | None = None

    @abstractmethod
    def _embedding_body(self, texts: list[str], request: EmbeddingRequest) -> dict[str, Any]:
        """The request body for one batch."""

    @abstractmethod
    def _embedding_answer(self, data: Any, expected: int) -> tuple[list[list[float]], int]:
        """The vectors (in input order) and the tokens used, from one answer."""

    def _rerank_body(self, request: RerankRequest) -> dict[str, Any]:
        """The request body for ``rerank_path``; kinds that rerank override it."""
        raise NotImplementedError

    def _rerank_answer(self, data: Any, expected: int) -> tuple[list[float], int]:
        """Scores in document order and the tokens used, from a rerank answer."""
        raise NotImplementedError

    def score(self, request: RerankRequest) -> RerankResult:
        """Scores through the API's rerank endpoint, or by cosine where it has none."""
        if self.rerank_path is None:
            return super().score(request)
        data = self.client.post_json(self.rerank_path, self._rerank_body(request))
        scores, tokens = self._rerank_answer(data, len(request.documents))
        return RerankResult(scores, tokens, self.model)

    async def ascore(self, request: RerankRequest) -> RerankResult:
        """Scores natively async; same rules as ``score``."""
        if self.rerank_path is None:
            return await super().ascore(request)
        data = await self.client.apost_json(self.rerank_path, self._rerank_body(request))
        scores, tokens = self._rerank_answer(data, len(request.documents))
        return RerankResult(scores, tokens, self.model)

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds the texts in batches of ``embedding_batch_size``."""
        parts = [
            self._embedding_answer(
                self.client.post_json(self.embeddings_path, self._embedding_body(batch, request)), len(batch)
            )
            for batch in batches(request.texts, self.embedding_batch_size)
        ]
        return combine(parts, request, self.model)

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds natively async."""
        parts = []
        for batch in batches(request.texts, self.embedding_batch_size):
            data = await self.client.apost_json(self.embeddings_path, self._embedding_body(batch, request))
            parts.append(self._embedding_answer(data, len(batch)))
        return combine(parts, request, self.model)
