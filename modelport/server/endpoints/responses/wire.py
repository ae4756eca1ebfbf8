"""The Responses request bodies, as pydantic models (items and tools are checked by ``translate``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CreateResponse", "InputTokensRequest"]


class InputTokensRequest(BaseModel):
    """``POST /v1/responses/input_tokens``: what a response would be asked, to count its input."""

    # Clients send fields of their own (Codex's client_metadata): kept and ignored.
    model_config = ConfigDict(extra="allow")

    model: str
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = None
    previous_response_id: str | None = None
    reasoning: dict[str, Any] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    conversation: str | dict[str, Any] | None = None


class CreateResponse(InputTokensRequest):
    """``POST /v1/responses``."""

    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    # Checked here too: without the logprobs include it never reaches a ChatRequest, yet it is echoed.
    top_logprobs: int | None = Field(None, ge=0, le=20)
    metadata: dict[str, str] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    store: bool = True
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    include: list[str] | None = None
    prompt_cache_key: str | None = None
    client_metadata: dict[str, Any] | None = None
    service_tier: str | None = None
    background: bool | None = None
    prompt: dict[str, Any] | None = None
    max_tool_calls: int | None = None
