"""OpenAI's wire types for the endpoints the server implements, as pydantic models.

Requests accept what the official clients send; unknown fields are kept (so that
vendor extensions do not fail validation) and ignored. Responses are built with
every field the spec requires, nullable ones included, and serialised with
``exclude_unset`` so optional fields appear only when they carry something.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChatChoice",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessage",
    "ChunkChoice",
    "CompletionChoice",
    "CompletionLogprobs",
    "CompletionRequest",
    "CompletionResponse",
    "Delta",
    "EmbeddingData",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EmbeddingUsage",
    "ErrorBody",
    "ErrorResponse",
    "FunctionCall",
    "FunctionCallDelta",
    "Logprobs",
    "ModelCard",
    "ModelList",
    "StreamOptions",
    "TokenLogprob",
    "ToolCall",
    "ToolCallChunk",
    "TopLogprob",
    "Usage",
    "WireResponse",
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="allow")


class StreamOptions(_Request):
    """``stream_options``: ``include_usage`` adds a final usage-only chunk."""

    include_usage: bool = False


class ChatCompletionRequest(_Request):
    """``POST /v1/chat/completions``; messages and tools are checked by the core types."""

    model: str
    messages: list[dict[str, Any]]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    # vLLM's extensions, sent by clients as extra body fields.
    repetition_penalty: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    # modelport's own: how sure a local model must be before it calls a tool in auto mode.
    tool_call_threshold: float | None = None
    user: str | None = None
    prompt_cache_key: str | None = None
    reasoning_effort: str | None = None


class CompletionRequest(_Request):
    """``POST /v1/completions``, the legacy text endpoint."""

    model: str
    prompt: str | list[str] | list[int] | list[list[int]]
    max_tokens: int | None = 16
    temperature: float | None = None
    top_p: float | None = None
    n: int = 1
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    echo: bool | None = None
    suffix: str | None = None
    logprobs: int | None = None
    best_of: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    # vLLM's extensions, sent by clients as extra body fields.
    repetition_penalty: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    user: str | None = None


class EmbeddingRequest(_Request):
    """``POST /v1/embeddings``."""

    model: str
    input: str | list[str] | list[int] | list[list[int]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None
    truncate: bool = Field(default=False, description="extra: cut over-long inputs to fit (TEI's and vLLM's)")


# -- responses -----------------------------------------------------------------------------------


class WireResponse(BaseModel):
    """Base of every answer body: strict fields, and JSON with unset optional fields left out."""

    model_config = ConfigDict(extra="forbid")

    def model_post_init(self, context: Any, /) -> None:
        """Marks fields with a non-None default as set, so that they are always sent."""
        # Fields with a non-None default (``object``, ``role``, ``type``) are always sent;
        # fields defaulting to None are sent only when set.
        for name, info in type(self).model_fields.items():
            if info.default is not None and not info.is_required():
                self.model_fields_set.add(name)

    def json_bytes(self) -> bytes:
        """The JSON body, optional fields left out unless set."""
        return self.model_dump_json(exclude_unset=True).encode()


class TopLogprob(WireResponse):
    """An alternative token and its log probability."""

    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(WireResponse):
    """The log probability of one generated token (``ChatCompletionTokenLogprob``)."""

    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[TopLogprob]


class Logprobs(WireResponse):
    """Log probabilities of a choice or delta."""

    content: list[TokenLogprob] | None
    refusal: list[TokenLogprob] | None


class FunctionCall(WireResponse):
    """The function a tool call invokes, with its JSON arguments."""

    name: str
    arguments: str


class ToolCall(WireResponse):
    """One complete tool call of an assistant message."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class FunctionCallDelta(WireResponse):
    """A fragment of a streamed function call."""

    name: str | None = None
    arguments: str | None = None


class ToolCallChunk(WireResponse):
    """A streamed tool-call fragment (``ChatCompletionMessageToolCallChunk``)."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta | None = None


class Usage(WireResponse):
    """Token counts (``CompletionUsage``)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    completion_tokens_details: dict[str, int] | None = None
    prompt_tokens_details: dict[str, int] | None = None


class ChatMessage(WireResponse):
    """The assistant message of a whole chat completion."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None
    tool_calls: list[ToolCall] | None = None
    reasoning_content: str | None = None


class ChatChoice(WireResponse):
    """One choice of a whole chat completion."""

    index: int
    message: ChatMessage
    finish_reason: str
    logprobs: Logprobs | None


class ChatCompletion(WireResponse):
    """``CreateChatCompletionResponse``."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class Delta(WireResponse):
    """What one stream chunk adds to a choice."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCallChunk] | None = None


class ChunkChoice(WireResponse):
    """One choice's part of a stream chunk."""

    index: int
    delta: Delta
    finish_reason: str | None
    logprobs: Logprobs | None = None


class ChatCompletionChunk(WireResponse):
    """``CreateChatCompletionStreamResponse``: one SSE ``data:`` payload."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class CompletionLogprobs(WireResponse):
    """The legacy completion's log probabilities: parallel lists, one entry per token."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(WireResponse):
    """One choice of a legacy text completion."""

    text: str
    index: int
    logprobs: CompletionLogprobs | None
    finish_reason: str | None


class CompletionResponse(WireResponse):
    """``CreateCompletionResponse`` (also each chunk of its stream)."""

    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class EmbeddingData(WireResponse):
    """One vector: a float list, or base64 little-endian float32."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(WireResponse):
    """Tokens an embeddings request used."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(WireResponse):
    """``CreateEmbeddingResponse``."""

    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


class ModelCard(WireResponse):
    """``Model``: one served model or chain."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    # modelport's own: what the model serves, and whether it is a pretrained base model, not
    # instruction-tuned (the playground does not open on one).
    task: Literal["chat", "embedding", "rerank"] = "chat"
    roles: list[str] = []  # every role it plays: chat, embedding, rerank
    base_model: bool = False
    aliases: list[str] = []  # other names (exact or globs) the model answers to


class ModelList(WireResponse):
    """``ListModelsResponse``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(WireResponse):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(WireResponse):
    """``ErrorResponse``: the body of every 4xx and 5xx answer."""

    error: ErrorBody
