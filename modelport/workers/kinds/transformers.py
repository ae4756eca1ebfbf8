"""The ``transformers`` kind: a causal LM loaded in-process with Hugging Face transformers."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, Literal

from modelport.core.capabilities import SAMPLING_FIELDS
from modelport.core.errors import BadRequestError
from modelport.core.request import ChatRequest
from modelport.workers.base import EngineMetrics
from modelport.workers.engines.transformers import TransformersEngine, TransformersJob
from modelport.workers.local.constrained.budget_closer import BudgetCloser
from modelport.workers.local.constrained.constraints import JsonConstraint
from modelport.workers.local.generation import GenerationParams, GenerationStats, Prompt
from modelport.workers.local.incremental_text import TokenDecoder
from modelport.workers.local.tool_choice import DEFAULT_THRESHOLD
from modelport.workers.local.worker import LocalChatWorker
from modelport.workers.model_files import check_path, resolve_path

__all__ = ["TransformersWorker"]


def _quantization_config(quantization: str | None, device_map: Any) -> Any:
    if quantization is None:
        return None
    import torch

    if quantization not in ("4bit", "8bit"):
        raise BadRequestError("quantization must be '4bit' or '8bit'", param="quantization")
    if not torch.cuda.is_available():
        raise BadRequestError(
            f"bitsandbytes {quantization} quantization needs a CUDA GPU, and none is available", param="quantization"
        )
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_type="nf4")
    return BitsAndBytesConfig(load_in_8bit=True)


class TransformersWorker(LocalChatWorker):
    """Runs ``AutoModelForCausalLM`` with the tokenizer's chat template.

    Args:
        model: A hub id, a local folder, or ``package:NAME/path``.
        gguf_file: A GGUF file inside ``model`` to load and dequantise.
        dtype: Torch dtype name (``"auto"``, ``"float32"``, ``"bfloat16"``...).
        device: Device for the whole model (``"cpu"``, ``"cuda"``); ignored with ``device_map``.
        device_map: Passed to ``from_pretrained`` (for example ``"auto"``).
        quantization: ``"4bit"`` or ``"8bit"`` (bitsandbytes, CUDA only).
        trust_remote_code: Allow custom model code; off unless asked for.
        max_context: Override the context window.
        tool_parser: Override the tool-call parser chosen by the model's profile.
        n_parallel: Requests batched into one ``generate`` call at most.
        batch_wait_s: How long a batch's first request waits for others to join it.
        context_overflow: ``"clamp"`` (the default) shortens a ``max_tokens`` that does not fit
            after the prompt, ending with ``length``; ``"error"`` refuses it with a 400.
        tool_call_threshold: In ``auto`` tool mode, how sure the model must be that a call beats
            a plain answer (see ``modelport.workers.local.tool_choice``); requests may override it.
        rerank_prompt: The judging prompt the model reranks with, holding ``{query}`` and
            ``{document}`` (see ``modelport.workers.local.judge``).
    """

    sampling_fields = SAMPLING_FIELDS
    records_probes = True
    capabilities = replace(LocalChatWorker.capabilities, rerank=True)

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        """Checks that a local ``model`` folder (or package) exists; hub ids are left to loading."""
        check_path(params.get("model"), param="model", local_only=True)

    @staticmethod
    def prepare() -> None:
        """Imports the libraries a load needs: they stay with the process, not with one model."""
        import torch  # noqa: F401
        import transformers  # noqa: F401

    @staticmethod
    def estimate_footprint(params: Mapping[str, Any]) -> int:
        """Bytes it will hold: parameters x dtype (a GGUF is dequantised to float32), plus 10%."""
        from modelport.workers.gguf import read_gguf_header
        from modelport.workers.residency.footprint import safetensors_parameters, torch_model_bytes

        folder = resolve_path(str(params["model"]))
        dtype = str(params.get("dtype", "auto"))
        if params.get("gguf_file"):
            elements = read_gguf_header(folder / str(params["gguf_file"])).parameters
            return torch_model_bytes(elements, elements * 4, dtype)
        return torch_model_bytes(*safetensors_parameters(folder), dtype)

    def __init__(
        self,
        model: str,
        *,
        gguf_file: str | None = None,
        dtype: str = "auto",
        device: str | None = None,
        device_map: Any = None,
        quantization: str | None = None,
        trust_remote_code: bool = False,
        max_context: int | None = None,
        tool_parser: str | None = None,
        n_parallel: int = 1,
        batch_wait_s: float = 0.02,
        context_overflow: Literal["clamp", "error"] = "clamp",
        tool_call_threshold: float = DEFAULT_THRESHOLD,
        rerank_prompt: str | None = None,
    ) -> None:
        super().__init__(
            n_parallel=n_parallel,
            tool_parser=tool_parser,
            context_overflow=context_overflow,
            tool_call_threshold=tool_call_threshold,
            rerank_prompt=rerank_prompt,
        )
        from transformers import AutoModelForCausalLM, AutoTokenizer

        quant = _quantization_config(quantization, device_map)
        path = resolve_path(model)
        source = str(path) if path.exists() else model
        load: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if gguf_file:
            load["gguf_file"] = gguf_file
        self.tokenizer: Any = AutoTokenizer.from_pretrained(source, **load)
        model_kwargs: dict[str, Any] = dict(load, dtype=dtype)
        if quant is not None:
            model_kwargs["quantization_config"] = quant
            model_kwargs["device_map"] = device_map or "auto"
        elif device_map is not None:
            model_kwargs["device_map"] = device_map
        self.model: Any = AutoModelForCausalLM.from_pretrained(source, **model_kwargs)
        if device and "device_map" not in model_kwargs:
            self.model.to(device)
        self.model.eval()
        config = self.model.config
        template = getattr(self.tokenizer, "chat_template", None)
        if not isinstance(template, str) or not template:
            raise BadRequestError(f"the tokenizer of {model!r} has no chat template", param="model")
        eos = self.model.generation_config.eos_token_id
        self._eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            self._eos_ids.add(self.tokenizer.eos_token_id)
        self._grammars: dict[str, Any] = {}
        self._grammar_compiler: Any = None
        self._grammar_lock = threading.Lock()
        # One long-lived owner thread runs every generate: torch's OpenMP team is built once.
        pad = self.tokenizer.pad_token_id
        self._batcher = TransformersEngine(
            self.model,
            pad_id=pad if pad is not None else next(iter(self._eos_ids), 0),
            eos_ids=self._eos_ids,
            n_parallel=n_parallel,
            batch_wait_s=batch_wait_s,
            tokenize=self._tokenize_plain,
        )
        # Stop the owner thread at interpreter exit too: a thread that ran torch code and is
        # still alive when C++ statics are destroyed aborts the process.
        self._finalizer = weakref.finalize(self, self._batcher.close)
        window = int(max_context or getattr(config, "max_position_embeddings", None) or 2048)
        self._configure(template=template, name=f"{model} {gguf_file or ''} {config.model_type}", max_context=window)

    def engine_metrics(self) -> EngineMetrics:
        """Batches by size (one ``generate`` call is one batch; its rows decode together)."""
        return EngineMetrics(dict(self._batcher.batch_sizes))

    def close(self) -> None:
        """Stops the batching thread."""
        super().close()
        self._finalizer()

    def _compiled_grammar(self, constraint: JsonConstraint) -> Any:
        """The xgrammar grammar enforcing ``constraint``, compiled once; each row gets a matcher."""
        import xgrammar as xgr

        with self._grammar_lock:
            if constraint.key not in self._grammars:
                if self._grammar_compiler is None:
                    info = xgr.TokenizerInfo.from_huggingface(
                        self.tokenizer, vocab_size=self.model.config.vocab_size, stop_token_ids=sorted(self._eos_ids)
                    )
                    self._grammar_compiler = xgr.GrammarCompiler(info)
                self._grammars[constraint.key] = self._grammar_compiler.compile_grammar(constraint.gbnf())
            return self._grammars[constraint.key]

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text``, without special tokens added."""
        return len(self._tokenize_plain(text))

    def _tokenize_plain(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def _detokenize(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))

    def _render(self, request: ChatRequest) -> Prompt:
        messages, tools = self._template_inputs(request)
        text = self.tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
        # The template already holds any special tokens; adding them again would double BOS.
        return Prompt(self._tokenize_plain(text), text)

    def _tokenize_raw(self, text: str) -> list[int]:
        # As vLLM tokenises a completion prompt: with the tokenizer's own special tokens (BOS).
        return list(self.tokenizer(text).input_ids)

    def _generate(
        self, prompt: Prompt, params: GenerationParams, halt: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        grammar = None if params.constraint is None else self._compiled_grammar(params.constraint)
        closer = self._closer(params.constraint)
        yield from self._read(self._batcher.submit(prompt.ids, params, grammar, closer), halt, stats)

    def _closer(self, constraint: JsonConstraint | None) -> BudgetCloser | None:
        return BudgetCloser.for_constraint(
            constraint, self._tokenize_plain, self._detokenize, self.tokenizer.eos_token_id
        )

    def _branches(
        self,
        prompt: Prompt,
        params: tuple[GenerationParams, GenerationParams],
        halts: tuple[threading.Event, threading.Event],
        stats: tuple[GenerationStats, GenerationStats],
    ) -> tuple[Iterator[str], Iterator[str]]:
        """Both auto-mode branches in one batch: a batch forms once, so they are queued together."""
        grammars = [None if p.constraint is None else self._compiled_grammar(p.constraint) for p in params]
        rows = self._batcher.submit_together(
            [(prompt.ids, p, g, self._closer(p.constraint)) for p, g in zip(params, grammars, strict=True)]
        )
        return self._read(rows[0], halts[0], stats[0]), self._read(rows[1], halts[1], stats[1])

    def _read(self, row: TransformersJob, halt: threading.Event, stats: GenerationStats) -> Iterator[str]:
        stats.scores = row.scores  # filled by the batching thread as it picks
        stats.probed = row.probed
        decoder = TokenDecoder(self._detokenize)
        try:
            for token in row.results(halt):
                stats.tokens += 1
                piece = decoder.feed(token)
                if piece:
                    yield piece
            stats.eos = row.eos
            stats.cached_tokens = row.cached_tokens
            tail = decoder.flush()
            if tail:
                yield tail
        finally:
            row.cancel()
