"""langchain-tests standard suites for ChatModelPort and ModelPortEmbeddings on the built-in models."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests, EmbeddingsIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests, EmbeddingsUnitTests

from modelport.integrations.langchain import ChatModelPort, ModelPortEmbeddings


class _Local:
    model_name = ""

    @property
    def chat_model_class(self) -> type[ChatModelPort]:
        return ChatModelPort

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model": self.model_name}

    @property
    def has_tool_choice(self) -> bool:
        return True

    @property
    def has_structured_output(self) -> bool:
        return True

    @property
    def structured_output_kwargs(self) -> dict[str, Any]:
        return {"method": "json_schema"}

    @property
    def supports_json_mode(self) -> bool:
        return True

    @property
    def returns_usage_metadata(self) -> bool:
        return True

    @property
    def supports_model_override(self) -> bool:
        return False


class TestLlamaCppUnit(_Local, ChatModelUnitTests):
    model_name = "smollm2-135m"

    @property
    def standard_chat_model_params(self) -> dict[str, Any]:
        return {k: v for k, v in super().standard_chat_model_params.items() if k != "api_key"}


class _LocalIntegration(_Local, ChatModelIntegrationTests):
    @property
    def chat_model_params(self) -> dict[str, Any]:
        # A 135M model sometimes repeats itself until the context is full (8192 tokens, minutes on
        # two cores); no standard test needs more than a few dozen tokens.
        return {**super().chat_model_params, "max_tokens": 256}

    @pytest.mark.xfail(
        reason="model limit: in auto mode (this test sets no tool_choice) SmolLM2-135M answers the weather "
        "question in prose instead of calling get_weather",
        strict=False,
    )
    @pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)  # as upstream
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)

    @pytest.mark.xfail(
        reason="model limit: json_mode only constrains the answer to some JSON object; SmolLM2-135M leaves out "
        "the requested 'punchline' key",
        strict=False,
    )
    def test_json_mode(self, model: BaseChatModel) -> None:
        super().test_json_mode(model)

    @pytest.mark.xfail(
        reason="model limit: forced to call magic_function, SmolLM2-135M sometimes fills its argument with a "
        "different number than the 3 in the question (the call itself always parses and validates)",
        strict=False,
    )
    @pytest.mark.parametrize("model", [{}, {"output_version": "v1"}], indirect=True)  # as upstream
    def test_tool_calling(self, model: BaseChatModel) -> None:
        super().test_tool_calling(model)

    @pytest.mark.xfail(
        reason="model limit: forced to call magic_function, SmolLM2-135M sometimes fills its argument with a "
        "different number than the 3 in the question (the call itself always parses and validates)",
        strict=False,
    )
    async def test_tool_calling_async(self, model: BaseChatModel) -> None:
        await super().test_tool_calling_async(model)

    @pytest.mark.xfail(
        reason="model limit: SmolLM2-135M does not copy non-Latin names reliably; asked for "
        "'こんにちは株式会社' it sometimes writes other kana (the call and its UTF-8 round trip are fine)",
        strict=False,
    )
    def test_unicode_tool_call_integration(self, model: BaseChatModel) -> None:
        super().test_unicode_tool_call_integration(model)


class TestLlamaCppIntegration(_LocalIntegration):
    model_name = "smollm2-135m"


class TestTransformersUnit(TestLlamaCppUnit):
    model_name = "smollm2-135m-hf"


@pytest.mark.full
class TestTransformersIntegration(_LocalIntegration):
    model_name = "smollm2-135m-hf"


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
