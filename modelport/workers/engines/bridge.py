"""Runs blocking generators in a thread and exposes them to asyncio.

Local engines (llama.cpp, torch) block while they compute. This bridge keeps the
event loop free: the generator runs in its own thread, each item hops to the loop
with ``call_soon_threadsafe``, and leaving the async iterator early sets the
cancel event, which the generator checks between tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Executor
from typing import TypeVar

__all__ = ["iterate_in_thread"]

T = TypeVar("T")

_DONE = object()


class _Raised:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def iterate_in_thread(
    produce: Callable[[threading.Event], Iterator[T]], executor: Executor | None = None
) -> AsyncIterator[T]:
    """Yields the items of ``produce(cancel)``, which runs in a worker thread.

    Args:
        produce: Builds the blocking iterator; it should stop soon after ``cancel`` is set.
        executor: Where to run it; a new thread when omitted. Engines that keep per-thread
            state (llama.cpp's and torch's OpenMP thread teams) want long-lived threads.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    cancel = threading.Event()

    def post(item: object) -> None:
        # The loop may already be closed when a cancelled producer finishes.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def run() -> None:
        try:
            for item in produce(cancel):
                post(item)
                if cancel.is_set():
                    break
        except BaseException as error:  # noqa: BLE001 - re-raised on the loop side
            post(_Raised(error))
        finally:
            post(_DONE)

    # The caller's context goes with the work, so that log lines from the generating thread keep
    # the request id (and anything else a caller keeps in context variables).
    context = contextvars.copy_context()
    if executor is not None:
        executor.submit(context.run, run)
    else:
        threading.Thread(target=context.run, args=(run,), name="modelport-generate", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        cancel.set()
