"""What a worker can really do, declared once and read by every surface."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SAMPLING_FIELDS", "Capabilities"]

# Optional sampling fields a worker may or may not honour; the rest (temperature, top_p, seed,
# max_tokens, stop) every chat worker must.
SAMPLING_FIELDS = frozenset(
    {"frequency_penalty", "presence_penalty", "repetition_penalty", "logit_bias", "top_k", "min_p"}
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """A worker's declared abilities.

    Attributes:
        chat: Generates chat completions.
        embeddings: Produces embeddings.
        rerank: Scores documents against a query (``RerankWorker.score``).
        tools: Accepts tools and returns tool calls.
        tool_call_streaming: Streams tool calls as incremental deltas.
        tool_choice: Honours ``required`` and named tool_choice.
        structured_output: Honours JSON-schema response formats.
        vision: Accepts image content.
        logprobs: Returns token log probabilities.
        reasoning: Emits reasoning deltas.
        max_context: Context window in tokens, if known.
        max_output_tokens: Largest completion, if known.
        embedding_dimensions: Vector size of an embedding worker.
        sampling: Which of ``SAMPLING_FIELDS`` the worker honours; others are refused by name.
        raw_prompts: Continues a raw text prompt without the chat template (legacy completions).
        max_rerank_pairs: Query-document pairs one rerank call may hold, if the worker caps them.
        max_pair_tokens: Tokens one query-document pair may take, if known.
    """

    chat: bool = True
    embeddings: bool = False
    rerank: bool = False
    tools: bool = False
    tool_call_streaming: bool = False
    tool_choice: bool = False
    structured_output: bool = False
    vision: bool = False
    logprobs: bool = False
    reasoning: bool = False
    max_context: int | None = None
    max_output_tokens: int | None = None
    embedding_dimensions: int | None = None
    sampling: frozenset[str] = frozenset()
    raw_prompts: bool = False
    max_rerank_pairs: int | None = None
    max_pair_tokens: int | None = None
