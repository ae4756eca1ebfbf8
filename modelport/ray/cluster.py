"""Starting or joining a Ray cluster, and running the application on it (``--backend ray``).

Token authentication: a cluster started by ``ray start`` with a token (``RAY_AUTH_MODE=token``;
Ray's default from 2.61) refuses a driver that sends none, and Ray reads the mode once, on
import. So before joining, a process that has a token at hand (``RAY_AUTH_TOKEN``,
``RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) and no mode set takes ``token``; a cluster
without authentication ignores it. A refused join says which token to use.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from modelport.config import Config
from modelport.core.errors import UpstreamUnavailableError
from modelport.ray.app import app_plan_of, build_app, private_defaults

__all__ = ["connect", "private_defaults", "run", "token_mode"]

logger = logging.getLogger("modelport.ray")


def _token_at_hand() -> bool:
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return True
    return (Path.home() / ".ray" / "auth_token").is_file()


def token_mode() -> None:
    """Sends the token when joining a cluster: ``RAY_AUTH_MODE=token`` where a token is at hand.

    Leaves an explicit ``RAY_AUTH_MODE`` alone, and does nothing once Ray is imported (it has
    read the mode then).
    """
    if "RAY_AUTH_MODE" in os.environ or "ray" in sys.modules or not _token_at_hand():
        return
    os.environ["RAY_AUTH_MODE"] = "token"
    logger.info("joining with token authentication (RAY_AUTH_MODE=token)")


def _join_failed(address: str, error: Exception) -> UpstreamUnavailableError:
    mode = os.environ.get("RAY_AUTH_MODE", "disabled")
    return UpstreamUnavailableError(
        f"could not join the Ray cluster at {address}: {error}. If the cluster uses token "
        f"authentication, this process must send its token (RAY_AUTH_MODE is {mode!r} here): set "
        "RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to what `ray get-auth-token` prints on the head "
        "node; a ~/.ray/auth_token left by another cluster is the usual cause of InvalidAuthToken.",
        status_code=503,
    )


def connect(address: str | None = None, *, num_cpus: int | None = None, **init: Any) -> bool:
    """Joins the cluster at ``address``, or starts a local one (without the dashboard).

    Returns:
        True if this call started a local cluster (the caller then shuts it down).

    Raises:
        UpstreamUnavailableError: If the cluster at ``address`` cannot be joined; the message
            says how to give it the token it may want.
    """
    private_defaults()
    if address:
        token_mode()
    import ray

    if ray.is_initialized():
        return False
    if address:
        try:
            ray.init(address=address, **init)
        except ConnectionError as error:
            raise _join_failed(address, error) from None
        return False
    ray.init(num_cpus=num_cpus, include_dashboard=False, **init)
    return True


def _serve_running() -> bool:
    """Whether Ray Serve already runs on the cluster (its controller actor exists)."""
    import ray

    try:
        # Serve has no public "is it running" call; its controller is a named actor.
        from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE
    except ImportError:
        return True  # unknown: leave Serve alone
    try:
        ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    except ValueError:
        return False
    return True


def run(config: Config, *, host: str, port: int, address: str | None = None) -> None:
    """Deploys ``config`` on Ray Serve with its HTTP proxy on ``host:port``; blocks until a signal.

    On SIGINT or SIGTERM the application is deleted, which drains each replica for its
    deployment's ``graceful_shutdown_timeout_s``. Serve (its HTTP proxy holds the port) is
    shut down when this call started it, on a cluster it joined too, and a cluster this call
    started is stopped; a Serve that ran before goes on serving its other applications.
    """
    app_plan = app_plan_of(config)  # a bad config stops here, before Ray starts
    started = connect(address)
    from ray import serve

    owns_serve = started or not _serve_running()

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
        if owns_serve:
            logger.info("stopping Ray Serve and its HTTP proxy")
            serve.shutdown()  # type: ignore[no-untyped-call]
        if started:
            import ray

            ray.shutdown()
