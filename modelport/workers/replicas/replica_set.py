"""``ReplicaSet``: several replicas of one model behind a router, itself a worker.

Because it is a worker, LangChain, LlamaIndex and the server all get routing, health checks,
retries and fallbacks without knowing it exists. Each replica keeps its own concurrency limit;
a request waits (in a bounded queue) only when every ready replica is at its limit.
"""

# The routing code takes the role a worker plays (ChatWorker, EmbeddingWorker) as a class to check
# against; both are abstract, which mypy refuses for type[T] unless told otherwise.
# mypy: disable-error-code="type-abstract"

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from modelport.core.capabilities import Capabilities
from modelport.core.errors import BadRequestError, OverloadedError, RateLimitedError, UpstreamUnavailableError
from modelport.core.events import StreamEvent
from modelport.core.request import ChatRequest, EmbeddingRequest, EmbeddingResult
from modelport.core.rerank import RerankRequest, RerankResult
from modelport.workers.base import ChatWorker, EmbeddingWorker, RerankWorker, Worker, reranks
from modelport.workers.kind_registry import KindRegistry, worker_kinds
from modelport.workers.replicas.replica import HealthPolicy, Replica, ReplicaState, counts_against
from modelport.workers.replicas.routing import strategy as make_strategy

__all__ = ["ReplicaSet"]

logger = logging.getLogger("modelport.replicas")

# How often a request waiting for a free replica looks again.
_POLL_S = 0.002
# Conversations remembered for cache affinity (least recently used forgotten first).
_AFFINITY_KEYS = 10_000

W = TypeVar("W", ChatWorker, EmbeddingWorker, RerankWorker)


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
        # cache key -> replica id: a conversation goes back to the replica holding its prefix.
        self._affinity: OrderedDict[str, str] = OrderedDict()
        self._affinity_lock = threading.Lock()  # requests route from the event loop and threads
        self.waiting = 0
        self._closing = threading.Event()
        if members:
            for thread in self._start(members):
                thread.join()
        self._watcher = threading.Thread(target=self._watch, name=f"modelport-health-{name}", daemon=True)
        self._watcher.start()

    @staticmethod
    def estimate_footprint(params: Mapping[str, Any]) -> int | None:
        """What every member together will hold (``None`` if one cannot tell)."""
        from modelport.workers.residency.footprint import estimate_footprint

        total = 0
        for member in params.get("members", ()):
            one = estimate_footprint(worker_kinds.get(str(member["kind"])), member.get("params") or {})
            if one is None:
                return None
            total += one
        return total

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

    def begin_drain(self, replica_id: str) -> Callable[[float], None]:
        """Stops routing to one replica now; returns the blocking rest of its drain.

        The rest takes the grace period: in-flight requests finish (for up to that long), then
        the replica closes and leaves the set.
        """
        replica = self.replica(replica_id)
        if replica.state is not ReplicaState.STOPPED:
            replica.state = ReplicaState.DRAINING

        def finish(grace_s: float) -> None:
            replica.drain(grace_s)
            with self._lock:
                self._replicas = [r for r in self._replicas if r is not replica]
                self._queues.pop(replica.id, None)

        return finish

    def drain(self, replica_id: str, grace_s: float) -> None:
        """Drains one replica (blocking): no new requests, in-flight ones finish, then it closes."""
        self.begin_drain(replica_id)(grace_s)

    def begin_replace(
        self, members: Sequence[Mapping[str, Any]], *, ready_timeout_s: float = 600
    ) -> Callable[[float], None]:
        """Starts new replicas loading now; returns the blocking rest of the replacement.

        The rest waits until the new replicas are ready, then drains every old one with the
        grace period it is given.

        Raises:
            UpstreamUnavailableError: From the rest, if none of the new replicas became ready;
                the old ones stay.
        """
        with self._lock:
            old = list(self._replicas)
        threads = self._start(members)

        def finish(grace_s: float) -> None:
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

        return finish

    def replace(self, members: Sequence[Mapping[str, Any]], *, grace_s: float, ready_timeout_s: float = 600) -> None:
        """Starts new replicas, waits until they are ready, then drains every old one (blocking).

        Raises:
            UpstreamUnavailableError: If none of the new replicas became ready; the old ones stay.
        """
        self.begin_replace(members, ready_timeout_s=ready_timeout_s)(grace_s)

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

    def count_input_tokens(self, request: ChatRequest) -> int | None:
        """Counted by a ready replica, when there is one that can."""
        ready = self._ready()
        worker = ready[0].worker if ready else None
        return worker.count_input_tokens(request) if isinstance(worker, ChatWorker) else None

    def count_tokens(self, text: str) -> int:
        """Counted by a ready replica."""
        ready = self._ready()
        if not ready:
            raise UpstreamUnavailableError(f"no replica of {self.name!r} is ready", status_code=503)
        return int(ready[0].worker.count_tokens(text))  # type: ignore[union-attr]

    # -- routing -------------------------------------------------------------------------------

    def _try_claim(self, tried: set[str], key: str | None = None) -> Replica | bool | None:
        """A claimed replica; ``None`` if no replica can serve at all; ``False`` if all are busy.

        A request with a cache key goes to the replica that served that key before, waiting for
        it while it is busy, for as long as it stays routable (ready, out of cooldown): its
        prefix cache holds the conversation. Otherwise the strategy picks, and the key is bound
        to the pick.
        """
        now = time.monotonic()
        routable = [r for r in list(self._replicas) if r.routable(now) and r.id not in tried]
        if not routable:
            return None
        if key is not None:
            sticky = next((r for r in routable if r.id == self.affinity(key)), None)
            if sticky is not None:
                return sticky if sticky.can_take(now) and sticky.claim(now) else False
        free = [r for r in routable if r.can_take(now)]
        if free:
            picked = self._strategy.pick(free)
            assert isinstance(picked, Replica)
            if picked.claim(now):
                if key is not None:
                    self._bind(key, picked.id)
                return picked
        return False

    def _bind(self, key: str, replica_id: str) -> None:
        with self._affinity_lock:
            self._affinity[key] = replica_id
            self._affinity.move_to_end(key)
            while len(self._affinity) > _AFFINITY_KEYS:
                self._affinity.popitem(last=False)

    def affinity(self, key: str) -> str | None:
        """The replica a cache key is bound to, if any (its use counts as recent)."""
        with self._affinity_lock:
            bound = self._affinity.get(key)
            if bound is not None:
                self._affinity.move_to_end(key)
            return bound

    def _queue_limit(self) -> int:
        now = time.monotonic()
        return sum(self._queues.get(r.id, 64) for r in list(self._replicas) if r.routable(now))

    def _full(self) -> RateLimitedError:
        return OverloadedError(
            f"Every replica of {self.name!r} is busy and {self.waiting} requests are waiting. Retry shortly.",
            retry_after=1.0,
        )

    def _unavailable(self, last: BaseException | None) -> UpstreamUnavailableError:
        states = ", ".join(f"{r.id}: {r.state.value}" for r in self._replicas) or "no replicas"
        reason = f"; last error: {getattr(last, 'message', last)}" if last is not None else ""
        return UpstreamUnavailableError(f"no replica of {self.name!r} can serve ({states}){reason}", status_code=503)

    def _fallback(self, role: type[W]) -> tuple[str, W] | None:
        """The first fallback model that loads and plays ``role``."""
        for name in self._fallbacks:
            if self._registry is None:
                return None
            try:
                worker = self._registry.load(name)
            except Exception as error:  # noqa: BLE001 - a fallback that cannot load is skipped
                logger.warning("fallback %s for %s is unavailable: %s", name, self.name, error)
                continue
            if isinstance(worker, role) and (role is not RerankWorker or reranks(worker)):
                return name, worker
        return None

    # The twins below only do I/O (sleeping, calling the replica); ``_Route`` decides.

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        """Streams from one replica; a failure before any output is retried once on another."""
        route = _Route(self, request.cache_key)
        while (replica := _claim_blocking(route)) is not None:
            with route.attempt(replica) as attempt:
                with contextlib.closing(attempt.worker(ChatWorker).stream(request)) as events:  # type: ignore[type-var]
                    for event in events:
                        attempt.sent = True
                        yield event
                return
        yield from route.fall_back(ChatWorker).stream(request)

    async def astream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:  # type: ignore[override]
        """Streams from one replica, natively async; same retry and fallback rules as ``stream``."""
        route = _Route(self, request.cache_key)
        while (replica := await _claim_async(route)) is not None:
            with route.attempt(replica) as attempt:
                events = attempt.worker(ChatWorker).astream(request)
                try:
                    async for event in events:
                        attempt.sent = True
                        yield event
                finally:
                    close = getattr(events, "aclose", None)  # stop the replica's generation too
                    if close is not None:
                        await close()
                return
        async for event in route.fall_back(ChatWorker).astream(request):
            yield event

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds on one replica, retried once on another after a replica's failure."""
        route = _Route(self)
        while (replica := _claim_blocking(route)) is not None:
            with route.attempt(replica) as attempt:
                return attempt.worker(EmbeddingWorker).embed(request)
        return route.fall_back(EmbeddingWorker).embed(request)

    async def aembed(self, request: EmbeddingRequest) -> EmbeddingResult:
        """Embeds natively async; same rules as ``embed``."""
        route = _Route(self)
        while (replica := await _claim_async(route)) is not None:
            with route.attempt(replica) as attempt:
                return await attempt.worker(EmbeddingWorker).aembed(request)
        return await route.fall_back(EmbeddingWorker).aembed(request)

    def score(self, request: RerankRequest) -> RerankResult:
        """Scores on one replica, retried once on another after a replica's failure."""
        route = _Route(self)
        while (replica := _claim_blocking(route)) is not None:
            with route.attempt(replica) as attempt:
                return attempt.worker(RerankWorker).score(request)
        return route.fall_back(RerankWorker).score(request)

    async def ascore(self, request: RerankRequest) -> RerankResult:
        """Scores natively async; same rules as ``score``."""
        route = _Route(self)
        while (replica := await _claim_async(route)) is not None:
            with route.attempt(replica) as attempt:
                return await attempt.worker(RerankWorker).ascore(request)
        return await route.fall_back(RerankWorker).ascore(request)

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

    def begin_drain_all(self) -> Callable[[float], None]:
        """Stops routing to every replica now; returns the blocking rest, which drains them together."""
        rests = [(r.id, self.begin_drain(r.id)) for r in list(self._replicas)]

        def finish(grace_s: float) -> None:
            threads = [
                threading.Thread(target=rest, args=(grace_s,), name=f"modelport-drain-{replica_id}")
                for replica_id, rest in rests
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        return finish

    def drain_all(self, grace_s: float) -> None:
        """Drains every replica together (blocking)."""
        self.begin_drain_all()(grace_s)

    def close(self) -> None:
        """Stops the health checks and closes every replica."""
        self._closing.set()
        for replica in list(self._replicas):
            replica.stop()


_ROLES: dict[type, str] = {EmbeddingWorker: "embeddings", RerankWorker: "rerank"}


class _Attempt:
    """One try on one replica: frees the replica after, and swallows a failure worth retrying."""

    def __init__(self, route: _Route, replica: Replica) -> None:
        self._route = route
        self.replica = replica
        self.sent = False  # whether any output reached the caller (then nothing is retried)

    def worker(self, role: type[W]) -> W:
        """The replica's worker in ``role``, or a 400 naming the model when it cannot play it."""
        worker = self.replica.worker
        if not isinstance(worker, role) or (role is RerankWorker and not reranks(worker)):
            what = _ROLES.get(role, "chat")
            raise BadRequestError(f"the model {self._route.owner.name!r} does not support {what}", param="model")
        return worker

    def __enter__(self) -> _Attempt:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> bool:
        failure = error if isinstance(error, Exception) else None
        self.replica.release(failure)
        return failure is not None and self._route.retries(self.replica, failure, self.sent)


class _Route:
    """One request's way through a set, without I/O: which replica, retry or not, then fallbacks.

    A request tries at most two replicas: one that fails before any output (in a way that counts
    against the replica) is retried once on another. When none can serve, the set's fallbacks
    are tried in order; when none of them can, the request fails with the replicas' states.
    """

    _TRIES = 2

    def __init__(self, owner: ReplicaSet, key: str | None = None) -> None:
        self.owner = owner
        self.key = key
        self.tried: set[str] = set()
        self.last: BaseException | None = None

    def claims(self) -> Generator[float, None, Replica | None]:
        """Yields how long to sleep while every replica is busy; returns the claimed replica.

        Returns ``None`` when no replica can serve (or this request has had its tries).

        Raises:
            RateLimitedError: When the set's queue is full.
        """
        owner = self.owner
        if len(self.tried) >= self._TRIES:
            return None
        waiting = False
        try:
            while True:
                got = owner._try_claim(self.tried, self.key)
                if isinstance(got, Replica):
                    self.tried.add(got.id)
                    return got
                if got is None:
                    return None
                if not waiting:
                    if owner.waiting >= owner._queue_limit():
                        raise owner._full()
                    owner.waiting += 1
                    waiting = True
                yield _POLL_S
        finally:
            if waiting:
                owner.waiting -= 1

    def attempt(self, replica: Replica) -> _Attempt:
        """The context one try runs in."""
        return _Attempt(self, replica)

    def retries(self, replica: Replica, error: Exception, sent: bool) -> bool:
        """Whether ``error`` on ``replica`` is worth another replica (else it propagates)."""
        if sent or not counts_against(error):
            return False
        self.last = error
        logger.warning("replica %s failed before any output (%s); trying another", replica.id, error)
        return True

    def fall_back(self, role: type[W]) -> W:
        """The fallback that serves once no replica can.

        Raises:
            UpstreamUnavailableError: If there is none (naming each replica's state).
        """
        found = self.owner._fallback(role)
        if found is None:
            raise self.owner._unavailable(self.last)
        name, worker = found
        logger.warning("no replica of %s can serve; falling back to %s", self.owner.name, name)
        return worker


def _claim_blocking(route: _Route) -> Replica | None:
    claims = route.claims()
    try:
        while True:
            time.sleep(next(claims))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def _claim_async(route: _Route) -> Replica | None:
    claims = route.claims()
    try:
        while True:  # noqa: ASYNC110 - polls a lock-free count that sync callers share
            await asyncio.sleep(next(claims))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
