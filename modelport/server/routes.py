"""The HTTP routes: parse, hand to an endpoint (``server.endpoints``), return. Nothing else happens here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response

from modelport.core.errors import ModelNotFoundError
from modelport.server import protocol as wire
from modelport.server.endpoints.chat import ChatEndpoint
from modelport.server.endpoints.completions import CompletionsEndpoint
from modelport.server.endpoints.embeddings import EmbeddingsEndpoint
from modelport.server.endpoints.messages.endpoint import MessagesEndpoint
from modelport.server.endpoints.messages.wire import CountTokensRequest, CreateMessage
from modelport.server.endpoints.rerank import wire as rerank_wire
from modelport.server.endpoints.rerank.endpoint import RerankEndpoint, ScoreEndpoint
from modelport.server.endpoints.responses.endpoint import ResponsesEndpoint
from modelport.server.endpoints.responses.wire import CreateResponse, InputTokensRequest
from modelport.server.ops.auth import ApiKey
from modelport.server.ops.metrics import CONTENT_TYPE
from modelport.server.ops.tracking import record_of
from modelport.server.state import ServerState, get_state

__all__ = [
    "chat_completions",
    "completions",
    "create_response",
    "delete_response",
    "embeddings",
    "health",
    "count_message_tokens",
    "create_message",
    "list_models",
    "metrics",
    "ready",
    "require_key",
    "response_input_items",
    "response_input_tokens",
    "retrieve_model",
    "retrieve_response",
    "rerank",
    "router",
    "score",
]

State = Annotated[ServerState, Depends(get_state)]


def require_key(
    state: State,
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """Checks the key when the server has keys, and the key's requests per minute.

    The key comes as ``Authorization: Bearer`` (OpenAI's way) or ``x-api-key`` (Anthropic's).
    """
    if authorization is None and x_api_key is not None:
        authorization = f"Bearer {x_api_key}"
    key = state.keys.check(authorization)
    record_of(request).key = key
    if key is not None and request.method == "POST":
        state.quotas.admit(key)


def _key(request: Request) -> ApiKey | None:
    return record_of(request).key


router = APIRouter()
v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": wire.ErrorResponse} for code in (400, 401, 404, 429, 502, 503, 504)
}


@v1.post("/chat/completions", responses=_ERRORS, response_model=wire.ChatCompletion)
async def chat_completions(body: wire.ChatCompletionRequest, state: State, request: Request) -> Response:
    """Creates a chat completion; with ``stream`` it answers in server-sent events."""
    return await ChatEndpoint(state, record_of(request), request.is_disconnected)(body)


@v1.post("/completions", responses=_ERRORS, response_model=wire.CompletionResponse)
async def completions(body: wire.CompletionRequest, state: State, request: Request) -> Response:
    """Legacy text completion; the prompt is sent as one user message through the chat template."""
    return await CompletionsEndpoint(state, record_of(request), request.is_disconnected)(body)


@v1.post("/responses", responses=_ERRORS)
async def create_response(body: CreateResponse, state: State, request: Request) -> Response:
    """Creates a model response (OpenAI's Responses API); with ``stream``, as Responses events."""
    return await ResponsesEndpoint(state, record_of(request), request.is_disconnected)(body)


@v1.post("/responses/input_tokens", responses=_ERRORS)
async def response_input_tokens(body: InputTokensRequest, state: State, request: Request) -> Response:
    """Counts the input tokens a response request would take on its model."""
    return await ResponsesEndpoint(state, record_of(request)).input_tokens(body)


@v1.get("/responses/{response_id}", responses=_ERRORS)
async def retrieve_response(response_id: str, state: State, request: Request) -> Response:
    """A stored response (only to the key that created it)."""
    return await ResponsesEndpoint(state, record_of(request)).retrieve(response_id)


@v1.delete("/responses/{response_id}", responses=_ERRORS)
async def delete_response(response_id: str, state: State, request: Request) -> Response:
    """Deletes a stored response."""
    return await ResponsesEndpoint(state, record_of(request)).delete(response_id)


@v1.get("/responses/{response_id}/input_items", responses=_ERRORS)
async def response_input_items(
    response_id: str,
    state: State,
    request: Request,
    after: str | None = None,
    before: str | None = None,
    limit: int = 20,
    order: Literal["asc", "desc"] = "desc",
) -> Response:
    """A stored response's input items, paginated."""
    endpoint = ResponsesEndpoint(state, record_of(request))
    return await endpoint.input_items(response_id, after=after, before=before, limit=limit, order=order)


@v1.post("/messages", responses=_ERRORS)
async def create_message(body: CreateMessage, state: State, request: Request) -> Response:
    """Creates a message (Anthropic's Messages API); with ``stream``, as Anthropic's events."""
    return await MessagesEndpoint(state, record_of(request), request.is_disconnected)(body)


@v1.post("/messages/count_tokens", responses=_ERRORS)
async def count_message_tokens(body: CountTokensRequest, state: State, request: Request) -> Response:
    """Counts a message's input tokens with the model's own tokenizer and template."""
    return await MessagesEndpoint(state, record_of(request)).count_tokens(body)


@v1.post("/embeddings", responses=_ERRORS, response_model=wire.EmbeddingResponse)
async def embeddings(body: wire.EmbeddingRequest, state: State, request: Request) -> Response:
    """Embeds text input."""
    return await EmbeddingsEndpoint(state, record_of(request))(body)


@v1.post("/rerank", responses=_ERRORS, response_model=rerank_wire.RerankResponse)
async def rerank(body: rerank_wire.RerankRequest, state: State, request: Request) -> Response:
    """Scores documents against a query and answers with the best, most relevant first (Jina's and Cohere's shape)."""
    return await RerankEndpoint(state, record_of(request))(body)


@v1.post("/score", responses=_ERRORS, response_model=rerank_wire.ScoreResponse)
async def score(body: rerank_wire.ScoreRequest, state: State, request: Request) -> Response:
    """Scores text pairs: ``text_1`` against each of ``text_2``, or two lists pair by pair (vLLM's shape)."""
    return await ScoreEndpoint(state, record_of(request))(body)


# Jina's and Cohere's clients, llama.cpp's and vLLM's servers also put rerank at these paths.
others = APIRouter(dependencies=[Depends(require_key)])
others.add_api_route("/rerank", rerank, methods=["POST"], responses=_ERRORS, include_in_schema=False)
others.add_api_route("/v2/rerank", rerank, methods=["POST"], responses=_ERRORS, include_in_schema=False)


def _card(state: ServerState, name: str) -> wire.ModelCard:
    entry = state.registry.entry(name)
    caps = state.registry.declared_capabilities(name)
    roles = [
        role for role, able in (("chat", caps.chat), ("embedding", caps.embeddings), ("rerank", caps.rerank)) if able
    ]
    task: Literal["chat", "embedding", "rerank"] = "chat" if caps.chat else "embedding" if caps.embeddings else "rerank"
    return wire.ModelCard(
        id=entry.name,
        created=state.started,
        owned_by="modelport",
        task=task,
        roles=roles,
        base_model=entry.base_model,
        aliases=list(entry.aliases),
    )


@v1.get("/models", response_model=wire.ModelList)
async def list_models(state: State, request: Request) -> Response:
    """Every registered model and chain (that the caller's key may use)."""
    key = _key(request)
    names = [n for n in state.registry.names() if key is None or key.allows(n)]
    out = wire.ModelList(data=[_card(state, name) for name in names])
    return Response(out.json_bytes(), media_type="application/json")


@v1.get("/models/{model_id:path}", responses=_ERRORS, response_model=wire.ModelCard)
async def retrieve_model(model_id: str, state: State, request: Request) -> Response:
    """One model (an alias answers with the model it names, as Anthropic's API does), or 404 ``model_not_found``."""
    key = _key(request)
    names = state.registry.names()
    try:
        model = state.registry.resolve(model_id).model
    except ModelNotFoundError:
        if key is not None:  # the 404 lists only what the key may use
            key.check_model(model_id, names)
        raise
    if key is not None:
        key.check_model(model, names, requested=model_id)
    return Response(_card(state, model).json_bytes(), media_type="application/json")


@router.get("/health")
async def health(state: State) -> dict[str, object]:
    """Liveness: the process answers. Lists the models and which are loaded. Needs no key."""
    names = state.registry.names()
    return {"status": "ok", "models": len(names), "loaded": [n for n in names if state.registry.is_loaded(n)]}


@router.get("/health/ready", responses={503: {"description": "Not ready: loading, failed or draining"}})
async def ready(state: State) -> Response:
    """Readiness: every preloaded model is in, none failed, and the server is not draining."""
    ok, detail = state.readiness()
    return JSONResponse(detail, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(state: State, authorization: Annotated[str | None, Header()] = None) -> Response:
    """Prometheus metrics; behind the API keys unless the server makes them public."""
    if not state.settings.metrics_public:
        state.keys.check(authorization)
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)


router.include_router(v1)
router.include_router(others)
