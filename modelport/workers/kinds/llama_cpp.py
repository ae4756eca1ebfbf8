"""The ``llama-cpp`` kind: quantized GGUF models through llama-cpp-python, batched."""

from __future__ import annotations

import multiprocessing
import random
import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, Literal

from modelport.core.capabilities import SAMPLING_FIELDS
from modelport.core.errors import BadRequestError
from modelport.core.request import ChatRequest
from modelport.workers.base import EngineMetrics
from modelport.workers.engines.llama_cpp import LlamaCppEngine
from modelport.workers.engines.llama_cpp_log import native_log
from modelport.workers.engines.llama_cpp_sampler import SamplingSpec
from modelport.workers.local.constrained.budget_closer import BudgetCloser
from modelport.workers.local.constrained.constraints import JsonConstraint
from modelport.workers.local.generation import GenerationParams, GenerationStats, Prompt
from modelport.workers.local.incremental_text import ByteDecoder
from modelport.workers.local.template_renderer import ChatTemplate
from modelport.workers.local.tool_choice import DEFAULT_THRESHOLD
from modelport.workers.local.worker import LocalChatWorker
from modelport.workers.model_files import check_path, resolve_path

__all__ = ["LlamaCppWorker"]

# The context of the ``Llama`` object, which only tokenises: the engine has its own.
_TOKENIZER_CTX = 256


class LlamaCppWorker(LocalChatWorker):
    """Runs a GGUF model with llama.cpp, prompting through the GGUF's own chat template.

    Concurrent requests share one batch (see ``llama_cpp_engine``): up to ``n_parallel``
    sequences generate together, each with its own ``n_ctx`` of KV cache, and the rest wait.

    Args:
        model_path: The GGUF file (a path or ``package:NAME/file.gguf``).
        n_ctx: Context window of one request in tokens (0 means the model's training context).
        n_parallel: Requests generating at once; the KV cache holds ``n_parallel * n_ctx`` tokens.
        n_batch: Tokens decoded in one step at most (generating sequences, then prompt chunks).
        n_threads: Threads for single-token steps; every core when omitted, as llama.cpp's server
            does (one stream decoded 1.6 times faster on two cores than with llama-cpp-python's
            half; see ``benchmarks/RESULTS.md``).
        n_threads_batch: Threads for batched steps; every core when omitted.
        n_gpu_layers: Layers to offload to a GPU (-1 for all).
        flash_attn: Flash attention in the engine's context; ``None`` lets llama.cpp decide (on for
            CPUs). With it on, the V cache is q8_0 unless ``type_v`` says otherwise: ggml's CPU
            kernels for an f16 V cache sum differently by batch shape, so greedy answers would
            depend on what else runs (see ``engines.llama_cpp.exact_attention_v_type``). Off by
            default: so kept exact, it prefilled 50% slower on two cores (``benchmarks/RESULTS.md``).
        type_v: The V cache's ggml type (``llama_cpp.GGML_TYPE_*``) in the engine's context.
        chat_template: Override the template stored in the GGUF.
        tool_parser: Override the tool-call parser chosen by the model's profile.
        context_overflow: ``"clamp"`` (the default) shortens a ``max_tokens`` that does not fit
            after the prompt, ending with ``length``; ``"error"`` refuses it with a 400.
        tool_call_threshold: In ``auto`` tool mode, how sure the model must be that a call beats
            a plain answer (see ``modelport.workers.local.tool_choice``); requests may override it.
        rerank_prompt: The judging prompt the model reranks with, holding ``{query}`` and
            ``{document}`` (see ``modelport.workers.local.judge``).
        verbose: Let llama-cpp-python print its load report to stderr, and log llama.cpp's own
            lines at INFO (else DEBUG) on the ``modelport.llama_cpp`` logger.
        **llama_kwargs: Passed to ``llama_cpp.Llama`` (context settings such as ``type_k`` carry
            over to the engine's context).
    """

    records_logprobs = True
    sampling_fields = SAMPLING_FIELDS
    records_probes = True
    capabilities = replace(LocalChatWorker.capabilities, rerank=True)
    forks_prompt = True

    # Keywords this worker sets itself, so they cannot come through ``**llama_kwargs``.
    _OWN_LLAMA_KEYWORDS = frozenset({"self", "model_path", "n_ctx", "n_threads", "n_threads_batch", "verbose"})

    @classmethod
    def extra_params(cls) -> frozenset[str]:
        """The ``llama_cpp.Llama`` keywords that may pass through (it ignores unknown ones itself)."""
        import inspect

        from llama_cpp import Llama

        return frozenset(inspect.signature(Llama.__init__).parameters) - cls._OWN_LLAMA_KEYWORDS - {"kwargs"}

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        """Checks that ``model_path`` names a file (or an installed package), without loading it."""
        check_path(params.get("model_path"), param="model_path")

    @staticmethod
    def prepare() -> None:
        """Imports the libraries a load needs: they stay with the process, not with one model."""
        import llama_cpp  # noqa: F401

    @staticmethod
    def estimate_footprint(params: Mapping[str, Any]) -> int:
        """Bytes it will hold: the GGUF, ``n_parallel x n_ctx`` cached tokens, compute buffers."""
        from modelport.workers.residency.footprint import llama_cpp_bytes

        return llama_cpp_bytes(
            resolve_path(str(params["model_path"])),
            n_ctx=int(params.get("n_ctx", 4096)),
            n_parallel=int(params.get("n_parallel", 1)),
            type_k=int(params.get("type_k") or 1),
        )

    def __init__(
        self,
        model_path: str,
        *,
        n_ctx: int = 4096,
        n_parallel: int = 1,
        n_batch: int = 512,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        n_gpu_layers: int = 0,
        flash_attn: bool | None = False,
        type_v: int | None = None,
        chat_template: str | None = None,
        tool_parser: str | None = None,
        context_overflow: Literal["clamp", "error"] = "clamp",
        tool_call_threshold: float = DEFAULT_THRESHOLD,
        rerank_prompt: str | None = None,
        verbose: bool = False,
        **llama_kwargs: Any,
    ) -> None:
        super().__init__(
            n_parallel=n_parallel,
            tool_parser=tool_parser,
            context_overflow=context_overflow,
            tool_call_threshold=tool_call_threshold,
            rerank_prompt=rerank_prompt,
        )
        from llama_cpp import Llama

        # Before any load: llama.cpp's lines go to logging, and no load swaps the process's fds.
        native_log.install(verbose=verbose)
        path = resolve_path(model_path)
        if not path.is_file():
            raise BadRequestError(f"no GGUF file at {path}", param="model_path")
        cores = multiprocessing.cpu_count()
        threads = n_threads or cores
        threads_batch = n_threads_batch or cores
        self.llm: Any = Llama(
            model_path=str(path),
            n_ctx=_TOKENIZER_CTX,
            n_threads=threads,
            n_threads_batch=threads_batch,
            n_gpu_layers=n_gpu_layers,
            verbose=verbose,
            **llama_kwargs,
        )
        window = n_ctx or int(self.llm._model.n_ctx_train())
        self.model_path = str(path)
        source = chat_template or self.llm.metadata.get("tokenizer.chat_template")
        if not source:
            self.llm.close()
            raise BadRequestError(f"{path.name} has no chat template; pass chat_template", param="chat_template")
        self.engine = LlamaCppEngine(
            self.llm,
            n_parallel=n_parallel,
            n_ctx=window,
            n_batch=n_batch,
            n_threads=threads,
            n_threads_batch=threads_batch,
            piece=self._piece_text,
            flash_attn=-1 if flash_attn is None else int(flash_attn),
            type_v=type_v,
        )
        self.threads = (threads, threads_batch)
        # Free the contexts at interpreter exit too, while llama.cpp's module is still intact;
        # their own __del__ would run after teardown and fail noisily.
        self._finalizer = weakref.finalize(self, _close_llama, self.engine, self.llm)
        self._bos = self._piece(self.llm.token_bos())
        self._eos = self._piece(self.llm.token_eos())
        self.template = ChatTemplate(source, {"bos_token": self._bos, "eos_token": self._eos})
        self._add_bos = bool(self.llm._model.add_bos_token())
        self._seed = random.randrange(2**31)
        self._seed_lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self._grammar_lock = threading.Lock()
        name = str(self.llm.metadata.get("general.name", "")) + " " + path.name
        self._configure(template=source, name=name, max_context=window)
        self.capabilities = replace(self.capabilities, sampling=self.sampling_fields)

    def _piece(self, token: int) -> str:
        if token < 0:
            return ""
        return bytes(self.llm.detokenize([token], special=True)).decode("utf-8", errors="replace")

    def _piece_text(self, token: int) -> str:
        return bytes(self.llm.detokenize([token])).decode("utf-8", errors="replace")

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

    def _tokenize_raw(self, text: str) -> list[int]:
        # As llama.cpp's server tokenises a completion prompt: BOS if the model adds one, and
        # special tokens written in the text read as such.
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=self._add_bos, special=True))

    def _tokenize_plain(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _detokenize(self, ids: list[int]) -> str:
        return bytes(self.llm.detokenize(ids)).decode("utf-8", errors="replace")

    def _next_seed(self) -> int:
        with self._seed_lock:
            self._seed = random.Random(self._seed).randrange(2**31)
            return self._seed

    def _generate(
        self, prompt: Prompt, params: GenerationParams, halt: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        spec = SamplingSpec(
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            min_p=params.min_p,
            seed=params.seed if params.seed is not None else self._next_seed(),
            frequency_penalty=params.frequency_penalty,
            presence_penalty=params.presence_penalty,
            repetition_penalty=params.repetition_penalty,
            logit_bias=dict(params.logit_bias or {}),
            grammar=None if params.constraint is None else self._grammar(params.constraint),
            logprobs=params.logprobs if params.logprobs is not None else (0 if params.score or params.probe else None),
            # Scores alone stop where the decision stops reading them (logprobs run to the end).
            logprob_tokens=(params.score or 1) if params.logprobs is None and (params.score or params.probe) else None,
            probe=params.probe,
        )
        closer = BudgetCloser.for_constraint(
            params.constraint, self._tokenize_plain, self._detokenize, int(self.llm.token_eos())
        )
        job = self.engine.submit(prompt.ids, params.max_new_tokens, spec, closer)
        decoder = ByteDecoder()
        try:
            for token, logprob in job.results(halt):
                if logprob is not None:
                    if params.probe and not stats.probed:
                        stats.probed = [lp for _, lp in logprob.top]
                    if len(stats.scores) < params.score:
                        stats.scores.append(logprob.logprob)
                    if params.logprobs is not None:
                        stats.logprobs.append(logprob)
                stats.tokens += 1
                piece = decoder.feed(self.llm.detokenize([token]))
                if piece:
                    yield piece
            stats.eos = job.eos
            stats.cached_tokens = job.cached_tokens
            tail = decoder.flush()
            if tail:
                yield tail
        finally:
            job.cancel()

    def _grammar(self, constraint: JsonConstraint) -> Any:
        """Compiles (once per constraint) the GBNF grammar that enforces ``constraint``."""
        with self._grammar_lock:
            if constraint.key not in self._grammars:
                from llama_cpp.llama_grammar import LlamaGrammar

                self._grammars[constraint.key] = LlamaGrammar.from_string(constraint.gbnf(), verbose=False)
            return self._grammars[constraint.key]

    def engine_metrics(self) -> EngineMetrics:
        """Steps by batch size and the KV cache's use, from the batching engine."""
        return EngineMetrics(dict(self.engine.stats.batch_sizes), self.engine.kv_usage())

    def close(self) -> None:
        """Stops the engine and frees the llama.cpp contexts."""
        super().close()
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
        self.llm = None


def _close_llama(engine: LlamaCppEngine, llm: Any) -> None:
    engine.close()
    llm.close()
