"""The ``ray-serve`` kind: a model deployed on Ray Serve, reached through its deployment handle.

The ingress of ``modelport serve --backend ray`` serves every model through this worker, so the
server, LangChain and LlamaIndex use a Serve deployment like any other worker::

    ChatModelPort(model="smol", registry=ModelRegistry([ModelEntry("smol", "ray-serve",
                                                                   {"deployment": "smol"})]))

Ray is imported when a worker is built, never when this module is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from modelport.core.capabilities import Capabilities
from modelport.core.errors import ModelPortError, ModelUnavailableError, RateLimitedError
from modelport.core.events import StreamEvent
from modelport.core.request import ChatRequest, EmbeddingRequest, EmbeddingResult
from modelport.workers.base import ChatWorker, EmbeddingWorker
from modelport.workers.registry import register_worker

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


def replica_lost(error: BaseException) -> bool:
    """Whether ``error`` is Ray's way of saying the replica went away (not the request's fault)."""
    names = {f"{c.__module__}.{c.__qualname__}" for c in type(error).__mro__}
    return any(name in names for name in _LOST)


@register_worker("ray-serve")
class ServeHandleWorker(ChatWorker, EmbeddingWorker):
    """Sends requests to a modelport deployment on Ray Serve.

    Args:
        deployment: The deployment's name.
        app: The Serve application it belongs to.
        handle: The deployment's handle, when the caller holds one already (the ingress does).
        capacity: Requests the deployment takes at once (all replicas), for routers in front.
        retries: How often a request whose replica died before any output is sent again.
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
        retries: int = 3,
        timeout_s: float = 120.0,
    ) -> None:
        if handle is None:
            from ray import serve

            handle = serve.get_deployment_handle(deployment, app_name=app)
        self.deployment = deployment
        self._handle = handle
        self._streaming = handle.options(stream=True)
        self._retries = retries
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

    def _retryable(self, error: BaseException, attempt: int, started: bool) -> bool:
        retry = not started and attempt < self._retries and replica_lost(error)
        if retry:
            logger.warning(
                "%s: replica lost before any output (%s); sending again", self.deployment, type(error).__name__
            )
        return retry

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Streams the deployment's answer (for callers outside an event loop)."""
        for attempt in range(self._retries + 1):
            response = self._streaming.chat.remote(request)
            started = False
            self._in_flight += 1
            try:
                for batch in response:
                    started = True
                    yield from _unpack(batch)
                return
            except ModelPortError:
                raise
            except Exception as error:
                if self._retryable(error, attempt, started):
                    time.sleep(0.2 * (attempt + 1))
                    continue
                raise self._error(error) from error
            finally:
                self._in_flight -= 1
                response.cancel()

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Streams the deployment's answer; closing the stream cancels the request on its replica."""
        for attempt in range(self._retries + 1):
            response = self._streaming.chat.remote(request)
            started = False
            self._in_flight += 1
            try:
                async for batch in response:
                    started = True
                    for event in _unpack(batch):
                        yield event
                return
            except ModelPortError:
                raise
            except Exception as error:
                if self._retryable(error, attempt, started):
                    await asyncio.sleep(0.2 * (attempt + 1))
                    continue
                raise self._error(error) from error
            finally:
                self._in_flight -= 1
                response.cancel()

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds on the deployment (for callers outside an event loop)."""
        for attempt in range(self._retries + 1):
            try:
                return _result(self._handle.embed.remote(request).result())
            except ModelPortError:
                raise
            except Exception as error:
                if not self._retryable(error, attempt, False):
                    raise self._error(error) from error
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds on the deployment without blocking the loop."""
        for attempt in range(self._retries + 1):
            try:
                return _result(await self._handle.embed.remote(request))
            except ModelPortError:
                raise
            except Exception as error:
                if not self._retryable(error, attempt, False):
                    raise self._error(error) from error
                await asyncio.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def __repr__(self) -> str:
        return f"ServeHandleWorker(deployment={self.deployment!r})"


def _unpack(batch: Sequence[StreamEvent] | ModelPortError) -> Sequence[StreamEvent]:
    # A deployment sends its typed errors as values, so they arrive whole rather than wrapped.
    if isinstance(batch, ModelPortError):
        raise batch
    return batch


def _result(result: EmbeddingResult | ModelPortError) -> EmbeddingResult:
    if isinstance(result, ModelPortError):
        raise result
    return result
