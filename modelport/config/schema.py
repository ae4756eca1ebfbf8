"""The config file's schema and loader: every section checked in full before anything loads.

Each model's ``params`` are checked against its kind (``modelport.workers.entry_params``); the
``ray:`` blocks' schema is ``modelport.config.ray_options``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from modelport.config.ray_options import DeploymentOptions, RaySection
from modelport.core.durations import parse_duration
from modelport.core.errors import BadRequestError, ConfigError
from modelport.workers.aliases import alias_clashes
from modelport.workers.entry_params import check_params, did_you_mean
from modelport.workers.kind_registry import KindRegistry, worker_kinds
from modelport.workers.model_registry import BUILTIN_MODELS, ModelEntry, ModelRegistry
from modelport.workers.residency import parse_keep_alive, parse_size

__all__ = [
    "ChainConfig",
    "Config",
    "ConfigError",
    "KeyConfig",
    "DefaultsConfig",
    "LimitsConfig",
    "ModelConfig",
    "ResponsesConfig",
    "RouterConfig",
    "ServerConfig",
    "config_error",
    "load_config",
    "parse_config",
]


def _duration_or_raise(value: float | str | None, key: str) -> None:
    """Refuses a ``keep_alive`` that is not a duration, as a validator error at its section."""
    try:
        parse_keep_alive(value, param=key)
    except BadRequestError as error:
        raise ValueError(f"{key}: {error.message.removeprefix(f'{key}: ')}") from None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitsConfig(_Section):
    """A model's ``limits:`` block."""

    max_concurrency: int | None = Field(default=None, ge=1, description="requests at once")
    max_queue: int | None = Field(default=None, ge=0, description="requests waiting before 429")
    max_output_tokens: int | None = Field(
        default=None, ge=1, description="tokens one answer may take, on every endpoint, whatever the client asks"
    )


class DefaultsConfig(_Section):
    """A model's ``defaults:`` block: sampling for requests that leave a field unset.

    As Ollama's Modelfile parameters, on every endpoint: clients that send no sampling of their
    own (agent clients) get these.
    """

    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    min_p: float | None = Field(default=None, ge=0, le=1)
    seed: int | None = None


class ModelConfig(_Section):
    """One ``models:`` entry: a name bound to a worker kind and its parameters.

    Several entries may share a name (LiteLLM's convention): they become replicas of one model,
    routed by the ``router:`` block. ``replicas: N`` is shorthand for N copies of an entry.
    """

    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    limits: LimitsConfig | None = None
    defaults: DefaultsConfig | None = None
    replicas: int = Field(default=1, ge=1)
    weight: float = Field(default=1.0, gt=0, description="share of traffic under the weighted strategy")
    id: str | None = Field(default=None, min_length=1, description="the replica's id (default NAME-N)")
    base_model: bool = Field(default=False, description="a pretrained base model, not instruction-tuned")
    ray: DeploymentOptions | None = Field(default=None, description="its Serve deployment's options (--backend ray)")
    aliases: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="other names it answers to: exact, or globs such as claude-*"
    )
    keep_alive: float | str | None = Field(
        default=None, description="how long it stays loaded once idle: 30s, 5m, 0 (at once), -1 (never)"
    )
    pin: bool = Field(default=False, description="never unloaded by keep_alive or the memory budget")

    @model_validator(mode="after")
    def _check_keep_alive(self) -> ModelConfig:
        _duration_or_raise(self.keep_alive, "keep_alive")
        return self

    def _limits(self) -> dict[str, int]:
        return {} if self.limits is None else self.limits.model_dump(exclude_none=True)

    def entry(self) -> ModelEntry:
        """The registry entry of a model served by this entry alone."""
        return ModelEntry(
            self.name,
            self.kind,
            dict(self.params),
            self.description,
            self._limits(),
            base_model=self.base_model,
            defaults=self._defaults(),
            aliases=tuple(self.aliases),
            keep_alive=self.keep_alive,
            pin=self.pin,
        )

    def _defaults(self) -> dict[str, Any]:
        return {} if self.defaults is None else self.defaults.model_dump(exclude_none=True)

    def members(self) -> list[dict[str, Any]]:
        """This entry as replica-set members, one per replica."""
        out = []
        for i in range(self.replicas):
            member: dict[str, Any] = {"kind": self.kind, "params": dict(self.params), "weight": self.weight}
            if self.limits is not None:
                member["limits"] = self._limits()
            if self.id is not None:
                member["id"] = self.id if self.replicas == 1 else f"{self.id}-{i}"
            out.append(member)
        return out


Strategy = Literal["least_busy", "power_of_two", "weighted", "round_robin"]


class RouterConfig(_Section):
    """The ``router:`` block: how replicas of one name share traffic and are watched."""

    strategy: Strategy = "least_busy"
    per_model: dict[str, Strategy] = Field(default_factory=dict)
    health_check_period_s: float = Field(default=10.0, gt=0)
    health_check_timeout_s: float = Field(default=5.0, gt=0)
    allowed_fails: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=5.0, ge=0)

    def params_for(self, name: str) -> dict[str, Any]:
        """The replica-set parameters of model ``name``."""
        return {
            "strategy": self.per_model.get(name, self.strategy),
            "health_check_period_s": self.health_check_period_s,
            "health_check_timeout_s": self.health_check_timeout_s,
            "allowed_fails": self.allowed_fails,
            "cooldown_s": self.cooldown_s,
        }


class ChainConfig(_Section):
    """One ``chains:`` entry: a LangChain runnable built by ``factory`` (``module:function``)."""

    name: str = Field(min_length=1)
    factory: str = Field(pattern=r"^[\w.]+:[\w.]+$")
    params: dict[str, Any] = Field(default_factory=dict)
    description: str = ""
    ray: DeploymentOptions | None = Field(default=None, description="its Serve deployment's options (--backend ray)")
    aliases: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list, description="other names")

    def entry(self) -> ModelEntry:
        """The ``runnable`` entry that serves the chain."""
        params = {"factory": self.factory, **self.params}
        return ModelEntry(self.name, "runnable", params, self.description, aliases=tuple(self.aliases))


class KeyConfig(_Section):
    """One API key with its own limits; ``key`` or its ``sha256``, so the file need hold no secret."""

    name: str = Field(min_length=1)
    key: str | None = Field(default=None, min_length=1)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    models: list[str] | None = None
    rpm: int | None = Field(default=None, ge=1, description="requests per minute")
    tpm: int | None = Field(default=None, ge=1, description="prompt plus completion tokens per minute")

    @model_validator(mode="after")
    def _one_secret(self) -> KeyConfig:
        if (self.key is None) == (self.sha256 is None):
            raise ValueError("give exactly one of 'key' and 'sha256'")
        return self


class ResponsesConfig(_Section):
    """The ``server.responses:`` block: where stored responses live, and how long."""

    store: Literal["memory", "sqlite", "ray"] | None = Field(
        default=None, description="memory (default), sqlite (at path), ray (the default under --backend ray)"
    )
    path: str | None = Field(default=None, description="the SQLite file (store: sqlite), or the ray store's file")
    max_entries: int = Field(default=10_000, ge=1)
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    ttl: float | str = Field(default="30d", description="how long a stored response lives: 30m, 24h, 30d; -1 never")
    secret_env: str | None = Field(default=None, description="the environment variable holding the sealing key")
    hosted_tools: Literal["drop", "error"] = Field(
        default="drop", description="hosted tools (web_search...): left out and reported, or a 400"
    )

    @property
    def ttl_s(self) -> float:
        """``ttl`` in seconds (``inf`` for never)."""
        return parse_duration(self.ttl, param="ttl")

    @model_validator(mode="after")
    def _check(self) -> ResponsesConfig:
        try:
            self.ttl_s  # noqa: B018 - parsed here to refuse a bad value by its path
        except BadRequestError as error:
            raise ValueError(error.message.removeprefix("ttl: ")) from None
        if self.store == "sqlite" and not self.path:
            raise ValueError("store: sqlite needs a path")
        return self


class ServerConfig(_Section):
    """The ``server:`` section."""

    api_keys: list[str] = Field(default_factory=list)
    keys: list[KeyConfig] = Field(default_factory=list)
    admin_keys: list[str] = Field(default_factory=list, description="keys of the /admin API (none: not mounted)")
    max_concurrency: int | None = Field(default=None, ge=1)
    max_queue: int | None = Field(default=None, ge=0)
    drain_timeout_s: float = Field(default=30.0, ge=0)
    preload: bool = False
    metrics_public: bool = False
    playground: bool = True
    log_format: Literal["text", "json"] = "text"
    title: str = "modelport"
    max_request_bytes: int = Field(default=32 * 1024 * 1024, ge=1, description="largest body taken (else 413)")
    max_embedding_tokens: int = Field(default=300_000, ge=1, description="tokens in one embedding request")
    responses: ResponsesConfig = ResponsesConfig()
    memory_budget: int | str | None = Field(
        default=None, description="what loaded models may hold together: 6GiB, 512MB, 50% (of RAM)"
    )
    max_loaded_models: int | None = Field(default=None, ge=1, description="models loaded at once")
    keep_alive: float | str | None = Field(
        default=None, description="how long an idle model stays loaded: 5m, 0, -1 (never, the default)"
    )
    load_timeout_s: float = Field(default=300.0, gt=0, description="longest wait for room and a load together")

    @model_validator(mode="after")
    def _check_residency(self) -> ServerConfig:
        _duration_or_raise(self.keep_alive, "keep_alive")
        if self.memory_budget is not None:
            try:
                parse_size(self.memory_budget, param="memory_budget")
            except BadRequestError as error:
                raise ValueError(f"memory_budget: {error.message.removeprefix('memory_budget: ')}") from None
        return self

    @model_validator(mode="after")
    def _unique_key_names(self) -> ServerConfig:
        names = [k.name for k in self.keys]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"key names must be unique; repeated: {', '.join(duplicated)}")
        return self


class Config(_Section):
    """A whole config file."""

    models: list[ModelConfig] = Field(default_factory=list)
    chains: list[ChainConfig] = Field(default_factory=list)
    server: ServerConfig = ServerConfig()
    router: RouterConfig = RouterConfig()
    fallbacks: dict[str, list[str]] = Field(default_factory=dict)
    ray: RaySection = RaySection()

    def entries(self) -> list[ModelEntry]:
        """The file's models (one entry per name: several replicas become a replica set), then its chains."""
        groups: dict[str, list[ModelConfig]] = {}
        for model in self.models:
            groups.setdefault(model.name, []).append(model)
        out = []
        for name, group in groups.items():
            # One replica stays a plain model unless routing is configured for it (fallbacks or a
            # strategy of its own), which only a replica set carries out.
            routed = name in self.fallbacks or name in self.router.per_model
            if sum(m.replicas for m in group) == 1 and not routed:
                out.append(group[0].entry())
                continue
            params = {
                "members": [member for m in group for member in m.members()],
                "name": name,
                "fallbacks": list(self.fallbacks.get(name, ())),
                **self.router.params_for(name),
            }
            base = all(m.base_model for m in group)
            # The server caps a name's answers: the tightest cap its replicas set.
            caps = [m.limits.max_output_tokens for m in group if m.limits and m.limits.max_output_tokens]
            limits = {"max_output_tokens": min(caps)} if caps else {}
            # One name, one set of defaults: the first entry's (the replicas serve one model).
            defaults = group[0]._defaults()
            entry = ModelEntry(name, "replica-set", params, group[0].description, limits, base, defaults)
            # The set loads and unloads as one: the first entry's keep_alive, pinned if any is.
            keep_alive, pin = group[0].keep_alive, any(m.pin for m in group)
            out.append(replace(entry, aliases=self.aliases_of(name), keep_alive=keep_alive, pin=pin))
        return out + [c.entry() for c in self.chains]

    def aliases_of(self, name: str) -> tuple[str, ...]:
        """The aliases of model ``name``: its entries declare them once, or identically."""
        return next((tuple(m.aliases) for m in self.models if m.name == name and m.aliases), ())

    def registry(self, *, include_builtin: bool = True) -> ModelRegistry:
        """A registry of the built-ins (unless left out) with this file's entries over them."""
        registry = ModelRegistry(BUILTIN_MODELS if include_builtin else ())
        for entry in self.entries():
            registry.add(entry, replace=True)
        return registry


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _section_at(loc: tuple[int | str, ...], root: type[BaseModel]) -> type[BaseModel] | None:
    """The schema class that holds the key at ``loc`` (for "did you mean" suggestions)."""
    current: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = current.model_fields[part].annotation
        while get_origin(current) is not None:  # list[X], X | None
            current = next((a for a in get_args(current) if a is not type(None)), None)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _problem(found: Any, root: type[BaseModel]) -> tuple[str, str]:
    """One pydantic error as ``(path, message)``."""
    loc = tuple(found["loc"])
    # A model-level validator reports at its section; its message starts "Value error, ".
    message = re.sub(r"^Value error, ", "", found["msg"])
    if found["type"] == "extra_forbidden":
        key = str(loc[-1])
        section = _section_at(loc, root)
        hint = did_you_mean(key, section.model_fields) if section is not None else ""
        known = f" (known: {', '.join(section.model_fields)})" if section is not None and not hint else ""
        message = f"unknown key {key!r}{hint}{known}"
    elif found["type"] == "missing":
        message = "a required key is missing"
    return _path(loc) or "config", message


def _error(problems: list[tuple[str, str]]) -> ConfigError:
    """One error for every problem: the first in its message and ``param``, all in ``problems``."""
    path, message = problems[0]
    more = len(problems) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return ConfigError(message + suffix, param=path, problems=problems)


def config_error(error: ValidationError, root: type[BaseModel] | None = None) -> ConfigError:
    """Every problem of a failed validation of ``root`` (the whole file by default), by path."""
    return _error([_problem(found, root or Config) for found in error.errors()])


def parse_config(data: Any, *, kinds: KindRegistry = worker_kinds) -> Config:
    """Validates a parsed config, each model's params against its kind included.

    Raises:
        ConfigError: Naming the first offending key by its path, and every problem found in
            ``problems`` (the schema's, else the kinds', params' and names').
    """
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError("the config must be a mapping with models, chains and server sections", param="config")
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        raise config_error(error) from None
    problems = [*_name_problems(config), *_alias_problems(config)]
    for i, model in enumerate(config.models):
        where = f"models[{i}]"
        try:
            factory = kinds.get(model.kind)
        except BadRequestError:
            known = kinds.names()
            hint = f"unknown kind {model.kind!r}{did_you_mean(model.kind, known)} (known: {', '.join(known)})"
            problems.append((f"{where}.kind", hint))
            continue
        try:
            check_params(factory, model.params, kind=model.kind, where=where)
        except BadRequestError as error:
            problems.append((error.param or where, error.message.removeprefix(f"{error.param}: ")))
    if problems:
        raise _error(problems)
    return config


def _alias_problems(config: Config) -> Iterator[tuple[str, str]]:
    """Replicas of one name declare one list of aliases; two models never claim one alias."""
    declared: dict[str, list[str]] = {}
    for i, model in enumerate(config.models):
        if not model.aliases:
            continue
        first = declared.setdefault(model.name, model.aliases)
        if model.aliases != first:
            yield f"models[{i}].aliases", f"replicas of {model.name!r} declare the same aliases, or only one does"
    where = [f"models[{i}]" for i in range(len(config.models))] + [f"chains[{i}]" for i in range(len(config.chains))]
    claims = [(m.name, m.aliases) for m in config.models] + [(c.name, c.aliases) for c in config.chains]
    for i, j, message in alias_clashes(claims):
        yield f"{where[i]}.aliases[{j}]", message


def _name_problems(config: Config) -> Iterator[tuple[str, str]]:
    """Names that ``fallbacks`` and ``router.per_model`` refer to must exist."""
    own = {m.name for m in config.models}
    known = own | {c.name for c in config.chains} | {e.name for e in BUILTIN_MODELS}
    for name in config.router.per_model:
        if name not in own:
            yield f"router.per_model.{name}", f"no model {name!r} in this file{did_you_mean(name, own)}"
    for name, targets in config.fallbacks.items():
        if name not in own:
            yield f"fallbacks.{name}", f"no model {name!r} in this file{did_you_mean(name, own)}"
            continue
        for i, target in enumerate(targets):
            if target not in known or target == name:
                hint = "a model cannot fall back to itself" if target == name else f"no model {target!r}"
                yield f"fallbacks.{name}[{i}]", f"{hint}{did_you_mean(target, known - {name})}"


def load_config(path: str | Path, *, kinds: KindRegistry = worker_kinds) -> Config:
    """Reads and validates a YAML config file.

    Raises:
        ConfigError: If the file is missing, is not YAML, or does not match the schema.
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read config {path}: {error}", param="config") from None
    return parse_config(data, kinds=kinds)
