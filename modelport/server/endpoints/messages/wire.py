"""The Messages request bodies, as pydantic models (blocks and tools are checked by ``translate``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["CountTokensRequest", "CreateMessage"]


class CountTokensRequest(BaseModel):
    """``POST /v1/messages/count_tokens``: what a message would be asked, to count its input."""

    # Newer clients send fields of their own (Claude Code's context_management): kept, ignored.
    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[dict[str, Any]]
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    mcp_servers: list[dict[str, Any]] | None = None


class CreateMessage(CountTokensRequest):
    """``POST /v1/messages``; ``max_tokens`` is required, as Anthropic's is."""

    max_tokens: int
    stop_sequences: list[str] | None = None
    stream: bool = False
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    metadata: dict[str, Any] | None = None
    container: str | dict[str, Any] | None = None
    service_tier: str | None = None
