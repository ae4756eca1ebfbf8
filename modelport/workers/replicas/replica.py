"""One replica of a model: its worker, its state, and the requests it holds right now."""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelport.core.errors import ModelPortError
from modelport.workers.base import Worker

__all__ = ["HealthPolicy", "Replica", "ReplicaState", "counts_against"]

logger = logging.getLogger("modelport.replicas")


class ReplicaState(enum.StrEnum):
    """``starting → ready → unhealthy → draining → stopped``; an unhealthy replica may recover."""

    STARTING = "starting"
    READY = "ready"
    UNHEALTHY = "unhealthy"
    DRAINING = "draining"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """How a replica set watches its replicas (the YAML's ``router:`` block).

    Attributes:
        period_s: Seconds between active checks (``check_health()`` on workers that have it).
        timeout_s: How long one active check may take.
        allowed_fails: Consecutive failed requests that put a replica in cooldown.
        cooldown_s: How long a replica in cooldown gets no traffic.
    """

    period_s: float = 10.0
    timeout_s: float = 5.0
    allowed_fails: int = 3
    cooldown_s: float = 5.0


def counts_against(error: BaseException) -> bool:
    """Whether a failure is the replica's (5xx, transport) rather than the request's (4xx)."""
    return not isinstance(error, ModelPortError) or error.status_code >= 500


@dataclass(eq=False)
class Replica:
    """One copy of a model behind a replica set.

    Attributes:
        id: Unique within its set, e.g. ``smol-0``.
        kind: The worker kind, for listings.
        params: The worker's parameters.
        weight: Its share under the ``weighted`` strategy.
        capacity: Requests it takes at once (its ``limits.max_concurrency``, else its worker's
            ``parallelism``, else 4).
    """

    id: str
    kind: str
    params: Mapping[str, Any]
    weight: float = 1.0
    capacity: int | None = None
    policy: HealthPolicy = field(default_factory=HealthPolicy)
    # Requests it serves that did not come through its set (a worker adopted while serving).
    busy_elsewhere: Callable[[], int] | None = None
    state: ReplicaState = ReplicaState.STARTING
    worker: Worker | None = None
    in_flight: int = 0
    served: int = 0
    last_error: str | None = None
    _fails: int = 0
    _cooldown_until: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _idle: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._idle = threading.Condition(self._lock)

    def start(self, build: Callable[..., Worker]) -> None:
        """Builds the worker (blocking); the replica is then ready, or unhealthy with the reason."""
        started = time.monotonic()
        try:
            worker = build(**self.params)
        except Exception as error:  # noqa: BLE001 - any failure to build is this replica's
            self.last_error = str(getattr(error, "message", error)) or type(error).__name__
            self.state = ReplicaState.UNHEALTHY
            logger.error("replica %s failed to start: %s", self.id, self.last_error)
            return
        if self.state is not ReplicaState.STARTING:  # removed while it was loading
            worker.close()
            return
        self.worker = worker
        if self.capacity is None:
            self.capacity = worker.parallelism or 4
        self.state = ReplicaState.READY
        logger.info("replica %s ready in %.1f s", self.id, time.monotonic() - started)

    def adopt(self, worker: Worker) -> None:
        """Takes an already built worker."""
        self.worker = worker
        if self.capacity is None:
            self.capacity = worker.parallelism or 4
        self.state = ReplicaState.READY

    def can_take(self, now: float) -> bool:
        """Ready, out of cooldown, and under its concurrency limit."""
        return (
            self.state is ReplicaState.READY and now >= self._cooldown_until and self.in_flight < (self.capacity or 4)
        )

    def routable(self, now: float) -> bool:
        """Ready and out of cooldown (it may still be at its limit)."""
        return self.state is ReplicaState.READY and now >= self._cooldown_until

    def claim(self, now: float) -> bool:
        """Takes a place if it can; the caller must ``release`` it."""
        with self._lock:
            if not self.can_take(now):
                return False
            self.in_flight += 1
            return True

    def release(self, error: BaseException | None) -> None:
        """Gives the place back and notes how the request went (passive health)."""
        with self._lock:
            self.in_flight -= 1
            self.served += 1
            if error is None or not counts_against(error):
                self._fails = 0
            else:
                self._fails += 1
                self.last_error = str(getattr(error, "message", error)) or type(error).__name__
            self._idle.notify_all()
        if error is not None and counts_against(error) and self._fails >= self.policy.allowed_fails:
            self._fails = 0
            self._cooldown_until = time.monotonic() + self.policy.cooldown_s
            logger.warning("replica %s: %s; cooling down for %.1f s", self.id, self.last_error, self.policy.cooldown_s)

    def probe(self, timeout_s: float) -> None:
        """Runs the worker's ``check_health()`` (if it has one) and moves between ready and unhealthy."""
        check = getattr(self.worker, "check_health", None)
        if check is None or self.state not in (ReplicaState.READY, ReplicaState.UNHEALTHY):
            return
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                check(timeout_s)
                outcome.append(None)
            except Exception as error:  # noqa: BLE001 - reported as the replica's state
                outcome.append(error)

        thread = threading.Thread(target=run, name=f"modelport-probe-{self.id}", daemon=True)
        thread.start()
        thread.join(timeout_s)
        error = outcome[0] if outcome else TimeoutError(f"no answer in {timeout_s:.1f} s")
        if self.state not in (ReplicaState.READY, ReplicaState.UNHEALTHY):
            return  # drained meanwhile
        if error is None:
            if self.state is ReplicaState.UNHEALTHY:
                logger.info("replica %s is healthy again", self.id)
            self.state = ReplicaState.READY
            self._cooldown_until = 0.0
        else:
            if self.state is ReplicaState.READY:
                logger.warning("replica %s is unhealthy: %s", self.id, error)
            self.state = ReplicaState.UNHEALTHY
            self.last_error = str(getattr(error, "message", error)) or type(error).__name__

    def drain(self, grace_s: float) -> None:
        """Takes no new requests, lets in-flight ones finish for up to ``grace_s``, then closes."""
        if self.state is not ReplicaState.STOPPED:
            self.state = ReplicaState.DRAINING
        deadline = time.monotonic() + grace_s
        with self._lock:
            while self.in_flight and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
        while self.busy_elsewhere is not None and self.busy_elsewhere() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.in_flight:
            logger.warning("replica %s: closing with %d request(s) still in flight", self.id, self.in_flight)
        self.stop()

    def stop(self) -> None:
        """Closes the worker and frees its memory."""
        self.state = ReplicaState.STOPPED
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.close()

    def describe(self) -> dict[str, Any]:
        """The replica as the admin API lists it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state.value,
            "in_flight": self.in_flight,
            "last_error": self.last_error,
        }
