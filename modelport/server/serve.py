"""Runs an app under uvicorn with a bounded, graceful shutdown.

On the first SIGTERM or SIGINT the app drains: new API requests get 503 with ``Retry-After``
and ``/health/ready`` turns 503, in-flight requests run on for up to the drain timeout, then the
rest are cut (each open stream gets an error event) and uvicorn stops. A second signal cuts
everything at once, still through the same clean path: no traceback, no re-raised signal.
"""

from __future__ import annotations

import asyncio
import logging
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from modelport.server.state import ServerState

__all__ = ["DrainingServer", "serve"]

logger = logging.getLogger("modelport.server")


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose signals start the app's drain instead of closing the socket at once."""

    def __init__(self, config: uvicorn.Config, state: ServerState) -> None:
        super().__init__(config)
        self._state = state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain: asyncio.Task[None] | None = None
        self._cut: asyncio.Task[None] | None = None

    async def startup(self, sockets: Any = None) -> None:
        """Starts uvicorn and notes the loop, which signal handlers schedule onto."""
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Starts the drain on a first signal; cuts everything on a second."""
        # Runs in the main thread between the loop's steps; uvicorn would record the signal and
        # raise it again after shutdown (a traceback for SIGINT, exit status -15 for SIGTERM).
        if self._loop is None:
            self.should_exit = True
            return
        if self._drain is None:
            logger.info("signal %d: draining (up to %.1f s)", sig, self._state.lifecycle.drain_timeout_s)
            self._loop.call_soon_threadsafe(self._start_drain)
        else:
            logger.warning("signal %d again: cutting every request now", sig)
            self._loop.call_soon_threadsafe(self._cut_now)

    def _start_drain(self) -> None:
        self._drain = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self._state.lifecycle.drain()
        finally:
            self.should_exit = True

    def _cut_now(self) -> None:
        async def cut() -> None:
            await self._state.lifecycle.stop_now(grace_s=1.0)
            self.should_exit = True

        self._cut = asyncio.ensure_future(cut())


def serve(app: FastAPI, *, host: str, port: int, log_level: str = "info") -> None:
    """Serves ``app`` until a signal has drained it (see the module's docstring)."""
    state: ServerState = app.state.modelport
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,  # modelport.server.ops.logs has configured the loggers
        access_log=False,  # modelport.access writes one richer line per request
        timeout_graceful_shutdown=2,  # the drain already ran; this only bounds the last bytes
        # Longer than the idle timeouts of clients and load balancers (60 s is common): a server
        # that closes an idle connection first races the client's next request on it, which then
        # fails with a read error (uvicorn's default is 5 s; the soak benchmark hit that race).
        timeout_keep_alive=65,
    )
    DrainingServer(config, state).run()
