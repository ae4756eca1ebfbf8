"""Per-model concurrency limits with a bounded queue in front of each model."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from modelport.core.errors import RateLimitedError

__all__ = ["FREE_SLOT", "Limits", "ModelLimiter", "Slot"]


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


class _FreeSlot(Slot):
    """The slot of a worker that limits itself: nothing to hold or give back."""

    def __init__(self) -> None:
        self._released = True

    def release(self) -> None:
        """Nothing to free."""


FREE_SLOT: Slot = _FreeSlot()


class _Gate:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.semaphore = asyncio.Semaphore(limits.max_concurrency)
        self.waiting = 0
        self.active = 0


class ModelLimiter:
    """Hands out slots per model; when a model's queue is full it refuses with 429.

    A model's limits are its own (``per_model``) if it has them. Otherwise each field comes
    from the model entry's ``limits:`` block (``partial``), else from the worker: concurrency
    defaults to its ``parallelism`` (its ``n_parallel``), so the server never caps a batch below
    what the worker runs at once; else from ``default``.

    Args:
        default: Limits for models without their own.
        per_model: Limits by model name (``ServerSettings.model_limits``).
        partial: Fields set by each model entry's ``limits:`` block.
    """

    def __init__(
        self,
        default: Limits | None = None,
        per_model: Mapping[str, Limits] | None = None,
        partial: Mapping[str, Mapping[str, int]] | None = None,
    ) -> None:
        self._default = default or Limits()
        self._per_model = dict(per_model or {})
        self._partial = dict(partial or {})
        self._gates: dict[str, _Gate] = {}

    def limits_for(self, model: str, parallelism: int | None = None) -> Limits:
        """The limits ``model`` gets, given its worker's parallelism."""
        own = self._per_model.get(model)
        if own is not None:
            return own
        partial = self._partial.get(model, {})
        concurrency = parallelism or self._default.max_concurrency
        return Limits(partial.get("max_concurrency", concurrency), partial.get("max_queue", self._default.max_queue))

    def _gate(self, model: str, parallelism: int | None) -> _Gate:
        gate = self._gates.get(model)
        if gate is None:
            gate = self._gates[model] = _Gate(self.limits_for(model, parallelism))
        return gate

    def in_use(self, model: str) -> int:
        """Slots held now for ``model``."""
        gate = self._gates.get(model)
        return 0 if gate is None else gate.limits.max_concurrency - gate.semaphore._value

    def load(self) -> dict[str, tuple[int, int]]:
        """Requests running and waiting, by model (for the metrics' gauges)."""
        return {model: (self.in_use(model), gate.waiting) for model, gate in list(self._gates.items())}

    async def acquire(self, model: str, parallelism: int | None = None) -> Slot:
        """Waits for a slot.

        Args:
            model: The model name.
            parallelism: The worker's ``parallelism``, for models without limits of their own.

        Raises:
            RateLimitedError: If the queue for ``model`` is already full.
        """
        gate = self._gate(model, parallelism)
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
