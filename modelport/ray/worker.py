"""The ``ray-serve`` kind: a model deployed on Ray Serve, reached through its deployment handle.

The ingress of ``modelport serve --backend ray`` serves every model through this worker, so the
server, LangChain and LlamaIndex use a Serve deployment like any other worker::

    ChatModelPort(model="smol", registry=ModelRegistry([ModelEntry("smol", "ray-serve",
                                                                   {"deployment": "smol"})]))

Ray is imported when a worker is built, never when this module is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar

from modelport.core.capabilities import Capabilities
from modelport.core.errors import ModelPortError, ModelUnavailableError, RateLimitedError
from modelport.core.events import StreamEvent
from modelport.core.request import ChatRequest, EmbeddingRequest, EmbeddingResult
from modelport.core.rerank import RerankRequest, RerankResult
from modelport.workers.base import ChatWorker, EmbeddingWorker
from modelport.workers.remote.retry import RetryPolicy

__all__ = ["ServeHandleWorker", "replica_lost"]

logger = logging.getLogger("modelport.ray")

# What a request meets when the replica serving it dies or cannot be reached; before any output
# it is safe to send the request again (Serve routes it to a live or restarted replica).
_LOST = (
    "ray.exceptions.RayActorError",
    "ray.exceptions.WorkerCrashedError",
    "ray.exceptions.NodeDiedError",
    "ray.exceptions.ObjectLostError",
    "ray.serve.exceptions.ReplicaUnavailableError",
    "ray.serve.exceptions.DeploymentUnavailableError",
)


# Serve restarts a dead replica within seconds; a few short waits cover it.
_RESEND = RetryPolicy(max_retries=3, initial_delay=0.2, max_delay=2.0, total_timeout=30.0)


def replica_lost(error: BaseException) -> bool:
    """Whether ``error`` is Ray's way of saying the replica went away (not the request's fault)."""
    names = {f"{c.__module__}.{c.__qualname__}" for c in type(error).__mro__}
    return any(name in names for name in _LOST)


class ServeHandleWorker(ChatWorker, EmbeddingWorker):
    """Sends requests to a modelport deployment on Ray Serve.

    Args:
        deployment: The deployment's name.
        app: The Serve application it belongs to.
        handle: The deployment's handle, when the caller holds one already (the ingress does).
        capacity: Requests the deployment takes at once (all replicas), for routers in front.
        retry: How often, and after what waits, a request whose replica died before any output
            is sent again (Serve routes it to a live replica, or to the one it restarts).
        timeout_s: How long building the worker waits for the deployment to answer.
    """

    capabilities = Capabilities()

    def __init__(
        self,
        deployment: str,
        app: str = "modelport",
        *,
        handle: Any = None,
        capacity: int | None = None,
        retry: RetryPolicy = _RESEND,
        timeout_s: float = 120.0,
    ) -> None:
        if handle is None:
            from ray import serve

            handle = serve.get_deployment_handle(deployment, app_name=app)
        self.deployment = deployment
        self._handle = handle
        self._streaming = handle.options(stream=True)
        self._retry = retry
        self.parallelism = capacity
        self._in_flight = 0
        info = self._handle.describe.remote().result(timeout_s=timeout_s)
        self.capabilities = info["capabilities"]
        self.model = info["model"]

    # The ingress leaves admission to Serve (max_ongoing_requests and max_queued_requests).
    limits_itself = True

    def load(self) -> tuple[int, int]:
        """Requests this process has sent and not yet seen end (running, waiting unknown)."""
        return self._in_flight, 0

    def _error(self, error: BaseException) -> ModelPortError:
        """Ray's exceptions as modelport's, so that callers see statuses they know."""
        from ray.serve.exceptions import BackPressureError

        if isinstance(error, BackPressureError):
            return RateLimitedError(
                f"{self.model}: every replica is busy and its queue is full; retry later",
                retry_after=error.retry_after_s or 1.0,
            )
        reason = f"its replica was lost ({type(error).__name__})"
        unavailable = ModelUnavailableError(self.model, reason)
        unavailable.retry_after = 1.0
        return unavailable

    # The twins below only do I/O (sending, sleeping, cancelling); ``_Resend`` decides.

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Streams the deployment's answer (for callers outside an event loop)."""
        resend = _Resend(self, cancel=_cancel)
        while True:
            with resend.attempt() as attempt:
                # Sending can fail as reading can (a lost replica), so it sits inside the attempt.
                for batch in attempt.sent(self._streaming.chat.remote(request)):
                    attempt.started = True
                    yield from _unpack(batch)
                return
            time.sleep(attempt.wait)

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Streams the deployment's answer; closing the stream cancels the request on its replica."""
        resend = _Resend(self, cancel=_cancel_off_loop)
        while True:
            with resend.attempt() as attempt:
                async for batch in attempt.sent(self._streaming.chat.remote(request)):
                    attempt.started = True
                    for event in _unpack(batch):
                        yield event
                return
            await asyncio.sleep(attempt.wait)

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds on the deployment (for callers outside an event loop)."""
        resend = _Resend(self)
        while True:
            with resend.attempt():
                return _result(self._handle.embed.remote(request).result(), EmbeddingResult)
            time.sleep(resend.wait)

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds on the deployment without blocking the loop."""
        resend = _Resend(self)
        while True:
            with resend.attempt():
                return _result(await self._handle.embed.remote(request), EmbeddingResult)
            await asyncio.sleep(resend.wait)

    def score(self, request: RerankRequest) -> RerankResult:
        """Scores on the deployment (for callers outside an event loop)."""
        resend = _Resend(self)
        while True:
            with resend.attempt():
                return _result(self._handle.score.remote(request).result(), RerankResult)
            time.sleep(resend.wait)

    async def ascore(self, request: RerankRequest) -> RerankResult:
        """Scores on the deployment without blocking the loop."""
        resend = _Resend(self)
        while True:
            with resend.attempt():
                return _result(await self._handle.score.remote(request), RerankResult)
            await asyncio.sleep(resend.wait)

    def __repr__(self) -> str:
        return f"ServeHandleWorker(deployment={self.deployment!r})"


class _Attempt:
    """One send of a request: counts it in flight, maps Ray's errors, cancels what the caller left."""

    def __init__(self, resend: _Resend) -> None:
        self._resend = resend
        self._response: Any = None
        self.started = False  # whether any output reached the caller (then nothing is sent again)
        self.wait = 0.0

    def sent(self, response: Any) -> Any:
        """Notes the request's response, to cancel it if the caller leaves; returns it."""
        self._response = response
        return response

    def __enter__(self) -> _Attempt:
        self._resend.worker._in_flight += 1
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> bool:
        self._resend.worker._in_flight -= 1
        if error is None or isinstance(error, ModelPortError):
            return False
        if not isinstance(error, Exception):  # the caller left early (closed or cancelled the stream)
            if self._response is not None and self._resend.cancel is not None:
                self._resend.cancel(self._response)
            return False
        self.wait = self._resend.next_wait(error, self.started)
        return True


class _Resend:
    """One request's resend policy, without I/O: whether an error is sent again, and after how long.

    A request whose replica was lost before any output is sent again, under the worker's
    ``RetryPolicy``; any other error is final, mapped to modelport's own type.
    """

    def __init__(self, worker: ServeHandleWorker, *, cancel: Callable[[Any], None] | None = None) -> None:
        self.worker = worker
        self.cancel = cancel
        self._began = time.monotonic()
        self._attempts = 0
        self.wait = 0.0

    def attempt(self) -> _Attempt:
        """The context one send runs in; after a retryable failure it is left with ``wait`` set."""
        return _Attempt(self)

    def next_wait(self, error: Exception, started: bool) -> float:
        """Seconds to wait before sending again.

        Raises:
            ModelPortError: Ray's error as modelport's, when it is final.
        """
        attempt, self._attempts = self._attempts, self._attempts + 1
        wait = None if started or not replica_lost(error) else self.worker._retry.next_wait(attempt, self._began)
        if wait is None:
            raise self.worker._error(error) from error
        logger.warning(
            "%s: replica lost before any output (%s); sending again", self.worker.deployment, type(error).__name__
        )
        self.wait = wait
        return wait


def _cancel_off_loop(response: Any) -> None:
    """Cancels from inside the event loop, in its executor.

    Cancelling a request still waiting for a replica blocks until Serve assigns it.
    """
    asyncio.get_running_loop().run_in_executor(None, _cancel, response)


def _cancel(response: Any) -> None:
    """Cancels a request the caller left; one that already failed (backpressure) raises here again."""
    with contextlib.suppress(Exception):
        response.cancel()


def _unpack(batch: Sequence[StreamEvent] | ModelPortError) -> Sequence[StreamEvent]:
    # A deployment sends its typed errors as values, so they arrive whole rather than wrapped.
    if isinstance(batch, ModelPortError):
        raise batch
    return batch


R = TypeVar("R", EmbeddingResult, RerankResult)


def _result(result: object, kind: type[R]) -> R:
    """The deployment's answer as ``kind``; a typed error it returned is raised here."""
    if isinstance(result, ModelPortError):
        raise result
    if not isinstance(result, kind):
        raise TypeError(f"the deployment answered {type(result).__name__}, not {kind.__name__}")
    return result
