"""Starting or joining a Ray cluster, and running the application on it (``--backend ray``)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from modelport.config import Config
from modelport.ray.app import app_plan_of, build_app, private_defaults

__all__ = ["connect", "private_defaults", "run"]

logger = logging.getLogger("modelport.ray")


def connect(address: str | None = None, *, num_cpus: int | None = None, **init: Any) -> bool:
    """Joins the cluster at ``address``, or starts a local one (without the dashboard).

    Returns:
        True if this call started a local cluster (the caller then shuts it down).
    """
    private_defaults()
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, **init)
        return False
    ray.init(num_cpus=num_cpus, include_dashboard=False, **init)
    return True


def run(config: Config, *, host: str, port: int, address: str | None = None) -> None:
    """Deploys ``config`` on Ray Serve with its HTTP proxy on ``host:port``; blocks until a signal.

    On SIGINT or SIGTERM the application is deleted, which drains each replica for its
    deployment's ``graceful_shutdown_timeout_s``, and a cluster this call started is stopped.
    """
    app_plan = app_plan_of(config)  # a bad config stops here, before Ray starts
    started = connect(address)
    from ray import serve

    # After ray.init, which installs a SIGTERM handler that exits at once: a signal now, even one
    # that arrives while the deployments start, stops the application cleanly instead.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": host, "port": port})
        serve.run(build_app(config), name=app_plan.app_name, route_prefix=app_plan.route_prefix)
        logger.info("serving %d deployments on http://%s:%d", len(app_plan.deployments), host, port)
        stop.wait()
        logger.info("stopping: draining %s", app_plan.app_name)
        serve.delete(app_plan.app_name)
    finally:
        if started:
            import ray

            serve.shutdown()  # type: ignore[no-untyped-call]
            ray.shutdown()
