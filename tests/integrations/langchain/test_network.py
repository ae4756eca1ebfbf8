"""langchain-tests over the network: the same model, reached through modelport's server.

- ``ChatOpenAI(base_url=<modelport serve>, stream_usage=True)``: langchain-openai as a real client.
- ``ChatOpenAI(base_url=..., use_responses_api=True)``: the same client through /v1/responses.
- ``ChatModelPort`` over the ``openai`` worker: our own client path, against the same server.

Both must pass and fail exactly where ChatModelPort in process does (``SmolLM2Limits``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests
from typing_extensions import TypedDict

from modelport.integrations.langchain import ChatModelPort, ModelPortEmbeddings
from modelport.server import create_app
from modelport.workers import ModelRegistry
from tests.integrations.smollm2 import SEED, SmolLM2Features, SmolLM2Limits
from tests.loopback import serve
from tests.server.spec import SpecCheck


@pytest.fixture(scope="module")
def spec_check(registry: ModelRegistry) -> SpecCheck:
    models = ModelRegistry()
    models.add_worker("smollm2-135m", registry.chat("smollm2-135m"), kind="llama-cpp")
    models.add_worker("minilm-l6", registry.embedder("minilm-l6"), kind="sentence-transformers")
    return SpecCheck(create_app(models))


@pytest.fixture(scope="module")
def served(spec_check: SpecCheck) -> Iterator[str]:
    with serve(spec_check) as url:
        yield f"{url}/v1"


@pytest.fixture(autouse=True)
def _answers_follow_the_spec(spec_check: SpecCheck) -> Iterator[None]:
    # Every answer the suites received, JSON or SSE chunk, must validate against OpenAI's spec.
    before = len(spec_check.failures)
    yield
    assert not spec_check.failures[before:], "\n".join(spec_check.failures[before:][:10])


@pytest.fixture(autouse=True)
def _url(request: pytest.FixtureRequest, served: str) -> None:
    if request.cls is not None:
        request.cls.url = served


class _Served(SmolLM2Features, SmolLM2Limits, ChatModelIntegrationTests):
    url = ""


class TestChatOpenAIAgainstModelportServe(_Served):
    @property
    def chat_model_class(self) -> Any:
        from langchain_openai import ChatOpenAI

        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": "smollm2-135m",
            "base_url": self.url,
            "api_key": "unused",
            "stream_usage": True,
            "max_tokens": 64,
            "seed": SEED,
            "max_retries": 0,
        }


class TestChatOpenAIResponsesAgainstModelportServe(_Served):
    """ChatOpenAI in its Responses mode: the same suite through /v1/responses."""

    @property
    def chat_model_class(self) -> Any:
        from langchain_openai import ChatOpenAI

        return ChatOpenAI

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": "smollm2-135m",
            "base_url": self.url,
            "api_key": "unused",
            "use_responses_api": True,
            "max_tokens": 64,
            "temperature": 0,
            "max_retries": 0,
        }


class TestChatModelPortOverTheOpenAIWorker(_Served):
    @property
    def chat_model_class(self) -> type[ChatModelPort]:
        return ChatModelPort

    @property
    def chat_model_params(self) -> dict[str, Any]:
        remote = ModelRegistry()
        remote.register("served", "openai", model="smollm2-135m", base_url=self.url, timeout=120)
        return {"model": "served", "registry": remote, "max_tokens": 64, "seed": SEED}


class TestModelPortEmbeddingsOverTheOpenAIWorker(EmbeddingsIntegrationTests):
    url = ""

    @property
    def embeddings_class(self) -> type[ModelPortEmbeddings]:
        return ModelPortEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        remote = ModelRegistry()
        remote.register("served-embeddings", "openai", model="minilm-l6", base_url=self.url)
        return {"model": "served-embeddings", "registry": remote}


JOKE_PROMPT = "Tell me a joke about cats. Make sure to call the Joke function."


class Joke(TypedDict):
    """Joke to tell user."""

    setup: Annotated[str, ..., "The setup of the joke"]
    punchline: Annotated[str, ..., "The punchline of the joke"]


def _joke_schema() -> Any:
    return Joke


def _is_joke(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"setup", "punchline"}


def test_a_forced_call_fits_a_small_max_tokens_through_chat_openai(served: str) -> None:
    # The reported repro: at max_tokens=64 the call used to spend its last tokens on a closing tag,
    # get cut there, and come back as text, so LangChain returned None.
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="smollm2-135m", base_url=served, api_key="unused", max_tokens=64, temperature=0)
    structured = llm.with_structured_output(_joke_schema(), method="function_calling")
    assert _is_joke(structured.invoke(JOKE_PROMPT))
    chunks = list(structured.stream(JOKE_PROMPT))
    assert chunks and _is_joke(chunks[-1])


def test_a_forced_call_fits_a_small_max_tokens_in_process() -> None:
    model = ChatModelPort(model="smollm2-135m", max_tokens=64, temperature=0)
    assert _is_joke(model.with_structured_output(_joke_schema(), method="function_calling").invoke(JOKE_PROMPT))


def test_a_call_cut_by_max_tokens_is_an_invalid_call_never_text(served: str) -> None:
    from langchain_openai import ChatOpenAI

    # 20 tokens cannot hold the smallest Joke call, so the budget cuts it inside its first argument.
    llm = ChatOpenAI(model="smollm2-135m", base_url=served, api_key="unused", max_tokens=20, temperature=0)
    bound = llm.bind_tools([_joke_schema()], tool_choice="Joke")
    message = bound.invoke(JOKE_PROMPT)
    assert message.response_metadata["finish_reason"] == "length"
    assert message.content == "" and not message.tool_calls
    assert [call["name"] for call in message.invalid_tool_calls] == ["Joke"]
