"""Draining and shutdown: refuse new work, let in-flight work finish for a grace period, cut the rest.

One ``Lifecycle`` belongs to one app. The request middleware counts requests in and out; the
serving code passes its event streams through ``guard`` so that a stop cuts them with an error
(a stream's last event is then an error event, never a silent end).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TypeVar

from modelport.core.errors import ShuttingDownError

__all__ = ["Lifecycle"]

logger = logging.getLogger("modelport.server")

T = TypeVar("T")


class Lifecycle:
    """Whether the app drains, and the requests it still holds.

    Args:
        drain_timeout_s: How long in-flight requests may run on after a drain starts.
    """

    def __init__(self, drain_timeout_s: float = 30.0) -> None:
        self.drain_timeout_s = drain_timeout_s
        self.draining = False
        self.in_flight = 0
        # Created on first use, inside the running loop.
        self._stop: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None

    @property
    def stop_event(self) -> asyncio.Event:
        """Set when in-flight work must end now."""
        if self._stop is None:
            self._stop = asyncio.Event()
        return self._stop

    def _idle_event(self) -> asyncio.Event:
        if self._idle is None:
            self._idle = asyncio.Event()
            if self.in_flight == 0:
                self._idle.set()
        return self._idle

    def enter(self) -> None:
        """Counts a request in."""
        self.in_flight += 1
        self._idle_event().clear()

    def leave(self) -> None:
        """Counts a request out."""
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle_event().set()

    def check_open(self) -> None:
        """Refuses new work while draining.

        Raises:
            ShuttingDownError: If a drain has begun.
        """
        if self.draining:
            raise ShuttingDownError()

    async def drain(self, timeout_s: float | None = None) -> None:
        """Stops taking work, waits up to ``timeout_s`` for in-flight requests, then cuts the rest."""
        timeout = self.drain_timeout_s if timeout_s is None else timeout_s
        self.draining = True
        started = time.monotonic()
        logger.info("draining: %d request(s) in flight, waiting up to %.1f s", self.in_flight, timeout)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle_event().wait(), timeout)
        if self.in_flight:
            logger.warning("drain timeout: cutting %d request(s) still in flight", self.in_flight)
        await self.stop_now()
        logger.info("drained in %.1f s", time.monotonic() - started)

    async def stop_now(self, grace_s: float = 2.0) -> None:
        """Cuts every guarded stream at once and waits briefly for their error events to go out."""
        self.draining = True
        self.stop_event.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._idle_event().wait(), grace_s)

    async def guard(self, items: AsyncIterator[T]) -> AsyncIterator[T]:
        """Yields ``items`` until they end or the server stops.

        Raises:
            ShuttingDownError: When a stop cuts the stream; the caller turns it into an error event.
        """
        stop = self.stop_event
        if stop.is_set():
            raise ShuttingDownError()
        stopped = asyncio.ensure_future(stop.wait())
        iterator = aiter(items)
        following: asyncio.Future[T] | None = None
        try:
            while True:
                following = asyncio.ensure_future(anext(iterator))
                await asyncio.wait({following, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not following.done():
                    raise ShuttingDownError("The server is shutting down; this answer was cut.")
                try:
                    item = following.result()
                except StopAsyncIteration:
                    return
                yield item
        finally:
            stopped.cancel()
            # The step in flight (when a stop or a client's disconnect cut the wait) must end
            # before the iterator can be closed: closing a running generator is an error.
            if following is not None and not following.done():
                following.cancel()
                with contextlib.suppress(BaseException):
                    await following
            close = getattr(items, "aclose", None)  # stop the worker's generation too
            if close is not None:
                await close()
