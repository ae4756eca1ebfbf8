"""Dynamic batching for the ``sentence-transformers`` kind.

Concurrent ``embed`` calls are merged into one ``encode`` call on one owner thread: a batch is
flushed once it holds ``max_batch_texts`` texts, or ``batch_wait_s`` after its first request
arrived. Texts are encoded raw (no normalisation, no truncation) and each request's own options
are applied to its slice afterwards, so requests with different ``dimensions`` or ``normalize``
share a batch. Requests with different prompts (``input_type``) are encoded in one call per
prompt.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from modelport.core.request import EmbeddingRequest
from modelport.workers.engines.handoff import gather

__all__ = [
    "SentenceTransformersEngine",
    "SentenceTransformersJob",
]

# encode(texts, prompt) -> (vectors as a 2-D array, tokens of each text)
Encoder = Callable[[list[str], str | None], tuple[Any, list[int]]]


class SentenceTransformersJob:
    """One embed call waiting for its batch: its request, prompt and future."""

    __slots__ = ("future", "prompt", "request")

    def __init__(self, request: EmbeddingRequest, prompt: str | None) -> None:
        self.request = request
        self.prompt = prompt
        self.future: Future[tuple[Any, int]] = Future()


class SentenceTransformersEngine:
    """Merges concurrent embedding requests into shared ``encode`` calls.

    Args:
        encode: Encodes texts under a prompt; returns raw vectors and per-text token counts.
        max_batch_texts: Texts in one flush at most (a larger single request runs alone).
        batch_wait_s: How long the first request of a batch waits for others to join it.
    """

    def __init__(self, encode: Encoder, *, max_batch_texts: int, batch_wait_s: float) -> None:
        self._encode = encode
        self.max_batch_texts = max_batch_texts
        self.batch_wait_s = batch_wait_s
        self._inbox: queue.Queue[SentenceTransformersJob | None] = queue.Queue()
        self.flushes: list[int] = []
        self._thread = threading.Thread(target=self._run, name="modelport-embed", daemon=True)
        self._thread.start()

    def submit(self, request: EmbeddingRequest, prompt: str | None) -> Future[tuple[Any, int]]:
        """Queues a request; the future holds its raw vectors and its token count."""
        pending = SentenceTransformersJob(request, prompt)
        self._inbox.put(pending)
        return pending.future

    def close(self) -> None:
        """Stops the owner thread once the queued requests are done."""
        self._inbox.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        carry: SentenceTransformersJob | None = None
        while True:
            first = carry or self._inbox.get()
            carry = None
            if first is None:
                return
            batch, carry, stop = gather(
                self._inbox,
                first,
                size=lambda p: len(p.request.texts),
                limit=self.max_batch_texts,
                wait_s=self.batch_wait_s,
            )
            self._flush(batch)
            if stop:
                if carry is not None:
                    self._flush([carry])
                return

    def _flush(self, batch: Sequence[SentenceTransformersJob]) -> None:
        live = [p for p in batch if p.future.set_running_or_notify_cancel()]
        self.flushes.append(sum(len(p.request.texts) for p in live))
        for prompt in {p.prompt for p in live}:
            group = [p for p in live if p.prompt == prompt]
            texts = [t for p in group for t in p.request.texts]
            try:
                vectors, tokens = self._encode(texts, prompt)
            except BaseException as error:  # noqa: BLE001 - each caller gets the failure
                for p in group:
                    p.future.set_exception(error)
                continue
            start = 0
            for p in group:
                end = start + len(p.request.texts)
                p.future.set_result((vectors[start:end], sum(tokens[start:end])))
                start = end
