"""From a config file to Serve deployments: which deployments, with which options, routed how.

Pure data, no Ray: ``plan(config)`` is what ``build_app`` deploys, and what ``modelport check``
can show on a machine without Ray.

How the file's routing carries over:

- ``replicas: N`` on an entry becomes its deployment's ``num_replicas: N``;
- several entries under one name become one deployment each, routed in the ingress by the
  ``router:`` strategy, with the name's ``fallbacks``;
- ``limits.max_concurrency`` (else the kind's ``n_parallel``, else the server's) becomes
  ``max_ongoing_requests``, and ``limits.max_queue`` (else the server's) ``max_queued_requests``;
- parameters the kind can change in place (``Worker.reconfigurable``) go in ``user_config``, so
  changing only those reconfigures the running replicas instead of replacing them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelport.config import Config, ModelConfig, ServerConfig
from modelport.config.ray_options import DeploymentOptions
from modelport.core.errors import BadRequestError, ConfigError
from modelport.workers.kind_registry import KindRegistry, worker_kinds
from modelport.workers.model_registry import ModelEntry

__all__ = [
    "AppPlan",
    "DeploymentPlan",
    "plan",
    "version",
]

_DEFAULT_CONCURRENCY = 4  # the plain server's per-model default (``Limits``)
_DEFAULT_QUEUE = 64


@dataclass(frozen=True)
class DeploymentPlan:
    """One Serve deployment: one model entry, loaded by each of its replicas.

    Attributes:
        name: The deployment's name.
        version: A digest of ``entry``: Serve replaces the replicas only when it changes.
        entry: What each replica loads, without the in-place parameters.
        user_config: ``{"params": {...}}``, the in-place parameters (``reconfigure``).
        options: The deployment's Serve options.
        capacity: Requests all its replicas take at once, for the ingress's router.
    """

    name: str
    entry: ModelEntry
    version: str
    user_config: dict[str, Any]
    options: dict[str, Any]
    capacity: int | None


@dataclass(frozen=True)
class AppPlan:
    """A whole application: the deployments, the ingress's options, and its routes.

    Attributes:
        routes: The ingress's registry entries: each model name as a ``ray-serve`` worker of its
            deployment, or a ``replica-set`` of such workers.
    """

    app_name: str
    route_prefix: str
    ingress: dict[str, Any]
    deployments: tuple[DeploymentPlan, ...]
    routes: tuple[ModelEntry, ...]
    server: ServerConfig


def _name(text: str) -> str:
    return text.replace("#", "_")  # the one character Serve refuses in deployment names


def plan(config: Config, *, kinds: KindRegistry = worker_kinds) -> AppPlan:
    """The Serve application for ``config``: its file's models and chains, nothing built in.

    Raises:
        ConfigError: For settings that contradict each other in Serve's terms (``replicas``
            beside ``ray.num_replicas``), naming the key.
    """
    section = config.ray
    groups: dict[str, list[tuple[int, ModelConfig]]] = {}
    for i, model in enumerate(config.models):
        groups.setdefault(model.name, []).append((i, model))
    deployments: list[DeploymentPlan] = []
    routes: list[ModelEntry] = []
    taken = set(groups) | {c.name for c in config.chains}
    for name, group in groups.items():
        members: list[dict[str, Any]] = []
        for n, (i, model) in enumerate(group):
            dep_name = _name(name) if len(group) == 1 else _name(model.id or f"{name}-{n}")
            if len(group) > 1 and dep_name in taken:
                raise ConfigError(
                    f"the deployment name {dep_name!r} is a model's name; set another id", param=f"models[{i}].id"
                )
            taken.add(dep_name)
            deployment = _deployment(config, model, dep_name, f"models[{i}]", kinds)
            deployments.append(deployment)
            members.append(
                {
                    "kind": "ray-serve",
                    "params": {"deployment": dep_name, "app": section.app_name, "capacity": deployment.capacity},
                    "id": dep_name,
                    "weight": model.weight,
                    "limits": {"max_concurrency": deployment.capacity or _DEFAULT_CONCURRENCY},
                }
            )
        routed = name in config.fallbacks or name in config.router.per_model
        base = all(model.base_model for _, model in group)
        description, aliases = group[0][1].description, config.aliases_of(name)
        if len(group) == 1 and not routed:
            params = members[0]["params"]
            routes.append(ModelEntry(name, "ray-serve", params, description, base_model=base, aliases=aliases))
            continue
        params = {
            "members": members,
            "name": name,
            "fallbacks": list(config.fallbacks.get(name, ())),
            **config.router.params_for(name),
        }
        routes.append(ModelEntry(name, "replica-set", params, description, base_model=base, aliases=aliases))
    for chain in config.chains:
        options = (chain.ray or DeploymentOptions()).over(section.deployment_defaults).serve()
        options.setdefault("max_ongoing_requests", config.server.max_concurrency or _DEFAULT_CONCURRENCY)
        entry = chain.entry()
        dep = DeploymentPlan(_name(chain.name), entry, version(entry), {"params": {}}, options, _capacity(options))
        deployments.append(dep)
        params = {"deployment": dep.name, "app": section.app_name, "capacity": dep.capacity}
        routes.append(ModelEntry(chain.name, "ray-serve", params, chain.description, aliases=tuple(chain.aliases)))
    return AppPlan(
        section.app_name,
        section.route_prefix,
        section.ingress.serve(),
        tuple(deployments),
        tuple(routes),
        config.server,
    )


def _capacity(options: dict[str, Any]) -> int | None:
    ongoing = options.get("max_ongoing_requests")
    if ongoing is None:
        return None
    autoscaling = options.get("autoscaling_config")
    replicas = autoscaling.get("max_replicas", 1) if autoscaling else options.get("num_replicas", 1)
    return int(ongoing) * int(replicas)


def _deployment(config: Config, model: ModelConfig, name: str, where: str, kinds: KindRegistry) -> DeploymentPlan:
    own = model.ray or DeploymentOptions()
    if model.replicas > 1 and (own.num_replicas is not None or own.autoscaling_config is not None):
        key = "num_replicas" if own.num_replicas is not None else "autoscaling_config"
        raise ConfigError(f"give replicas or ray.{key}, not both", param=f"{where}.ray.{key}")
    options = own.over(config.ray.deployment_defaults).serve()
    if model.replicas > 1:
        options.pop("autoscaling_config", None)
        options["num_replicas"] = model.replicas
    limits = model.limits
    server = config.server
    if "max_ongoing_requests" not in options:
        n_parallel = model.params.get("n_parallel")
        options["max_ongoing_requests"] = (
            (limits.max_concurrency if limits is not None else None)
            or (n_parallel if isinstance(n_parallel, int) and n_parallel > 0 else None)
            or server.max_concurrency
            or _DEFAULT_CONCURRENCY
        )
    if "max_queued_requests" not in options:
        queue = limits.max_queue if limits is not None else None
        options["max_queued_requests"] = next(q for q in (queue, server.max_queue, _DEFAULT_QUEUE) if q is not None)
    in_place_keys = _reconfigurable(kinds, model.kind)
    params = {k: v for k, v in model.params.items() if k not in in_place_keys}
    in_place = {k: v for k, v in model.params.items() if k in in_place_keys}
    entry = ModelEntry(model.name, model.kind, params, model.description, model._limits(), model.base_model)
    return DeploymentPlan(name, entry, version(entry), {"params": in_place}, options, _capacity(options))


def version(*parts: Any) -> str:
    """A digest of what a replica is built from (its init arguments and modelport's version)."""
    import modelport

    text = json.dumps([modelport.__version__, *parts], sort_keys=True, default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return repr(value)


def _reconfigurable(kinds: KindRegistry, kind: str) -> Sequence[str]:
    try:
        factory = kinds.get(kind)
    except BadRequestError:
        return ()
    return tuple(getattr(factory, "reconfigurable", ()))
