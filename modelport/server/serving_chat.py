"""``/v1/chat/completions``: wire request in, worker events out (and the helpers completions share)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi.responses import Response, StreamingResponse

from modelport.core.accumulator import Accumulator, ChatResult
from modelport.core.errors import BadRequestError, ModelPortError
from modelport.core.events import StreamEvent
from modelport.core.messages import message_from_dict
from modelport.core.request import ChatRequest, ResponseFormat
from modelport.core.tools import ToolSpec
from modelport.server import protocol as wire
from modelport.server.encoding import DONE, ChatChunkEncoder, chat_completion
from modelport.server.errors import sse_error
from modelport.server.limits import Slot
from modelport.server.state import ServerState
from modelport.server.tracking import RequestRecord, tracked_events
from modelport.workers.base import ChatWorker

__all__ = [
    "SSE_HEADERS",
    "ClientGone",
    "Disconnected",
    "close_events",
    "collect",
    "create_chat_completion",
    "rest",
    "sampling_fields",
    "start_events",
    "whole",
]

logger = logging.getLogger("modelport.server")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# How often a whole (non-streamed) answer checks that its client is still there.
_POLL_SECONDS = 0.25


def sampling_fields(body: wire.ChatCompletionRequest | wire.CompletionRequest) -> dict[str, Any]:
    """The optional sampling fields of a wire request, as ``ChatRequest`` keywords."""
    # Each worker refuses, by name, the fields its engine cannot honour (``check_request``).
    return {
        "frequency_penalty": body.frequency_penalty,
        "presence_penalty": body.presence_penalty,
        "repetition_penalty": body.repetition_penalty,
        "logit_bias": body.logit_bias,
        "top_k": body.top_k,
        "min_p": body.min_p,
    }


def chat_request(body: wire.ChatCompletionRequest) -> ChatRequest:
    """Validates the wire request into a core request, naming the offending field on failure."""
    messages = [message_from_dict(m, where=f"messages[{i}]") for i, m in enumerate(body.messages)]
    tools = [ToolSpec.from_dict(t, where=f"tools[{i}]") for i, t in enumerate(body.tools or ())]
    if body.tool_choice is not None and not tools and body.tool_choice != "none":
        raise BadRequestError("tool_choice is set but no tools were given", param="tool_choice")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or ())
    return ChatRequest(
        messages,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens,
        stop=stop,
        seed=body.seed,
        tools=tools,
        tool_choice=body.tool_choice,
        response_format=ResponseFormat.from_dict(body.response_format) if body.response_format else None,
        n=body.n,
        logprobs=bool(body.logprobs),
        top_logprobs=body.top_logprobs,
        parallel_tool_calls=body.parallel_tool_calls,
        tool_call_threshold=body.tool_call_threshold,
        **sampling_fields(body),
    )


async def start_events(
    state: ServerState, record: RequestRecord, worker: ChatWorker, request: ChatRequest
) -> tuple[Slot, AsyncIterator[StreamEvent], StreamEvent | None]:
    """Takes a slot and pulls the first event, so that errors before any output get a real status.

    The events are noted on ``record`` and cut, with ``ShuttingDownError``, when the server stops.
    """
    queued = time.perf_counter()
    slot = await state.slot(record.model, worker)
    record.queued_s = time.perf_counter() - queued
    events = state.lifecycle.guard(tracked_events(worker.astream(request), record))
    try:
        first = await anext(aiter(events), None)
    except BaseException:
        slot.release()
        await close_events(events)
        raise
    return slot, events, first


async def rest(first: StreamEvent | None, events: AsyncIterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    """The first event (pulled by ``start_events``), then the rest of the stream."""
    if first is not None:
        yield first
    async for event in events:
        yield event


Disconnected = Callable[[], Awaitable[bool]]


async def collect(events: AsyncIterator[StreamEvent], disconnected: Disconnected | None) -> ChatResult:
    """Folds the events into a result; gives up (and stops the worker) if the client leaves.

    Streams notice a disconnect when their next write fails; a whole answer has nothing to
    write until the end, so the connection is polled while the worker generates.
    """
    job = asyncio.ensure_future(Accumulator.acollect(events))
    while True:
        done, _ = await asyncio.wait({job}, timeout=_POLL_SECONDS)
        if done:
            return job.result()
        if disconnected is not None and await disconnected():
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
            raise ClientGone("the client closed the connection; generation was stopped")


class ClientGone(ModelPortError):
    """The client closed the connection before its whole answer was ready (never read by anyone)."""

    status_code = 499  # nginx's code for a request its client closed
    code = "client_closed_request"
    error_type = "invalid_request_error"


async def whole(
    slot: Slot, events: AsyncIterator[StreamEvent], first: StreamEvent | None, disconnected: Disconnected | None
) -> ChatResult:
    """The whole answer from ``start_events``'s stream; frees the slot and closes the stream after."""
    try:
        return await collect(rest(first, events), disconnected)
    finally:
        slot.release()
        await close_events(events)


async def close_events(events: AsyncIterator[StreamEvent]) -> None:
    """Closes a worker's stream, which stops its generation."""
    # Closing the worker's async generator sets its cancel flag, which stops local generation.
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()


async def create_chat_completion(
    state: ServerState,
    body: wire.ChatCompletionRequest,
    record: RequestRecord,
    disconnected: Disconnected | None = None,
) -> Response:
    """Serves one chat completion, whole or as an SSE stream."""
    state.admit(record, body.model, "chat")
    request = chat_request(body)
    worker = await state.chat_worker(body.model)
    slot, events, first = await start_events(state, record, worker, request)
    completion_id, created = f"chatcmpl-{record.id}", int(time.time())
    if not body.stream:
        result = await whole(slot, events, first, disconnected)
        out = chat_completion(
            result, id=completion_id, model=body.model, created=created, with_logprobs=request.logprobs
        )
        return Response(out.json_bytes(), media_type="application/json")

    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    encoder = ChatChunkEncoder(
        id=completion_id, model=body.model, created=created, n=request.n, include_usage=include_usage
    )

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield encoder.start()
            async for event in rest(first, events):
                yield encoder.encode(event)
            yield encoder.end()
        except ModelPortError as error:
            record.fail(error.status_code, error.message)
            yield sse_error(error) + DONE
        except Exception as error:
            logger.exception("chat stream for %s failed", body.model)
            internal = ModelPortError(f"internal error: {type(error).__name__}")
            record.fail(500, internal.message)
            yield sse_error(internal) + DONE
        finally:
            # Runs on normal end, on error and when the client disconnects (the task is cancelled):
            # closing the worker's stream stops its generation and frees the slot.
            await close_events(events)
            slot.release()

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)
