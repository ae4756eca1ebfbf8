"""The worker protocol: what every chat, embedding and rerank backend implements."""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeGuard

from modelport.core.accumulator import Accumulator, ChatResult
from modelport.core.capabilities import Capabilities
from modelport.core.errors import BadRequestError
from modelport.core.events import StreamEvent
from modelport.core.request import ChatRequest, EmbeddingRequest, EmbeddingResult
from modelport.core.rerank import RerankRequest, RerankResult
from modelport.core.tools import NamedToolChoice

__all__ = ["ChatWorker", "EmbeddingWorker", "EngineMetrics", "RerankWorker", "Worker", "cosine_scores", "reranks"]


@dataclass(frozen=True, slots=True)
class EngineMetrics:
    """A batching engine's state, for metrics.

    Attributes:
        batch_sizes: Engine steps so far, by how many sequences each decoded together.
        kv_cache_usage: Fraction of the KV cache held by running sequences, if the engine has one.
    """

    batch_sizes: Mapping[int, int] = field(default_factory=dict)
    kv_cache_usage: float | None = None


class Worker:
    """Anything a model entry loads into: a chat worker, an embedding worker, or both."""

    capabilities: Capabilities = Capabilities()
    # Requests the worker serves at once by batching them (its ``n_parallel``); ``None`` when it
    # does not batch. The server's per-model concurrency limit defaults to it.
    parallelism: int | None = None
    # True for workers that queue and limit their own requests (a replica set, whose limits are
    # per replica): the server then puts no limit of its own in front of them.
    limits_itself: bool = False
    # Parameters that ``reconfigure`` changes in place, without reloading the model. Ray Serve
    # sends them as ``user_config``, so changing only these restarts no replica.
    reconfigurable: ClassVar[frozenset[str]] = frozenset()

    def reconfigure(self, **params: Any) -> None:
        """Changes parameters named in ``reconfigurable`` in place.

        Raises:
            BadRequestError: For a parameter that needs a reload; the default takes none.
        """
        for name in params:
            if name not in self.reconfigurable:
                raise BadRequestError(f"cannot change {name!r} without a reload", param=name)

    def close(self) -> None:
        """Frees the worker's resources. The default does nothing."""

    def engine_metrics(self) -> EngineMetrics | None:
        """The batching engine's state, for workers that have one; ``None`` by default."""
        return None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChatWorker(Worker, ABC):
    """A backend that generates chat completions as a stream of events.

    Subclasses implement ``stream`` and ``astream``; ``invoke`` and ``ainvoke``
    are derived from them through the one accumulator.
    """

    @abstractmethod
    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Streams the answer to ``request``.

        Raises:
            BadRequestError: If the request asks for something the worker cannot do.
        """

    @abstractmethod
    def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Streams the answer without blocking the event loop."""

    def invoke(self, request: ChatRequest) -> ChatResult:
        """Returns the whole answer, folded from ``stream``."""
        return Accumulator.collect(self.stream(request))

    async def ainvoke(self, request: ChatRequest) -> ChatResult:
        """Returns the whole answer, folded from ``astream``."""
        return await Accumulator.acollect(self.astream(request))

    def count_input_tokens(self, request: ChatRequest) -> int | None:
        """Tokens the request's prompt takes on this model, or ``None`` where the worker cannot tell.

        Local workers render and tokenize the prompt as generation would (tools included).
        """
        return None

    def output_budget(self, request: ChatRequest, input_tokens: int | None = None) -> int | None:
        """The most tokens one answer to ``request`` may take: ``max_tokens`` after the context clamp.

        ``None`` where neither ``max_tokens`` nor the room left in the context is known.

        Args:
            request: The request.
            input_tokens: Its prompt's tokens, when known (``count_input_tokens``).
        """
        room = None
        context = self.capabilities.max_context
        if context is not None and input_tokens is not None:
            room = max(context - input_tokens, 0)
        limits = [t for t in (request.max_tokens, room, self.capabilities.max_output_tokens) if t is not None]
        return min(limits) if limits else None

    def check_request(self, request: ChatRequest) -> None:
        """Rejects what the declared capabilities rule out, naming the field.

        Raises:
            BadRequestError: For tools, tool_choice, response_format, logprobs, sampling
                fields or images that this worker does not support.
        """
        caps = self.capabilities
        if request.tools and not caps.tools:
            raise BadRequestError("this model does not support tools", param="tools")
        forced = request.tool_choice == "required" or isinstance(request.tool_choice, NamedToolChoice)
        if forced and not caps.tool_choice:
            raise BadRequestError("this model cannot force a tool call", param="tool_choice")
        rf = request.response_format
        if rf is not None and rf.type != "text" and not caps.structured_output:
            raise BadRequestError("this model does not support structured output", param="response_format")
        if request.raw_prompt is not None and not caps.raw_prompts:
            raise BadRequestError("this model only takes chat messages", param="prompt")
        if request.logprobs and not caps.logprobs:
            raise BadRequestError("this model does not return logprobs", param="logprobs")
        for name in request.sampling_fields():
            if name not in caps.sampling:
                raise BadRequestError("this model does not support it; leave it unset", param=name)
        if not caps.vision:
            for i, message in enumerate(request.messages):
                if not isinstance(message.content, (str, type(None))) and any(
                    p.type == "image" for p in message.content
                ):
                    raise BadRequestError("this model does not accept images", param=f"messages[{i}].content")


class RerankWorker(Worker, ABC):
    """A backend that scores documents against a query (the rerank role).

    A worker plays the role when it subclasses this and its ``capabilities.rerank`` is set:
    cross-encoders, every embedder (by cosine similarity), local chat models (by the
    probability of "yes" after a judging prompt), remote rerank APIs.
    """

    @abstractmethod
    def score(self, request: RerankRequest) -> RerankResult:
        """One score per document of ``request``, in its order.

        Raises:
            BadRequestError: If a pair is longer than the model takes (naming ``documents[i]``).
        """

    async def ascore(self, request: RerankRequest) -> RerankResult:
        """Scores without blocking the event loop. The default runs ``score`` in a thread."""
        return await asyncio.to_thread(self.score, request)


def reranks(worker: Worker) -> TypeGuard[RerankWorker]:
    """Whether ``worker`` plays the rerank role: a ``RerankWorker`` whose capabilities say so."""
    return isinstance(worker, RerankWorker) and worker.capabilities.rerank


def cosine_scores(query: list[float], documents: list[list[float]]) -> list[float]:
    """The cosine similarity of each document vector to the query vector."""

    def norm(v: list[float]) -> float:
        return math.sqrt(math.fsum(x * x for x in v)) or 1e-12

    q = norm(query)
    # Clamped: rounding puts a text's similarity to itself a hair above 1.
    return [
        min(max(math.fsum(a * b for a, b in zip(query, d, strict=True)) / (q * norm(d)), -1.0), 1.0) for d in documents
    ]


class EmbeddingWorker(RerankWorker, ABC):
    """A backend that turns texts into vectors; it reranks by cosine similarity as well.

    Scoring embeds the query (as a query) and the documents (as documents) in one call each,
    as vLLM's ``/score`` does for embedding models.
    """

    capabilities = Capabilities(chat=False, embeddings=True, rerank=True)

    @abstractmethod
    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds ``request.texts`` in order."""

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds without blocking the event loop. The default runs ``embed`` in a thread."""
        return await asyncio.to_thread(self.embed, request)

    def score(self, request: RerankRequest) -> RerankResult:
        """The cosine similarity of each document's embedding to the query's."""
        query, documents = _scoring_requests(request)
        return _cosine_result(self.embed(query), self.embed(documents))

    async def ascore(self, request: RerankRequest) -> RerankResult:
        """Scores natively async, through ``aembed`` (both embeddings at once)."""
        query, documents = _scoring_requests(request)
        return _cosine_result(*await asyncio.gather(self.aembed(query), self.aembed(documents)))


def _scoring_requests(request: RerankRequest) -> tuple[EmbeddingRequest, EmbeddingRequest]:
    """The query as a query and the documents as documents, for models that tell them apart."""
    return (
        EmbeddingRequest([request.query], input_type="query"),
        EmbeddingRequest(request.documents, input_type="document"),
    )


def _cosine_result(query: EmbeddingResult, documents: EmbeddingResult) -> RerankResult:
    return RerankResult(
        cosine_scores(query.vectors[0], documents.vectors), query.prompt_tokens + documents.prompt_tokens
    )
