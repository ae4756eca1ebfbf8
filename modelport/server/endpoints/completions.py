"""``/v1/completions``, the legacy text endpoint.

Local models continue the prompt as raw text, with no chat template, as every OpenAI-compatible
server does: ``echo``, ``stop``, ``n``, ``max_tokens``, ``seed``, streaming, and integer
``logprobs`` where the worker records them. Workers that only take chat messages (chains, remote
kinds) get the prompt as one user message through their template, and refuse ``echo`` and
``logprobs`` by name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi.responses import Response

from modelport.core.errors import BadRequestError, ContextLengthExceededError
from modelport.core.events import StreamEvent
from modelport.core.events import Usage as CoreUsage
from modelport.core.messages import UserMessage
from modelport.core.request import ChatRequest
from modelport.server import protocol as wire
from modelport.server.encoding import CompletionChunkEncoder, text_logprobs, usage, wire_finish_reason
from modelport.server.endpoints.base import Endpoint, Generation
from modelport.server.endpoints.chat import sampling_fields
from modelport.workers.base import ChatWorker

__all__ = ["CompletionsEndpoint", "completion_request"]


def _prompts(body: wire.CompletionRequest) -> list[str]:
    prompt = body.prompt
    if isinstance(prompt, str):
        return [prompt]
    if prompt and all(isinstance(p, str) for p in prompt):
        return [str(p) for p in prompt]
    if not prompt:
        raise BadRequestError("must not be empty", param="prompt")
    raise BadRequestError("token-id prompts are not supported; send text", param="prompt")


def _where(body: wire.CompletionRequest, index: int) -> str:
    return "prompt" if isinstance(body.prompt, str) else f"prompt[{index}]"


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


class CompletionsEndpoint(Endpoint, name="completions", id_prefix="cmpl"):
    """Serves the legacy completions endpoint, whole or as an SSE stream."""

    async def _start(self, worker: ChatWorker, request: ChatRequest, param: str) -> Generation:
        """Starts one prompt's answer; a prompt that does not fit names ``param``, not ``messages``."""
        try:
            return await self.start(worker, request)
        except ContextLengthExceededError as error:
            if error.param != "messages":
                raise
            raise ContextLengthExceededError(
                prompt_tokens=error.prompt_tokens,
                max_context=error.max_context,
                max_tokens=error.max_tokens,
                prompt_param=param,
            ) from None

    async def create(self, body: wire.CompletionRequest) -> Response:
        """One completion per prompt, ``n`` choices each."""
        prompts = _prompts(body)
        if body.stream and len(prompts) > 1:
            raise BadRequestError("streaming supports one prompt per request", param="prompt")
        worker = await self.chat_worker(self.model)
        raw = worker.capabilities.raw_prompts
        requests = [completion_request(body, p, raw=raw) for p in prompts]
        if body.stream:
            encoder = CompletionChunkEncoder(
                id=self.response_id,
                model=self.model,
                created=self.created,
                n=body.n,
                include_usage=bool(body.stream_options and body.stream_options.include_usage),
                with_logprobs=requests[0].logprobs,
            )

            async def chunks(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
                async for event in events:
                    if chunk := encoder.encode(event):
                        yield chunk
                yield encoder.end()

            return self.stream(await self._start(worker, requests[0], _where(body, 0)), chunks)
        choices: list[wire.CompletionChoice] = []
        total = CoreUsage()
        for p, request in enumerate(requests):
            result = await self.whole(await self._start(worker, request, _where(body, p)))
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
        return self.json(
            wire.CompletionResponse(
                id=self.response_id, created=self.created, model=self.model, choices=choices, usage=usage(total)
            )
        )
