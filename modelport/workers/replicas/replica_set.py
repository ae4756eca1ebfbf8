"""``ReplicaSet``: several replicas of one model behind a router, itself a worker.

Because it is a worker, LangChain, LlamaIndex and the server all get routing, health checks,
retries and fallbacks without knowing it exists. Each replica keeps its own concurrency limit;
a request waits (in a bounded queue) only when every ready replica is at its limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from typing import Any

from modelport.core.capabilities import Capabilities
from modelport.core.errors import BadRequestError, RateLimitedError, UpstreamUnavailableError
from modelport.core.events import StreamEvent
from modelport.core.request import ChatRequest, EmbeddingRequest, EmbeddingResult
from modelport.workers.base import ChatWorker, EmbeddingWorker, Worker
from modelport.workers.registry import KindRegistry, register_worker, worker_kinds
from modelport.workers.replicas.replica import HealthPolicy, Replica, ReplicaState, counts_against
from modelport.workers.replicas.routing import strategy as make_strategy

__all__ = ["ReplicaSet"]

logger = logging.getLogger("modelport.replicas")

# How often a request waiting for a free replica looks again.
_POLL_S = 0.002


@register_worker("replica-set")
class ReplicaSet(ChatWorker, EmbeddingWorker):
    """Routes each request to one of several replicas of a model.

    Args:
        members: One mapping per replica: ``kind``, ``params``, and optionally ``id``,
            ``weight`` and ``limits`` (``max_concurrency``, ``max_queue``).
        name: The model name, for messages and replica ids.
        strategy: ``least_busy`` (default), ``power_of_two``, ``weighted`` or ``round_robin``.
        health_check_period_s: Seconds between active checks of workers with ``check_health()``.
        health_check_timeout_s: How long one check may take.
        allowed_fails: Consecutive failed requests that put a replica in cooldown.
        cooldown_s: How long a replica in cooldown gets no traffic.
        fallbacks: Other model names to try when no replica can serve.
        registry: Where fallbacks are looked up (the model registry passes itself).
        kinds: Where member kinds are looked up.
        seed: Seeds the random choices of the strategies, for tests.
    """

    # The server leaves admission to the set: its limits are per replica, not per name.
    limits_itself = True

    def __init__(
        self,
        members: Sequence[Mapping[str, Any]],
        *,
        name: str = "replicas",
        strategy: str = "least_busy",
        health_check_period_s: float = 10.0,
        health_check_timeout_s: float = 5.0,
        allowed_fails: int = 3,
        cooldown_s: float = 5.0,
        fallbacks: Sequence[str] = (),
        registry: Any = None,
        kinds: KindRegistry | None = None,
        seed: int | None = None,
    ) -> None:
        self.name = name
        self.policy = HealthPolicy(health_check_period_s, health_check_timeout_s, allowed_fails, cooldown_s)
        self._strategy = make_strategy(strategy, seed)
        self._fallbacks = tuple(fallbacks)
        self._registry = registry
        self._kinds = kinds or worker_kinds
        self._replicas: list[Replica] = []
        self._lock = threading.Lock()
        self._counter = 0
        self._queues: dict[str, int] = {}
        self.waiting = 0
        self._closing = threading.Event()
        if members:
            for thread in self._start(members):
                thread.join()
        self._watcher = threading.Thread(target=self._watch, name=f"modelport-health-{name}", daemon=True)
        self._watcher.start()

    # -- membership ------------------------------------------------------------------------

    def _start(self, members: Sequence[Mapping[str, Any]]) -> list[threading.Thread]:
        threads = []
        for member in members:
            kind = str(member["kind"])
            factory = self._kinds.get(kind)
            limits = dict(member.get("limits") or {})
            with self._lock:
                replica_id = str(member.get("id") or f"{self.name}-{self._counter}")
                self._counter += 1
                if any(r.id == replica_id for r in self._replicas):
                    raise BadRequestError(f"a replica {replica_id!r} already exists in {self.name!r}", param="id")
                replica = Replica(
                    replica_id,
                    kind,
                    dict(member.get("params") or {}),
                    weight=float(member.get("weight", 1.0)),
                    capacity=limits.get("max_concurrency"),
                    policy=self.policy,
                )
                self._replicas.append(replica)
                self._queues[replica_id] = int(limits.get("max_queue", 64))
            thread = threading.Thread(target=replica.start, args=(factory,), name=f"modelport-start-{replica_id}")
            thread.start()
            threads.append(thread)
        return threads

    def add(self, members: Sequence[Mapping[str, Any]], *, wait: bool = False) -> list[str]:
        """Adds replicas; they load in the background (or before returning, with ``wait``) and serve once ready."""
        threads = self._start(members)
        if wait:
            for thread in threads:
                thread.join()
        with self._lock:
            return [r.id for r in self._replicas[-len(members) :]] if members else []

    def adopt(
        self, worker: Worker, *, kind: str, replica_id: str | None = None, busy: Callable[[], int] | None = None
    ) -> str:
        """Adds an already built worker as a ready replica.

        Args:
            worker: The worker.
            kind: Its kind, for listings.
            replica_id: Its id; ``NAME-N`` by default.
            busy: Requests it is serving that did not come through this set, which a drain
                waits for too (the server's count, when a served model becomes a set).
        """
        with self._lock:
            replica = Replica(
                replica_id or f"{self.name}-{self._counter}", kind, {}, policy=self.policy, busy_elsewhere=busy
            )
            self._counter += 1
            replica.adopt(worker)
            self._replicas.append(replica)
            self._queues[replica.id] = 64
        return replica.id

    def replica(self, replica_id: str) -> Replica:
        """The replica called ``replica_id``.

        Raises:
            BadRequestError: If there is none.
        """
        for replica in self._replicas:
            if replica.id == replica_id:
                return replica
        known = ", ".join(r.id for r in self._replicas)
        raise BadRequestError(f"no replica {replica_id!r} in {self.name!r}; known: {known}", param="replica")

    def drain(self, replica_id: str, grace_s: float) -> None:
        """Drains one replica (blocking): no new requests, in-flight ones finish, then it closes."""
        replica = self.replica(replica_id)
        replica.drain(grace_s)
        with self._lock:
            self._replicas = [r for r in self._replicas if r is not replica]
            self._queues.pop(replica.id, None)

    def replace(self, members: Sequence[Mapping[str, Any]], *, grace_s: float, ready_timeout_s: float = 600) -> None:
        """Starts new replicas, waits until they are ready, then drains every old one (blocking).

        Raises:
            UpstreamUnavailableError: If none of the new replicas became ready; the old ones stay.
        """
        with self._lock:
            old = list(self._replicas)
        threads = self._start(members)
        for thread in threads:
            thread.join(ready_timeout_s)
        new = [r for r in self._replicas if r not in old]
        if not any(r.state is ReplicaState.READY for r in new):
            for replica in new:
                self.drain(replica.id, 0)
            errors = "; ".join(f"{r.id}: {r.last_error}" for r in new)
            raise UpstreamUnavailableError(f"the new replicas of {self.name!r} did not start: {errors}")
        for replica in old:
            self.drain(replica.id, grace_s)

    def describe(self) -> list[dict[str, Any]]:
        """Each replica's id, kind, state, requests in flight and last error."""
        return [r.describe() for r in list(self._replicas)]

    def load(self) -> tuple[int, int]:
        """Requests running on the replicas and waiting for one."""
        return sum(r.in_flight for r in list(self._replicas)), self.waiting

    # -- what a worker exposes ---------------------------------------------------------------

    def _ready(self) -> list[Replica]:
        return [r for r in list(self._replicas) if r.state is ReplicaState.READY and r.worker is not None]

    @property
    def capabilities(self) -> Capabilities:  # type: ignore[override]
        """The first ready replica's capabilities (replicas of one name should agree)."""
        ready = self._ready()
        if ready and ready[0].worker is not None:
            return ready[0].worker.capabilities
        if self._replicas:
            declared = getattr(self._kinds.get(self._replicas[0].kind), "capabilities", None)
            if isinstance(declared, Capabilities):
                return declared
        return Capabilities()

    @property
    def parallelism(self) -> int | None:  # type: ignore[override]
        """Requests the ready replicas take at once, together."""
        return sum(r.capacity or 0 for r in self._ready()) or None

    def check_request(self, request: ChatRequest) -> None:
        """Checked by the replica that serves the request."""

    def count_tokens(self, text: str) -> int:
        """Counted by a ready replica."""
        ready = self._ready()
        if not ready:
            raise UpstreamUnavailableError(f"no replica of {self.name!r} is ready", status_code=503)
        return int(ready[0].worker.count_tokens(text))  # type: ignore[union-attr]

    # -- routing -------------------------------------------------------------------------------

    def _try_claim(self, tried: set[str]) -> Replica | bool | None:
        """A claimed replica; ``None`` if no replica can serve at all; ``False`` if all are busy."""
        now = time.monotonic()
        routable = [r for r in list(self._replicas) if r.routable(now) and r.id not in tried]
        if not routable:
            return None
        free = [r for r in routable if r.can_take(now)]
        if free:
            picked = self._strategy.pick(free)
            assert isinstance(picked, Replica)
            if picked.claim(now):
                return picked
        return False

    def _queue_limit(self) -> int:
        now = time.monotonic()
        return sum(self._queues.get(r.id, 64) for r in list(self._replicas) if r.routable(now))

    def _full(self) -> RateLimitedError:
        return RateLimitedError(
            f"Every replica of {self.name!r} is busy and {self.waiting} requests are waiting. Retry shortly.",
            retry_after=1.0,
        )

    def _claim(self, tried: set[str]) -> Replica | None:
        waiting = False
        try:
            while True:
                got = self._try_claim(tried)
                if got is not False:
                    return got  # type: ignore[return-value]
                if not waiting:
                    if self.waiting >= self._queue_limit():
                        raise self._full()
                    self.waiting += 1
                    waiting = True
                time.sleep(_POLL_S)
        finally:
            if waiting:
                self.waiting -= 1

    async def _aclaim(self, tried: set[str]) -> Replica | None:
        waiting = False
        try:
            while True:
                got = self._try_claim(tried)
                if got is not False:
                    return got  # type: ignore[return-value]
                if not waiting:
                    if self.waiting >= self._queue_limit():
                        raise self._full()
                    self.waiting += 1
                    waiting = True
                await asyncio.sleep(_POLL_S)
        finally:
            if waiting:
                self.waiting -= 1

    def _unavailable(self, last: BaseException | None) -> UpstreamUnavailableError:
        states = ", ".join(f"{r.id}: {r.state.value}" for r in self._replicas) or "no replicas"
        reason = f"; last error: {getattr(last, 'message', last)}" if last is not None else ""
        return UpstreamUnavailableError(f"no replica of {self.name!r} can serve ({states}){reason}", status_code=503)

    def _fallback_workers(self) -> Iterator[tuple[str, Worker]]:
        for name in self._fallbacks:
            if self._registry is None:
                return
            try:
                yield name, self._registry.load(name)
            except Exception as error:  # noqa: BLE001 - a fallback that cannot load is skipped
                logger.warning("fallback %s for %s is unavailable: %s", name, self.name, error)

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Streams from one replica; a failure before any output is retried once on another."""
        tried: set[str] = set()
        last: BaseException | None = None
        for _ in range(2):
            replica = self._claim(tried)
            if replica is None:
                break
            tried.add(replica.id)
            sent, error = False, None
            try:
                worker = replica.worker
                assert isinstance(worker, ChatWorker)
                with contextlib.closing(worker.stream(request)) as events:  # type: ignore[type-var]
                    for event in events:
                        sent = True
                        yield event
                return
            except Exception as exc:
                error = exc
                if sent or not counts_against(exc):
                    raise
                last = exc
                logger.warning("replica %s failed before any output (%s); trying another", replica.id, exc)
            finally:
                replica.release(error)
        for name, fallback in self._fallback_workers():
            if isinstance(fallback, ChatWorker):
                logger.warning("no replica of %s can serve; falling back to %s", self.name, name)
                yield from fallback.stream(request)
                return
        raise self._unavailable(last)

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:  # type: ignore[override]
        """Streams from one replica, natively async; same retry and fallback rules as ``stream``."""
        tried: set[str] = set()
        last: BaseException | None = None
        for _ in range(2):
            replica = await self._aclaim(tried)
            if replica is None:
                break
            tried.add(replica.id)
            sent, error = False, None
            try:
                worker = replica.worker
                assert isinstance(worker, ChatWorker)
                events = worker.astream(request)
                try:
                    async for event in events:
                        sent = True
                        yield event
                finally:
                    close = getattr(events, "aclose", None)  # stop the replica's generation too
                    if close is not None:
                        await close()
                return
            except Exception as exc:
                error = exc
                if sent or not counts_against(exc):
                    raise
                last = exc
                logger.warning("replica %s failed before any output (%s); trying another", replica.id, exc)
            finally:
                replica.release(error)
        for name, fallback in self._fallback_workers():
            if isinstance(fallback, ChatWorker):
                logger.warning("no replica of %s can serve; falling back to %s", self.name, name)
                async for event in fallback.astream(request):
                    yield event
                return
        raise self._unavailable(last)

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds on one replica, retried once on another after a replica's failure."""
        tried: set[str] = set()
        last: BaseException | None = None
        for _ in range(2):
            replica = self._claim(tried)
            if replica is None:
                break
            tried.add(replica.id)
            error = None
            try:
                worker = replica.worker
                if not isinstance(worker, EmbeddingWorker):
                    raise BadRequestError(f"the model {self.name!r} does not support embeddings", param="model")
                return worker.embed(request)
            except Exception as exc:
                error = last = exc
                if not counts_against(exc):
                    raise
            finally:
                replica.release(error)
        for _, fallback in self._fallback_workers():
            if isinstance(fallback, EmbeddingWorker):
                return fallback.embed(request)
        raise self._unavailable(last)

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds natively async; same rules as ``embed``."""
        tried: set[str] = set()
        last: BaseException | None = None
        for _ in range(2):
            replica = await self._aclaim(tried)
            if replica is None:
                break
            tried.add(replica.id)
            error = None
            try:
                worker = replica.worker
                if not isinstance(worker, EmbeddingWorker):
                    raise BadRequestError(f"the model {self.name!r} does not support embeddings", param="model")
                return await worker.aembed(request)
            except Exception as exc:
                error = last = exc
                if not counts_against(exc):
                    raise
            finally:
                replica.release(error)
        for _, fallback in self._fallback_workers():
            if isinstance(fallback, EmbeddingWorker):
                return await fallback.aembed(request)
        raise self._unavailable(last)

    # -- health and shutdown -------------------------------------------------------------------

    def _watch(self) -> None:
        while not self._closing.wait(self.policy.period_s):
            for replica in list(self._replicas):
                if self._closing.is_set():
                    return
                replica.probe(self.policy.timeout_s)

    def check_now(self) -> None:
        """Runs one round of active checks at once (the watcher runs them every period)."""
        for replica in list(self._replicas):
            replica.probe(self.policy.timeout_s)

    def drain_all(self, grace_s: float) -> None:
        """Drains every replica together (blocking)."""
        threads = [
            threading.Thread(target=self.drain, args=(r.id, grace_s), name=f"modelport-drain-{r.id}")
            for r in list(self._replicas)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def close(self) -> None:
        """Stops the health checks and closes every replica."""
        self._closing.set()
        for replica in list(self._replicas):
            replica.stop()
