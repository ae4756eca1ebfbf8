"""``MicroBatcher``: one owner thread that merges concurrent calls into shared batches.

The embedding and cross-encoder engines are both this: a call queues a job and waits on its
future; the thread takes the first job, gathers what arrives within ``batch_wait_s`` while the
batch holds at most ``max_batch`` items (a larger single job runs alone), and flushes it.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar

from modelport.workers.engines.handoff import gather

__all__ = ["MicroBatcher"]

J = TypeVar("J")


class MicroBatcher(ABC, Generic[J]):
    """Runs batches of jobs ``J`` on one owner thread.

    Args:
        max_batch: Items (texts, pairs) in one flush at most.
        batch_wait_s: How long the first job of a batch waits for others to join it.
        name: The owner thread's name.
    """

    def __init__(self, *, max_batch: int, batch_wait_s: float, name: str) -> None:
        self.max_batch = max_batch
        self.batch_wait_s = batch_wait_s
        self._inbox: queue.Queue[J | None] = queue.Queue()
        # Items per flush so far, for tests and benchmarks.
        self.flushes: list[int] = []
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @abstractmethod
    def _size(self, job: J) -> int:
        """How many items ``job`` adds to a batch."""

    @abstractmethod
    def _flush(self, batch: Sequence[J]) -> None:
        """Runs one batch and settles each job's future (on this thread)."""

    def _put(self, job: J) -> None:
        self._inbox.put(job)

    def close(self) -> None:
        """Stops the owner thread once the queued jobs are done."""
        self._inbox.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        carry: J | None = None
        while True:
            first = carry or self._inbox.get()
            carry = None
            if first is None:
                return
            batch, carry, stop = gather(
                self._inbox, first, size=self._size, limit=self.max_batch, wait_s=self.batch_wait_s
            )
            self._flush(batch)
            if stop:
                if carry is not None:
                    self._flush([carry])
                return
