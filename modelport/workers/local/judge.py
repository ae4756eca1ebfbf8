"""Reranking with a local chat model: the probability that it answers "yes" to a judging prompt.

This is how LLM rerankers such as Qwen3-Reranker score a pair: the chat template wraps one user
message that asks whether the document answers the query, and the score is
``P(yes) / (P(yes) + P(no))`` at the answer's first token, read from the model's own
distribution (``GenerationParams.probe``), so no text is generated or parsed. The spellings of
"yes" and "no" that are one token each ("yes", " Yes", ...) are summed on each side.

Pairs run concurrently on the worker's threads, so a batching engine decodes them together.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from typing import Any

from modelport.core.errors import BadRequestError
from modelport.core.messages import UserMessage
from modelport.core.request import ChatRequest
from modelport.core.rerank import RerankRequest, RerankResult
from modelport.workers.local.generation import GenerationParams, GenerationStats, Prompt

__all__ = ["DEFAULT_RERANK_PROMPT", "ChatJudge"]

DEFAULT_RERANK_PROMPT = (
    'Judge whether the Document answers the Query. Note that the answer can only be "yes" or "no".\n\n'
    "Query: {query}\n"
    "Document: {document}"
)
"""The judging prompt: a user message with ``{query}`` and ``{document}`` in it."""

_YES = ("yes", "Yes", "YES", " yes", " Yes", " YES")
_NO = ("no", "No", "NO", " no", " No", " NO")
_FIELD = re.compile(r"\{(query|document)\}")

Render = Callable[[ChatRequest], Prompt]
Generate = Callable[[Prompt, GenerationParams, threading.Event, GenerationStats], Any]


class ChatJudge:
    """Scores query-document pairs with one local chat model.

    Args:
        render: Renders a chat request with the model's template and tokenizes it.
        generate: The worker's ``_generate``; it must fill ``GenerationStats.probed``.
        tokenize: Plain text to token ids (no special tokens).
        max_context: The model's context window, in tokens.
        threads: Where pairs wait for the engine, at once.
        slots: Held around each pair (a non-batching engine's one-at-a-time lock).
        prompt: The judging prompt; ``{query}`` and ``{document}`` are filled in.

    Raises:
        BadRequestError: If ``prompt`` lacks ``{query}`` or ``{document}`` (naming ``rerank_prompt``).
    """

    def __init__(
        self,
        *,
        render: Render,
        generate: Generate,
        tokenize: Callable[[str], list[int]],
        max_context: int,
        threads: Executor,
        slots: AbstractContextManager[Any],
        prompt: str | None = None,
    ) -> None:
        template = DEFAULT_RERANK_PROMPT if prompt is None else prompt
        if not isinstance(template, str) or {m.group(1) for m in _FIELD.finditer(template)} != {"query", "document"}:
            raise BadRequestError("must hold both {query} and {document}", param="rerank_prompt")
        self.template = template
        self._render = render
        self._generate = generate
        self._tokenize = tokenize
        self._max_context = max_context
        self._threads = threads
        self._slots = slots
        self._probes: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def probes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The token ids that spell "yes" and "no" in one token each (found once)."""
        if self._probes is None:

            def single(words: Sequence[str]) -> tuple[int, ...]:
                ids = [self._tokenize(w) for w in words]
                return tuple(dict.fromkeys(i[0] for i in ids if len(i) == 1))

            yes, no = single(_YES), single(_NO)
            if not yes or not no:
                raise BadRequestError("this model's vocabulary has no one-token yes and no", param="model")
            self._probes = (yes, no)
        return self._probes

    def prompt(self, query: str, document: str) -> Prompt:
        """The rendered judging prompt for one pair."""
        values = {"query": query, "document": document}
        text = _FIELD.sub(lambda m: values[m.group(1)], self.template)
        return self._render(ChatRequest([UserMessage(text)]))

    def score(self, request: RerankRequest) -> RerankResult:
        """``P(yes)`` for each document, the pairs run at once; raises for a pair past the context."""
        yes, no = self.probes()
        prompts = [self.prompt(request.query, d) for d in request.documents]
        for i, prompt in enumerate(prompts):
            if len(prompt.ids) >= self._max_context:
                raise BadRequestError(
                    f"this pair's judging prompt has {len(prompt.ids)} tokens; the model takes "
                    f"{self._max_context} at most",
                    param=f"documents[{i}]",
                    code="context_length_exceeded",
                )
        params = GenerationParams(max_new_tokens=1, temperature=0.0, probe=yes + no)
        scores = list(self._threads.map(lambda p: self._one(p, params, len(yes)), prompts))
        return RerankResult(scores, sum(len(p.ids) for p in prompts))

    def _one(self, prompt: Prompt, params: GenerationParams, n_yes: int) -> float:
        stats = GenerationStats()
        halt = threading.Event()
        with self._slots:
            for _ in self._generate(prompt, params, halt, stats):
                pass
        if len(stats.probed) != len(params.probe):
            raise RuntimeError("the engine did not record the probed tokens")  # a kind's defect, not input
        return _yes_probability(stats.probed[:n_yes], stats.probed[n_yes:])


def _logsumexp(values: Sequence[float]) -> float:
    peak = max(values)
    if peak == -math.inf:
        return peak
    return peak + math.log(math.fsum(math.exp(v - peak) for v in values))


def _yes_probability(yes: Sequence[float], no: Sequence[float]) -> float:
    """``P(yes) / (P(yes) + P(no))`` from log probabilities: a sigmoid of their difference."""
    diff = _logsumexp(yes) - _logsumexp(no)
    if math.isnan(diff):
        return 0.5
    return 1.0 / (1.0 + math.exp(-diff)) if diff > -700 else 0.0
