"""LlamaIndex adapters: ``ModelPortLLM`` (a FunctionCallingLLM), ``ModelPortEmbedding``, ``ModelPortRerank``.

May import ``core`` and ``workers``; never the server or ``modelport.ray``.
"""

from modelport.integrations.llama_index.embeddings import ModelPortEmbedding
from modelport.integrations.llama_index.llm import ModelPortLLM
from modelport.integrations.llama_index.rerank import ModelPortRerank

__all__ = ["ModelPortEmbedding", "ModelPortLLM", "ModelPortRerank"]
