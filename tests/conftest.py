"""Shared fixtures: each real model is loaded once per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from modelport.workers import ChatWorker, EmbeddingWorker, ModelRegistry

CHAT_MODELS = ("smollm2-135m", "smollm2-135m-hf")


@pytest.fixture(scope="session")
def registry() -> Iterator[ModelRegistry]:
    reg = ModelRegistry.builtin()
    yield reg
    reg.close()


@pytest.fixture(scope="session")
def llama_worker(registry: ModelRegistry) -> ChatWorker:
    return registry.chat("smollm2-135m")


@pytest.fixture(scope="session")
def hf_worker(registry: ModelRegistry) -> ChatWorker:
    return registry.chat("smollm2-135m-hf")


@pytest.fixture(scope="session")
def minilm(registry: ModelRegistry) -> EmbeddingWorker:
    return registry.embedder("minilm-l6")


@pytest.fixture(params=CHAT_MODELS, scope="session")
def chat_worker(request: pytest.FixtureRequest, registry: ModelRegistry) -> ChatWorker:
    return registry.chat(request.param)
