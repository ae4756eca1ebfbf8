"""``Endpoint``: what every API endpoint shares, in the shape of vLLM's ``OpenAIServing``.

An endpoint module translates its wire request into a core request and the worker's events back
into its wire answer. Everything else lives here, once: admission (the key's allow-list, the
model's slot), the worker lookup, a started answer whose first event is pulled before the status
goes out, whole answers that stop when their client leaves, streams with their error handling,
and the response id built from the request id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

from fastapi.responses import Response, StreamingResponse

from modelport.core.accumulator import Accumulator, ChatResult
from modelport.core.errors import ModelPortError
from modelport.core.events import StreamEvent
from modelport.core.request import ChatRequest
from modelport.server.encoding import DONE
from modelport.server.errors import sse_error
from modelport.server.ops.limits import Slot
from modelport.server.ops.tracking import RequestRecord, aclose, tracked_events
from modelport.server.protocol import WireResponse
from modelport.server.state import ServerState
from modelport.workers.base import ChatWorker, EmbeddingWorker, RerankWorker, Worker
from modelport.workers.residency import parse_keep_alive

__all__ = ["SSE_HEADERS", "Chunks", "Disconnected", "Endpoint", "Generation", "ModelRequest", "count_text_tokens"]

logger = logging.getLogger("modelport.server")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# How often a whole (non-streamed) answer checks that its client is still there.
_POLL_SECONDS = 0.25


class ModelRequest(Protocol):
    """What every request body names: the model."""

    @property
    def model(self) -> str:
        """The model the request is for."""
        ...


Disconnected = Callable[[], Awaitable[bool]]
"""Answers whether the client has closed its connection (Starlette's ``is_disconnected``)."""

Chunks = Callable[[AsyncIterator[StreamEvent]], AsyncIterator[bytes]]
"""An endpoint's encoder: the worker's events in, its wire stream's bytes out."""


class _ClientGone(ModelPortError):
    """Server-internal: the client left before its whole answer was ready (nobody reads this)."""

    status_code = 499  # nginx's code for a request its client closed
    code = "client_closed_request"
    error_type = "invalid_request_error"


@dataclass
class Generation:
    """A started answer: the model slot it holds, and its events with the first already pulled."""

    slot: Slot
    events: AsyncIterator[StreamEvent]
    first: StreamEvent | None
    worker: ChatWorker
    request: ChatRequest
    pending: asyncio.Future[StreamEvent | None] | None = None
    """The first event, still coming, when ``start`` stopped waiting for it."""

    async def all_events(self) -> AsyncIterator[StreamEvent]:
        """The first event, then the rest of the stream."""
        if self.pending is not None:
            self.first = await self.pending
            self.pending = None
        if self.first is not None:
            yield self.first
        async for event in self.events:
            yield event

    def folded(self, feed: Callable[[StreamEvent], object]) -> Generation:
        """This generation, each of its events also given to ``feed`` as it passes.

        For whole answers that an API builds from events as its stream would (Responses,
        Messages): ``Endpoint.whole`` runs the generation, ``feed`` builds the answer.
        """

        async def passing() -> AsyncIterator[StreamEvent]:
            try:
                async for event in self.events:
                    feed(event)
                    yield event
            finally:
                await aclose(self.events)

        if self.first is not None:
            feed(self.first)
        return Generation(self.slot, passing(), self.first, self.worker, self.request, self.pending)

    async def close(self) -> None:
        """Closes the worker's stream, which stops its generation, and frees the slot."""
        if self.pending is not None and not self.pending.done():
            self.pending.cancel()  # stops the worker mid-prefill
            with contextlib.suppress(BaseException):
                await self.pending
        try:
            await aclose(self.events)
        finally:
            self.slot.release()


def count_text_tokens(worker: Worker, texts: list[str]) -> int:
    """The texts' tokens by the model's own tokenizer (its ``count_tokens``), else estimated (4 bytes a token).

    For the caps on embedding and rerank requests (``server.max_embedding_tokens``).
    """
    count = getattr(worker, "count_tokens", None)
    if callable(count):
        try:
            return sum(int(count(text)) for text in texts)
        except Exception:  # noqa: BLE001 - a worker that cannot count (a set with no ready replica) is estimated
            pass
    return sum(len(text.encode()) // 4 + 1 for text in texts)


class Endpoint:
    """Base of every endpoint family: one instance serves one HTTP request.

    Args:
        state: The server's state (registry, limits, lifecycle, metrics).
        record: The request's record, filled as it runs.
        disconnected: Tells whether the client has left, for whole answers.
    """

    name: ClassVar[str]
    """The endpoint's label in records, metrics and logs (``chat``, ``completions``, ...)."""
    id_prefix: ClassVar[str]
    """What the response id starts with (``chatcmpl``, ``cmpl``, ...)."""

    def __init_subclass__(cls, *, name: str, id_prefix: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.name, cls.id_prefix = name, id_prefix

    def __init__(self, state: ServerState, record: RequestRecord, disconnected: Disconnected | None = None) -> None:
        self.state = state
        self.record = record
        self.disconnected = disconnected
        self.created = int(time.time())
        self.keep_alive_s: float | None = None

    async def __call__(self, body: ModelRequest) -> Response:
        """Serves one request: admission first (the key may use the model), then the endpoint's own work."""
        self.read_keep_alive(body)
        self.admit(body.model)
        return await self.create(body)

    def read_keep_alive(self, body: object) -> None:
        """Reads the body's ``keep_alive`` (Ollama's extra field: how long the model stays after).

        Raises:
            BadRequestError: Naming ``keep_alive`` when it is not a duration.
        """
        self.keep_alive_s = parse_keep_alive(getattr(body, "keep_alive", None))

    async def create(self, body: Any) -> Response:
        """The endpoint's own work, once the request is admitted."""
        raise NotImplementedError

    @property
    def response_id(self) -> str:
        """The answer's id: the endpoint's prefix and the request id, so logs and answers match."""
        return f"{self.id_prefix}-{self.record.id}"

    @property
    def model(self) -> str:
        """The model serving the request, once admitted (an alias resolved to its model)."""
        return self.record.model

    def admit(self, model: str, *, endpoint: str | None = None) -> None:
        """Resolves the model the request names and checks the key's allow-list.

        Args:
            model: The name the client sent.
            endpoint: The label for records and metrics, when not the family's (token counts).
        """
        self.state.admit(self.record, model, endpoint or self.name)

    async def chat_worker(self, model: str) -> ChatWorker:
        """The chat worker serving ``model``, loaded if need be and held until the request ends."""
        return await self.state.chat_worker(model, self.record, self.keep_alive_s)

    async def embedder(self, model: str) -> EmbeddingWorker:
        """The embedding worker serving ``model``, loaded if need be and held until the request ends."""
        return await self.state.embedder(model, self.record, self.keep_alive_s)

    async def reranker(self, model: str) -> RerankWorker:
        """The worker that reranks for ``model``, loaded if need be and held until the request ends."""
        return await self.state.reranker(model, self.record, self.keep_alive_s)

    async def slot(self, worker: Worker) -> Slot:
        """Waits for one of the model's slots (admission), noting the time spent queued."""
        queued = time.perf_counter()
        slot = await self.state.slot(self.record.model, worker)
        self.record.queued_s = time.perf_counter() - queued
        return slot

    async def reserve(self, worker: ChatWorker, request: ChatRequest) -> None:
        """Holds the most tokens the request may use against its key's tokens per minute.

        That is the prompt plus ``n`` answers of the output budget after the context clamp, so
        a key cannot start work its limit does not cover. Only keys with a token limit pay for
        the count (the worker renders and tokenizes the prompt).

        Raises:
            RateLimitedError: If the key's limit cannot cover it.
        """
        key = self.record.key
        if key is None or key.tpm is None:
            return
        prompt = await asyncio.to_thread(worker.count_input_tokens, request)
        budget = worker.output_budget(request, prompt)
        self.record.input_tokens = prompt
        tokens = (prompt or 0) + request.n * (budget or 0)
        detail = f"{prompt or 0} in the prompt and {request.n} x {budget or 0} for the answer"
        self.record.reserved_tokens = self.state.quotas.reserve(key, tokens, detail)

    async def start(self, worker: ChatWorker, request: ChatRequest, *, first_within: float | None = None) -> Generation:
        """Takes a slot and pulls the first event, so that errors before any output get a real status.

        The model's output cap (its entry's ``limits.max_output_tokens``) applies first, whatever
        the client asked; then the key's token reservation (``reserve``). The events are noted
        on the record and cut, with ``ShuttingDownError``, when the server stops.

        Args:
            worker: The model's worker.
            request: The request.
            first_within: Seconds to wait for the first event; past them the answer starts
                anyway, with the first event still coming (``Generation.pending``). For streams
                whose clients give up on a silent connection (a long prompt's prefill): their
                API can then send its heartbeats, and a failure comes as its error event.
        """
        unset = {k: v for k, v in self.state.request_defaults(self.record.model).items() if getattr(request, k) is None}
        if unset:
            request = replace(request, **unset)
        cap = self.state.output_cap(self.record.model)
        if cap is not None and (request.max_tokens is None or request.max_tokens > cap):
            request = replace(request, max_tokens=cap)
        await self.reserve(worker, request)
        slot = await self.slot(worker)
        events = self.state.lifecycle.guard(tracked_events(worker.astream(request), self.record))
        generation = Generation(slot, events, None, worker, request)
        pull: asyncio.Future[StreamEvent | None] = asyncio.ensure_future(anext(aiter(events), None))
        try:
            done, _ = await asyncio.wait({pull}, timeout=first_within)
            if done:
                generation.first = pull.result()
            else:
                generation.pending = pull
        except BaseException:
            generation.pending = pull
            await generation.close()
            raise
        return generation

    async def settle_usage(self, generation: Generation) -> None:
        """Gives an answer cut before its usage came (a drain, a departed client) what it used.

        The completion is what was sent (one token a delta); the prompt is counted by the
        worker where it can be. The access log, the metrics and the key's tokens then see it.
        """
        record = self.record
        if record.usage_known or generation.first is None:
            return
        record.completion_tokens = record.deltas
        prompt = record.input_tokens
        if prompt is None:
            try:
                prompt = await asyncio.to_thread(generation.worker.count_input_tokens, generation.request)
            except Exception:  # noqa: BLE001 - a count for the log; the answer is already cut
                prompt = None
        record.prompt_tokens = prompt or 0

    async def whole(self, generation: Generation) -> ChatResult:
        """Folds a started answer into a result; gives up (and stops the worker) if the client leaves.

        A stream notices a disconnect when its next write fails; a whole answer has nothing to
        write until the end, so the connection is polled while the worker generates.
        """
        job = asyncio.ensure_future(Accumulator.acollect(generation.all_events()))
        try:
            while True:
                done, _ = await asyncio.wait({job}, timeout=_POLL_SECONDS)
                if done:
                    return job.result()
                if self.disconnected is not None and await self.disconnected():
                    job.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await job
                    raise _ClientGone("the client closed the connection; generation was stopped")
        finally:
            await generation.close()
            await self.settle_usage(generation)

    def stream_error(self, error: ModelPortError) -> bytes:
        """How this API reports an error after its stream began (OpenAI's: an error event, then done)."""
        return sse_error(error) + DONE

    def stream(self, generation: Generation, chunks: Chunks) -> StreamingResponse:
        """Streams a started answer through ``chunks``, ending in an error event if it fails.

        The worker's stream is closed (stopping its generation) and the slot freed on every end:
        a normal one, an error, and the client leaving (the response task is cancelled).
        """

        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in chunks(generation.all_events()):
                    yield chunk
            except ModelPortError as error:
                self.record.fail(error.status_code, error.message)
                yield self.stream_error(error)
            except Exception as error:
                logger.exception("%s stream for %s failed", self.name, self.record.model)
                internal = ModelPortError(f"internal error: {type(error).__name__}")
                self.record.fail(500, internal.message)
                yield self.stream_error(internal)
            finally:
                await generation.close()
                await self.settle_usage(generation)

        return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)

    @staticmethod
    def json(out: WireResponse) -> Response:
        """A whole answer as JSON."""
        return Response(out.json_bytes(), media_type="application/json")
