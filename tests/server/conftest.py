"""The served app, on real loopback HTTP, with every response checked against the OpenAI spec."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from modelport.core import (
    ChatRequest,
    Finish,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    TimeoutError,
    TokenLogprob,
    UpstreamUnavailableError,
    Usage,
)
from modelport.core.capabilities import Capabilities
from modelport.core.messages import content_text
from modelport.server import Limits, create_app
from modelport.workers import BUILTIN_MODELS, ModelEntry, ModelRegistry
from modelport.workers.kinds.fake import FakeChatWorker, FakeEmbeddingWorker, text_events, tool_call_events
from tests.loopback import serve
from tests.server.spec import SpecCheck

KEYS = ("key-one-8c1f", "key-two-77aa")


def scripted(request: ChatRequest) -> Any:
    """The fake model's behaviour, chosen by the last message."""
    last = content_text(request.messages[-1].content)
    if last.startswith("call "):
        name = last.split()[1]
        return tool_call_events(name, '{"city": "Paris"}', chunk=5)
    if last == "fail before":
        raise UpstreamUnavailableError("the upstream model is down", status_code=503)
    if last == "time out":
        raise TimeoutError("the upstream model did not answer in time")
    if last == "fail midway":
        return _fail_midway()
    if request.logprobs:
        top = request.top_logprobs or 0
        alternatives = tuple((f"alt{i}", -1.0 - i) for i in range(top))
        words = last.split(" ")
        deltas = [TextDelta(w + " ", (TokenLogprob(w + " ", -0.5, alternatives),)) for w in words]
        return [*deltas, Finish("stop", Usage(1, len(words)))]
    return text_events(last or "(empty)")


def _fail_midway() -> Any:
    yield TextDelta("partial ")
    yield TextDelta("answer")
    raise UpstreamUnavailableError("connection to the upstream model lost")


REASONER_SEEN: list[ChatRequest] = []


def reasoner(request: ChatRequest) -> Iterator[StreamEvent]:
    """Thinks, then answers; keeps each request so tests can see what came back to it."""
    REASONER_SEEN.append(request)
    yield ReasoningDelta("thinking about ")
    yield ReasoningDelta(content_text(request.messages[-1].content))
    yield TextDelta("the answer")
    yield Finish("stop", Usage(5, 3, reasoning_tokens=2))


def _never(request: ChatRequest) -> Iterator[StreamEvent]:
    yield from text_events("tick " * 400, chunk=5)
    yield Finish("stop")


@pytest.fixture(scope="session")
def fake_worker() -> FakeChatWorker:
    everything = Capabilities(
        tools=True, tool_call_streaming=True, tool_choice=True, structured_output=True, logprobs=True
    )
    return FakeChatWorker(script=scripted, capabilities=everything)


@pytest.fixture(scope="session")
def server_registry(registry: ModelRegistry, fake_worker: FakeChatWorker) -> ModelRegistry:
    served = ModelRegistry()
    # The session's loaded workers, shared rather than loaded twice.
    served.add_worker("smollm2-135m", registry.chat("smollm2-135m"), kind="llama-cpp")
    served.add_worker("minilm-l6", registry.embedder("minilm-l6"), kind="sentence-transformers")
    served.add_worker("fake", fake_worker, kind="fake")
    served.add_worker(
        "fake-nologprobs",
        FakeChatWorker(capabilities=Capabilities(tools=True, logprobs=False)),
        kind="fake",
    )
    served.add_worker("fake-slow", FakeChatWorker(script=_never, delay=0.01), kind="fake")
    thinking = FakeChatWorker(script=reasoner, capabilities=Capabilities(reasoning=True))
    served.add_worker("fake-reasoner", thinking, kind="fake")
    served.add_worker("fake-embeddings", FakeEmbeddingWorker(8), kind="fake-embeddings")
    served.add(ModelEntry("rag-bot", "runnable", {"factory": "examples.rag:build_chain"}))
    # Listed, never loaded here: the base model's card.
    served.add(next(e for e in BUILTIN_MODELS if e.name == "gemma3-270m"))
    return served


@pytest.fixture(scope="session")
def spec_check() -> list[SpecCheck]:
    return []


@pytest.fixture(scope="session")
def app(server_registry: ModelRegistry) -> Any:
    return create_app(server_registry, limits=Limits(max_concurrency=4, max_queue=32))


@pytest.fixture(scope="session")
def base_url(app: Any, spec_check: list[SpecCheck]) -> Iterator[str]:
    checked = SpecCheck(app)
    spec_check.append(checked)
    with serve(checked) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="session")
def keyed_url(server_registry: ModelRegistry, spec_check: list[SpecCheck]) -> Iterator[str]:
    checked = SpecCheck(create_app(server_registry, api_keys=list(KEYS)))
    spec_check.append(checked)
    with serve(checked) as url:
        yield f"{url}/v1"


@pytest.fixture(autouse=True)
def _every_response_follows_the_spec(spec_check: list[SpecCheck]) -> Iterator[None]:
    before = [len(c.failures) for c in spec_check]
    yield
    new = [f for c, n in zip(spec_check, before, strict=False) for f in c.failures[n:]]
    new += [f for c in spec_check[len(before) :] for f in c.failures]
    assert not new, "responses that break the OpenAI spec:\n" + "\n".join(new[:10])


@pytest.fixture
def client(base_url: str) -> Any:
    from openai import OpenAI

    with OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120) as c:
        yield c


@pytest.fixture
def aclient(base_url: str) -> Any:
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=120)
