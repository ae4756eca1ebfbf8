"""``/v1/completions``, the legacy text endpoint.

Local models continue the prompt as raw text, with no chat template, as every OpenAI-compatible
server does: ``echo``, ``stop``, ``n``, ``max_tokens``, ``seed``, streaming, and integer
``logprobs`` where the worker records them. Workers that only take chat messages (chains, remote
kinds) get the prompt as one user message through their template, and refuse ``echo`` and
``logprobs`` by name.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from fastapi.responses import Response, StreamingResponse

from modelport.core.errors import BadRequestError, ModelPortError
from modelport.core.events import Finish, TextDelta
from modelport.core.events import Usage as CoreUsage
from modelport.core.messages import UserMessage
from modelport.core.request import ChatRequest
from modelport.server import protocol as wire
from modelport.server.encoding import DONE, text_logprobs, usage, wire_finish_reason
from modelport.server.errors import sse_error
from modelport.server.serving_chat import (
    SSE_HEADERS,
    Disconnected,
    close_events,
    rest,
    sampling_fields,
    start_events,
    whole,
)
from modelport.server.state import ServerState
from modelport.server.tracking import RequestRecord

__all__ = ["completion_request", "create_completion"]


def _prompts(body: wire.CompletionRequest) -> list[str]:
    prompt = body.prompt
    if isinstance(prompt, str):
        return [prompt]
    if prompt and all(isinstance(p, str) for p in prompt):
        return [str(p) for p in prompt]
    if not prompt:
        raise BadRequestError("must not be empty", param="prompt")
    raise BadRequestError("token-id prompts are not supported; send text", param="prompt")


def completion_request(body: wire.CompletionRequest, prompt: str, *, raw: bool) -> ChatRequest:
    """The request that answers one prompt: raw text for ``raw`` workers, else one user message."""
    if body.suffix:
        raise BadRequestError("is not supported", param="suffix")
    if body.logprobs is not None and not 0 <= body.logprobs <= 5:
        raise BadRequestError("must be between 0 and 5", param="logprobs")
    if body.best_of is not None and body.best_of > body.n:
        raise BadRequestError("is not supported: no completions are generated beyond n", param="best_of")
    if body.best_of is not None and body.best_of < body.n:
        raise BadRequestError("must be at least n", param="best_of")
    if not raw:
        if body.echo:
            raise BadRequestError("is not supported by this model (it only takes chat messages)", param="echo")
        if body.logprobs is not None:
            raise BadRequestError("is not supported by this model; use chat logprobs", param="logprobs")
    elif body.echo and body.logprobs is not None:
        raise BadRequestError("with echo would need the prompt's log probabilities; drop one", param="logprobs")
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or ())
    return ChatRequest(
        [UserMessage(prompt)],
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_tokens,
        stop=stop,
        seed=body.seed,
        n=body.n,
        logprobs=body.logprobs is not None,
        top_logprobs=body.logprobs,
        raw_prompt=prompt if raw else None,
        echo=bool(body.echo) and raw,
        **sampling_fields(body),
    )


async def create_completion(
    state: ServerState,
    body: wire.CompletionRequest,
    record: RequestRecord,
    disconnected: Disconnected | None = None,
) -> Response:
    """Serves the legacy completions endpoint, whole or as an SSE stream."""
    state.admit(record, body.model, "completions")
    prompts = _prompts(body)
    if body.stream and len(prompts) > 1:
        raise BadRequestError("streaming supports one prompt per request", param="prompt")
    worker = await state.chat_worker(body.model)
    raw = worker.capabilities.raw_prompts
    requests = [completion_request(body, p, raw=raw) for p in prompts]
    completion_id, created = f"cmpl-{record.id}", int(time.time())
    if not body.stream:
        choices: list[wire.CompletionChoice] = []
        total = CoreUsage()
        for p, request in enumerate(requests):
            slot, events, first = await start_events(state, record, worker, request)
            result = await whole(slot, events, first, disconnected)
            total = total + result.usage
            start = len(prompts[p]) if request.echo else 0
            for choice in result.choices:
                text = choice.message.content if isinstance(choice.message.content, str) else ""
                choices.append(
                    wire.CompletionChoice(
                        text=text,
                        index=p * body.n + choice.index,
                        logprobs=text_logprobs(choice.logprobs, start) if request.logprobs else None,
                        finish_reason=wire_finish_reason(choice.finish_reason),
                    )
                )
        out = wire.CompletionResponse(
            id=completion_id, created=created, model=body.model, choices=choices, usage=usage(total)
        )
        return Response(out.json_bytes(), media_type="application/json")

    request = requests[0]
    slot, events, first = await start_events(state, record, worker, request)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(choices: list[wire.CompletionChoice], with_usage: wire.Usage | None = None) -> bytes:
        out = wire.CompletionResponse(id=completion_id, created=created, model=body.model, choices=choices)
        if with_usage is not None:
            out.usage = with_usage
        return b"data: " + out.json_bytes() + b"\n\n"

    async def stream() -> AsyncIterator[bytes]:
        total = None
        offsets = [0] * body.n  # where each choice's next text starts, for text_offset
        try:
            async for event in rest(first, events):
                if isinstance(event, TextDelta):
                    logprobs = text_logprobs(event.logprobs, offsets[event.choice]) if request.logprobs else None
                    offsets[event.choice] += len(event.text)
                    choice = wire.CompletionChoice(
                        text=event.text, index=event.choice, logprobs=logprobs, finish_reason=None
                    )
                    yield chunk([choice])
                elif isinstance(event, Finish):
                    if event.usage is not None:
                        total = event.usage
                    reason = wire_finish_reason(event.reason)
                    yield chunk(
                        [wire.CompletionChoice(text="", index=event.choice, logprobs=None, finish_reason=reason)]
                    )
            if include_usage:
                yield chunk([], usage(total))
            yield DONE
        except ModelPortError as error:
            record.fail(error.status_code, error.message)
            yield sse_error(error) + DONE
        finally:
            await close_events(events)
            slot.release()

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)
