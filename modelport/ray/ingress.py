"""``Ingress``: the Serve deployment that runs the OpenAI app of ``create_app`` in front of the models.

Its registry holds one ``ray-serve`` worker per model name (or a replica set of them, for a name
with several entries), so the app's routes, auth, limits, metrics and pages are the plain
server's, unchanged. Stored responses live in the application's ``RayStore`` (unless the config
names another store), so any ingress replica continues any conversation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ray import serve

from modelport.config import ServerConfig
from modelport.core.errors import NotSupportedError
from modelport.workers.model_registry import ModelEntry, ModelRegistry

__all__ = ["Ingress", "ServeRegistry"]


class ServeRegistry(ModelRegistry):
    """The ingress's registry: its models are Serve deployments, which Serve adds and replaces."""

    def check_changes(self) -> None:
        """Refuses the admin API's changes: on Ray, ``serve deploy`` (or re-running) makes them."""
        raise NotSupportedError(
            "On the Ray backend, Serve owns the replicas: change them by deploying the changed config "
            "(serve deploy, or modelport serve --backend ray again)."
        )


def _with_handles(entry: ModelEntry, handles: Mapping[str, Any]) -> ModelEntry:
    """``entry`` with each ``ray-serve`` worker given its deployment's handle."""
    if entry.kind == "ray-serve":
        return replace(entry, params={**entry.params, "handle": handles[entry.params["deployment"]]})
    if entry.kind == "replica-set":
        members = [
            {**m, "params": {**m["params"], "handle": handles[m["params"]["deployment"]]}}
            for m in entry.params["members"]
        ]
        return replace(entry, params={**entry.params, "members": members})
    return entry


def _store(server: ServerConfig) -> Any:
    """The application's shared response store, unless the config names a per-process one."""
    config = server.responses
    if config.store not in (None, "ray"):
        return None
    from modelport.ray.response_store import RayStore

    app = serve.get_replica_context().app_name
    return RayStore(f"modelport-responses-{app}", config.max_entries, config.max_bytes, config.ttl_s, config.path)


@serve.deployment
@serve.ingress()
class Ingress:
    """Serves the OpenAI API for every deployment of the application.

    Args:
        routes: The registry entries of the model names (``AppPlan.routes``).
        server: The config's ``server:`` section.
        handles: Each model deployment's handle, by deployment name.
    """

    def __init__(self, routes: Sequence[ModelEntry], server: ServerConfig, handles: Mapping[str, Any]) -> None:
        from modelport.server import ServerSettings, create_app

        registry = ServeRegistry([_with_handles(e, handles) for e in routes])
        # Every route is a handle, so "loading" one only asks its deployment what it can do.
        settings = ServerSettings.from_config(server, preload=registry.names(), response_store=_store(server))
        self._app = create_app(registry, settings)

    def __serve_build_asgi_app__(self) -> Any:
        return self._app
