"""What one app instance holds: the registry, its keys and limits, its drain state and metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from fastapi import Request

from modelport.config import ResponsesConfig
from modelport.core.errors import ConfigError, ModelNotFoundError, ModelPortError
from modelport.server.endpoints.responses.sealing import Sealer
from modelport.server.endpoints.responses.store import MemoryStore, ResponseStore, SqliteStore
from modelport.server.ops.auth import ApiKey, ApiKeys, digest
from modelport.server.ops.lifecycle import Lifecycle
from modelport.server.ops.limits import FREE_SLOT, Limits, ModelLimiter, Slot
from modelport.server.ops.logs import AccessLog
from modelport.server.ops.metrics import ServerMetrics
from modelport.server.ops.quotas import KeyQuotas
from modelport.server.ops.tracking import RequestRecord
from modelport.workers.base import ChatWorker, EmbeddingWorker, EngineMetrics, RerankWorker, Worker
from modelport.workers.model_registry import ModelRegistry, as_chat, as_embedder, as_reranker
from modelport.workers.residency import ResidencyPolicy, parse_keep_alive, parse_size
from modelport.workers.residency.policy import DEFAULT_MAX_WAITING, NEVER

if TYPE_CHECKING:
    from modelport.config import ServerConfig

__all__ = ["ServerSettings", "ServerState", "get_state", "residency_policy"]

logger = logging.getLogger("modelport.server")


@dataclass(frozen=True)
class ServerSettings:
    """How the server behaves.

    Attributes:
        api_keys: Accepted Bearer keys (named ``key-1``...); with no keys at all the server is open.
        keys: Named keys with allow-lists and per-minute limits.
        admin_keys: Keys of the ``/admin`` API; without any, ``/admin`` is not mounted.
        limits: Concurrency and queue length for each model.
        model_limits: Per-model overrides of ``limits``.
        preload: Models to load at startup; the server is ready once they are.
        drain_timeout_s: How long in-flight requests may finish after a shutdown signal.
        metrics_public: Serve ``/metrics`` without a key even when the API needs one.
        playground: Serve the chat playground at ``/playground`` (and send ``/`` there).
        title: The title of the OpenAPI document.
        max_request_bytes: The largest request body taken; past it, 413 before parsing.
        max_embedding_tokens: Tokens one embedding request may hold, all inputs together.
        responses: The Responses API's store and sealing (the config's ``server.responses``).
        response_store: A store built elsewhere (the Ray backend's), over ``responses.store``.
        residency: The memory budget, the cap on loaded models, the default ``keep_alive`` and
            the load timeout; ``None`` leaves the registry's own (by default: load on first
            use, keep until the process ends).
    """

    api_keys: Sequence[str] = ()
    keys: Sequence[ApiKey] = ()
    admin_keys: Sequence[str] = ()
    limits: Limits = field(default_factory=Limits)
    model_limits: Mapping[str, Limits] = field(default_factory=dict)
    preload: Sequence[str] = ()
    drain_timeout_s: float = 30.0
    metrics_public: bool = False
    playground: bool = True
    log_format: Literal["text", "json"] = "text"
    title: str = "modelport"
    max_request_bytes: int = 32 * 1024 * 1024
    max_embedding_tokens: int = 300_000
    responses: ResponsesConfig = field(default_factory=ResponsesConfig)
    response_store: ResponseStore | None = None
    residency: ResidencyPolicy | None = None

    @classmethod
    def from_config(cls, config: ServerConfig, **overrides: object) -> ServerSettings:
        """Settings from a config file's ``server:`` section, with command-line overrides."""
        keys = [
            ApiKey(
                k.name,
                bytes.fromhex(k.sha256) if k.sha256 else digest(k.key or ""),
                frozenset(k.models) if k.models is not None else None,
                k.rpm,
                k.tpm,
            )
            for k in config.keys
        ]
        defaults = Limits()
        limits = Limits(
            config.max_concurrency or defaults.max_concurrency,
            config.max_queue if config.max_queue is not None else defaults.max_queue,
        )
        settings = cls(
            api_keys=list(config.api_keys),
            keys=keys,
            admin_keys=list(config.admin_keys),
            limits=limits,
            drain_timeout_s=config.drain_timeout_s,
            metrics_public=config.metrics_public,
            playground=config.playground,
            log_format=config.log_format,
            title=config.title,
            max_request_bytes=config.max_request_bytes,
            max_embedding_tokens=config.max_embedding_tokens,
            responses=config.responses,
            residency=residency_policy(config),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


class ServerState:
    """The per-app services the routes use (kept on ``app.state``, never in module globals)."""

    def __init__(self, registry: ModelRegistry, settings: ServerSettings) -> None:
        self.registry = registry
        self.settings = settings
        if settings.residency is not None:
            registry.residency.policy = settings.residency
        self.keys = ApiKeys(settings.api_keys, settings.keys)
        self.admin_keys = ApiKeys(
            [], [ApiKey.from_secret(f"admin-{i}", k) for i, k in enumerate(settings.admin_keys, 1)]
        )
        self.background: set[asyncio.Future[None]] = set()
        self.quotas = KeyQuotas()
        entry_limits = {e.name: e.limits for e in registry.entries() if e.limits}
        self.limiter = ModelLimiter(settings.limits, settings.model_limits, entry_limits)
        self.lifecycle = Lifecycle(settings.drain_timeout_s)
        self.metrics = ServerMetrics(self.load, self._engine_metrics, self._replica_states, self._memory)
        stats = registry.residency.stats
        stats.on_load.append(lambda name, seconds: self.metrics.load_seconds.labels(name).observe(seconds))
        stats.on_unload.append(lambda name, reason: self.metrics.unloads.labels(name, reason).inc())
        self.access_log = AccessLog()
        self.started = int(time.time())
        self.preloading: set[str] = set(settings.preload)
        self.response_store = settings.response_store or _response_store(settings.responses)
        self.sealer = Sealer.from_env(settings.responses.secret_env)
        if settings.responses.secret_env is None:
            logger.debug("no server.responses.secret_env: sealed reasoning survives this process only")

    def output_cap(self, model: str) -> int | None:
        """The most tokens one answer of ``model`` may take (its entry's ``limits.max_output_tokens``)."""
        if model not in self.registry.names():
            return None
        cap = self.registry.entry(model).limits.get("max_output_tokens")
        return int(cap) if cap else None

    def request_defaults(self, model: str) -> Mapping[str, Any]:
        """Sampling fields ``model``'s entry sets for requests that leave them unset (``defaults:``)."""
        if model not in self.registry.names():
            return {}
        return self.registry.entry(model).defaults

    async def slot(self, model: str, worker: Worker) -> Slot:
        """A place for one request on ``model``: the server's gate, unless the worker limits itself."""
        if worker.limits_itself:
            return FREE_SLOT
        return await self.limiter.acquire(model, worker.parallelism)

    def _loaded(self) -> dict[str, Worker]:
        return self.registry.loaded()

    def load(self) -> dict[str, tuple[int, int]]:
        """Requests running and waiting, by model: the server's gates and self-limiting workers."""
        out = self.limiter.load()
        for name, worker in self._loaded().items():
            own = getattr(worker, "load", None) if worker.limits_itself else None
            if callable(own):
                out[name] = own()
        return out

    def _replica_states(self) -> dict[str, list[tuple[str, str]]]:
        out = {}
        for name, worker in self._loaded().items():
            describe = getattr(worker, "describe", None)
            if callable(describe):
                out[name] = [(r["id"], r["state"]) for r in describe()]
        return out

    def _memory(self) -> tuple[int | None, list[tuple[str, bool, int]]]:
        residency = self.registry.residency
        return residency.policy.memory_budget, residency.snapshot()

    def _engine_metrics(self) -> dict[str, EngineMetrics]:
        out = {}
        for name, worker in self._loaded().items():
            stats = worker.engine_metrics()
            if stats is not None:
                out[name] = stats
        return out

    def finished(self, record: RequestRecord) -> None:
        """Everything that happens once per finished request: leases, metrics, key tokens, access log."""
        for lease in record.leases:  # the models it held may unload now
            lease.release()
        self.metrics.observe(record)
        if record.key is not None:
            used = record.prompt_tokens + record.completion_tokens
            self.quotas.charge(record.key, used, reserved=record.reserved_tokens)
        self.access_log(record)

    async def preload(self) -> None:
        """Loads the preloaded models one by one, off the event loop; failures are recorded.

        Once loaded, ``keep_alive`` and the budget apply to them as to any model.
        """
        started = time.monotonic()
        for name in list(self.settings.preload):
            try:
                lease = await self.registry.alease(name)  # waits for room like any request
            except ModelPortError:
                pass  # the registry logged it and keeps the reason; readiness reports it
            else:
                lease.release()  # idle now: its keep_alive starts
            finally:
                self.preloading.discard(name)
        failed = self._preload_failures()
        if failed:
            logger.error("not ready: %s failed to load", ", ".join(sorted(failed)))
        else:
            logger.info("ready: %d model(s) loaded in %.1f s", len(self.settings.preload), time.monotonic() - started)

    def _preload_failures(self) -> dict[str, str]:
        """Failed loads that make the server unready: a preloaded model's, or any without ``--preload``."""
        failed = self.registry.failures()
        preload = set(self.settings.preload)
        return {n: e for n, e in failed.items() if n in preload} if preload else failed

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Whether the server should get traffic, and why not.

        Ready once every preloaded model loaded and none of them has failed since; a model that
        ``keep_alive`` or the budget unloaded does not make the server unready.
        """
        failed = self._preload_failures()
        loading = sorted(self.preloading)
        ready = not failed and not loading and not self.lifecycle.draining
        detail: dict[str, object] = {"status": "ready" if ready else "not ready"}
        if self.lifecycle.draining:
            detail["draining"] = True
        if loading:
            detail["loading"] = loading
        if failed:
            detail["failed"] = failed
        return ready, detail

    def admit(self, record: RequestRecord, model: str, endpoint: str) -> None:
        """Resolves the model a request names (an alias means its model) and checks the key may use it.

        The record then holds the resolved model, which the allow-list, limits, metrics and
        every later lookup see; the name sent is kept beside it for the access log.

        Raises:
            ModelNotFoundError: If no model answers to ``model``, or the key's allow-list leaves
                the resolved model out (listing only what the key may use).
        """
        record.model, record.endpoint = model, endpoint
        try:
            found = self.registry.resolve(model)
        except ModelNotFoundError:
            if record.key is not None:  # its 404 lists only the models the key may use
                record.key.check_model(model, self.registry.names())
            raise
        record.model_known = True
        if found.alias is not None:
            record.model, record.requested_model, record.alias = found.model, model, found.alias
        if record.key is not None:
            record.key.check_model(record.model, self.registry.names(), requested=model)

    async def worker(self, name: str, record: RequestRecord, keep_alive_s: float | None = None) -> Worker:
        """``name``'s worker, held loaded until the request ends (its lease goes on the record).

        A model not in memory loads off the event loop, after idle models make room if the
        budget needs it; the wait is bounded by ``server.load_timeout_s``.
        """
        self.registry.entry(name)  # a 404 for an unknown name, before any loading
        lease = await self.registry.alease(name, keep_alive_s=keep_alive_s)
        record.leases.append(lease)
        return lease.worker

    async def chat_worker(self, name: str, record: RequestRecord, keep_alive_s: float | None = None) -> ChatWorker:
        """The chat worker for ``name``, held until the request ends (see ``worker``)."""
        return as_chat(await self.worker(name, record, keep_alive_s), name)

    async def embedder(self, name: str, record: RequestRecord, keep_alive_s: float | None = None) -> EmbeddingWorker:
        """The embedding worker for ``name``, held until the request ends (see ``worker``)."""
        return as_embedder(await self.worker(name, record, keep_alive_s), name)

    async def reranker(self, name: str, record: RequestRecord, keep_alive_s: float | None = None) -> RerankWorker:
        """The worker that reranks for ``name``, held until the request ends (see ``worker``)."""
        return as_reranker(await self.worker(name, record, keep_alive_s), name)


def residency_policy(config: ServerConfig) -> ResidencyPolicy | None:
    """The ``server:`` section's budget, cap, ``keep_alive`` and load timeout (``None`` if none is set)."""
    if not config.model_fields_set & {"memory_budget", "max_loaded_models", "keep_alive", "load_timeout_s"}:
        return None
    budget = config.memory_budget
    keep_alive = parse_keep_alive(config.keep_alive, param="server.keep_alive")
    return ResidencyPolicy(
        memory_budget=None if budget is None else parse_size(budget, param="server.memory_budget"),
        max_loaded_models=config.max_loaded_models,
        keep_alive_s=NEVER if keep_alive is None else keep_alive,
        load_timeout_s=config.load_timeout_s,
        max_waiting=config.max_queue if config.max_queue is not None else DEFAULT_MAX_WAITING,
    )


def get_state(request: Request) -> ServerState:
    """The app's state, for route dependencies."""
    state: ServerState = request.app.state.modelport
    return state


def _response_store(config: ResponsesConfig) -> ResponseStore:
    """The store ``server.responses`` describes (a Ray store comes from the Ray backend)."""
    if config.store == "ray":
        raise ConfigError("store: ray needs --backend ray", param="server.responses.store")
    if config.store == "sqlite":
        assert config.path is not None  # the schema requires it
        return SqliteStore(config.path, config.max_entries, config.max_bytes, config.ttl_s)
    return MemoryStore(config.max_entries, config.max_bytes, config.ttl_s)
