"""What a model holds in memory: estimated before its load, measured around it, and handed back."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "estimate_footprint",
    "llama_cpp_bytes",
    "process_rss",
    "release_memory",
    "safetensors_parameters",
    "torch_model_bytes",
]

logger = logging.getLogger("modelport.residency")


def process_rss() -> int:
    """This process's resident set size in bytes (Linux's ``/proc``; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    return trim


def release_memory() -> None:
    """Collects cycles, then asks glibc to hand freed heap pages back to the system.

    Without ``malloc_trim``, memory a closed model freed stays in the allocator's arenas and
    the process's RSS does not fall; torch models leave cycles that only a collection frees.
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def estimate_footprint(factory: Any, params: Mapping[str, Any]) -> int | None:
    """Bytes a model of this kind with these parameters will hold once loaded, if its kind can tell.

    A kind tells through a static ``estimate_footprint(params)`` on its factory; a kind without
    one (remote APIs, runnables) holds next to nothing and counts as 0. An estimate that fails
    (a file not there yet) is ``None``: the load finds out, and its measurement counts.
    """
    estimate = getattr(factory, "estimate_footprint", None)
    if estimate is None:
        return 0
    try:
        value = estimate(params)
    except Exception as error:  # noqa: BLE001 - an estimate is advice; the load reports real errors
        logger.debug("no footprint estimate for %s: %s", getattr(factory, "__name__", factory), error)
        return None
    return None if value is None else int(value)


# -- estimates the local kinds use -------------------------------------------------------------

# Bytes one element of a KV cache takes, by ggml type id (f32, f16, q4_0, q8_0; f16 by default).
_GGML_CACHE_BYTES = {0: 4.0, 1: 2.0, 2: 18 / 32, 8: 34 / 32}
# llama.cpp's compute buffers on the CPU backend grow with the vocabulary: about 80 rows of
# float logits; 32 MiB more covers the tokenizer's own context and repacked weights. Measured on
# SmolLM2 (49k vocabulary) and Gemma 3 (262k) at 1-8 sequences of 1-4k tokens: within 10%.
_COMPUTE_ROWS = 80
_LLAMA_CPP_FIXED = 32 * 1024 * 1024
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "F64": 8}


def llama_cpp_bytes(path: str | os.PathLike[str], *, n_ctx: int, n_parallel: int, type_k: int = 1) -> int:
    """A GGUF model under llama.cpp: its weights, ``n_parallel x n_ctx`` cached tokens, compute buffers.

    Args:
        path: The GGUF file.
        n_ctx: Tokens each sequence holds (0: the model's trained context).
        n_parallel: Sequences cached at once.
        type_k: The cache's ggml type (1, f16, unless the entry sets ``type_k``).
    """
    from modelport.workers.gguf import read_gguf_header

    header = read_gguf_header(os.fspath(path))
    window = n_ctx or int(header.arch("context_length", 4096))
    per_token = header.kv_bytes_per_token(cache_bytes=1) * _GGML_CACHE_BYTES.get(type_k, 2.0)
    embd = int(header.arch("embedding_length", 0)) or 1
    vocab = int(header.arch("vocab_size", 0)) or header.tensor_elements.get("token_embd.weight", 0) // embd
    return int(os.path.getsize(path) + n_parallel * window * per_token + _COMPUTE_ROWS * vocab * 4 + _LLAMA_CPP_FIXED)


def safetensors_parameters(folder: str | os.PathLike[str]) -> tuple[int, int]:
    """Elements and bytes stored in a folder's ``*.safetensors`` files, read from their headers."""
    import json
    import math
    from pathlib import Path

    elements = stored = 0
    for file in sorted(Path(folder).rglob("*.safetensors")):
        with open(file, "rb") as stream:
            length = int.from_bytes(stream.read(8), "little")
            header = json.loads(stream.read(length))
        for name, tensor in header.items():
            if name == "__metadata__":
                continue
            count = math.prod(tensor["shape"])
            elements += count
            stored += count * _DTYPE_BYTES.get(tensor["dtype"], 4)
    return elements, stored


def torch_model_bytes(elements: int, stored: int, dtype: str) -> int:
    """Weights in memory: ``elements`` at ``dtype`` (``auto``: as ``stored``), plus 10% for the rest."""
    weights = stored if dtype == "auto" else elements * _DTYPE_BYTES.get(dtype, 4)
    return int(weights * 1.1)
