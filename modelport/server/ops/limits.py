"""Admission limits: per-model concurrency with a bounded queue, and the request body's size."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelport.core.errors import ModelPortError, OverloadedError

__all__ = ["FREE_SLOT", "BodyLimit", "Limits", "ModelLimiter", "RequestTooLargeError", "Slot"]


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
            raise OverloadedError(
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


class RequestTooLargeError(ModelPortError):
    """Server-internal: a request body past ``server.max_request_bytes`` (answered 413)."""

    status_code = 413
    code = "request_too_large"
    error_type = "invalid_request_error"


class BodyLimit:
    """ASGI middleware: a body past ``max_bytes`` is answered 413 before anything parses it.

    A declared ``Content-Length`` over the limit is refused at once; a body that arrives in
    chunks (or lies about its length) is counted as it is read and cut at the limit.

    Args:
        app: The wrapped app.
        max_bytes: The largest body taken.
        respond: Turns the error into the API's error response.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, respond: Callable[[ModelPortError], ASGIApp]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._respond = respond

    def _error(self) -> RequestTooLargeError:
        return RequestTooLargeError(
            f"The request body is larger than this server takes ({self.max_bytes} bytes; server.max_request_bytes)."
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Passes a request on while its body stays within the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._respond(self._error())(scope, receive, send)
            return
        seen = 0
        started = answered = False

        async def counted() -> Message:
            nonlocal seen, answered
            message = await receive()
            if message["type"] == "http.request" and not answered:
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not started:
                    # Answer here: the app's own body parsing would turn any exception into a 400.
                    answered = True
                    await self._respond(self._error())(scope, receive, send)
            return {"type": "http.disconnect"} if answered else message

        async def noted(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the app's answer to a body it never got whole goes nowhere
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, noted)
        except Exception:
            if not answered:
                raise
