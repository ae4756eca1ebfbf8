"""LangChain integration: ``ChatModelPort`` and ``ModelPortEmbeddings``."""

from modelport.integrations.langchain.chat_models import ChatModelPort
from modelport.integrations.langchain.embeddings import ModelPortEmbeddings

__all__ = ["ChatModelPort", "ModelPortEmbeddings"]
