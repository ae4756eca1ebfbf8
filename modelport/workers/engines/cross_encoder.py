"""Dynamic batching for the ``cross-encoder`` kind.

Concurrent ``score`` calls are merged into one ``predict`` call on one owner thread, counted in
query-document pairs: a batch is flushed once it holds ``max_batch_pairs`` pairs, or
``batch_wait_s`` after its first request arrived (``MicroBatcher``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from modelport.core.rerank import RerankRequest
from modelport.workers.engines.micro_batch import MicroBatcher

__all__ = ["CrossEncoderEngine", "CrossEncoderJob"]

# predict(pairs) -> one score per pair (a 1-D array or list)
Predict = Callable[[list[tuple[str, str]]], Any]


class CrossEncoderJob:
    """One score call waiting for its batch: its request and future."""

    __slots__ = ("future", "request")

    def __init__(self, request: RerankRequest) -> None:
        self.request = request
        self.future: Future[list[float]] = Future()


class CrossEncoderEngine(MicroBatcher[CrossEncoderJob]):
    """Merges concurrent rerank requests into shared ``predict`` calls.

    Args:
        predict: Scores a list of pairs in one call.
        max_batch_pairs: Pairs in one flush at most (a larger single request runs alone).
        batch_wait_s: How long the first request of a batch waits for others to join it.
    """

    def __init__(self, predict: Predict, *, max_batch_pairs: int, batch_wait_s: float) -> None:
        self._predict = predict
        super().__init__(max_batch=max_batch_pairs, batch_wait_s=batch_wait_s, name="modelport-rerank")

    def submit(self, request: RerankRequest) -> Future[list[float]]:
        """Queues a request; the future holds its documents' scores in order."""
        job = CrossEncoderJob(request)
        self._put(job)
        return job.future

    def _size(self, job: CrossEncoderJob) -> int:
        return len(job.request.documents)

    def _flush(self, batch: Sequence[CrossEncoderJob]) -> None:
        live = [j for j in batch if j.future.set_running_or_notify_cancel()]
        pairs = [(j.request.query, d) for j in live for d in j.request.documents]
        self.flushes.append(len(pairs))
        try:
            scores = [float(s) for s in self._predict(pairs)]
        except BaseException as error:  # noqa: BLE001 - each caller gets the failure
            for j in live:
                j.future.set_exception(error)
            return
        start = 0
        for j in live:
            end = start + len(j.request.documents)
            j.future.set_result(scores[start:end])
            start = end
