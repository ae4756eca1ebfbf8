"""LangChain integration: ``ChatModelPort`` and ``ModelPortEmbeddings``; and the ``runnable`` kind.

May import ``core`` and ``workers``; never the server or ``modelport.ray``.
"""

from modelport.integrations.langchain.chat_models import ChatModelPort
from modelport.integrations.langchain.embeddings import ModelPortEmbeddings

__all__ = ["ChatModelPort", "ModelPortEmbeddings"]
