"""The ``llama-cpp`` kind: quantized GGUF models through llama-cpp-python."""

from __future__ import annotations

import random
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from modelport.core.errors import BadRequestError
from modelport.core.events import TokenLogprob
from modelport.core.request import ChatRequest
from modelport.workers.chat_template import ChatTemplate
from modelport.workers.constraints import JsonConstraint
from modelport.workers.local import GenerationParams, GenerationStats, LocalChatWorker, Prompt
from modelport.workers.paths import resolve_path
from modelport.workers.registry import register_worker
from modelport.workers.text import ByteDecoder

__all__ = ["LlamaCppWorker"]

# llama-cpp-python's own create_completion defaults, so an unset field samples as it would.
_DEFAULT_TEMPERATURE = 0.8
_DEFAULT_TOP_P = 0.95
# Candidates the grammar filters before falling back to the whole vocabulary (top_k is 40).
_SHORTLIST = 64


@register_worker("llama-cpp")
class LlamaCppWorker(LocalChatWorker):
    """Runs a GGUF model with llama.cpp, prompting through the GGUF's own chat template.

    Args:
        model_path: The GGUF file (a path or ``package:NAME/file.gguf``).
        n_ctx: Context window in tokens (0 means the model's training context).
        n_threads: CPU threads; llama.cpp picks when omitted.
        n_gpu_layers: Layers to offload to a GPU (-1 for all).
        chat_template: Override the template stored in the GGUF.
        tool_parser: Override the tool-call parser chosen by the model's profile.
        max_concurrency: Requests generating at once (llama.cpp contexts are not re-entrant).
        verbose: Let llama.cpp log to stderr.
        **llama_kwargs: Passed to ``llama_cpp.Llama``.
    """

    records_logprobs = True

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        chat_template: str | None = None,
        tool_parser: str | None = None,
        max_concurrency: int = 1,
        verbose: bool = False,
        **llama_kwargs: Any,
    ) -> None:
        super().__init__(max_concurrency=max_concurrency, tool_parser=tool_parser)
        from llama_cpp import Llama

        path = resolve_path(model_path)
        if not path.is_file():
            raise BadRequestError(f"no GGUF file at {path}", param="model_path")
        self.llm: Any = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            verbose=verbose,
            **llama_kwargs,
        )
        # Free the context at interpreter exit too, while llama.cpp's module is still intact;
        # its own __del__ would run after teardown and fail noisily.
        self._finalizer = weakref.finalize(self, self.llm.close)
        self.model_path = str(path)
        source = chat_template or self.llm.metadata.get("tokenizer.chat_template")
        if not source:
            raise BadRequestError(f"{path.name} has no chat template; pass chat_template", param="chat_template")
        self._bos = self._piece(self.llm.token_bos())
        self._eos = self._piece(self.llm.token_eos())
        self.template = ChatTemplate(source, {"bos_token": self._bos, "eos_token": self._eos})
        self._add_bos = bool(self.llm._model.add_bos_token())
        self._seed = random.randrange(2**31)
        self._grammars: dict[str, Any] = {}
        name = str(self.llm.metadata.get("general.name", "")) + " " + path.name
        self._configure(template=source, name=name, max_context=int(self.llm.n_ctx()))

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return bytes(self.llm.detokenize([token], special=True)).decode("utf-8", errors="replace")

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text``, without BOS."""
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def _render(self, request: ChatRequest) -> Prompt:
        messages, tools = self._template_inputs(request)
        text = self.template.render(messages, tools=tools)
        # Add BOS only when the model wants one and the template did not write it already.
        add_bos = self._add_bos and not (self._bos and text.startswith(self._bos))
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        return Prompt(list(ids), text)

    def _generate(
        self, prompt: Prompt, params: GenerationParams, halt: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        import llama_cpp

        llm = self.llm
        if params.seed is not None:
            llm.set_seed(params.seed)
        else:
            self._seed = random.Random(self._seed).randrange(2**31)
            llm.set_seed(self._seed)
        temperature = _DEFAULT_TEMPERATURE if params.temperature is None else params.temperature
        top_p = _DEFAULT_TOP_P if params.top_p is None else params.top_p
        vocab = llm._model.vocab
        decoder = ByteDecoder()
        if params.constraint is not None:
            tokens: Any = self._constrained_tokens(prompt, params.constraint, temperature, top_p)
        else:
            tokens = llm.generate(prompt.ids, temp=temperature, top_p=top_p, top_k=0 if temperature == 0 else 40)
        try:
            for token in tokens:
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    stats.eos = True
                    break
                if params.logprobs is not None:
                    stats.logprobs.append(self._logprob(token, params.logprobs))
                stats.tokens += 1
                piece = decoder.feed(llm.detokenize([token]))
                if piece:
                    yield piece
                if halt.is_set() or stats.tokens >= params.max_new_tokens:
                    break
            tail = decoder.flush()
            if tail:
                yield tail
        finally:
            tokens.close()

    def _logprob(self, token: int, top: int) -> TokenLogprob:
        """The log probability of ``token`` under the logits that chose it, and the ``top`` best.

        Read right after sampling, before the next evaluation overwrites the logits.
        """
        import llama_cpp
        import numpy as np

        llm = self.llm
        n_vocab = llm.n_vocab()
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(n_vocab,))
        peak = float(logits.max())
        log_total = peak + float(np.log(np.exp(logits - peak).sum()))
        best: list[tuple[str, float]] = []
        if top:
            ids = np.argpartition(-logits, top)[:top]
            ids = ids[np.argsort(-logits[ids])]
            best = [(self._piece_text(int(i)), float(logits[i]) - log_total) for i in ids]
        return TokenLogprob(self._piece_text(token), float(logits[token]) - log_total, tuple(best))

    def _piece_text(self, token: int) -> str:
        return bytes(self.llm.detokenize([token])).decode("utf-8", errors="replace")

    def _constrained_tokens(
        self, prompt: Prompt, constraint: JsonConstraint, temperature: float, top_p: float
    ) -> Iterator[int]:
        """Samples under a grammar, checking the grammar only against the sampled token.

        llama-cpp-python puts the grammar first in its sampler chain, which filters all
        49k candidates on every token. Like llama.cpp's own common sampler, this samples
        freely first and asks the grammar only whether that one token is allowed; just
        when it is not does the grammar filter the best 64 candidates (the whole vocabulary
        if none of those is allowed) and sampling repeat over what is left.
        """
        import ctypes

        import llama_cpp
        import numpy as np

        llm = self.llm
        grammar = self._grammar(constraint)
        chain = llm._init_sampler(temp=temperature, top_p=top_p, top_k=0 if temperature == 0 else 40)
        checker = llama_cpp.llama_sampler_init_grammar(
            llm._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        n_vocab = llm.n_vocab()
        one = (llama_cpp.llama_token_data * 1)()
        single = llama_cpp.llama_token_data_array(data=one, size=1, selected=-1, sorted=False)
        full = (llama_cpp.llama_token_data * n_vocab)()
        full_view = np.ctypeslib.as_array(full)
        full_view["id"] = np.arange(n_vocab, dtype=np.int32)
        everything = llama_cpp.llama_token_data_array(data=full, size=n_vocab, selected=-1, sorted=False)
        short = (llama_cpp.llama_token_data * _SHORTLIST)()
        short_view = np.ctypeslib.as_array(short)
        shortlist = llama_cpp.llama_token_data_array(data=short, size=_SHORTLIST, selected=-1, sorted=False)
        ctx = llm._ctx.ctx
        pending = list(prompt.ids)
        llm.reset()
        try:
            while True:
                llm.eval(pending)
                token = int(llama_cpp.llama_sampler_sample(chain.sampler, ctx, -1))
                one[0].id, one[0].logit, one[0].p = token, 0.0, 0.0
                single.size, single.selected = 1, -1
                llama_cpp.llama_sampler_apply(checker, ctypes.byref(single))
                if one[0].logit == float("-inf"):
                    logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(n_vocab,))
                    # Most often an allowed token is among the best few: filter those first.
                    best = np.argpartition(-logits, _SHORTLIST)[:_SHORTLIST]
                    short_view["id"], short_view["logit"], short_view["p"] = best, logits[best], 0.0
                    candidates, view = shortlist, short_view
                    shortlist.size, shortlist.selected, shortlist.sorted = _SHORTLIST, -1, False
                    llama_cpp.llama_sampler_apply(checker, ctypes.byref(shortlist))
                    if not np.isfinite(short_view["logit"]).any():
                        full_view["logit"], full_view["p"] = logits, 0.0
                        candidates, view = everything, full_view
                        everything.size, everything.selected, everything.sorted = n_vocab, -1, False
                        llama_cpp.llama_sampler_apply(checker, ctypes.byref(everything))
                    llama_cpp.llama_sampler_apply(chain.sampler, ctypes.byref(candidates))
                    token = int(view["id"][candidates.selected])
                llama_cpp.llama_sampler_accept(checker, token)
                yield token
                pending = [token]
        finally:
            llama_cpp.llama_sampler_free(checker)
            chain.close()

    def _grammar(self, constraint: JsonConstraint) -> Any:
        """Compiles (once per constraint) the GBNF grammar that enforces ``constraint``."""
        if constraint.key not in self._grammars:
            from llama_cpp.llama_grammar import LlamaGrammar

            self._grammars[constraint.key] = LlamaGrammar.from_string(constraint.gbnf(), verbose=False)
        return self._grammars[constraint.key]

    def close(self) -> None:
        """Frees the llama.cpp context."""
        super().close()
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
        self.llm = None
