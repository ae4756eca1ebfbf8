"""Workers: the protocol, the kind and model registries, and the built-in kinds."""

from modelport.workers.base import ChatWorker, EmbeddingWorker, Worker
from modelport.workers.local import LocalChatWorker
from modelport.workers.models import BUILTIN_MODELS, ModelEntry, ModelRegistry, default_registry
from modelport.workers.registry import ENTRY_POINT_GROUP, KindRegistry, register_worker, worker_kinds

__all__ = [
    "BUILTIN_MODELS",
    "ENTRY_POINT_GROUP",
    "ChatWorker",
    "EmbeddingWorker",
    "KindRegistry",
    "LocalChatWorker",
    "ModelEntry",
    "ModelRegistry",
    "Worker",
    "worker_kinds",
    "default_registry",
    "register_worker",
]
