"""What the batching engines share: per-request hand-off queues and the batch gathering loop.

An engine's owner thread produces for many requests at once; each request's consumer (the
thread that streams its events) reads its own ``Handoff``. Batching engines that flush on a
size or a deadline gather their inbox with ``gather``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Handoff", "LinkedStop", "gather"]

T = TypeVar("T")
Item = TypeVar("Item")


class LinkedStop(threading.Event):
    """A stop signal of its own that also reads as set once its parent is set.

    A choice stops on its own or on its caller's cancel; an auto-mode branch on losing or on the
    answer's halt.
    """

    def __init__(self, parent: threading.Event) -> None:
        super().__init__()
        self._parent = parent

    def is_set(self) -> bool:
        """Whether this event or its parent is set."""
        return super().is_set() or self._parent.is_set()


@dataclass(slots=True)
class _End:
    eos: bool
    error: BaseException | None = None


class Handoff(Generic[T]):
    """One request's items, from the engine thread to the request's consumer, then its end."""

    def __init__(self) -> None:
        self._out: queue.SimpleQueue[T | _End] = queue.SimpleQueue()
        self.cancelled = threading.Event()
        self.done = False
        self.eos = False
        self._wake: Callable[[], None] = lambda: None

    def put(self, item: T) -> None:
        """Hands one item to the consumer (engine thread)."""
        self._out.put(item)

    def finish(self, eos: bool, error: BaseException | None = None) -> None:
        """Ends the stream once (engine thread): at end of sequence, on a limit, a cancel or an error."""
        if not self.done:
            self.done = True
            self._out.put(_End(eos, error))

    def cancel(self) -> None:
        """Asks the engine to drop this request; it does at its next step."""
        if not self.cancelled.is_set():
            self.cancelled.set()
            self._wake()

    def results(self, halt: threading.Event, poll: float = 0.05) -> Iterator[T]:
        """Yields the items as they come; sets ``eos`` at the end and raises the engine's error.

        Stops, and cancels the request, as soon as ``halt`` is set, even while it is still queued.
        """
        while True:
            try:
                item = self._out.get(timeout=poll)
            except queue.Empty:
                if halt.is_set():
                    self.cancel()
                    return
                continue
            if isinstance(item, _End):
                self.eos = item.eos
                if item.error is not None:
                    raise item.error
                return
            yield item


def gather(
    inbox: queue.Queue[Item | None], first: Item, *, size: Callable[[Item], int], limit: int, wait_s: float
) -> tuple[list[Item], Item | None, bool]:
    """Collects a batch: ``first``, then what arrives within ``wait_s`` while the batch fits ``limit``.

    Returns:
        The batch, an item that did not fit (it starts the next batch), and whether ``None``
        (the stop signal) was read.
    """
    batch, total = [first], size(first)
    deadline = time.monotonic() + wait_s
    while total < limit:
        try:
            item = inbox.get(timeout=max(deadline - time.monotonic(), 0.0))
        except queue.Empty:
            break
        if item is None:
            return batch, None, True
        if total + size(item) > limit:
            return batch, item, False
        batch.append(item)
        total += size(item)
    return batch, None, False
