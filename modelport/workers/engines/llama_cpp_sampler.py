"""One sequence's sampler for the llama.cpp batching engine.

Each sequence owns a llama.cpp sampler chain (penalties, logit bias, top-k, top-p, min-p,
temperature, then greedy or a seeded draw) and, under a JSON constraint, a grammar that is
checked against the sampled token only: the chain samples freely, the grammar is asked whether
that one token is allowed, and only when it is not does the grammar filter the best 64
candidates (the whole vocabulary if none of those is allowed) for a second draw. llama.cpp's
own common sampler does the same; filtering all 49k candidates on every token costs far more.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelport.core.events import TokenLogprob

__all__ = ["SamplingSpec", "LlamaCppSampler"]

# llama-cpp-python's own create_completion defaults, so an unset field samples as it would.
DEFAULT_TEMPERATURE = 0.8
DEFAULT_TOP_P = 0.95
DEFAULT_TOP_K = 40
DEFAULT_MIN_P = 0.05
# Candidates the grammar filters before falling back to the whole vocabulary.
_SHORTLIST = 64


@dataclass(frozen=True, slots=True)
class SamplingSpec:
    """How one sequence picks its tokens; ``None`` fields take llama-cpp-python's defaults.

    Attributes:
        temperature: 0 for greedy.
        top_p: Nucleus mass.
        top_k: Keep the k best (0 for all).
        min_p: Drop tokens below ``min_p`` times the best one's probability.
        seed: Seed of the draw.
        frequency_penalty: OpenAI's, over the tokens generated so far.
        presence_penalty: OpenAI's, over the tokens generated so far.
        repetition_penalty: The multiplicative one (1 is off).
        logit_bias: Token id to bias.
        grammar: A compiled ``LlamaGrammar`` the output must follow.
        logprobs: ``None`` for none; else record each token's log probability and this many
            alternatives.
        logprob_tokens: Record them for the first this many tokens only (``None``: all).
        probe: Token ids whose log probabilities the first token's record lists as its
            alternatives, in this order, instead of the most likely ones.
    """

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    seed: int = 0
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    repetition_penalty: float | None = None
    logit_bias: Mapping[int, float] = field(default_factory=dict)
    grammar: Any = None
    logprobs: int | None = None
    logprob_tokens: int | None = None
    probe: tuple[int, ...] = ()


class LlamaCppSampler:
    """Samples one sequence's tokens from the engine's logits (engine thread only).

    Args:
        llama_cpp: The bindings module.
        vocab: The model's ``llama_vocab`` pointer.
        n_vocab: Vocabulary size.
        spec: The sampling settings.
        piece: Token id to its text, for log probabilities.
        penalty_window: How many generated tokens the penalties look back over.
    """

    def __init__(
        self,
        llama_cpp: Any,
        vocab: Any,
        n_vocab: int,
        spec: SamplingSpec,
        piece: Callable[[int], str],
        penalty_window: int,
    ) -> None:
        import numpy as np

        self._lib = llama_cpp
        self._np = np
        self._n_vocab = n_vocab
        self._spec = spec
        self._piece = piece
        self._sampled = 0
        lib = llama_cpp
        self.chain: Any = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())

        def add(sampler: Any) -> None:
            lib.llama_sampler_chain_add(self.chain, sampler)

        repeat = spec.repetition_penalty or 1.0
        freq, present = spec.frequency_penalty or 0.0, spec.presence_penalty or 0.0
        if repeat != 1.0 or freq or present:
            add(lib.llama_sampler_init_penalties(n_vocab, penalty_window, repeat, freq, present))
        if spec.logit_bias:
            biases = (lib.llama_logit_bias * len(spec.logit_bias))()
            for i, (token, bias) in enumerate(spec.logit_bias.items()):
                biases[i].token, biases[i].bias = token, bias
            add(lib.llama_sampler_init_logit_bias(n_vocab, len(spec.logit_bias), biases))
        temperature = DEFAULT_TEMPERATURE if spec.temperature is None else spec.temperature
        if temperature == 0:
            add(lib.llama_sampler_init_greedy())
        else:
            top_k = DEFAULT_TOP_K if spec.top_k is None else spec.top_k
            if top_k > 0:
                add(lib.llama_sampler_init_top_k(top_k))
            add(lib.llama_sampler_init_top_p(DEFAULT_TOP_P if spec.top_p is None else spec.top_p, 1))
            add(lib.llama_sampler_init_min_p(DEFAULT_MIN_P if spec.min_p is None else spec.min_p, 1))
            add(lib.llama_sampler_init_temp(temperature))
            add(lib.llama_sampler_init_dist(spec.seed & 0xFFFFFFFF))
        self.checker: Any = None
        if spec.grammar is not None:
            grammar = spec.grammar
            self.checker = lib.llama_sampler_init_grammar(
                vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
            )
        # Candidate arrays (constrained sequences only), allocated once and refilled each step.
        if spec.grammar is None:
            return
        self._ids: Any = np.arange(n_vocab, dtype=np.int32)
        self._full = (lib.llama_token_data * n_vocab)()
        self._full_view = np.ctypeslib.as_array(self._full)
        self._full_view["id"] = np.arange(n_vocab, dtype=np.int32)
        self._everything = lib.llama_token_data_array(data=self._full, size=n_vocab, selected=-1, sorted=False)
        self._one = (lib.llama_token_data * 1)()
        self._single = lib.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        self._short = (lib.llama_token_data * _SHORTLIST)()
        self._short_view = np.ctypeslib.as_array(self._short)
        self._shortlist = lib.llama_token_data_array(data=self._short, size=_SHORTLIST, selected=-1, sorted=False)

    def sample(self, ctx: Any, index: int, forced: int | None = None) -> tuple[int, TokenLogprob | None]:
        """Picks the next token from output row ``index`` of the last decode, and accepts it.

        ``forced`` (a constrained sequence's closing text) is taken instead when the grammar allows it.
        """
        lib, np = self._lib, self._np
        logits = np.ctypeslib.as_array(lib.llama_get_logits_ith(ctx, index), shape=(self._n_vocab,))
        if self.checker is None:
            # llama.cpp's own loop (candidates, chain, accept) in C: the common case stays fast.
            token = int(lib.llama_sampler_sample(self.chain, ctx, index))
        elif forced is not None and self._allowed(forced):
            token = forced
            self._lib.llama_sampler_accept(self.chain, token)
            self._lib.llama_sampler_accept(self.checker, token)
        else:
            token = self._constrained(logits)
        spec = self._spec
        logprob = None
        if spec.logprobs is not None and (spec.logprob_tokens is None or self._sampled < spec.logprob_tokens):
            logprob = self._logprob(logits, token)
        self._sampled += 1
        return token, logprob

    def _constrained(self, logits: Any) -> int:
        lib, np = self._lib, self._np
        self._fill(logits)
        token = self._apply_chain(self._everything, self._full_view)
        if not self._allowed(token):
            best = np.argpartition(-logits, _SHORTLIST)[:_SHORTLIST]
            view = self._short_view
            view["id"], view["logit"], view["p"] = best, logits[best], 0.0
            self._shortlist.size, self._shortlist.selected, self._shortlist.sorted = _SHORTLIST, -1, False
            lib.llama_sampler_apply(self.checker, ctypes.byref(self._shortlist))
            if np.isfinite(view["logit"]).any():
                token = self._apply_chain(self._shortlist, view)
            else:
                self._fill(logits)
                lib.llama_sampler_apply(self.checker, ctypes.byref(self._everything))
                token = self._apply_chain(self._everything, self._full_view)
        # Only the chosen token enters the penalties' history and the grammar's state.
        lib.llama_sampler_accept(self.chain, token)
        lib.llama_sampler_accept(self.checker, token)
        return token

    def _fill(self, logits: Any) -> None:
        # Samplers may reorder the candidates: every field is written afresh.
        self._full_view["id"] = self._ids
        self._full_view["logit"], self._full_view["p"] = logits, 0.0
        self._everything.size, self._everything.selected, self._everything.sorted = self._n_vocab, -1, False

    def _apply_chain(self, array: Any, view: Any) -> int:
        self._lib.llama_sampler_apply(self.chain, ctypes.byref(array))
        return int(view["id"][array.selected])

    def _allowed(self, token: int) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 0.0, 0.0
        self._single.size, self._single.selected = 1, -1
        self._lib.llama_sampler_apply(self.checker, ctypes.byref(self._single))
        return bool(self._one[0].logit != float("-inf"))

    def _logprob(self, logits: Any, token: int) -> TokenLogprob:
        """The log probability of ``token`` under the raw logits, and the best alternatives."""
        np = self._np
        peak = float(logits.max())
        log_total = peak + float(np.log(np.exp(logits - peak).sum()))
        best: list[tuple[str, float]] = []
        top = self._spec.logprobs or 0
        if self._spec.probe and self._sampled == 0:
            best = [(self._piece(i), float(logits[i]) - log_total) for i in self._spec.probe]
        elif top:
            ids = np.argpartition(-logits, top)[:top]
            ids = ids[np.argsort(-logits[ids])]
            best = [(self._piece(int(i)), float(logits[i]) - log_total) for i in ids]
        return TokenLogprob(self._piece(token), float(logits[token]) - log_total, tuple(best))

    def close(self) -> None:
        """Frees the llama.cpp samplers."""
        if self.checker is not None:
            self._lib.llama_sampler_free(self.checker)
            self.checker = None
        if self.chain is not None:
            self._lib.llama_sampler_free(self.chain)
            self.chain = None
