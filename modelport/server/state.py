"""What one app instance holds: the model registry, its keys and its limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fastapi import Request

from modelport.server.auth import ApiKeys
from modelport.server.limits import Limits, ModelLimiter
from modelport.workers.base import ChatWorker, EmbeddingWorker
from modelport.workers.models import ModelRegistry

__all__ = ["ServerSettings", "ServerState", "get_state"]


@dataclass(frozen=True)
class ServerSettings:
    """How the server behaves.

    Attributes:
        api_keys: Accepted Bearer keys; none means the server is open.
        limits: Concurrency and queue length for each model.
        model_limits: Per-model overrides of ``limits``.
        preload: Models to load at startup instead of on first use.
        title: The title of the OpenAPI document.
    """

    api_keys: Sequence[str] = ()
    limits: Limits = field(default_factory=Limits)
    model_limits: Mapping[str, Limits] = field(default_factory=dict)
    preload: Sequence[str] = ()
    title: str = "modelport"


class ServerState:
    """The per-app services the routes use (kept on ``app.state``, never in module globals)."""

    def __init__(self, registry: ModelRegistry, settings: ServerSettings) -> None:
        self.registry = registry
        self.settings = settings
        self.keys = ApiKeys(settings.api_keys)
        entry_limits = {e.name: e.limits for e in registry.entries() if e.limits}
        self.limiter = ModelLimiter(settings.limits, settings.model_limits, entry_limits)
        self.started = int(time.time())

    async def chat_worker(self, name: str) -> ChatWorker:
        """The chat worker for ``name``, loaded off the event loop on first use."""
        self.registry.entry(name)  # a 404 for an unknown name, before any loading
        if self.registry.is_loaded(name):
            return self.registry.chat(name)
        return await asyncio.to_thread(self.registry.chat, name)

    async def embedder(self, name: str) -> EmbeddingWorker:
        """The embedding worker for ``name``, loaded off the event loop on first use."""
        self.registry.entry(name)
        if self.registry.is_loaded(name):
            return self.registry.embedder(name)
        return await asyncio.to_thread(self.registry.embedder, name)


def get_state(request: Request) -> ServerState:
    """The app's state, for route dependencies."""
    state: ServerState = request.app.state.modelport
    return state
