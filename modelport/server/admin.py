"""``/admin``: add, drain and replace replicas, load, unload and pin models while the server runs.

Mounted only with admin keys. Every route needs an admin key: none is 401, an API key is 403,
both in OpenAI's error shape. A change to replicas answers 202 at once with the model's replicas
as the change left them (new ones ``starting``, drained ones ``draining``); loading and
draining go on in the background, and ``GET /admin/models`` shows how they progress. ``load``
answers once the model is in memory; ``unload`` answers 202 and lets requests in flight finish
first; the entry stays, and the next request loads it again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from modelport.config import ConfigError, ModelConfig, config_error
from modelport.core.errors import AuthenticationError, BadRequestError, PermissionDeniedError
from modelport.server.ops.auth import ApiKeys
from modelport.server.state import ServerState, get_state
from modelport.workers.entry_params import check_params

__all__ = [
    "ModelsBody",
    "add_models",
    "drain_model",
    "drain_replica",
    "install_admin",
    "list_models",
    "load_model",
    "pin_model",
    "replace_model",
    "require_admin",
    "unload_model",
    "unpin_model",
]

logger = logging.getLogger("modelport.server")

State = Annotated[ServerState, Depends(get_state)]


class ModelsBody(BaseModel):
    """``{"models": [ENTRY, ...]}``, each entry in the YAML's ``models:`` shape."""

    model_config = ConfigDict(extra="forbid")

    models: list[dict[str, Any]]


def require_admin(state: State, authorization: Annotated[str | None, Header()] = None) -> None:
    """Lets admin keys in; an API key is refused with 403, anything else with 401."""
    admins: ApiKeys = state.admin_keys
    try:
        admins.check(authorization)
    except AuthenticationError:
        if authorization and state.keys.enabled:
            try:
                state.keys.check(authorization)
            except AuthenticationError:
                raise
            raise PermissionDeniedError("This key may not use the admin API.") from None
        raise


def _entries(state: ServerState, body: ModelsBody, name: str | None = None) -> list[ModelConfig]:
    """The body's entries, checked like a config file's (by path, kind parameters included)."""
    entries = []
    for i, raw in enumerate(body.models):
        where = f"models[{i}]"
        try:
            entry = ModelConfig.model_validate(raw)
        except ValidationError as error:
            problem = config_error(error, ModelConfig)
            message = problem.message.removeprefix(f"{problem.param}: ")
            raise BadRequestError(message, param=f"{where}.{problem.param}") from None
        if name is not None and entry.name != name:
            raise BadRequestError(f"must be {name!r}, the model being replaced", param=f"{where}.name")
        try:
            factory = state.registry.kinds.get(entry.kind)
        except BadRequestError as error:
            raise BadRequestError(error.message.removeprefix("kind: "), param=f"{where}.kind") from None
        try:
            check_params(factory, entry.params, kind=entry.kind, where=where)
        except BadRequestError as error:
            raise ConfigError(error.message.removeprefix(f"{error.param}: "), param=error.param) from None
        entries.append(entry)
    if not entries:
        raise BadRequestError("give at least one model entry", param="models")
    return entries


def _listing(state: ServerState, names: list[str]) -> dict[str, Any]:
    registry = state.registry
    known = set(registry.names())
    return {
        "data": [{"name": n, "replicas": registry.describe(n), **registry.residency_of(n)} for n in names if n in known]
    }


def _in_background(state: ServerState, what: str, work: Any, *args: Any, **kwargs: Any) -> None:
    async def run() -> None:
        try:
            await asyncio.to_thread(work, *args, **kwargs)
            logger.info("admin: %s done", what)
        except Exception as error:  # noqa: BLE001 - reported in the log and the replica states
            logger.error("admin: %s failed: %s", what, getattr(error, "message", error))

    state.background.add(task := asyncio.ensure_future(run()))
    task.add_done_callback(state.background.discard)


router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)], include_in_schema=False)


@router.get("/models")
async def list_models(state: State) -> JSONResponse:
    """Every model with its replicas: id, kind, state, requests in flight, last error."""
    return JSONResponse(_listing(state, state.registry.names()))


@router.post("/models")
async def add_models(body: ModelsBody, state: State) -> JSONResponse:
    """Adds replicas (new names too); they load in the background and serve once ready."""
    state.registry.check_changes()
    entries = _entries(state, body)
    names = []
    for entry in entries:
        state.registry.add_replicas(entry.name, entry.members())
        names.append(entry.name)
    return JSONResponse(_listing(state, sorted(set(names))), status_code=202)


def _grace(state: ServerState, grace_s: float | None) -> float:
    if grace_s is not None and grace_s < 0:
        raise BadRequestError("must be >= 0", param="grace_s")
    return state.settings.drain_timeout_s if grace_s is None else grace_s


@router.delete("/models/{name}")
async def drain_model(name: str, state: State, grace_s: float | None = None) -> JSONResponse:
    """Drains a whole model: new requests get 404 at once; in-flight ones finish, then it closes."""
    state.registry.check_changes()
    grace = _grace(state, grace_s)
    replicas, rest = state.registry.begin_drain(name, busy=_busy(state, name))  # 404 for an unknown name
    _in_background(state, f"drain {name}", rest, grace)
    return JSONResponse({"data": [{"name": name, "replicas": replicas}]}, status_code=202)


@router.delete("/models/{name}/replicas/{replica}")
async def drain_replica(name: str, replica: str, state: State, grace_s: float | None = None) -> JSONResponse:
    """Drains one replica: new requests skip it; in-flight ones finish, then it closes."""
    state.registry.check_changes()
    grace = _grace(state, grace_s)
    _, rest = state.registry.begin_drain(name, replica=replica, busy=_busy(state, name))  # 400 naming the known
    _in_background(state, f"drain {name}/{replica}", rest, grace)
    return JSONResponse(_listing(state, [name]), status_code=202)


@router.post("/models/{name}/replace")
async def replace_model(name: str, body: ModelsBody, state: State, grace_s: float | None = None) -> JSONResponse:
    """Starts the new replicas, waits until they are ready, then drains the old ones."""
    state.registry.check_changes()
    state.registry.entry(name)
    entries = _entries(state, body, name)
    members = [m for e in entries for m in e.members()]
    grace = _grace(state, grace_s)
    rest = state.registry.begin_replace(name, members, busy=_busy(state, name))
    _in_background(state, f"replace {name}", rest, grace)
    return JSONResponse(_listing(state, [name]), status_code=202)


@router.post("/models/{name}/load")
async def load_model(name: str, state: State) -> JSONResponse:
    """Loads a model now (making room under the budget as a request would); answers once it is in."""
    state.registry.check_changes()
    lease = await state.registry.alease(name)  # 404 for an unknown name, 503 if it cannot load
    lease.release()  # its keep_alive starts now
    return JSONResponse(_listing(state, [state.registry.entry(name).name]))


@router.post("/models/{name}/unload")
async def unload_model(name: str, state: State, grace_s: float | None = None) -> JSONResponse:
    """Unloads a model once its requests finish (up to ``grace_s``); the entry stays, to load again."""
    state.registry.check_changes()
    model = state.registry.entry(name).name
    grace = _grace(state, grace_s)
    _in_background(state, f"unload {model}", state.registry.residency.unload, model, reason="admin", grace_s=grace)
    await asyncio.sleep(0)  # let the unload begin, so the listing shows it
    return JSONResponse(_listing(state, [model]), status_code=202)


@router.post("/models/{name}/pin")
async def pin_model(name: str, state: State) -> JSONResponse:
    """Pins a model: neither ``keep_alive`` nor the budget unloads it (it still counts against both)."""
    return _pin(state, name, True)


@router.post("/models/{name}/unpin")
async def unpin_model(name: str, state: State) -> JSONResponse:
    """Unpins a model: once idle, its ``keep_alive`` and the budget apply again."""
    return _pin(state, name, False)


def _pin(state: ServerState, name: str, pinned: bool) -> JSONResponse:
    state.registry.check_changes()
    model = state.registry.entry(name).name
    state.registry.residency.pin(model, pinned)
    return JSONResponse(_listing(state, [model]))


def _busy(state: ServerState, name: str) -> Any:
    return lambda: state.limiter.in_use(name)


def install_admin(app: FastAPI, state: ServerState) -> None:
    """Mounts ``/admin`` when the server has admin keys (else it does not exist: 404)."""
    if state.admin_keys.enabled:
        app.include_router(router)
