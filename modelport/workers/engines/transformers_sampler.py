"""One row's sampler for the ``transformers`` engine.

Each row samples under its own settings (temperature, top-k, top-p, min-p, penalties, logit bias,
a seed) and, under a JSON constraint, an xgrammar matcher; near the end of the budget the closer
may force the text that completes the value.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from modelport.workers.local.constrained.budget_closer import BudgetCloser
from modelport.workers.local.generation import GenerationParams

__all__ = ["SampledRow", "TransformersSampler"]


class SampledRow(Protocol):
    """What the sampler reads of a row (``TransformersJob`` has it)."""

    prompt: list[int]
    params: GenerationParams
    grammar: Any
    closer: BudgetCloser | None
    generated: list[int]
    scores: list[float]
    probed: list[float]


class TransformersSampler:
    """Samples one row's next token from its logits, under that row's settings."""

    def __init__(self, torch: Any, row: SampledRow, defaults: dict[str, Any]) -> None:
        self.torch = torch
        self.row = row
        p = row.params
        do_sample = defaults.get("do_sample", False) if p.temperature is None else p.temperature > 0
        self.greedy = not do_sample
        self.temperature = p.temperature if p.temperature is not None else defaults.get("temperature") or 1.0
        self.top_p = p.top_p if p.top_p is not None else defaults.get("top_p")
        self.top_k = p.top_k if p.top_k is not None else defaults.get("top_k")
        self.min_p = p.min_p
        self.generator = torch.Generator()
        self.generator.manual_seed(p.seed if p.seed is not None else int(time.time_ns() & 0x7FFFFFFF))
        self.matcher: Any = None
        self.bitmask: Any = None
        if row.grammar is not None:
            import xgrammar as xgr

            self.matcher = xgr.GrammarMatcher(row.grammar)
            self.bitmask = xgr.allocate_token_bitmask(1, row.grammar.tokenizer_info.vocab_size)

    def pick(self, logits: Any) -> int:
        """The row's next token: penalties, bias, the budget closer and the grammar, then greedy or a draw."""
        torch, p = self.torch, self.row.params
        scores = logits.float().clone()
        history = self.row.generated
        if p.repetition_penalty is not None and p.repetition_penalty != 1.0:
            seen = torch.tensor(sorted(set(self.row.prompt) | set(history)), dtype=torch.long)
            picked = scores[seen]
            scores[seen] = torch.where(picked < 0, picked * p.repetition_penalty, picked / p.repetition_penalty)
        if history and (p.frequency_penalty or p.presence_penalty):
            ids, counts = torch.unique(torch.tensor(history, dtype=torch.long), return_counts=True)
            scores[ids] -= counts.float() * (p.frequency_penalty or 0.0) + (p.presence_penalty or 0.0)
        for token, bias in (p.logit_bias or {}).items():
            if token < scores.shape[0]:
                scores[token] += bias
        closer = self.row.closer
        wanted = closer.next(p.max_new_tokens - len(history)) if closer is not None else None
        forced = wanted
        if self.matcher is not None:
            import xgrammar as xgr

            self.matcher.fill_next_token_bitmask(self.bitmask)
            if forced is not None and not int(self.bitmask[0, forced // 32]) >> (forced % 32) & 1:
                forced = None  # the grammar refuses the closing text's token: sample instead
            view = scores[: self.bitmask.shape[1] * 32].unsqueeze(0)
            xgr.apply_token_bitmask_inplace(view, self.bitmask)
        if forced is None:
            forced = int(torch.argmax(scores)) if self.greedy else self._draw(scores)
        token = forced
        if closer is not None:
            closer.took(token, wanted)
        if self.matcher is not None:
            self.matcher.accept_token(token)
        if len(self.row.scores) < p.score:
            # Under the model's own distribution, as llama.cpp's engine scores it.
            self.row.scores.append(float(torch.log_softmax(logits.float(), dim=-1)[token]))
        if p.probe and not history and not self.row.probed:
            self.row.probed.extend(torch.log_softmax(logits.float(), dim=-1)[list(p.probe)].tolist())
        return token

    def _draw(self, scores: Any) -> int:
        torch = self.torch
        scores = scores / max(self.temperature, 1e-5)
        if self.top_k:
            kth = torch.topk(scores, min(int(self.top_k), scores.shape[0])).values[-1]
            scores[scores < kth] = float("-inf")
        probs = torch.softmax(scores, dim=-1)
        if self.top_p is not None and self.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(sorted_probs, dim=-1)
            drop = cumulative - sorted_probs > self.top_p
            probs[order[drop]] = 0.0
        if self.min_p:
            probs[probs < self.min_p * probs.max()] = 0.0
        return int(torch.multinomial(probs / probs.sum(), 1, generator=self.generator))
