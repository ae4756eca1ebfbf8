"""``ResponsesEndpoint``: creates, streams, stores, retrieves and deletes responses."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

from fastapi.responses import JSONResponse, Response

from modelport.core.errors import BadRequestError, ContextLengthExceededError, ModelPortError, NotFoundError
from modelport.core.events import StreamEvent
from modelport.core.messages import Message, SystemMessage
from modelport.core.request import ChatRequest
from modelport.server.endpoints.base import Endpoint
from modelport.server.endpoints.responses import translate
from modelport.server.endpoints.responses.output import OutputBuilder, item_id, sse_event
from modelport.server.endpoints.responses.store import StoredResponse
from modelport.server.endpoints.responses.wire import CreateResponse, InputTokensRequest
from modelport.workers.base import ChatWorker

__all__ = ["ResponsesEndpoint"]

logger = logging.getLogger("modelport.server")

LOGPROBS = "message.output_text.logprobs"
SEALED = "reasoning.encrypted_content"
# ChatRequest's field names, as this API names them.
_PARAMS = {"max_tokens": "max_output_tokens", "messages": "input", "response_format": "text.format"}


def _refuse_unsupported(body: CreateResponse | InputTokensRequest) -> None:
    if isinstance(body, CreateResponse):
        if body.background:
            raise BadRequestError("background responses are not supported; leave it unset", param="background")
        if body.prompt is not None:
            raise BadRequestError("prompt templates are not supported; send input", param="prompt")
        if body.max_tool_calls is not None:
            raise BadRequestError("is not supported; leave it unset", param="max_tool_calls")
    if body.conversation is not None:
        raise BadRequestError("conversations are not supported; use previous_response_id", param="conversation")


def _with_ids(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The input items as OpenAI lists them back: each with an id and a type, text as parts."""
    prefix = {"message": "msg", "function_call": "fc", "function_call_output": "fco", "reasoning": "rs"}
    out = []
    for item in items:
        item = {"type": "message", **item}
        if "id" not in item:
            item["id"] = item_id(prefix.get(str(item["type"]), "item"))
        if item["type"] == "message":
            if isinstance(item.get("content"), str):
                kind = "output_text" if item.get("role") == "assistant" else "input_text"
                part: dict[str, Any] = {"type": kind, "text": item["content"]}
                if kind == "output_text":
                    part["annotations"] = []
                item["content"] = [part]
            item.setdefault("status", "completed")
        out.append(item)
    return out


class ResponsesEndpoint(Endpoint, name="responses", id_prefix="resp"):
    """Serves one Responses request, whole or as a stream of Responses events."""

    @property
    def response_id(self) -> str:
        """``resp_`` and the request id (OpenAI's ids join with an underscore)."""
        return f"resp_{self.record.id}"

    @property
    def owner(self) -> str:
        """Whose responses this request may see: its key's name (``""`` on an open server)."""
        return self.record.key_name

    async def _previous(self, response_id: str | None) -> StoredResponse | None:
        if response_id is None:
            return None
        found = await asyncio.to_thread(self.state.response_store.get, response_id, self.owner)
        if found is None:
            raise NotFoundError(
                f"Previous response with id {response_id!r} not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        return found

    def _messages(self, instructions: str | None, items: list[dict[str, Any]]) -> list[Message]:
        # Instructions lead as a developer message; the translation merges leading system turns.
        lead = [{"type": "message", "role": "developer", "content": instructions}] if instructions else []
        messages = translate.messages_from_items([*lead, *items], unseal=self.state.sealer.unseal)
        if not messages:
            raise BadRequestError("give input, or a previous_response_id with input", param="input")
        return messages

    def _request(self, body: CreateResponse | InputTokensRequest, messages: list[Message], tools: Any) -> ChatRequest:
        include = set(getattr(body, "include", None) or ())
        reasoning = body.reasoning or {}
        max_tokens = getattr(body, "max_output_tokens", None)
        try:
            return ChatRequest(
                messages,
                temperature=getattr(body, "temperature", None),
                top_p=getattr(body, "top_p", None),
                max_tokens=max_tokens,
                tools=tools.specs,
                tool_choice=translate.tool_choice(body.tool_choice, tools),
                response_format=translate.response_format(body.text),
                parallel_tool_calls=body.parallel_tool_calls,
                logprobs=LOGPROBS in include,
                top_logprobs=getattr(body, "top_logprobs", None) if LOGPROBS in include else None,
                reasoning_effort=reasoning.get("effort") if isinstance(reasoning, Mapping) else None,
                cache_key=getattr(body, "prompt_cache_key", None),
            )
        except BadRequestError as error:
            raise _renamed(error) from None

    async def _fit(self, worker: ChatWorker, request: ChatRequest, truncation: str | None) -> ChatRequest:
        """With ``truncation: auto``, drops the oldest turns until the input fits the context."""
        context = worker.capabilities.max_context
        if truncation != "auto" or context is None:
            return request
        messages = list(request.messages)
        while True:
            counted = await asyncio.to_thread(worker.count_input_tokens, request)
            if counted is None or counted < context:
                return request
            keep_system = 1 if isinstance(messages[0], SystemMessage) else 0
            if len(messages) - keep_system <= 1:
                return request  # nothing left to drop: the worker refuses it by name
            del messages[keep_system]
            request = _replace_messages(request, messages)

    def _skeleton(self, body: CreateResponse, tools: Any) -> dict[str, Any]:
        """The response object's fields that echo the request."""
        out: dict[str, Any] = {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created,
            "model": self.model,
            "status": "in_progress",
            "error": None,
            "incomplete_details": None,
            "instructions": body.instructions,
            "max_output_tokens": body.max_output_tokens,
            "metadata": body.metadata or {},
            "output": [],
            "parallel_tool_calls": True if body.parallel_tool_calls is None else body.parallel_tool_calls,
            "previous_response_id": body.previous_response_id,
            "reasoning": {
                "effort": (body.reasoning or {}).get("effort"),
                "summary": (body.reasoning or {}).get("summary"),
            },
            "store": body.store,
            "temperature": 1.0 if body.temperature is None else body.temperature,
            "text": body.text or {"format": {"type": "text"}},
            "tool_choice": body.tool_choice if body.tool_choice is not None else "auto",
            "tools": [_echoed_tool(t) for t in body.tools or []],
            "top_p": 1.0 if body.top_p is None else body.top_p,
            "truncation": body.truncation or "disabled",
        }
        if body.user is not None:
            out["user"] = body.user
        if body.prompt_cache_key is not None:
            out["prompt_cache_key"] = body.prompt_cache_key
        if body.safety_identifier is not None:
            out["safety_identifier"] = body.safety_identifier
        if body.top_logprobs is not None:
            out["top_logprobs"] = body.top_logprobs
        return out

    async def create(self, body: CreateResponse) -> Response:
        """Translates ``body``, runs it, and answers with a response object or its events."""
        _refuse_unsupported(body)
        if body.client_metadata:
            logger.info("responses: client_metadata %s", body.client_metadata)
        previous = await self._previous(body.previous_response_id)
        items = _with_ids(translate.normalize_input(body.input if body.input is not None else []))
        history = (previous.history if previous else []) + items
        hosted = self.state.settings.responses.hosted_tools
        tools = translate.tools_from_wire(body.tools, refuse_hosted=hosted == "error")
        if tools.dropped:
            logger.info("responses: hosted tools left out (the server cannot run them): %s", ", ".join(tools.dropped))
        request = self._request(body, self._messages(body.instructions, history), tools)
        worker = await self.chat_worker(self.model)
        if request.logprobs and not worker.capabilities.logprobs:
            request = _without_logprobs(request)
        request = await self._fit(worker, request, body.truncation)
        namespaces = {t.name.partition(".")[0] for t in tools.specs if "." in t.name}
        seal = self.state.sealer.seal if SEALED in set(body.include or ()) else None
        builder = OutputBuilder(
            self._skeleton(body, tools),
            seal=seal,
            call_name=lambda name: translate.call_name(name, namespaces.__contains__),
        )
        self._builder = builder
        try:
            generation = await self.start(worker, request)
        except BadRequestError as error:
            raise _renamed(error) from None
        headers = {"X-Modelport-Dropped-Tools": ",".join(tools.dropped)} if tools.dropped else {}

        async def keep(response: dict[str, Any]) -> None:
            if body.store:
                output = [i for i in response["output"]]
                entry = StoredResponse(response["id"], self.owner, response, items, history + output)
                await asyncio.to_thread(self.state.response_store.put, entry)

        if not body.stream:
            await self.whole(generation.folded(builder.feed))
            _, events = builder.end()
            response = events[-1]["response"]
            await keep(response)
            return JSONResponse(response, headers=headers)

        async def chunks(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
            for event in builder.start():
                yield sse_event(event)
            async for core_event in events:
                for event in builder.feed(core_event):
                    yield sse_event(event)
            _, last = builder.end()
            for event in last:
                yield sse_event(event)
            await keep(last[-1]["response"])

        streamed = self.stream(generation, chunks)
        streamed.headers.update(headers)
        return streamed

    def stream_error(self, error: ModelPortError) -> bytes:
        """An ``error`` event, then ``response.failed`` (this API has no ``[DONE]``)."""
        events = self._builder.fail(error.code or "server_error", error.message, getattr(error, "param", None))
        return b"".join(sse_event(e) for e in events)

    # -- the other routes ----------------------------------------------------------------

    async def retrieve(self, response_id: str) -> Response:
        """``GET /v1/responses/{id}``: the stored response, for its own key only."""
        found = await asyncio.to_thread(self.state.response_store.get, response_id, self.owner)
        if found is None:
            raise NotFoundError(f"Response with id {response_id!r} not found.", param="response_id")
        return JSONResponse(found.response)

    async def delete(self, response_id: str) -> Response:
        """``DELETE /v1/responses/{id}``."""
        if not await asyncio.to_thread(self.state.response_store.delete, response_id, self.owner):
            raise NotFoundError(f"Response with id {response_id!r} not found.", param="response_id")
        return JSONResponse({"id": response_id, "object": "response.deleted", "deleted": True})

    async def input_items(
        self, response_id: str, *, after: str | None, before: str | None, limit: int, order: str
    ) -> Response:
        """``GET /v1/responses/{id}/input_items``: paginated as OpenAI's lists are."""
        if not 1 <= limit <= 100:
            raise BadRequestError("must be between 1 and 100", param="limit")
        if order not in ("asc", "desc"):
            raise BadRequestError("must be asc or desc", param="order")
        found = await asyncio.to_thread(self.state.response_store.get, response_id, self.owner)
        if found is None:
            raise NotFoundError(f"Response with id {response_id!r} not found.", param="response_id")
        items = list(found.input_items if order == "asc" else reversed(found.input_items))
        ids = [i.get("id") for i in items]
        for cursor, param in ((after, "after"), (before, "before")):
            if cursor is not None and cursor not in ids:
                raise BadRequestError(f"no input item {cursor!r} in this response", param=param)
        if after is not None:
            items = items[ids.index(after) + 1 :]
        if before is not None:
            items = items[: [i.get("id") for i in items].index(before)]
        page = items[:limit]
        return JSONResponse(
            {
                "object": "list",
                "data": page,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(items) > limit,
            }
        )

    async def input_tokens(self, body: InputTokensRequest) -> Response:
        """``POST /v1/responses/input_tokens``: the input's tokens on the model, as it would be sent."""
        self.admit(body.model, endpoint="count_tokens")
        _refuse_unsupported(body)
        previous = await self._previous(body.previous_response_id)
        items = translate.normalize_input(body.input if body.input is not None else [])
        history = (previous.history if previous else []) + items
        tools = translate.tools_from_wire(body.tools)
        request = self._request(body, self._messages(body.instructions, history), tools)
        worker = await self.chat_worker(self.model)
        counted = await asyncio.to_thread(worker.count_input_tokens, request)
        if counted is None:
            raise BadRequestError(f"the model {self.model!r} cannot count tokens here", param="model")
        return JSONResponse({"object": "response.input_tokens", "input_tokens": counted})


def _echoed_tool(tool: dict[str, Any]) -> dict[str, Any]:
    """A tool as the response echoes it: function tools with ``strict`` and ``parameters`` set."""
    if tool.get("type") != "function":
        return tool
    return {"strict": None, "parameters": None, **tool}


def _renamed(error: BadRequestError) -> BadRequestError:
    """``error`` naming this API's fields (``input``, ``max_output_tokens``) where it named the core's."""
    param = _PARAMS.get(error.param or "")
    if param is None:
        return error
    message = error.message.removeprefix(f"{error.param}: ")
    if isinstance(error, ContextLengthExceededError):
        renamed = ContextLengthExceededError(
            prompt_tokens=error.prompt_tokens,
            max_context=error.max_context,
            max_tokens=error.max_tokens,
            prompt_param="input",
        )
        if renamed.param == "max_tokens":
            renamed.param = "max_output_tokens"
            renamed.message = renamed.message.replace("max_tokens", "max_output_tokens")
            renamed.args = (renamed.message,)
        return renamed
    return BadRequestError(message.replace(error.param or "", param), param=param, code=error.code)


def _replace_messages(request: ChatRequest, messages: list[Message]) -> ChatRequest:
    return replace(request, messages=tuple(messages))


def _without_logprobs(request: ChatRequest) -> ChatRequest:
    # The include asks for logprobs "where the worker records them": others answer without.
    return replace(request, logprobs=False, top_logprobs=None)
