"""``create_app``: the FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from fastapi import FastAPI

from modelport._version import __version__
from modelport.server.admin import install_admin
from modelport.server.docs import install_docs
from modelport.server.errors import error_response, install_error_handlers
from modelport.server.ops.limits import BodyLimit
from modelport.server.ops.tracking import RequestTracking
from modelport.server.playground import install_playground
from modelport.server.routes import router
from modelport.server.state import ServerSettings, ServerState
from modelport.workers.model_registry import ModelRegistry

__all__ = ["create_app"]

logger = logging.getLogger("modelport.server")


def create_app(
    registry: ModelRegistry | None = None, settings: ServerSettings | None = None, **overrides: Any
) -> FastAPI:
    """Builds an OpenAI-compatible app that serves every model (and chain) in ``registry``.

    Args:
        registry: The models to serve; the built-in ones when omitted. A registry
            passed in stays the caller's to close.
        settings: Keys, limits and preloading.
        **overrides: Fields of ``ServerSettings`` to change, e.g. ``api_keys=["k"]``.
    """
    settings = replace(settings or ServerSettings(), **overrides)
    owned = registry is None
    state = ServerState(registry or ModelRegistry.builtin(), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Models load in the background: /health answers at once and /health/ready says when
        # they are in.
        preload = asyncio.create_task(state.preload())
        try:
            yield
        finally:
            state.lifecycle.draining = True
            if not preload.done():
                await asyncio.wait({preload}, timeout=1.0)
            if owned:
                state.registry.close()

    app = FastAPI(
        title=settings.title,
        version=__version__,
        description="OpenAI-compatible API for every model and chain registered with modelport.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    # No 307 to the path without its trailing slash: API clients never add one, and for a model
    # id that ends in a newline and a slash, Starlette's route pattern matched the redirect's
    # target (``$`` matches before a final newline) rather than answering 404.
    app.router.redirect_slashes = False
    app.state.modelport = state
    # Inside the tracking (middleware added later wraps it): a 413 still gets an id and a log line.
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, respond=error_response)
    app.add_middleware(RequestTracking, lifecycle=state.lifecycle, on_done=state.finished)
    install_error_handlers(app)
    install_docs(app)
    if settings.playground:
        install_playground(app)
    app.include_router(router)
    install_admin(app, state)
    return app
