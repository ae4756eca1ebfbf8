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
import itertools
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


@register_worker("ray-serve")
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

    def _wait(self, error: BaseException, attempt: int, began: float, started: bool) -> float | None:
        """Seconds to wait before sending again, or ``None`` when the error is final."""
        if started or not replica_lost(error):
            return None
        wait = self._retry.next_wait(attempt, began)
        if wait is not None:
            lost = type(error).__name__
            logger.warning("%s: replica lost before any output (%s); sending again", self.deployment, lost)
        return wait

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Streams the deployment's answer (for callers outside an event loop)."""
        began = time.monotonic()
        for attempt in itertools.count():
            response = None
            started = ended = False
            self._in_flight += 1
            try:
                # Sending can fail as reading can (a lost replica), so it sits inside the handling.
                response = self._streaming.chat.remote(request)
                for batch in response:
                    started = True
                    yield from _unpack(batch)
                ended = True
                return
            except ModelPortError:
                ended = True
                raise
            except Exception as error:
                ended = True
                wait = self._wait(error, attempt, began, started)
                if wait is None:
                    raise self._error(error) from error
                time.sleep(wait)
            finally:
                self._in_flight -= 1
                if response is not None and not ended:
                    _cancel(response)

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Streams the deployment's answer; closing the stream cancels the request on its replica."""
        began = time.monotonic()
        for attempt in itertools.count():
            response = None
            started = ended = False
            self._in_flight += 1
            try:
                response = self._streaming.chat.remote(request)
                async for batch in response:
                    started = True
                    for event in _unpack(batch):
                        yield event
                ended = True
                return
            except ModelPortError:
                ended = True
                raise
            except Exception as error:
                ended = True
                wait = self._wait(error, attempt, began, started)
                if wait is None:
                    raise self._error(error) from error
                await asyncio.sleep(wait)
            finally:
                self._in_flight -= 1
                if response is not None and not ended:
                    # The caller left early. Cancelling a request still waiting for a replica
                    # blocks until Serve assigns it, so it runs off the event loop.
                    asyncio.get_running_loop().run_in_executor(None, _cancel, response)

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds on the deployment (for callers outside an event loop)."""
        began = time.monotonic()
        for attempt in itertools.count():
            try:
                return _result(self._handle.embed.remote(request).result())
            except ModelPortError:
                raise
            except Exception as error:
                wait = self._wait(error, attempt, began, False)
                if wait is None:
                    raise self._error(error) from error
                time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds on the deployment without blocking the loop."""
        began = time.monotonic()
        for attempt in itertools.count():
            try:
                return _result(await self._handle.embed.remote(request))
            except ModelPortError:
                raise
            except Exception as error:
                wait = self._wait(error, attempt, began, False)
                if wait is None:
                    raise self._error(error) from error
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def __repr__(self) -> str:
        return f"ServeHandleWorker(deployment={self.deployment!r})"


def _cancel(response: Any) -> None:
    """Cancels a request the caller left; one that already failed (backpressure) raises here again."""
    with contextlib.suppress(Exception):
        response.cancel()


def _unpack(batch: Sequence[StreamEvent] | ModelPortError) -> Sequence[StreamEvent]:
    # A deployment sends its typed errors as values, so they arrive whole rather than wrapped.
    if isinstance(batch, ModelPortError):
        raise batch
    return batch


def _result(result: EmbeddingResult | ModelPortError) -> EmbeddingResult:
    if isinstance(result, ModelPortError):
        raise result
    return result
