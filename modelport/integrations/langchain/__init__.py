"""LangChain integration: ``ChatModelPort``, ``ModelPortEmbeddings``, the rerankers; and the ``runnable`` kind.

May import ``core`` and ``workers``; never the server or ``modelport.ray``.
"""

from modelport.integrations.langchain.chat_models import ChatModelPort
from modelport.integrations.langchain.embeddings import ModelPortEmbeddings
from modelport.integrations.langchain.rerankers import ModelPortCrossEncoder, ModelPortReranker

__all__ = ["ChatModelPort", "ModelPortCrossEncoder", "ModelPortEmbeddings", "ModelPortReranker"]
