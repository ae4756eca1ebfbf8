"""Replica sets: routing strategies, passive and active health, retries, fallbacks, draining."""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from modelport.config import parse_config
from modelport.core import ChatRequest, Finish, StreamEvent, TextDelta, UpstreamUnavailableError, UserMessage
from modelport.workers import ModelEntry, ModelRegistry
from modelport.workers.kinds.fake import FakeChatWorker
from modelport.workers.replicas import ReplicaSet, ReplicaState


def ask(text: str = "hi") -> ChatRequest:
    return ChatRequest([UserMessage(text)])


def fake(delay: float, capacity: int = 100, **extra: Any) -> dict[str, Any]:
    return {"kind": "fake", "params": {"delay": delay}, "limits": {"max_concurrency": capacity}, **extra}


async def load(replicas: ReplicaSet, clients: int, each: int) -> None:
    async def client() -> None:
        for _ in range(each):
            assert (await replicas.ainvoke(ask())).text == "hi"

    await asyncio.gather(*(client() for _ in range(clients)))


def shares(replicas: ReplicaSet) -> dict[str, int]:
    return {r.id: r.served for r in replicas._replicas}


async def test_least_busy_sends_most_traffic_to_the_fast_replica() -> None:
    replicas = ReplicaSet([fake(0.005, id="fast"), fake(0.05, id="mid"), fake(0.1, id="slow")], name="m", seed=1)
    await load(replicas, clients=6, each=15)
    served = shares(replicas)
    assert served["fast"] > 0.5 * sum(served.values()), served
    assert served["fast"] > max(served["mid"], served["slow"]), served
    replicas.close()


async def test_round_robin_splits_evenly() -> None:
    replicas = ReplicaSet([fake(0.005), fake(0.02), fake(0.05)], name="m", strategy="round_robin")
    await load(replicas, clients=3, each=40)
    served = shares(replicas)
    assert all(abs(n - 40) <= 4 for n in served.values()), served
    replicas.close()


async def test_weighted_follows_the_weights() -> None:
    members = [fake(0, weight=1), fake(0, weight=2), fake(0, weight=3)]
    replicas = ReplicaSet(members, name="m", strategy="weighted", seed=7)
    await load(replicas, clients=1, each=3000)
    served = list(shares(replicas).values())
    for n, weight in zip(served, (1, 2, 3), strict=True):
        assert abs(n - 3000 * weight / 6) <= 0.1 * 3000 * weight / 6, served
    replicas.close()


def test_each_replica_keeps_its_own_concurrency_limit() -> None:
    replicas = ReplicaSet([fake(0.05, capacity=2), fake(0.05, capacity=2)], name="m")
    peak: collections.Counter[str] = collections.Counter()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for r in replicas._replicas:
                peak[r.id] = max(peak[r.id], r.in_flight)

    watcher = threading.Thread(target=watch)
    watcher.start()
    asyncio.run(load(replicas, clients=8, each=3))
    done.set()
    watcher.join()
    assert max(peak.values()) == 2 and sum(r.served for r in replicas._replicas) == 24
    replicas.close()


def failing(after: int = 0) -> FakeChatWorker:
    def script(request: ChatRequest) -> Iterator[StreamEvent]:
        for _ in range(after):
            yield TextDelta("partial ")
        raise UpstreamUnavailableError("the upstream is down")

    return FakeChatWorker(script=script)


def test_a_failure_before_output_is_retried_once_and_then_cools_down() -> None:
    replicas = ReplicaSet([], name="m", allowed_fails=2, cooldown_s=60, strategy="round_robin")
    bad = replicas.adopt(failing(), kind="fake", replica_id="a-bad")
    replicas.adopt(FakeChatWorker(), kind="fake", replica_id="b-good")
    for _ in range(6):
        assert replicas.invoke(ask()).text == "hi"  # never the caller's problem
    assert replicas.replica(bad).served == 2  # then it cooled down and got nothing more
    assert "upstream is down" in (replicas.replica(bad).last_error or "")


def test_a_stream_that_already_sent_text_ends_with_the_error() -> None:
    replicas = ReplicaSet([], name="m", strategy="round_robin")  # "a" first
    replicas.adopt(failing(after=2), kind="fake", replica_id="a")
    replicas.adopt(FakeChatWorker(), kind="fake", replica_id="b")
    seen = []
    with pytest.raises(UpstreamUnavailableError):
        for event in replicas.stream(ask()):
            seen.append(event)
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["partial ", "partial "]  # never replayed
    assert replicas.replica("b").served == 0


def test_no_replica_left_falls_back_to_another_model() -> None:
    registry = ModelRegistry([ModelEntry("backup", "fake")])
    replicas = ReplicaSet([], name="m", fallbacks=["backup"], registry=registry, allowed_fails=1, cooldown_s=60)
    replicas.adopt(failing(), kind="fake")
    assert replicas.invoke(ask("from the backup")).text == "from the backup"
    alone = ReplicaSet([], name="m", allowed_fails=1, cooldown_s=60)
    alone.adopt(failing(), kind="fake")
    with pytest.raises(UpstreamUnavailableError) as info:
        alone.invoke(ask())
    assert info.value.status_code == 503 and "no replica of 'm'" in str(info.value)


class Flaky(FakeChatWorker):
    healthy = True

    def check_health(self, timeout: float) -> None:
        if not self.healthy:
            raise UpstreamUnavailableError("connection refused")


def test_active_checks_mark_a_replica_unhealthy_and_ready_again() -> None:
    replicas = ReplicaSet([], name="m", health_check_period_s=3600)
    worker = Flaky()
    replicas.adopt(worker, kind="fake", replica_id="r")
    worker.healthy = False
    replicas.check_now()
    assert replicas.replica("r").state is ReplicaState.UNHEALTHY
    with pytest.raises(UpstreamUnavailableError):
        replicas.invoke(ask())
    worker.healthy = True
    replicas.check_now()
    assert replicas.replica("r").state is ReplicaState.READY and replicas.invoke(ask()).text == "hi"


async def test_replace_under_load_refuses_nothing_and_stops_the_old_replicas() -> None:
    replicas = ReplicaSet([fake(0.02, capacity=4), fake(0.02, capacity=4)], name="m")
    old = [r.id for r in replicas._replicas]
    old_workers = [r.worker for r in replicas._replicas]
    running = asyncio.ensure_future(load(replicas, clients=4, each=40))
    await asyncio.sleep(0.3)
    await asyncio.to_thread(
        replicas.replace, [fake(0.02, capacity=4, id="new-a"), fake(0.02, capacity=4, id="new-b")], grace_s=10
    )
    await running  # every request answered "hi": none refused, none failed
    assert [r.id for r in replicas._replicas] == ["new-a", "new-b"]
    assert all(replicas.replica(i).served > 0 for i in ("new-a", "new-b"))
    assert not any(r.id in old for r in replicas._replicas) and all(w is not None for w in old_workers)
    replicas.close()


def test_config_entries_sharing_a_name_become_one_replica_set() -> None:
    config = parse_config(
        {
            "models": [
                {"name": "smol", "kind": "fake", "replicas": 2},
                {"name": "smol", "kind": "fake", "params": {"delay": 0.01}, "weight": 3},
                {"name": "solo", "kind": "fake"},
            ],
            "router": {"strategy": "round_robin", "per_model": {"smol": "weighted"}, "cooldown_s": 1},
            "fallbacks": {"smol": ["solo"]},
        }
    )
    registry = config.registry(include_builtin=False)
    assert registry.names() == ["smol", "solo"] and registry.entry("solo").kind == "fake"
    smol = registry.chat("smol")
    assert isinstance(smol, ReplicaSet) and len(smol.describe()) == 3
    assert smol._strategy.__class__.__name__ == "Weighted" and smol.policy.cooldown_s == 1
    assert smol.invoke(ask()).text == "hi"
    registry.close()


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"router": {"strategy": "fastest"}}, "router.strategy"),
        ({"models": [{"name": "a", "kind": "fake"}], "fallbacks": {"a": ["nope"]}}, "fallbacks.a[0]"),
        ({"fallbacks": {"ghost": ["smollm2-135m"]}}, "fallbacks.ghost"),
        ({"models": [{"name": "a", "kind": "fake", "replicas": 0}]}, "models[0].replicas"),
    ],
)
def test_router_and_fallback_typos_are_refused_by_path(data: dict[str, Any], param: str) -> None:
    from modelport.config import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.param == param


def test_finish_event_is_passed_through() -> None:
    replicas = ReplicaSet([fake(0)], name="m")
    events = list(replicas.stream(ask()))
    assert isinstance(events[-1], Finish)
    replicas.close()


async def test_a_cache_key_sticks_to_its_replica_while_it_is_healthy() -> None:
    replicas = ReplicaSet([], name="m", strategy="round_robin", health_check_period_s=3600)
    workers = {rid: Flaky() for rid in ("a", "b", "c")}
    for rid, worker in workers.items():
        replicas.adopt(worker, kind="fake", replica_id=rid)

    async def turn(key: str | None) -> None:
        request = ChatRequest([UserMessage("hi")], cache_key=key)
        assert (await replicas.ainvoke(request)).text == "hi"

    # Round robin alone would spread each conversation over all three (two keys, three
    # replicas); each stays on one replica instead, even under load.
    await asyncio.gather(*(turn(key) for _ in range(5) for key in ("conv-1", "conv-2")))
    bound = {key: replicas.affinity(key) for key in ("conv-1", "conv-2")}
    for key, rid in bound.items():
        assert rid is not None
        served = [r for r in workers[rid].requests if r.cache_key == key]
        assert len(served) == 5, (key, rid)
    # Requests without a key are still spread by the strategy.
    await asyncio.gather(*(turn(None) for _ in range(6)))
    assert all(sum(r.cache_key is None for r in w.requests) == 2 for w in workers.values())
    # A replica that turns unhealthy loses its conversations to the others, which keep them.
    moved = bound["conv-1"]
    assert moved is not None
    workers[moved].healthy = False
    replicas.check_now()
    await turn("conv-1")
    assert replicas.affinity("conv-1") not in (None, moved)
    replicas.close()


def test_a_set_of_embedders_reranks_on_its_replicas_and_falls_back_to_a_reranker() -> None:
    from modelport.core import BadRequestError, RerankRequest
    from modelport.workers.kinds.fake import FakeEmbeddingWorker

    request = RerankRequest("q", ["a", "b", "q"])
    replicas = ReplicaSet([], name="m")
    replicas.adopt(FakeEmbeddingWorker(8), kind="fake-embeddings", replica_id="r0")
    replicas.adopt(FakeEmbeddingWorker(8), kind="fake-embeddings", replica_id="r1")
    scores = replicas.score(request).scores
    assert scores == FakeEmbeddingWorker(8).score(request).scores
    assert scores[2] == pytest.approx(1.0)
    assert asyncio.run(replicas.ascore(request)).scores == scores

    # A chat replica cannot rerank: a 400 naming the model, not a retry.
    chat = ReplicaSet([], name="c")
    chat.adopt(FakeChatWorker(), kind="fake")
    with pytest.raises(BadRequestError) as caught:
        chat.score(request)
    assert caught.value.param == "model"

    class Down(FakeEmbeddingWorker):
        def embed(self, request: Any) -> Any:
            raise UpstreamUnavailableError("connection refused")

    # Once no replica can serve, the fallback (an embedder) reranks.
    registry = ModelRegistry([ModelEntry("backup", "fake-embeddings", {"dimensions": 8})])
    down = ReplicaSet([], name="m", fallbacks=["backup"], registry=registry, allowed_fails=1, cooldown_s=60)
    down.adopt(Down(8), kind="fake-embeddings")
    assert down.score(request).scores == scores
