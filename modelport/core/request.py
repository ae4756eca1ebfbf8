"""The chat and embedding requests, validated on construction."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from modelport.core.errors import BadRequestError
from modelport.core.messages import Message
from modelport.core.tools import ToolChoice, ToolSpec, parse_tool_choice

__all__ = [
    "MAX_CHOICES",
    "MAX_EMBEDDING_INPUTS",
    "token_upper_bound",
    "ChatRequest",
    "EmbeddingRequest",
    "EmbeddingResult",
    "ResponseFormat",
]

MAX_CHOICES = 128
"""Choices one chat request may ask for (``n``), as OpenAI caps it."""
MAX_EMBEDDING_INPUTS = 2048
"""Inputs one embedding request may hold over HTTP, as OpenAI caps it."""


def token_upper_bound(text: str) -> int:
    """The most tokens ``text`` can be, found without a tokenizer; a limit skips what cannot reach it.

    A token holds at least one byte (byte-level BPE) or one character (WordPiece), and a model
    adds a few special tokens.
    """
    return len(text.encode()) + 8


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """OpenAI's response_format: plain text, any JSON object, or JSON matching ``schema``."""

    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: Mapping[str, Any] | None = None
    name: str = "response"
    strict: bool | None = None

    def __post_init__(self) -> None:
        if self.type not in ("text", "json_object", "json_schema"):
            raise BadRequestError(f"unknown response_format type {self.type!r}", param="response_format.type")
        if self.type == "json_schema" and not isinstance(self.schema, Mapping):
            raise BadRequestError("json_schema needs a schema object", param="response_format.json_schema.schema")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResponseFormat:
        """Parses OpenAI's wire form."""
        kind = data.get("type", "text")
        if kind == "json_schema":
            spec = data.get("json_schema")
            if not isinstance(spec, Mapping):
                raise BadRequestError("json_schema is required", param="response_format.json_schema")
            return cls("json_schema", spec.get("schema"), str(spec.get("name") or "response"), spec.get("strict"))
        return cls(kind)

    def to_dict(self) -> dict[str, Any]:
        """Returns OpenAI's wire form."""
        if self.type != "json_schema":
            return {"type": self.type}
        spec: dict[str, Any] = {"name": self.name, "schema": dict(self.schema or {})}
        if self.strict is not None:
            spec["strict"] = self.strict
        return {"type": "json_schema", "json_schema": spec}


def _check_number(name: str, value: float | None, low: float, high: float, *, low_open: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise BadRequestError(f"must be a number, got {value!r}", param=name)
    if value < low or value > high or (low_open and value == low):
        bound = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise BadRequestError(f"must be in {bound}, got {value}", param=name)


def _logit_bias(bias: Mapping[Any, Any]) -> dict[int, float]:
    """OpenAI's logit_bias (token ids as JSON strings) as ids to numbers in [-100, 100]."""
    if not isinstance(bias, Mapping):
        raise BadRequestError("must map token ids to numbers", param="logit_bias")
    out: dict[int, float] = {}
    for key, value in bias.items():
        try:
            token = int(key)
        except (TypeError, ValueError):
            raise BadRequestError(f"keys must be token ids, got {key!r}", param="logit_bias") from None
        if token < 0:
            raise BadRequestError(f"token ids are non-negative, got {token}", param="logit_bias")
        _check_number(f"logit_bias.{key}", value, -100.0, 100.0)
        out[token] = float(value)
    return out


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat completion request, independent of any backend.

    Attributes:
        messages: The conversation so far.
        temperature: Sampling temperature in [0, 2]; 0 means greedy.
        top_p: Nucleus sampling mass in (0, 1].
        max_tokens: Completion token limit; ``None`` means up to the context window.
        stop: Strings that end the completion; they are not part of the output.
        seed: Seed for reproducible sampling.
        tools: Functions the model may call.
        tool_choice: ``auto``, ``none``, ``required`` or a named tool (any accepted form).
        response_format: Text, JSON object, or JSON schema.
        n: Number of choices to generate.
        logprobs: Whether to return log probabilities of the chosen tokens.
        top_logprobs: How many alternatives to return per token.
        parallel_tool_calls: Whether several calls may come in one turn.
        frequency_penalty: OpenAI's penalty in [-2, 2] on tokens by how often they already appeared.
        presence_penalty: OpenAI's penalty in [-2, 2] on tokens that already appeared at all.
        repetition_penalty: The multiplicative penalty of vLLM and transformers, > 0 (1 is off).
        logit_bias: Token id to a bias in [-100, 100] added to its logit.
        top_k: Sample from the k most likely tokens only (0 or ``None`` for no limit).
        min_p: Drop tokens less likely than ``min_p`` times the most likely one, in [0, 1].
        tool_call_threshold: For local models in ``auto`` tool mode, how sure the model must be
            that a call beats a plain answer (a margin of mean log probability per token; lower
            calls more often). ``None`` takes the worker's setting.
        raw_prompt: Text to continue as it is, without the chat template (legacy completions),
            for workers whose capabilities say ``raw_prompts``; ``messages`` then only describe it.
        echo: With ``raw_prompt``: each choice starts with the prompt itself.
        reasoning_effort: How hard a reasoning model should think (``low``, ``medium``,
            ``high``...); workers whose models do not reason ignore it, as OpenAI does.
        cache_key: Requests of one conversation share it (OpenAI's ``prompt_cache_key``): a
            replica set sends them to the replica holding that conversation's prefix cache.
        extra: Backend-specific options passed through untouched.
    """

    messages: Sequence[Message]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: Sequence[str] = ()
    seed: int | None = None
    tools: Sequence[ToolSpec] = ()
    tool_choice: ToolChoice | str | Mapping[str, Any] | bool | None = None
    response_format: ResponseFormat | None = None
    n: int = 1
    logprobs: bool = False
    top_logprobs: int | None = None
    parallel_tool_calls: bool | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    logit_bias: Mapping[int, float] | None = None
    top_k: int | None = None
    min_p: float | None = None
    tool_call_threshold: float | None = None
    raw_prompt: str | None = None
    echo: bool = False
    reasoning_effort: str | None = None
    cache_key: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not self.messages:
            raise BadRequestError("at least one message is required", param="messages")
        _check_number("temperature", self.temperature, 0.0, 2.0)
        _check_number("top_p", self.top_p, 0.0, 1.0, low_open=True)
        _check_number("frequency_penalty", self.frequency_penalty, -2.0, 2.0)
        _check_number("presence_penalty", self.presence_penalty, -2.0, 2.0)
        _check_number("repetition_penalty", self.repetition_penalty, 0.0, 10.0, low_open=True)
        _check_number("min_p", self.min_p, 0.0, 1.0)
        _check_number("tool_call_threshold", self.tool_call_threshold, float("-inf"), float("inf"))
        if self.top_k is not None and (
            isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0
        ):
            raise BadRequestError(f"must be a non-negative integer, got {self.top_k!r}", param="top_k")
        if self.logit_bias is not None:
            set_(self, "logit_bias", _logit_bias(self.logit_bias))
        if self.max_tokens is not None and (
            isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int) or self.max_tokens < 1
        ):
            raise BadRequestError(f"must be a positive integer, got {self.max_tokens!r}", param="max_tokens")
        if isinstance(self.n, bool) or not isinstance(self.n, int) or self.n < 1:
            raise BadRequestError(f"must be a positive integer, got {self.n!r}", param="n")
        if self.n > MAX_CHOICES:
            raise BadRequestError(f"must be at most {MAX_CHOICES} (OpenAI's limit), got {self.n}", param="n")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise BadRequestError(f"must be an integer, got {self.seed!r}", param="seed")
        if self.top_logprobs is not None and not 0 <= self.top_logprobs <= 20:
            raise BadRequestError("must be between 0 and 20", param="top_logprobs")
        stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())
        if any(not isinstance(s, str) or not s for s in stop):
            raise BadRequestError("stop sequences must be non-empty strings", param="stop")
        set_(self, "stop", stop)
        set_(self, "messages", tuple(self.messages))
        set_(self, "tools", tuple(self.tools))
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise BadRequestError("tool names must be unique", param="tools")
        if self.echo and self.raw_prompt is None:
            raise BadRequestError("echo needs a raw prompt (legacy completions)", param="echo")
        if self.raw_prompt is not None and self.tools:
            raise BadRequestError("a raw prompt takes no tools", param="tools")
        set_(self, "tool_choice", parse_tool_choice(self.tool_choice, self.tools))

    def sampling_fields(self) -> list[str]:
        """The optional sampling fields this request sets to something other than "off"."""
        used = []
        if self.frequency_penalty:
            used.append("frequency_penalty")
        if self.presence_penalty:
            used.append("presence_penalty")
        if self.repetition_penalty is not None and self.repetition_penalty != 1.0:
            used.append("repetition_penalty")
        if self.logit_bias:
            used.append("logit_bias")
        if self.top_k:
            used.append("top_k")
        if self.min_p:
            used.append("min_p")
        return used

    @property
    def choice(self) -> ToolChoice | None:
        """The normalised tool_choice."""
        return self.tool_choice  # type: ignore[return-value]

    @property
    def wants_tools(self) -> bool:
        """True when tools are offered and not switched off."""
        return bool(self.tools) and self.tool_choice != "none"

    def with_(self, **changes: Any) -> ChatRequest:
        """Returns a copy with ``changes`` applied (and validated)."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """A batch of texts to embed.

    Attributes:
        texts: The inputs.
        input_type: ``query`` or ``document`` where the model distinguishes them.
        dimensions: Truncate the vectors to this many dimensions.
        normalize: Scale each vector to unit length.
        truncate: Cut an input longer than the model's limit to fit (sentence-transformers'
            default); with ``False`` such an input is refused, naming ``input[i]`` (OpenAI's).
    """

    texts: Sequence[str]
    input_type: Literal["query", "document"] | None = None
    dimensions: int | None = None
    normalize: bool = True
    truncate: bool = True

    def __post_init__(self) -> None:
        texts = (self.texts,) if isinstance(self.texts, str) else tuple(self.texts)
        if any(not isinstance(t, str) for t in texts):
            raise BadRequestError("every input must be a string", param="input")
        object.__setattr__(self, "texts", texts)
        if self.dimensions is not None and (not isinstance(self.dimensions, int) or self.dimensions < 1):
            raise BadRequestError(f"must be a positive integer, got {self.dimensions!r}", param="dimensions")
        if self.input_type not in (None, "query", "document"):
            raise BadRequestError(f"unknown input_type {self.input_type!r}", param="input_type")


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """Vectors in input order, with the tokens they cost."""

    vectors: list[list[float]]
    prompt_tokens: int = 0
    model: str = ""
