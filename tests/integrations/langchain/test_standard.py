"""langchain-tests standard suites for ChatModelPort and ModelPortEmbeddings on the built-in models."""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests, EmbeddingsUnitTests

from modelport.integrations.langchain import ChatModelPort, ModelPortEmbeddings
from tests.integrations.smollm2 import SEED, SmolLM2Features, SmolLM2Limits


class _Local(SmolLM2Features):
    model_name = ""

    @property
    def chat_model_class(self) -> type[ChatModelPort]:
        return ChatModelPort

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": self.model_name}


class TestLlamaCppUnit(_Local, ChatModelUnitTests):
    model_name = "smollm2-135m"

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        return {k: v for k, v in super().standard_chat_model_params.items() if k != "api_key"}


class _LocalIntegration(_Local, SmolLM2Limits, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        # A 135M model sometimes repeats itself until the context is full (4096 tokens, minutes on
        # two cores); no standard test needs more than a few dozen tokens. Default sampling under
        # one seed: every run of a test draws the same answers, in CI as here.
        return {**super().chat_model_params, "max_tokens": 64, "seed": SEED}


class TestLlamaCppIntegration(_LocalIntegration):
    model_name = "smollm2-135m"


# The standard suites test ChatModelPort, which is the same class whatever worker it wraps. They
# run here on the llama.cpp worker and, in test_langchain_network.py, through ChatOpenAI against
# `modelport serve`; the transformers worker's own behaviour (tools, grammars, batching) is
# covered by the worker suites, which run on every chat worker. A second run of these suites on
# transformers took 7 of CI's 45 minutes and found nothing the first run did not.


class TestEmbeddingsUnit(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[ModelPortEmbeddings]:
        return ModelPortEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "minilm-l6"}


class TestEmbeddingsIntegration(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[ModelPortEmbeddings]:
        return ModelPortEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": "minilm-l6"}
