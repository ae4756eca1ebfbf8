"""What SmolLM2-135M cannot do, shared by every langchain-tests suite that runs on it.

The same model answers whether it is reached in process (ChatModelPort), through the
openai worker, or through ChatOpenAI and modelport's server, so the same tests are
expected to fail in each, for the same reasons, and the pass/xfail sets match.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel

# Every suite samples (the standard tests set no temperature) under this seed, so a run repeats.
SEED = 7


class SmolLM2Features:
    """What every ChatModelIntegrationTests run on SmolLM2-135M switches on."""

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


class SmolLM2Limits:
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
