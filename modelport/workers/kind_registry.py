"""Worker kinds: names mapped to the code that builds a worker.

One mechanism finds every kind, built-in or not: the ``modelport.workers`` entry-point group.
modelport's own kinds are declared there in its ``pyproject.toml`` exactly as a third-party
package declares its own, and each is imported on first use. ``@register_worker`` adds a kind in
process (tests, notebooks) and wins over an entry point of the same name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from modelport.core.errors import BadRequestError
from modelport.workers.base import Worker

__all__ = ["ENTRY_POINT_GROUP", "KindRegistry", "WorkerFactory", "register_worker", "worker_kinds"]

ENTRY_POINT_GROUP = "modelport.workers"

WorkerFactory = Callable[..., Worker]
F = TypeVar("F", bound=WorkerFactory)


class KindRegistry:
    """Maps kind names to worker factories.

    Args:
        group: The entry-point group searched for kinds.
    """

    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self._factories: dict[str, WorkerFactory] = {}
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
        found = set(self._factories)
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
            for ep in entry_points(group=self._group, name=name):
                factory: Any = ep.load()
                self._factories[name] = factory
                return factory  # type: ignore[no-any-return]
        raise BadRequestError(f"unknown worker kind {name!r}; known kinds: {', '.join(self.names())}", param="kind")


worker_kinds = KindRegistry()
"""The process-wide kind registry (kinds are code, so one table serves every app)."""


def register_worker(name: str) -> Callable[[F], F]:
    """Registers a worker kind.

    Example:
        >>> @register_worker("echo")
        ... class EchoWorker(ChatWorker): ...
    """
    return worker_kinds.register(name)
