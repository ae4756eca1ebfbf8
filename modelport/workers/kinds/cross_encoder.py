"""The ``cross-encoder`` kind: rerank scores from a sentence-transformers ``CrossEncoder``."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from modelport.core.capabilities import Capabilities
from modelport.core.errors import BadRequestError
from modelport.core.rerank import RerankRequest, RerankResult
from modelport.workers.base import RerankWorker
from modelport.workers.engines.cross_encoder import CrossEncoderEngine
from modelport.workers.kinds.sentence_transformers import SentenceTransformersWorker
from modelport.workers.model_files import check_path, resolve_path

__all__ = ["ACTIVATIONS", "CrossEncoderWorker"]

ACTIVATIONS = ("sigmoid", "identity", "tanh")
"""What ``activation`` may name: the function applied to the model's logit (its ``activation_fn``)."""


def _activation(name: str | None) -> Callable[[Any], Any] | None:
    """The torch module ``name`` stands for; ``None`` keeps the model's own (sigmoid for one label)."""
    if name is None:
        return None
    import torch

    modules: dict[str, Callable[[], Any]] = {
        "sigmoid": torch.nn.Sigmoid,
        "identity": torch.nn.Identity,
        "tanh": torch.nn.Tanh,
    }
    return modules[name]()  # type: ignore[no-any-return]


class CrossEncoderWorker(RerankWorker):
    """Scores each query-document pair with one forward pass of a cross-encoder.

    Args:
        model: A hub id, a local folder, or ``package:NAME/path``.
        device: Torch device; the library picks one when omitted.
        max_length: Tokens of a pair the model reads; longer pairs are cut to it (the model's
            own limit when omitted).
        activation: ``sigmoid`` (scores in 0..1), ``identity`` (raw logits) or ``tanh``;
            the model's own ``activation_fn`` when omitted.
        batch_size: Pairs per forward pass.
        trust_remote_code: Allow custom model code; off unless asked for.
        max_batch_pairs: Pairs that concurrent calls may merge into one ``predict`` call.
        batch_wait_s: How long the first call of a batch waits for others to join it.
    """

    capabilities = Capabilities(chat=False, rerank=True)

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        """Checks ``model``'s folder (hub ids are left to loading) and the ``activation`` name."""
        check_path(params.get("model"), param="model", local_only=True)
        activation = params.get("activation")
        if activation is not None and activation not in ACTIVATIONS:
            raise BadRequestError(f"unknown activation {activation!r}; known: {list(ACTIVATIONS)}", param="activation")

    # The same libraries and the same safetensors weights as the embedding kind's.
    prepare = staticmethod(SentenceTransformersWorker.prepare)
    estimate_footprint = staticmethod(SentenceTransformersWorker.estimate_footprint)

    def __init__(
        self,
        model: str,
        *,
        device: str | None = None,
        max_length: int | None = None,
        activation: str | None = None,
        batch_size: int = 32,
        trust_remote_code: bool = False,
        max_batch_pairs: int = 256,
        batch_wait_s: float = 0.005,
    ) -> None:
        self.check_params({"model": model, "activation": activation})
        if isinstance(max_length, bool) or (
            max_length is not None and (not isinstance(max_length, int) or max_length < 2)
        ):
            raise BadRequestError(f"must be an integer of at least 2, got {max_length!r}", param="max_length")
        from sentence_transformers import CrossEncoder

        path = resolve_path(model)
        kwargs: dict[str, Any] = {"device": device, "trust_remote_code": trust_remote_code, "max_length": max_length}
        function = _activation(activation)
        if function is not None:
            kwargs["activation_fn"] = function
        self.model: Any = CrossEncoder(str(path) if path.exists() else model, **kwargs)
        if int(getattr(self.model, "num_labels", 1)) != 1:
            raise BadRequestError(
                f"this cross-encoder has {self.model.num_labels} labels; a reranker has one", param="model"
            )
        self.batch_size = batch_size
        self.max_length = int(getattr(self.model, "max_length", 0) or 0) or None
        self.parallelism = max_batch_pairs
        self._engine = CrossEncoderEngine(self._predict, max_batch_pairs=max_batch_pairs, batch_wait_s=batch_wait_s)
        # Stopped at interpreter exit too, before torch's C++ statics are destroyed.
        self._finalizer = weakref.finalize(self, self._engine.close)
        self.capabilities = Capabilities(
            chat=False, rerank=True, max_rerank_pairs=max_batch_pairs, max_pair_tokens=self.max_length
        )

    def _predict(self, pairs: list[tuple[str, str]]) -> Any:
        return self.model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True)

    def score(self, request: RerankRequest) -> RerankResult:
        """The model's score for each pair (batched with concurrent calls)."""
        scores = self._engine.submit(request).result()
        return RerankResult(scores, self._count(request))

    async def ascore(self, request: RerankRequest) -> RerankResult:
        """Scores without blocking the event loop, batched with concurrent calls."""
        scores = await asyncio.wrap_future(self._engine.submit(request))
        return RerankResult(scores, self._count(request))

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` holds, special tokens included and nothing cut."""
        return len(self.model.tokenizer(text, add_special_tokens=True)["input_ids"])

    def _count(self, request: RerankRequest) -> int:
        """Tokens the pairs took as the model read them (each cut to ``max_length``)."""
        tokenizer = self.model.tokenizer
        queries = [request.query] * len(request.documents)
        ids = tokenizer(
            queries, list(request.documents), truncation=self.max_length is not None, max_length=self.max_length
        )["input_ids"]
        return sum(len(x) for x in ids)

    def close(self) -> None:
        """Stops the batching thread."""
        self._finalizer()
