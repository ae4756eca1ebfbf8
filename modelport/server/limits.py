"""Per-model concurrency limits with a bounded queue in front of each model."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from modelport.core.errors import RateLimitedError

__all__ = ["Limits", "ModelLimiter", "Slot"]


@dataclass(frozen=True, slots=True)
class Limits:
    """How many requests run at once, and how many may wait behind them."""

    max_concurrency: int = 4
    max_queue: int = 64


class Slot:
    """A held place; ``release`` is idempotent so every exit path may call it."""

    __slots__ = ("_gate", "_released")

    def __init__(self, gate: _Gate) -> None:
        self._gate = gate
        self._released = False

    def release(self) -> None:
        """Frees the place for the next request."""
        if not self._released:
            self._released = True
            self._gate.semaphore.release()


class _Gate:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.semaphore = asyncio.Semaphore(limits.max_concurrency)
        self.waiting = 0
        self.active = 0


class ModelLimiter:
    """Hands out slots per model; when a model's queue is full it refuses with 429.

    Args:
        default: Limits for models without their own.
        per_model: Limits by model name.
    """

    def __init__(self, default: Limits | None = None, per_model: Mapping[str, Limits] | None = None) -> None:
        self._default = default or Limits()
        self._per_model = dict(per_model or {})
        self._gates: dict[str, _Gate] = {}

    def _gate(self, model: str) -> _Gate:
        gate = self._gates.get(model)
        if gate is None:
            gate = self._gates[model] = _Gate(self._per_model.get(model, self._default))
        return gate

    def in_use(self, model: str) -> int:
        """Slots held now for ``model``."""
        gate = self._gates.get(model)
        return 0 if gate is None else gate.limits.max_concurrency - gate.semaphore._value

    async def acquire(self, model: str) -> Slot:
        """Waits for a slot.

        Raises:
            RateLimitedError: If the queue for ``model`` is already full.
        """
        gate = self._gate(model)
        if gate.semaphore.locked() and gate.waiting >= gate.limits.max_queue:
            raise RateLimitedError(
                f"The model {model!r} is busy: {gate.limits.max_concurrency} requests running and "
                f"{gate.waiting} waiting. Retry shortly.",
                retry_after=1.0,
            )
        gate.waiting += 1
        try:
            await gate.semaphore.acquire()
        finally:
            gate.waiting -= 1
        return Slot(gate)
