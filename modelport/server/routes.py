"""The HTTP routes: parse, hand to the serving functions, return. Nothing else happens here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import Response

from modelport.core.errors import ModelNotFoundError
from modelport.server import protocol as wire
from modelport.server.serving_chat import create_chat_completion, create_completion
from modelport.server.serving_embeddings import create_embeddings
from modelport.server.state import ServerState, get_state

__all__ = ["router"]

State = Annotated[ServerState, Depends(get_state)]


def require_key(state: State, authorization: Annotated[str | None, Header()] = None) -> None:
    """Checks the Bearer key when the server has keys."""
    state.keys.check(authorization)


router = APIRouter()
v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": wire.ErrorResponse} for code in (400, 401, 404, 429, 502, 503, 504)
}


@v1.post("/chat/completions", responses=_ERRORS, response_model=wire.ChatCompletion)
async def chat_completions(body: wire.ChatCompletionRequest, state: State, request: Request) -> Response:
    """Creates a chat completion; with ``stream`` it answers in server-sent events."""
    return await create_chat_completion(state, body, request.is_disconnected)


@v1.post("/completions", responses=_ERRORS, response_model=wire.CompletionResponse)
async def completions(body: wire.CompletionRequest, state: State, request: Request) -> Response:
    """Legacy text completion; the prompt is sent as one user message through the chat template."""
    return await create_completion(state, body, request.is_disconnected)


@v1.post("/embeddings", responses=_ERRORS, response_model=wire.EmbeddingResponse)
async def embeddings(body: wire.EmbeddingRequest, state: State) -> Response:
    """Embeds text input."""
    return await create_embeddings(state, body)


def _card(state: ServerState, name: str) -> wire.ModelCard:
    return wire.ModelCard(id=name, created=state.started, owned_by="modelport")


@v1.get("/models", response_model=wire.ModelList)
async def list_models(state: State) -> Response:
    """Every registered model and chain."""
    out = wire.ModelList(data=[_card(state, name) for name in state.registry.names()])
    return Response(out.json_bytes(), media_type="application/json")


@v1.get("/models/{model_id:path}", responses=_ERRORS, response_model=wire.ModelCard)
async def retrieve_model(model_id: str, state: State) -> Response:
    """One model, or 404 ``model_not_found``."""
    if model_id not in state.registry.names():
        raise ModelNotFoundError(model_id, state.registry.names())
    return Response(_card(state, model_id).json_bytes(), media_type="application/json")


@router.get("/health")
async def health(state: State) -> dict[str, object]:
    """Readiness: the server is up; lists which models are loaded. Needs no key."""
    names = state.registry.names()
    return {"status": "ok", "models": len(names), "loaded": [n for n in names if state.registry.is_loaded(n)]}


router.include_router(v1)
