"""Worker kinds: names mapped to the code that builds a worker.

Kinds come from three places, looked up in this order: ``@register_worker``,
the lazily imported built-ins, and the ``modelport.workers`` entry-point group
through which third-party packages add their own.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, TypeVar

from modelport.core.errors import BadRequestError
from modelport.workers.base import Worker

__all__ = ["ENTRY_POINT_GROUP", "KindRegistry", "WorkerFactory", "register_worker", "worker_kinds"]

ENTRY_POINT_GROUP = "modelport.workers"

WorkerFactory = Callable[..., Worker]
F = TypeVar("F", bound=WorkerFactory)

# Each built-in registers itself with ``@register_worker`` when its module is imported.
_BUILTIN_MODULES: Mapping[str, str] = {
    "fake": "modelport.workers.kinds.fake",
    "fake-embeddings": "modelport.workers.kinds.fake",
    "transformers": "modelport.workers.kinds.transformers",
    "llama-cpp": "modelport.workers.kinds.llama_cpp",
    "sentence-transformers": "modelport.workers.kinds.sentence_transformers",
    "openai": "modelport.workers.kinds.openai",
    "dashscope": "modelport.workers.kinds.dashscope",
    "replica-set": "modelport.workers.replicas.replica_set",
    "ray-serve": "modelport.ray.worker",
}


class KindRegistry:
    """Maps kind names to worker factories.

    Args:
        builtin_modules: Kind name to the module that registers it on import.
        group: The entry-point group searched for third-party kinds.
    """

    def __init__(self, builtin_modules: Mapping[str, str] | None = None, group: str = ENTRY_POINT_GROUP) -> None:
        self._factories: dict[str, WorkerFactory] = {}
        self._builtin = dict(builtin_modules or {})
        self._group = group
        self._lock = threading.RLock()

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator that registers a worker class or factory under ``name``."""

        def decorate(factory: F) -> F:
            with self._lock:
                self._factories[name] = factory
            return factory

        return decorate

    def names(self) -> list[str]:
        """Every kind that can be resolved, registered or not yet imported."""
        found = set(self._factories) | set(self._builtin)
        found.update(ep.name for ep in entry_points(group=self._group))
        return sorted(found)

    def get(self, name: str) -> WorkerFactory:
        """Returns the factory for ``name``, importing it if needed.

        Raises:
            BadRequestError: If no such kind exists (the message lists the known kinds).
        """
        with self._lock:
            if name in self._factories:
                return self._factories[name]
            if name in self._builtin:
                importlib.import_module(self._builtin[name])
                if name in self._factories:
                    return self._factories[name]
            for ep in entry_points(group=self._group, name=name):
                factory: Any = ep.load()
                self._factories[name] = factory
                return factory  # type: ignore[no-any-return]
        raise BadRequestError(f"unknown worker kind {name!r}; known kinds: {', '.join(self.names())}", param="kind")


worker_kinds = KindRegistry(_BUILTIN_MODULES)
"""The process-wide kind registry (kinds are code, so one table serves every app)."""


def register_worker(name: str) -> Callable[[F], F]:
    """Registers a worker kind.

    Example:
        >>> @register_worker("echo")
        ... class EchoWorker(ChatWorker): ...
    """
    return worker_kinds.register(name)
