"""Shared fixtures: each real model is loaded once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from modelport.workers import ChatWorker, EmbeddingWorker, ModelRegistry
from modelport.workers.model_registry import default_registry

CHAT_MODELS = ("smollm2-135m", "smollm2-135m-hf")


@pytest.fixture(scope="session")
def registry() -> Iterator[ModelRegistry]:
    # The integrations fall back to the process-wide registry; sharing it loads each model once.
    reg = default_registry()
    yield reg
    # Closing here, not at interpreter exit, spares llama.cpp's finalizer a half-torn-down module.
    reg.close()


@pytest.fixture(scope="session")
def llama_worker(registry: ModelRegistry) -> ChatWorker:
    return registry.chat("smollm2-135m")


@pytest.fixture(scope="session")
def hf_worker(registry: ModelRegistry) -> ChatWorker:
    return registry.chat("smollm2-135m-hf")


@pytest.fixture(scope="session")
def gemma_worker(registry: ModelRegistry) -> ChatWorker:
    return registry.chat("gemma3-270m")


@pytest.fixture(scope="session")
def minilm(registry: ModelRegistry) -> EmbeddingWorker:
    return registry.embedder("minilm-l6")


@pytest.fixture(params=CHAT_MODELS, scope="session")
def chat_worker(request: pytest.FixtureRequest, registry: ModelRegistry) -> ChatWorker:
    return registry.chat(request.param)


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server on loopback, serving the built-in GGUF.

    Yields the base URL (ending in ``/v1``). Two aliases: ``smollm2`` for chat and
    ``smollm2-embed`` (the same file in embedding mode).
    """
    from tests.llama_server import run_llama_server

    with run_llama_server() as url:
        yield url


@pytest.fixture(scope="session")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The folder of a tiny random cross-encoder built for the session (``tests.cross_encoders``)."""
    from tests.cross_encoders import build_tiny

    return str(build_tiny(tmp_path_factory.mktemp("tiny-cross-encoder")))
