"""``build_app``: a config file as a Ray Serve application (one ingress, one deployment per model)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from modelport.config import Config, ConfigError, load_config, parse_config
from modelport.ray.plan import AppPlan, plan, version

if TYPE_CHECKING:
    from ray.serve import Application, Deployment

__all__ = [
    "INGRESS",
    "app_plan_of",
    "build_app",
    "config_of",
    "private_defaults",
]

INGRESS = "modelport-ingress"
# The app does its own admission per model (Serve's queues in front of each deployment); the
# ingress only parses and streams, so it takes many requests at once.
_INGRESS_ONGOING = 1024


def private_defaults() -> None:
    """Keeps Ray's traffic on the machine: no usage statistics, unless the user chose otherwise.

    Ray reports usage statistics to an outside host by default; modelport turns that off
    (``RAY_USAGE_STATS_ENABLED=0``) when the variable is unset, where a cluster is started or an
    app is built, never on import. Processes Ray starts inherit it.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def config_of(source: Config | Mapping[str, Any] | str | Path) -> Config:
    """A validated config from an object, a mapping in the YAML's shape, or a path to a YAML file.

    A mapping with the single key ``config`` names a file: that is how ``serve run
    modelport.ray:build_app config=serve.yaml`` passes its argument.

    Raises:
        ConfigError: Naming the offending key.
    """
    if isinstance(source, Config):
        return source
    if isinstance(source, str | Path):
        return load_config(source)
    if isinstance(source, Mapping) and set(source) == {"config"} and isinstance(source["config"], str | Path):
        return load_config(source["config"])
    return parse_config(source)


def build_app(config: Config | Mapping[str, Any] | str | Path) -> Application:
    """The Serve application for ``config``, for ``serve.run``, ``serve run`` and ``serve deploy``.

    Each model (and chain) of the file becomes a deployment named after it; the ingress,
    ``modelport-ingress``, serves the OpenAI API in front of them. The built-in models are not
    deployed unless the file lists them: on a cluster, every deployment reserves resources.

    Example:
        A Serve config file that deploys a modelport config::

            applications:
              - name: modelport
                import_path: modelport.ray:build_app
                args: {config: serve.yaml}

    Raises:
        ConfigError: Naming the offending key.
    """
    private_defaults()
    from modelport.ray.deployment import ModelDeployment
    from modelport.ray.ingress import Ingress

    app_plan = app_plan_of(config)
    # The decorator makes these Deployment objects; their classes' types do not say so.
    model, front = cast("Deployment", ModelDeployment), cast("Deployment", Ingress)
    handles = {
        d.name: _versioned(model.options(name=d.name, user_config=d.user_config, **d.options), d.version).bind(d.entry)
        for d in app_plan.deployments
    }
    routes, server = list(app_plan.routes), app_plan.server
    ingress = front.options(name=INGRESS, **{"max_ongoing_requests": _INGRESS_ONGOING, **app_plan.ingress})
    return _versioned(ingress, version(routes, server)).bind(routes, server, handles)


def _versioned(deployment: Deployment, digest: str) -> Deployment:
    """``deployment`` with a version that changes only when its replicas must be rebuilt.

    ``serve.run`` gives an unversioned deployment a new random version on every call, which
    replaces every replica. With a version derived from what the replicas are built from,
    re-running with changed Serve options or ``user_config`` updates the live replicas in place
    (``reconfigure``), and only changed models roll. Ray 2.x keeps this behind an internal flag;
    where it is gone, every re-run rolls every replica, which refuses no request either.
    """
    try:
        return deployment.options(version=digest, _internal=True)
    except (TypeError, ValueError):
        return deployment


def app_plan_of(config: Config | Mapping[str, Any] | str | Path) -> AppPlan:
    """The plan ``build_app`` deploys (no Ray needed), checked for names Serve would clash on."""
    app_plan = plan(config_of(config))
    if not app_plan.deployments:
        raise ConfigError("the Ray backend deploys the file's models and chains; it lists none", param="models")
    if any(d.name == INGRESS for d in app_plan.deployments):
        raise ConfigError(f"{INGRESS!r} is the ingress's deployment name; rename the model", param="models")
    return app_plan
