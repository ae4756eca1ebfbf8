"""``Residency``: which models are in memory, decided in one place.

A request takes a ``Lease`` on its model before it waits for a slot and gives it back when its
answer ends, so a model with requests in flight or queued is never unloaded. A model that is
not loaded loads on the first lease (one load at a time, shared by every request that waits
for it). A load that would pass the memory budget or the cap on loaded models first unloads
idle, unpinned models, least recently used first; when nothing can be freed, the request
waits, for up to ``load_timeout_s``. Once idle, a model unloads after its ``keep_alive``.

The policy is decided under one lock by ``_step``, which does no I/O; ``lease`` and ``alease``
are its blocking and async twins (they only wait), and loads and unloads run on their own
threads, one at a time, so that each one's change of the process's RSS is its own.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from modelport.core.errors import ModelUnavailableError, OverloadedError
from modelport.workers.base import Worker
from modelport.workers.residency.footprint import process_rss, release_memory
from modelport.workers.residency.policy import NEVER, ResidencyPolicy

__all__ = ["Lease", "LoadState", "Residency", "ResidencyStats"]

logger = logging.getLogger("modelport.residency")

# How often a waiting request looks again (waits also wake on every change).
_POLL_S = 0.02
_MIB = 1024 * 1024


class LoadState(enum.StrEnum):
    """``unloaded → loading → loaded → unloading → unloaded``; a failed load is retried later."""

    UNLOADED = "unloaded"
    LOADING = "loading"
    LOADED = "loaded"
    UNLOADING = "unloading"
    FAILED = "failed"


@dataclass(eq=False)
class _Resident:
    """One model's place in memory (or out of it)."""

    name: str
    estimate: Callable[[], int | None]
    keep_alive_s: float | None = None  # the entry's; None: the policy's
    requested_keep_alive_s: float | None = None  # the last request's, which wins while set
    pinned: bool = False
    static: bool = False  # built elsewhere (``add_worker``): it cannot load again, so it never unloads
    max_waiting: int | None = None
    state: LoadState = LoadState.UNLOADED
    worker: Worker | None = None
    leases: int = 0
    waiting: int = 0
    last_used: float | None = None  # wall clock, for listings
    last_used_at: float = 0.0  # monotonic, for the LRU order
    unload_at: float | None = None  # monotonic
    estimated: int | None = None
    load_added: int | None = None  # RSS the last load added
    unload_freed: int | None = None  # RSS the last unload handed back (pages touched while serving)
    error: str | None = None
    failures: int = 0
    retry_at: float = 0.0
    loads: int = 0
    removed: bool = False

    @property
    def measured(self) -> int | None:
        """What the model was seen to hold: the larger of its last load's and last unload's RSS change."""
        seen = [v for v in (self.load_added, self.unload_freed) if v is not None]
        return max(seen) if seen else None

    @property
    def footprint(self) -> int:
        """What the model counts against the budget: its measured footprint, else the estimate."""
        if self.measured is not None:
            return self.measured
        if self.estimated is None:
            self.estimated = self.estimate()
        return self.estimated or 0

    @property
    def idle(self) -> bool:
        """Loaded, with no request in flight and none waiting for it."""
        return self.state is LoadState.LOADED and self.leases == 0 and self.waiting == 0

    @property
    def evictable(self) -> bool:
        """Idle, not pinned, and able to load again."""
        return self.idle and not self.pinned and not self.static

    @property
    def holds_memory(self) -> bool:
        """Counted against the budget: loading, loaded, or not yet unloaded."""
        return self.state in (LoadState.LOADING, LoadState.LOADED, LoadState.UNLOADING)


@dataclass
class ResidencyStats:
    """What happened: loads by model, unloads by model and reason, and who else wants to know.

    Attributes:
        loads: Loads that finished, by model.
        unloads: Unloads by ``(model, reason)``; reasons are ``keep_alive``, ``budget``, ``admin``.
        on_load: Called with the model and the seconds its load took (the server's histogram).
        on_unload: Called with the model and the reason.
    """

    loads: Counter[str] = field(default_factory=Counter)
    unloads: Counter[tuple[str, str]] = field(default_factory=Counter)
    on_load: list[Callable[[str, float], None]] = field(default_factory=list)
    on_unload: list[Callable[[str, str], None]] = field(default_factory=list)


class Lease:
    """A request's hold on a loaded model: the model stays while any lease on it is held.

    ``release`` is idempotent, so every exit path may call it.
    """

    __slots__ = ("_keep_alive_s", "_owner", "_released", "_resident", "worker")

    def __init__(self, owner: Residency, resident: _Resident, keep_alive_s: float | None) -> None:
        self._owner = owner
        self._resident = resident
        self._keep_alive_s = keep_alive_s
        self._released = False
        assert resident.worker is not None
        self.worker: Worker = resident.worker

    def release(self) -> None:
        """Gives the model back; once idle, its ``keep_alive`` starts."""
        if not self._released:
            self._released = True
            self._owner._release(self._resident, self._keep_alive_s)


@dataclass
class _Load:
    """A load the policy decided on: the model, and the idle models to unload first."""

    resident: _Resident
    victims: list[_Resident]


class Residency:
    """Loads models on demand and unloads them by ``keep_alive``, the budget, or by hand.

    Args:
        build: Builds the worker of a model name (blocking; raises on failure).
        policy: The budget, the cap, the default ``keep_alive``, the timeouts.
        prepare: Imports what a model's kind needs before its load is measured (the library
            stays with the process; the footprint is the model's own).
        rss: The process's resident bytes, read around each load and unload.
        clock: Monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        build: Callable[[str], Worker],
        policy: ResidencyPolicy | None = None,
        *,
        prepare: Callable[[str], None] = lambda name: None,
        rss: Callable[[], int] = process_rss,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._build = build
        self._prepare = prepare
        self._rss = rss
        self.policy = policy or ResidencyPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._models: dict[str, _Resident] = {}
        # One load or unload at a time, so that its RSS change is its own. Re-entrant: a model
        # built on others (a chain of registered models) loads them inline, on its own thread.
        self._memory = threading.RLock()
        self._nested = threading.local()
        self._reaper: threading.Thread | None = None
        self._closing = False
        self.stats = ResidencyStats()

    # -- entries -------------------------------------------------------------------------------

    def track(
        self,
        name: str,
        *,
        estimate: Callable[[], int | None] = lambda: 0,
        keep_alive_s: float | None = None,
        pinned: bool = False,
        max_waiting: int | None = None,
    ) -> None:
        """Starts tracking a model (unloaded); a name tracked already is replaced, unloaded."""
        resident = _Resident(name, estimate, keep_alive_s=keep_alive_s, pinned=pinned, max_waiting=max_waiting)
        with self._lock:
            old = self._models.get(name)
            self._models[name] = resident
        if old is not None:
            self._discard(old)

    def adopt(self, name: str, worker: Worker) -> None:
        """Tracks a worker built elsewhere: loaded for good (it cannot be built again here)."""
        resident = _Resident(name, lambda: 0, pinned=True, static=True)
        resident.state, resident.worker, resident.load_added = LoadState.LOADED, worker, 0
        resident.last_used, resident.last_used_at = time.time(), self._clock()
        with self._lock:
            old = self._models.get(name)
            self._models[name] = resident
            self._changed.notify_all()
        if old is not None and old.worker is not worker:
            self._discard(old)

    def untrack(self, name: str) -> Worker | None:
        """Stops tracking ``name`` and returns its worker, if loaded, for the caller to close."""
        with self._lock:
            resident = self._models.pop(name, None)
            if resident is None:
                return None
            resident.removed = True
            worker, resident.worker = resident.worker, None
            resident.state = LoadState.UNLOADED
            self._changed.notify_all()
        return worker

    def _discard(self, resident: _Resident) -> None:
        # Requests may still hold the old worker: it is dropped, not closed, as before tracking.
        resident.removed = True
        resident.worker = None

    def _get(self, name: str) -> _Resident:
        resident = self._models.get(name)
        if resident is None:
            raise KeyError(name)
        return resident

    # -- what is loaded ------------------------------------------------------------------------

    def worker(self, name: str) -> Worker | None:
        """``name``'s worker if it is loaded now (taking no lease, loading nothing)."""
        resident = self._models.get(name)
        return resident.worker if resident is not None and resident.state is LoadState.LOADED else None

    def loaded(self) -> dict[str, Worker]:
        """The loaded workers by name (a snapshot)."""
        with self._lock:
            return {
                n: r.worker for n, r in self._models.items() if r.state is LoadState.LOADED and r.worker is not None
            }

    def state(self, name: str) -> LoadState:
        """``name``'s load state."""
        return self._get(name).state

    def failures(self) -> dict[str, str]:
        """Models whose last load failed, with the loader's error."""
        with self._lock:
            return {n: r.error or "" for n, r in self._models.items() if r.state is LoadState.FAILED}

    def footprint(self) -> int:
        """Bytes the models in memory count against the budget together."""
        with self._lock:
            return sum(r.footprint for r in self._models.values() if r.holds_memory)

    def snapshot(self) -> list[tuple[str, bool, int]]:
        """Each tracked model: its name, whether it is loaded, what it counts against the budget."""
        with self._lock:
            return [
                (n, r.state is LoadState.LOADED, r.footprint if r.holds_memory else 0) for n, r in self._models.items()
            ]

    def describe(self, name: str) -> dict[str, Any]:
        """``name``'s residency, as the admin API lists it."""
        resident = self._get(name)
        if resident.estimated is None and not resident.static:
            resident.estimated = resident.estimate()  # a header read, at most once
        now_wall, now = time.time(), self._clock()
        unload_at = None
        if resident.unload_at is not None and resident.state is LoadState.LOADED:
            unload_at = now_wall + max(resident.unload_at - now, 0.0)
        return {
            "load_state": resident.state.value,
            "pinned": resident.pinned,
            "footprint": {"estimated": resident.estimated, "measured": resident.measured},
            "last_used": resident.last_used,
            "unload_at": unload_at,
            "keep_alive_s": _wire_seconds(self._keep_alive(resident, resident.requested_keep_alive_s)),
            "loads": resident.loads,
            "load_error": resident.error,
        }

    # -- leases ----------------------------------------------------------------------------------

    def lease(self, name: str, *, keep_alive_s: float | None = None, timeout_s: float | None = None) -> Lease:
        """Waits until ``name`` is loaded (loading it if needed) and holds it (blocking).

        Args:
            name: The model.
            keep_alive_s: How long the model stays once this request leaves it idle (the
                request's ``keep_alive``); the entry's or the policy's when ``None``.
            timeout_s: The longest wait, the load included (``load_timeout_s`` by default).

        Raises:
            ModelUnavailableError: If the load failed (503 with the loader's error; retried
                after a backoff), or the wait ran out (with ``retry_after``, naming the budget).
            RateLimitedError: If too many requests already wait for the model.
        """
        waits = self._waits(name, keep_alive_s, timeout_s)
        try:
            while True:
                wait = next(waits)
                with self._lock:
                    self._changed.wait(wait)  # woken early by any change
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            waits.close()  # a request that stops waiting no longer counts as waiting

    async def alease(self, name: str, *, keep_alive_s: float | None = None, timeout_s: float | None = None) -> Lease:
        """``lease`` for the event loop: waits without blocking it; loads run on their own thread."""
        waits = self._waits(name, keep_alive_s, timeout_s)
        try:
            while True:  # noqa: ASYNC110 - polls state that threads change under a threading lock
                await asyncio.sleep(min(next(waits), _POLL_S))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            waits.close()  # a cancelled request no longer counts as waiting

    def _waits(self, name: str, keep_alive_s: float | None, timeout_s: float | None) -> Generator[float, None, Lease]:
        """Yields how long to wait while ``name`` is not ready; returns its lease.

        The twins above only wait; this counts the request as waiting (so its model is not
        idle) and asks the policy each time.
        """
        deadline = self._clock() + (self.policy.load_timeout_s if timeout_s is None else timeout_s)
        resident = self._enter(name)
        try:
            while not isinstance(got := self._next(resident, keep_alive_s, deadline), Lease):
                yield got
            return got
        finally:
            self._leave(resident)

    def _enter(self, name: str) -> _Resident:
        """Counts one more request waiting for ``name`` (such a model is not idle)."""
        with self._lock:
            resident = self._get(name)
            if resident.state is LoadState.LOADED:
                resident.waiting += 1
                return resident
            limit = resident.max_waiting if resident.max_waiting is not None else self.policy.max_waiting
            if resident.waiting >= limit:
                raise OverloadedError(
                    f"{resident.waiting} requests already wait for the model {name!r} to load. Retry shortly.",
                    retry_after=1.0,
                )
            resident.waiting += 1
            return resident

    def _leave(self, resident: _Resident) -> None:
        with self._lock:
            resident.waiting -= 1
            self._arm(resident, None)
            self._changed.notify_all()

    def _next(self, resident: _Resident, keep_alive_s: float | None, deadline: float) -> Lease | float:
        """A lease, or how long to wait; starts a load when the policy decides on one.

        A lease asked for while a load is building (a chain whose factory uses other registered
        models) loads inline: a load thread of its own would wait for the outer load to end.
        """
        nested = getattr(self._nested, "loading", False)
        with self._lock:
            decided = self._step(resident, keep_alive_s, deadline, nested=nested)
        if isinstance(decided, _Load):
            if nested:
                self._run_load(decided)
            else:
                self._start_load(decided)
            return 0.0
        return decided

    def _step(
        self, resident: _Resident, keep_alive_s: float | None, deadline: float, *, nested: bool = False
    ) -> Lease | _Load | float:
        """The policy, under the lock and without I/O: a lease, a load to start, or a wait."""
        now = self._clock()
        if resident.removed:
            raise ModelUnavailableError(resident.name, "it was removed")
        if resident.state is LoadState.LOADED:
            resident.leases += 1
            resident.unload_at = None
            return Lease(self, resident, keep_alive_s)
        if resident.state is LoadState.FAILED and now < resident.retry_at:
            error = ModelUnavailableError(resident.name, resident.error or "it failed to load")
            error.retry_after = resident.retry_at - now
            raise error
        if now >= deadline:
            raise self._timed_out(resident)
        if resident.state in (LoadState.LOADING, LoadState.UNLOADING):
            return min(deadline - now, 0.25)
        busy = any(r.state in (LoadState.LOADING, LoadState.UNLOADING) for r in self._models.values())
        if busy and not nested:
            return min(deadline - now, 0.25)  # one memory change at a time
        victims = self._room_for(resident)
        if victims is None:
            return min(deadline - now, 0.25)
        for victim in victims:
            victim.state = LoadState.UNLOADING
        resident.state = LoadState.LOADING
        return _Load(resident, victims)

    def _fits(self, need: int, used: int, count: int) -> bool:
        budget, cap = self.policy.memory_budget, self.policy.max_loaded_models
        return (budget is None or used + need <= budget) and (cap is None or count + 1 <= cap)

    def _room_for(self, resident: _Resident) -> list[_Resident] | None:
        """The idle models to unload so ``resident`` fits (least recently used first), or ``None``.

        Raises:
            ModelUnavailableError: If it can never fit: the pinned models and it pass the budget.
        """
        need = resident.footprint
        others = [r for r in self._models.values() if r is not resident and r.holds_memory]
        used, count = sum(r.footprint for r in others), len(others)
        if self._fits(need, used, count):
            return []
        fixed = [r for r in others if r.pinned or r.static]
        if not self._fits(need, sum(r.footprint for r in fixed), len(fixed)):
            raise ModelUnavailableError(resident.name, self._budget_note(resident, "the pinned models and it pass"))
        victims = []
        for victim in sorted((r for r in others if r.evictable), key=lambda r: r.last_used_at):
            victims.append(victim)
            used, count = used - victim.footprint, count - 1
            if self._fits(need, used, count):
                return victims
        return None

    def _budget_note(self, resident: _Resident, verb: str) -> str:
        parts = []
        if self.policy.memory_budget is not None:
            parts.append(f"memory_budget {_mib(self.policy.memory_budget)}")
        if self.policy.max_loaded_models is not None:
            parts.append(f"max_loaded_models {self.policy.max_loaded_models}")
        held = sorted(r.name for r in self._models.values() if r.holds_memory and r is not resident)
        return (
            f"it needs {_mib(resident.footprint)} and {verb} the server's {' and '.join(parts) or 'limits'} "
            f"(in memory: {', '.join(held) or 'nothing'})"
        )

    def _timed_out(self, resident: _Resident) -> ModelUnavailableError:
        if resident.state is LoadState.LOADING:
            reason = f"its load did not finish within server.load_timeout_s ({self.policy.load_timeout_s:g} s)"
        else:
            busy = self._budget_note(resident, "no idle model could make room within")
            reason = f"{busy}; waited server.load_timeout_s ({self.policy.load_timeout_s:g} s)"
        error = ModelUnavailableError(resident.name, reason)
        error.retry_after = 5.0
        return error

    def _release(self, resident: _Resident, keep_alive_s: float | None) -> None:
        with self._lock:
            resident.leases -= 1
            resident.last_used, resident.last_used_at = time.time(), self._clock()
            self._arm(resident, keep_alive_s)
            self._changed.notify_all()

    def _keep_alive(self, resident: _Resident, requested: float | None) -> float:
        if resident.pinned or resident.static:
            return NEVER
        for setting in (requested, resident.keep_alive_s):
            if setting is not None:
                return setting
        return self.policy.keep_alive_s

    def _arm(self, resident: _Resident, keep_alive_s: float | None) -> None:
        """Starts an idle model's ``keep_alive`` (under the lock)."""
        if not resident.idle:
            return
        if keep_alive_s is not None:
            resident.requested_keep_alive_s = keep_alive_s
        keep = self._keep_alive(resident, resident.requested_keep_alive_s)
        resident.unload_at = None if math.isinf(keep) else self._clock() + keep
        if resident.unload_at is not None:
            self._start_reaper()

    # -- loads and unloads, on their own threads -----------------------------------------------------

    def _start_load(self, load: _Load) -> None:
        threading.Thread(target=self._run_load, args=(load,), name=f"modelport-load-{load.resident.name}").start()

    def _run_load(self, load: _Load) -> None:
        resident = load.resident
        with self._memory:
            for victim in load.victims:
                self._unload(victim, "budget")
            logger.info(
                "loading %s (estimated %s; %s in memory)",
                resident.name,
                _mib(resident.footprint),
                _mib(self.footprint() - resident.footprint),
            )
            started = self._clock()
            try:
                self._prepare(resident.name)
                release_memory()
                before = self._rss()
                outer = getattr(self._nested, "loading", False)
                self._nested.loading = True
                try:
                    worker = self._build(resident.name)
                finally:
                    self._nested.loading = outer
            except Exception as error:  # noqa: BLE001 - any failure is the model's, reported to its requests
                reason = error.reason if isinstance(error, ModelUnavailableError) else _reason(error)
                with self._lock:
                    resident.state, resident.error = LoadState.FAILED, reason
                    resident.failures += 1
                    wait = self.policy.backoff(resident.failures)
                    resident.retry_at = self._clock() + wait
                    self._changed.notify_all()
                logger.error("loading %s failed (retried after %.0f s): %s", resident.name, wait, reason)
                return
            took = self._clock() - started
            release_memory()  # what the load freed again (temporary copies) is not the model's
            added = max(self._rss() - before, 0)
        with self._lock:
            if resident.removed:
                stale = worker
            else:
                stale = None
                resident.worker, resident.state = worker, LoadState.LOADED
                resident.load_added = added
                resident.error, resident.failures, resident.loads = None, 0, resident.loads + 1
                resident.last_used, resident.last_used_at = time.time(), self._clock()
                self._arm(resident, None)
            self.stats.loads[resident.name] += 1
            self._changed.notify_all()
        if stale is not None:
            stale.close()
        for observe in self.stats.on_load:
            observe(resident.name, took)
        logger.info("%s loaded in %.1f s (measured %s)", resident.name, took, _mib(added))

    def _unload(self, resident: _Resident, reason: str) -> None:
        """Closes an unloading model's worker and hands its memory back (holding ``_memory``)."""
        worker, resident.worker = resident.worker, None
        before = self._rss()
        if worker is not None:
            try:
                worker.close()
            except Exception:
                logger.exception("closing %s failed", resident.name)
            del worker
        release_memory()
        freed = max(before - self._rss(), 0)
        with self._lock:
            resident.state, resident.unload_at = LoadState.UNLOADED, None
            resident.unload_freed = freed
            self.stats.unloads[(resident.name, reason)] += 1
            self._changed.notify_all()
        for observe in self.stats.on_unload:
            observe(resident.name, reason)
        logger.info("unloaded %s (%s): %s freed", resident.name, reason, _mib(freed))

    def unload(self, name: str, *, reason: str = "admin", grace_s: float = 30.0) -> bool:
        """Unloads ``name`` once its requests finish (blocking; new ones wait, then load it again).

        Args:
            name: The model.
            reason: For the log and the metric (``admin``, ``keep_alive``, ``budget``).
            grace_s: How long requests in flight may run on; then it unloads anyway.

        Returns:
            Whether it was loaded (and now is not).
        """
        deadline = self._clock() + grace_s
        with self._lock:
            resident = self._get(name)
            while resident.state is LoadState.LOADING:
                self._changed.wait(0.25)
            if resident.state is not LoadState.LOADED or resident.static:
                return False
            resident.state = LoadState.UNLOADING  # no new leases from here
            while resident.leases and (left := deadline - self._clock()) > 0:
                self._changed.wait(min(left, 0.25))
            if resident.leases:
                logger.warning("unloading %s with %d request(s) still in flight", name, resident.leases)
        with self._memory:
            self._unload(resident, reason)
        return True

    def load(self, name: str) -> Worker:
        """Loads ``name`` if it is not loaded (blocking); its ``keep_alive`` then starts."""
        lease = self.lease(name)
        lease.release()
        return lease.worker

    def pin(self, name: str, pinned: bool = True) -> None:
        """Pins ``name`` (never unloaded by ``keep_alive`` or the budget) or unpins it."""
        with self._lock:
            resident = self._get(name)
            resident.pinned = pinned
            resident.unload_at = None
            self._arm(resident, None)
            self._changed.notify_all()

    # -- keep_alive ----------------------------------------------------------------------------------

    def _start_reaper(self) -> None:
        if self._reaper is None and not self._closing:
            self._reaper = threading.Thread(target=self._reap, name="modelport-keep-alive", daemon=True)
            self._reaper.start()

    def _reap(self) -> None:
        """Unloads idle models whose ``keep_alive`` ran out."""
        while True:
            with self._lock:
                if self._closing:
                    return
                now = self._clock()
                due = [
                    r
                    for r in self._models.values()
                    if r.unload_at is not None and r.unload_at <= now and r.evictable and not r.removed
                ]
                # Not while another load or unload runs: they measure the process's RSS.
                busy = any(r.state in (LoadState.LOADING, LoadState.UNLOADING) for r in self._models.values())
                if not due or busy:
                    waits = [r.unload_at - now for r in self._models.values() if r.unload_at is not None]
                    self._changed.wait(min([*waits, 1.0]) if waits else 1.0)
                    continue
                victim = min(due, key=lambda r: r.unload_at or 0.0)
                victim.state = LoadState.UNLOADING
            with self._memory:
                self._unload(victim, "keep_alive")

    def close(self) -> None:
        """Stops the keep-alive thread and closes every loaded worker."""
        with self._lock:
            self._closing = True
            workers = [r.worker for r in self._models.values() if r.worker is not None]
            for resident in self._models.values():
                resident.worker, resident.state = None, LoadState.UNLOADED
            self._changed.notify_all()
        for worker in workers:
            worker.close()


def _reason(error: BaseException) -> str:
    return str(getattr(error, "message", None) or error) or type(error).__name__


def _mib(size: int) -> str:
    return f"{size / _MIB:.0f} MiB"


def _wire_seconds(value: float) -> float | None:
    return None if math.isinf(value) else value
