"""``ModelDeployment``: the Serve deployment that holds one model entry.

Each replica builds its worker once, in its constructor (Serve counts a replica as started when
the model is in), and serves the core types: chat as a stream of event batches, embeddings as a
result. Typed errors travel as values so that the ingress re-raises them with their status.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ray import serve

from modelport.core.errors import ModelPortError
from modelport.core.events import StreamEvent
from modelport.core.request import ChatRequest, EmbeddingRequest, EmbeddingResult
from modelport.core.rerank import RerankRequest, RerankResult
from modelport.workers.base import Worker
from modelport.workers.model_registry import ModelEntry, ModelRegistry

__all__ = ["ModelDeployment"]

logger = logging.getLogger("modelport.ray")

# Events that are ready at once travel together: one Ray message per batch, not per token.
_BATCH_MAX = 64


@serve.deployment
class ModelDeployment:
    """One model: its entry's worker, built in each replica.

    Args:
        entry: The model entry; parameters that can change in place are left out of it and come
            through ``user_config`` instead, so changing them restarts nothing.
    """

    def __init__(self, entry: ModelEntry) -> None:
        self._entry = entry
        self._registry = ModelRegistry([entry])
        # A failure here is Serve's to handle: it retries the constructor and reports the
        # deployment unhealthy with the reason, so a broken model never takes traffic.
        self._worker: Worker = self._registry.load(entry.name)

    def reconfigure(self, user_config: Mapping[str, Any]) -> None:
        """Applies the parameters that need no reload (``serve deploy`` with a new ``user_config``)."""
        params = dict(user_config.get("params", {}))
        if params:
            self._worker.reconfigure(**params)
            logger.info("%s reconfigured: %s", self._entry.name, ", ".join(sorted(params)))

    def describe(self) -> dict[str, Any]:
        """The model's name and capabilities (which the ingress's worker declares) and its node."""
        import ray

        return {
            "model": self._entry.name,
            "capabilities": self._worker.capabilities,
            "node_id": ray.get_runtime_context().get_node_id(),
        }

    def check_health(self) -> None:
        """Serve's health check: a remote model's server must answer; a local one is up if here."""
        check = getattr(self._worker, "check_health", None)
        if callable(check):
            check(5.0)

    async def chat(self, request: ChatRequest) -> AsyncIterator[list[StreamEvent] | ModelPortError]:
        """Streams the answer in batches of the events that are ready; a typed error ends it."""
        try:
            worker = self._registry.chat(self._entry.name)
            queue: asyncio.Queue[StreamEvent | None] = asyncio.Queue()
            pump = asyncio.ensure_future(_pump(worker.astream(request), queue))
            try:
                while True:
                    first = await queue.get()
                    if first is None:
                        break
                    batch = [first]
                    while not queue.empty() and len(batch) < _BATCH_MAX:
                        event = queue.get_nowait()
                        if event is None:
                            yield batch
                            await pump  # raises what the worker raised
                            return
                        batch.append(event)
                    yield batch
                await pump
            finally:
                # Serve cancels this generator when the caller goes away; the worker stops too.
                pump.cancel()
        except ModelPortError as error:
            yield error

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult | ModelPortError:
        """Embeds the texts; a typed error is returned, not raised."""
        try:
            return await self._registry.embedder(self._entry.name).aembed(request)
        except ModelPortError as error:
            return error

    async def score(self, request: RerankRequest) -> RerankResult | ModelPortError:
        """Scores the documents against the query; a typed error is returned, not raised."""
        try:
            return await self._registry.reranker(self._entry.name).ascore(request)
        except ModelPortError as error:
            return error

    def __del__(self) -> None:
        self._registry.close()


async def _pump(events: AsyncIterator[StreamEvent], queue: asyncio.Queue[StreamEvent | None]) -> None:
    """Moves the worker's events into ``queue``, then ``None``; closes the stream however it ends."""
    try:
        async for event in events:
            queue.put_nowait(event)
    finally:
        queue.put_nowait(None)
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
