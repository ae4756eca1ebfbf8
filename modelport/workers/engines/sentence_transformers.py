"""Dynamic batching for the ``sentence-transformers`` kind.

Concurrent ``embed`` calls are merged into one ``encode`` call on one owner thread: a batch is
flushed once it holds ``max_batch_texts`` texts, or ``batch_wait_s`` after its first request
arrived. Texts are encoded raw (no normalisation, no truncation) and each request's own options
are applied to its slice afterwards, so requests with different ``dimensions`` or ``normalize``
share a batch. Requests with different prompts (``input_type``) are encoded in one call per
prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from modelport.core.request import EmbeddingRequest
from modelport.workers.engines.micro_batch import MicroBatcher

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


class SentenceTransformersEngine(MicroBatcher[SentenceTransformersJob]):
    """Merges concurrent embedding requests into shared ``encode`` calls.

    Args:
        encode: Encodes texts under a prompt; returns raw vectors and per-text token counts.
        max_batch_texts: Texts in one flush at most (a larger single request runs alone).
        batch_wait_s: How long the first request of a batch waits for others to join it.
    """

    def __init__(self, encode: Encoder, *, max_batch_texts: int, batch_wait_s: float) -> None:
        self._encode = encode
        super().__init__(max_batch=max_batch_texts, batch_wait_s=batch_wait_s, name="modelport-embed")

    @property
    def max_batch_texts(self) -> int:
        """Texts in one flush at most."""
        return self.max_batch

    def submit(self, request: EmbeddingRequest, prompt: str | None) -> Future[tuple[Any, int]]:
        """Queues a request; the future holds its raw vectors and its token count."""
        pending = SentenceTransformersJob(request, prompt)
        self._put(pending)
        return pending.future

    def _size(self, job: SentenceTransformersJob) -> int:
        return len(job.request.texts)

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
