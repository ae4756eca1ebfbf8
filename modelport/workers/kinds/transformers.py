"""The ``transformers`` kind: a causal LM loaded in-process with Hugging Face transformers."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from modelport.core.errors import BadRequestError
from modelport.core.request import ChatRequest
from modelport.workers.constraints import JsonConstraint
from modelport.workers.local import GenerationParams, GenerationStats, LocalChatWorker, Prompt
from modelport.workers.paths import resolve_path
from modelport.workers.registry import register_worker
from modelport.workers.text import TokenDecoder

__all__ = ["TransformersWorker"]

_END = object()


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


@register_worker("transformers")
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
        max_concurrency: Requests generating at once.
    """

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
        max_concurrency: int = 1,
    ) -> None:
        super().__init__(max_concurrency=max_concurrency, tool_parser=tool_parser)
        import torch
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
        self._torch = torch
        # One long-lived engine thread: torch's OpenMP team is built once, not per request.
        self._engine = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="modelport-transformers")
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
        window = int(max_context or getattr(config, "max_position_embeddings", None) or 2048)
        self._configure(template=template, name=f"{model} {gguf_file or ''} {config.model_type}", max_context=window)

    def close(self) -> None:
        """Stops the engine thread."""
        super().close()
        self._engine.shutdown(wait=False, cancel_futures=True)

    def _logits_processor(self, constraint: JsonConstraint) -> Any:
        """An xgrammar processor enforcing ``constraint`` (grammar compiled once, state per call)."""
        import xgrammar as xgr
        from xgrammar.contrib.hf import LogitsProcessor

        if constraint.key not in self._grammars:
            if self._grammar_compiler is None:
                info = xgr.TokenizerInfo.from_huggingface(
                    self.tokenizer, vocab_size=self.model.config.vocab_size, stop_token_ids=sorted(self._eos_ids)
                )
                self._grammar_compiler = xgr.GrammarCompiler(info)
            self._grammars[constraint.key] = self._grammar_compiler.compile_grammar(constraint.gbnf())
        return LogitsProcessor(self._grammars[constraint.key])

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text``, without special tokens added."""
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def _render(self, request: ChatRequest) -> Prompt:
        messages, tools = self._template_inputs(request)
        text = self.tokenizer.apply_chat_template(messages, tools=tools, add_generation_prompt=True, tokenize=False)
        # The template already holds any special tokens; adding them again would double BOS.
        ids = self.tokenizer(text, add_special_tokens=False).input_ids
        return Prompt(list(ids), text)

    def _generate(
        self, prompt: Prompt, params: GenerationParams, halt: threading.Event, stats: GenerationStats
    ) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList

        torch = self._torch
        tokens: queue.SimpleQueue[object] = queue.SimpleQueue()
        eos_ids = self._eos_ids

        class _Streamer:
            # transformers calls put() with the prompt first, then one token at a time.
            def __init__(self) -> None:
                self.first = True

            def put(self, value: Any) -> None:
                if self.first:
                    self.first = False
                    return
                for token in value.reshape(-1).tolist():
                    tokens.put(token)

            def end(self) -> None:
                tokens.put(_END)

        class _Halt(StoppingCriteria):  # type: ignore[misc]
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.full((input_ids.shape[0],), halt.is_set(), dtype=torch.bool, device=input_ids.device)

        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "streamer": _Streamer(),
            "stopping_criteria": StoppingCriteriaList([_Halt()]),
            "pad_token_id": self.tokenizer.pad_token_id or next(iter(eos_ids), None),
        }
        if params.temperature == 0:
            kwargs["do_sample"] = False
            kwargs["top_p"] = None
            kwargs["top_k"] = None
            kwargs["temperature"] = None
        elif params.temperature is not None or params.top_p is not None:
            kwargs["do_sample"] = True
            if params.temperature is not None:
                kwargs["temperature"] = params.temperature
            if params.top_p is not None:
                kwargs["top_p"] = params.top_p
        if params.constraint is not None:
            kwargs["logits_processor"] = [self._logits_processor(params.constraint)]
        input_ids = torch.tensor([prompt.ids], device=self.model.device)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                with torch.inference_mode():
                    self.model.generate(input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
            except BaseException as error:  # noqa: BLE001 - handed to the consumer below
                failure.append(error)
                tokens.put(_END)

        job = self._engine.submit(run)
        decoder = TokenDecoder(lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True))
        try:
            while True:
                token = tokens.get()
                if token is _END:
                    break
                assert isinstance(token, int)
                if token in eos_ids:
                    stats.eos = True
                    continue
                stats.tokens += 1
                piece = decoder.feed(token)
                if piece:
                    yield piece
            tail = decoder.flush()
            if tail:
                yield tail
            if failure:
                raise failure[0]
        finally:
            halt.set()
            job.result()
