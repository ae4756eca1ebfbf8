"""``Residency`` with workers that cost nothing to build: the policy, its waits, its threads."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import pytest

from modelport.core.errors import ModelUnavailableError, OverloadedError
from modelport.workers.base import Worker
from modelport.workers.kinds.fake import FakeChatWorker
from modelport.workers.residency import LoadState, Residency, ResidencyPolicy

MIB = 1024 * 1024


class Builds:
    """A build function that counts its calls, can be slowed and fail, and keeps a process's memory.

    Each model takes the memory its size says while loaded: ``rss`` is what a process would show.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.count: Counter[str] = Counter()
        self.delay = delay
        self.fail: set[str] = set()
        self.closed: list[str] = []
        self.sizes: dict[str, int] = {}
        self.memory = 0

    def rss(self) -> int:
        return self.memory

    def __call__(self, name: str) -> Worker:
        self.count[name] += 1
        time.sleep(self.delay)
        if name in self.fail:
            raise RuntimeError(f"{name}: no such file")
        worker = FakeChatWorker(responses=["ok"])
        original = worker.close
        self.memory += self.sizes.get(name, 0)

        def close() -> None:
            self.closed.append(name)
            self.memory -= self.sizes.get(name, 0)
            original()

        worker.close = close  # type: ignore[method-assign]
        return worker


def residency(builds: Builds, sizes: dict[str, int], **policy: object) -> Residency:
    manager = Residency(builds, ResidencyPolicy(**policy), rss=builds.rss)  # type: ignore[arg-type]
    builds.sizes.update(sizes)
    for name, size in sizes.items():
        manager.track(name, estimate=_size(size))
    return manager


def _size(size: int) -> Callable[[], int]:
    return lambda: size


def use(manager: Residency, name: str, **kwargs: object) -> None:
    manager.lease(name, **kwargs).release()  # type: ignore[arg-type]


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_concurrent_first_requests_share_one_load() -> None:
    builds = Builds(delay=0.3)
    manager = residency(builds, {"m": MIB})
    got: list[Worker] = []
    threads = [threading.Thread(target=lambda: got.append(manager.lease("m").worker)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builds.count["m"] == 1
    assert len(got) == 8 and len({id(w) for w in got}) == 1
    assert manager.stats.loads["m"] == 1


async def test_async_leases_share_one_load_too() -> None:
    import asyncio

    builds = Builds(delay=0.2)
    manager = residency(builds, {"m": MIB})
    leases = await asyncio.gather(*(manager.alease("m") for _ in range(8)))
    assert builds.count["m"] == 1
    for lease in leases:
        lease.release()


def test_the_budget_unloads_the_least_recently_used_idle_model() -> None:
    builds = Builds()
    manager = residency(builds, {"a": 100 * MIB, "b": 100 * MIB, "c": 100 * MIB}, memory_budget=250 * MIB)
    use(manager, "a")
    use(manager, "b")
    use(manager, "a")  # b is now the least recently used
    use(manager, "c")
    assert manager.state("b") is LoadState.UNLOADED
    assert manager.state("a") is LoadState.LOADED and manager.state("c") is LoadState.LOADED
    assert manager.stats.unloads[("b", "budget")] == 1
    assert builds.closed == ["b"]
    assert manager.footprint() <= 250 * MIB


def test_max_loaded_models_caps_the_count() -> None:
    manager = residency(Builds(), {"a": 0, "b": 0, "c": 0}, max_loaded_models=2)
    for name in ("a", "b", "c"):
        use(manager, name)
    assert sorted(manager.loaded()) == ["b", "c"]


def test_a_pinned_model_is_never_unloaded() -> None:
    manager = residency(Builds(), {"a": 100 * MIB, "b": 100 * MIB, "c": 100 * MIB}, memory_budget=250 * MIB)
    use(manager, "a")
    manager.pin("a")
    use(manager, "b")
    use(manager, "c")  # a is older, but pinned: b goes
    use(manager, "b")  # and now c
    assert manager.state("a") is LoadState.LOADED
    assert manager.stats.unloads[("a", "budget")] == 0
    assert manager.stats.unloads[("c", "budget")] == 1


def test_a_model_in_use_is_not_evicted_and_the_wait_is_bounded() -> None:
    manager = residency(Builds(), {"a": 100 * MIB, "b": 100 * MIB, "c": 100 * MIB}, memory_budget=250 * MIB)
    held = [manager.lease("a"), manager.lease("b")]
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError) as caught:
        manager.lease("c", timeout_s=0.3)
    assert 0.25 <= time.monotonic() - started < 2
    assert "memory_budget 250 MiB" in caught.value.message and caught.value.retry_after
    assert manager.state("a") is LoadState.LOADED and manager.state("b") is LoadState.LOADED
    for lease in held:
        lease.release()


def test_a_waiting_request_gets_the_room_a_finished_one_leaves() -> None:
    manager = residency(Builds(), {"a": 100 * MIB, "b": 100 * MIB, "c": 100 * MIB}, memory_budget=250 * MIB)
    a, b = manager.lease("a"), manager.lease("b")
    got: list[Worker] = []
    waiter = threading.Thread(target=lambda: got.append(manager.lease("c").worker))
    waiter.start()
    time.sleep(0.2)
    assert not got and manager.state("c") is LoadState.UNLOADED
    b.release()
    waiter.join(5)
    assert got and manager.state("b") is LoadState.UNLOADED and manager.state("a") is LoadState.LOADED
    a.release()


def test_too_many_waiting_requests_get_429() -> None:
    manager = residency(Builds(delay=0.5), {"m": 0}, max_waiting=2)
    threads = [threading.Thread(target=use, args=(manager, "m")) for _ in range(2)]
    for thread in threads:
        thread.start()
    assert wait_for(lambda: manager._models["m"].waiting == 2)
    with pytest.raises(OverloadedError):
        manager.lease("m")
    for thread in threads:
        thread.join()


def test_a_model_bigger_than_the_budget_fails_at_once_naming_it() -> None:
    manager = residency(Builds(), {"huge": 300 * MIB}, memory_budget=250 * MIB)
    with pytest.raises(ModelUnavailableError, match="memory_budget 250 MiB"):
        manager.lease("huge", timeout_s=10)


def test_keep_alive_zero_unloads_once_idle() -> None:
    manager = residency(Builds(), {"m": 0})
    lease = manager.lease("m", keep_alive_s=0)
    time.sleep(0.1)
    assert manager.state("m") is LoadState.LOADED  # in use: it stays
    lease.release()
    assert wait_for(lambda: manager.state("m") is LoadState.UNLOADED, 2)
    assert manager.stats.unloads[("m", "keep_alive")] == 1


def test_keep_alive_duration_and_never() -> None:
    manager = residency(Builds(), {"short": 0, "never": 0}, keep_alive_s=0.1)
    use(manager, "short", keep_alive_s=1.0)
    released = time.monotonic()
    use(manager, "never", keep_alive_s=float("inf"))  # -1 on the wire
    assert manager.describe("short")["keep_alive_s"] == 1.0
    assert wait_for(lambda: manager.state("short") is LoadState.UNLOADED, 5)
    assert time.monotonic() - released >= 0.95  # not before its keep_alive ran out
    time.sleep(0.3)
    assert manager.state("never") is LoadState.LOADED


def test_the_policy_default_and_the_entry_keep_alive() -> None:
    manager = Residency(Builds(), ResidencyPolicy(keep_alive_s=0.1), rss=lambda: 0)
    manager.track("default")
    manager.track("entry", keep_alive_s=float("inf"))
    use(manager, "default")
    use(manager, "entry")
    assert wait_for(lambda: manager.state("default") is LoadState.UNLOADED, 2)
    assert manager.state("entry") is LoadState.LOADED


def test_a_failed_load_is_retried_after_a_backoff() -> None:
    builds = Builds()
    builds.fail.add("m")
    manager = residency(builds, {"m": 0}, retry_after_failure_s=0.3)
    with pytest.raises(ModelUnavailableError, match="no such file"):
        manager.lease("m")
    with pytest.raises(ModelUnavailableError, match="no such file") as again:
        manager.lease("m")
    assert builds.count["m"] == 1 and again.value.retry_after is not None
    assert manager.failures() == {"m": "m: no such file"}
    builds.fail.clear()
    time.sleep(0.35)
    use(manager, "m")
    assert builds.count["m"] == 2 and manager.state("m") is LoadState.LOADED and not manager.failures()


def test_unload_by_hand_waits_for_requests_in_flight() -> None:
    builds = Builds()
    manager = residency(builds, {"m": 0})
    lease = manager.lease("m")
    done = threading.Event()
    threading.Thread(target=lambda: (manager.unload("m", grace_s=5), done.set())).start()
    time.sleep(0.2)
    assert not done.is_set() and manager.state("m") is LoadState.UNLOADING
    lease.release()
    assert done.wait(2) and manager.state("m") is LoadState.UNLOADED
    assert manager.stats.unloads[("m", "admin")] == 1
    use(manager, "m")  # the entry stays: it loads again on demand
    assert builds.count["m"] == 2


def test_describe_lists_what_ps_shows() -> None:
    manager = residency(Builds(), {"m": 5 * MIB})
    use(manager, "m", keep_alive_s=60)
    described = manager.describe("m")
    assert described["load_state"] == "loaded" and described["pinned"] is False
    assert described["footprint"] == {"estimated": 5 * MIB, "measured": 5 * MIB}
    assert described["last_used"] <= time.time() and described["unload_at"] > time.time() + 50


def test_a_model_built_on_another_loads_it_inline() -> None:
    """A chain whose factory uses another registered model: the inner load runs inside the outer."""
    builds = Builds()
    manager = Residency(lambda name: inner(name), ResidencyPolicy(), rss=builds.rss)

    def inner(name: str) -> Worker:
        if name == "chain":
            manager.load("model")  # as ModelPortEmbeddings(model=...) does in a chain's factory
        return builds(name)

    manager.track("chain")
    manager.track("model")
    done = threading.Event()
    threading.Thread(target=lambda: (manager.load("chain"), done.set()), daemon=True).start()
    assert done.wait(5), "the nested load deadlocked"
    assert builds.count == Counter({"chain": 1, "model": 1})
