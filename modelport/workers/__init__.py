"""Workers: the protocol, the kind and model registries, and everything that answers a request.

The local pipeline (``local/``), its engines (``engines/``), the kinds (``kinds/``), remote
clients (``remote/``) and replica sets (``replicas/``). May import ``core``; never a surface.
"""

from modelport.workers.base import ChatWorker, EmbeddingWorker, RerankWorker, Worker
from modelport.workers.kind_registry import ENTRY_POINT_GROUP, KindRegistry, register_worker, worker_kinds
from modelport.workers.local.worker import LocalChatWorker
from modelport.workers.model_registry import BUILTIN_MODELS, ModelEntry, ModelRegistry, default_registry

__all__ = [
    "BUILTIN_MODELS",
    "ENTRY_POINT_GROUP",
    "ChatWorker",
    "EmbeddingWorker",
    "KindRegistry",
    "LocalChatWorker",
    "ModelEntry",
    "ModelRegistry",
    "RerankWorker",
    "Worker",
    "worker_kinds",
    "default_registry",
    "register_worker",
]
