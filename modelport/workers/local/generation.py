"""What engines and the pipeline exchange: a rendered prompt, sampling settings, generation stats.

Kept apart from the pipeline so that engines and tool choice can use them without importing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelport.core.events import TokenLogprob
from modelport.core.request import ChatRequest
from modelport.workers.local.constrained.constraints import JsonConstraint

__all__ = ["GenerationParams", "GenerationStats", "Prompt"]


@dataclass(frozen=True, slots=True)
class Prompt:
    """A rendered, tokenised prompt."""

    ids: list[int]
    text: str


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """What an engine needs to sample one completion.

    Attributes:
        max_new_tokens: Hard limit on generated tokens.
        temperature: ``None`` for the model's default; 0 for greedy.
        top_p: ``None`` for the model's default.
        seed: Seed for sampling, if any.
        constraint: A JSON constraint from the output parser, for the engine to enforce.
        logprobs: ``None`` for none; else record each token's log probability and this many
            most likely alternatives (engines that can, see ``Capabilities.logprobs``).
        score: Record the log probabilities of the first ``score`` chosen tokens in
            ``GenerationStats.scores`` (for deciding between answers; never sent to the caller).
        probe: Token ids whose log probabilities at the first generated position, under the
            model's own distribution, go to ``GenerationStats.probed`` in this order (for
            reading a judgement such as yes or no without generating it).
        hold_after_score: Once ``score`` tokens are scored, an engine that can may set this answer
            aside while the others submitted with it run (the auto-mode call branch waits for
            the decision); engines that cannot ignore it.
        top_k, min_p, frequency_penalty, presence_penalty, repetition_penalty, logit_bias: As in
            ``ChatRequest``; set only where the engine declares them in ``sampling_fields``.
    """

    max_new_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    constraint: JsonConstraint | None = None
    logprobs: int | None = None
    score: int = 0
    hold_after_score: bool = False
    probe: tuple[int, ...] = ()
    top_k: int | None = None
    min_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    logit_bias: Mapping[int, float] | None = None

    @classmethod
    def for_request(cls, request: ChatRequest, **fields: Any) -> GenerationParams:
        """The request's sampling fields, with ``fields`` (budget, seed, constraint...) added."""
        return cls(
            temperature=request.temperature,
            top_p=request.top_p,
            logprobs=(request.top_logprobs or 0) if request.logprobs else None,
            top_k=request.top_k,
            min_p=request.min_p,
            frequency_penalty=request.frequency_penalty,
            presence_penalty=request.presence_penalty,
            repetition_penalty=request.repetition_penalty,
            logit_bias=request.logit_bias,
            **fields,
        )


@dataclass(slots=True)
class GenerationStats:
    """Filled in by an engine while it generates."""

    tokens: int = 0
    eos: bool = False
    cached_tokens: int = 0  # prompt tokens the engine did not compute again
    stop_sequence: str | None = None  # the request's stop string that ended the text
    logprobs: list[TokenLogprob] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)  # chosen tokens' log probabilities, if asked
    probed: list[float] = field(default_factory=list)  # ``GenerationParams.probe``'s log probabilities
    extra: dict[str, Any] = field(default_factory=dict)
